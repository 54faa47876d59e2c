//! MLflow basic-auth's REST API, answered by mlgate itself (`docs/basic-auth.md`): the routes
//! of [`mlgate_catalog::AUTH_ROUTES`] act on mlgate's own users, so scripts written against
//! `AuthServiceClient` keep working. They never reach MLflow.
//!
//! Each request is decided like any other: its action on the ARN of the user it names
//! ([`ArnScope::user`]; a listing on the server's) by the caller's policies, noted for the audit record. A route basic-auth
//! lets anyone call on their own account ([`Callers::OwnAccount`]) is allowed on the caller's
//! own user without a policy, unless a policy explicitly denies it. `is_admin` is membership of
//! the [`ADMINS_GROUP`].

mod fields;
mod role_routes;

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use mlgate_catalog::{AuthOperation, AuthRoute, Callers};
use mlgate_policy::Decision;
use serde_json::{Value, json};

use crate::admin::mlflow_roles::{self as roles, ADMINS_DOCUMENT, ADMINS_GROUP, ADMINS_POLICY};
use crate::audit::{AuditDecision, Trail};
use crate::authenticate::Authenticator;
use crate::authenticate::basic::verify_password;
use crate::authorize::{Asker, Notes};
use crate::error::GatewayError;
use crate::identity::{AuthMethod, Principal, PrincipalKind};
use crate::resolve::ArnScope;
use crate::store::{AttachTarget, GroupRecord, Store, StoreError, UserRecord, password};

pub use fields::{Fields, is_json};

/// What the API needs besides the request.
pub struct AuthApi<'a> {
    pub authenticator: &'a Authenticator,
    /// The store, its changes journaled as the principal's (`store/journal.rs`).
    pub store: Store,
    pub scope: &'a ArnScope,
}

/// One request to the API: who asks, with which policies, and what it sent.
pub struct AuthRequest<'a> {
    pub route: &'static AuthRoute,
    pub asker: &'a Asker<'a>,
    pub fields: Fields,
    /// Whether the body was JSON (basic-auth's create refuses anything else).
    pub json_body: bool,
    pub client_ip: std::net::IpAddr,
}

impl AuthApi<'_> {
    /// Decides and answers `request`.
    pub async fn answer(
        &self,
        request: AuthRequest<'_>,
        trail: &mut Trail,
    ) -> Result<Response, GatewayError> {
        let body = match request.route.operation {
            AuthOperation::CreateUser
            | AuthOperation::GetUser
            | AuthOperation::GetCurrentUser
            | AuthOperation::ListUsers
            | AuthOperation::UpdateUserPassword
            | AuthOperation::UpdateUserAdmin
            | AuthOperation::DeleteUser => self.answer_user(&request, trail).await?,
            _ => self.answer_roles(&request, trail).await?,
        };
        Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response())
    }

    /// The user routes.
    async fn answer_user(
        &self,
        request: &AuthRequest<'_>,
        trail: &mut Trail,
    ) -> Result<Value, GatewayError> {
        let principal = request.asker.principal;
        let target = match request.route.operation {
            AuthOperation::GetCurrentUser | AuthOperation::ListUsers => principal.name.clone(),
            _ => request.fields.string("username")?.to_owned(),
        };
        // A listing names no user: it is decided on the server, like MLflow's searches.
        let arn = match request.route.operation {
            AuthOperation::ListUsers => self.scope.server(),
            _ => self.scope.user(&target),
        };
        let own_account = match request.route.operation {
            // Who am I: any principal may ask about itself, whatever its kind.
            AuthOperation::GetCurrentUser => true,
            _ => is_own_account(principal, &target),
        };
        self.decide(request, arn, own_account, trail)?;
        let store = &self.store;
        let account = Some(principal.account.as_str());
        Ok(match request.route.operation {
            AuthOperation::CreateUser => {
                if !request.json_body {
                    return Err(GatewayError::BadRequest(
                        "Invalid content type. Must be application/json".into(),
                    ));
                }
                let password = request.fields.string("password")?;
                if target.is_empty() || password.is_empty() {
                    return Err(GatewayError::BadRequest(
                        "Username and password cannot be empty.".into(),
                    ));
                }
                let hash = password::hash_async(password.to_owned())
                    .await
                    .map_err(refusal)?;
                let user = store
                    .create_user(account, &target, Some(hash), BTreeMap::new())
                    .await
                    .map_err(refusal)?;
                json!({ "user": user_json(&user) })
            }
            AuthOperation::GetUser => {
                let user = store.get_user(account, &target).await.map_err(refusal)?;
                json!({ "user": user_json(&user) })
            }
            AuthOperation::GetCurrentUser => {
                // Only built-in users have a `users` row, and so an id; a federated user or a
                // role session is answered from the principal itself. `is_basic_auth` makes
                // the UI offer its sign-out, which ends mlgate's session
                // ([`crate::portal::ui_sign_out`]).
                let id = match principal.kind {
                    PrincipalKind::User => {
                        Some(store.get_user(account, &target).await.map_err(refusal)?.id)
                    }
                    _ => None,
                };
                json!({
                    "user": {
                        "id": id,
                        "username": principal.name,
                        "is_admin": in_admins(&principal.groups),
                    },
                    "is_basic_auth": true,
                })
            }
            AuthOperation::ListUsers => {
                let users = store.list_users(account).await.map_err(refusal)?;
                let groups = store.list_groups(account).await.map_err(refusal)?;
                let users: Vec<Value> = users
                    .iter()
                    .map(|user| {
                        let mut entry = user_json(user);
                        let roles: Vec<Value> = role_groups(&groups)
                            .filter(|(group, _)| group.members.contains(&user.name))
                            .map(|(group, role)| role_json(group, role, Vec::new()))
                            .collect();
                        entry["roles"] = json!(roles);
                        entry
                    })
                    .collect();
                json!({ "users": users })
            }
            AuthOperation::UpdateUserPassword => {
                let new = request.fields.string("password")?;
                if is_own_account(principal, &target) {
                    self.check_current_password(request, new).await?;
                }
                let hash = password::hash_async(new.to_owned())
                    .await
                    .map_err(refusal)?;
                store
                    .set_password(account, &target, Some(hash))
                    .await
                    .map_err(refusal)?;
                json!({})
            }
            AuthOperation::UpdateUserAdmin => {
                let Some(is_admin) = request.fields.get("is_admin")?.as_bool() else {
                    return Err(GatewayError::BadRequest(
                        "Parameter 'is_admin' must be a boolean.".into(),
                    ));
                };
                let change = match is_admin {
                    true => self.add_admin(account, &target).await,
                    false => store.remove_member(account, ADMINS_GROUP, &target).await,
                };
                change.map_err(refusal)?;
                json!({})
            }
            AuthOperation::DeleteUser => {
                if target == principal.name {
                    return Err(GatewayError::Refused(
                        "Users cannot delete their own account. Ask another admin to delete \
                         this user instead."
                            .into(),
                    ));
                }
                store.delete_user(account, &target).await.map_err(refusal)?;
                json!({})
            }
            _ => return Err(GatewayError::Internal("not a user route".into())),
        })
    }

    /// Adds `user` to the [`ADMINS_GROUP`], creating the group with the admins policy when
    /// it does not exist yet.
    async fn add_admin(&self, account: Option<&str>, user: &str) -> Result<bool, StoreError> {
        let store = &self.store;
        match store.add_member(account, ADMINS_GROUP, user).await {
            Err(StoreError::NotFound { kind: "group", .. }) => {
                store.put_policy(ADMINS_POLICY, ADMINS_DOCUMENT).await?;
                match store.create_group(account, ADMINS_GROUP).await {
                    Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
                    Err(other) => return Err(other),
                }
                store
                    .attach_policy(ADMINS_POLICY, account, AttachTarget::Group(ADMINS_GROUP))
                    .await?;
                store.add_member(account, ADMINS_GROUP, user).await
            }
            other => other,
        }
    }

    /// The route's action on `arn` by the caller's policies; one's own account needs no
    /// policy on an own-account route, but an explicit deny still refuses.
    fn decide(
        &self,
        request: &AuthRequest<'_>,
        arn: String,
        own_account: bool,
        trail: &mut Trail,
    ) -> Result<(), GatewayError> {
        let asker = request.asker;
        let action = request.route.action();
        let arns = [arn];
        let (question, verdict) = asker.ask(&action, &arns, asker.execute_api, &asker.context);
        trail.decisions.note(&question, &verdict);
        let own = request.route.callers == Callers::OwnAccount && own_account;
        if !allows(&verdict.decision, own) {
            return Err(GatewayError::PermissionDenied(
                verdict.denial(&asker.principal.arn),
            ));
        }
        if !verdict.is_allowed() {
            trail.decision = Some(AuditDecision::Allow);
            trail.reason = Some("the caller's own account".into());
        }
        Ok(())
    }

    /// basic-auth's rule for changing one's own password: the current one must be given, must
    /// match (checked like a sign-in, with its rate limits) and must differ from the new one.
    async fn check_current_password(
        &self,
        request: &AuthRequest<'_>,
        new: &str,
    ) -> Result<(), GatewayError> {
        let current = match request.fields.get("current_password") {
            Ok(Value::String(current)) if !current.is_empty() => current,
            _ => {
                return Err(GatewayError::BadRequest(
                    "Current password is required when changing your own password.".into(),
                ));
            }
        };
        let principal = request.asker.principal;
        let user_ref = format!("{}/{}", principal.account, principal.name);
        verify_password(
            self.authenticator,
            &user_ref,
            current,
            Some(request.client_ip),
            AuthMethod::Basic,
        )
        .await
        .map_err(|failure| match failure.kind {
            crate::error::AuthFailureKind::Invalid => {
                GatewayError::BadRequest("Current password does not match.".into())
            }
            _ => GatewayError::Authentication(failure),
        })?;
        if new == current {
            return Err(GatewayError::BadRequest(
                "New password must differ from the current password.".into(),
            ));
        }
        Ok(())
    }
}

/// Whether a request is allowed: when its policies allow it, or on one's own account when no
/// policy denies it.
fn allows(decision: &Decision, own_account: bool) -> bool {
    match decision {
        Decision::Allow(_) => true,
        Decision::ImplicitDeny => own_account,
        Decision::ExplicitDeny(_) => false,
    }
}

/// Whether `target` is the caller's own mlgate user (role sessions and federated users have no
/// user of their own).
fn is_own_account(principal: &Principal, target: &str) -> bool {
    matches!(principal.kind, PrincipalKind::User) && principal.name == target
}

/// basic-auth's `User.to_json`.
fn user_json(user: &UserRecord) -> Value {
    json!({
        "id": user.id,
        "username": user.name,
        "is_admin": is_admin(user),
    })
}

/// basic-auth's `is_admin`: membership of the [`ADMINS_GROUP`].
fn is_admin(user: &UserRecord) -> bool {
    in_admins(&user.groups)
}

fn in_admins(groups: &[String]) -> bool {
    groups.iter().any(|g| g == ADMINS_GROUP)
}

/// The groups that are basic-auth roles, with their workspace and name.
fn role_groups(groups: &[GroupRecord]) -> impl Iterator<Item = (&GroupRecord, (&str, &str))> {
    groups
        .iter()
        .filter_map(|g| Some((g, roles::role_of_group(&g.name)?)))
}

/// basic-auth's `Role.to_json` of a role's group (mlgate keeps no description).
fn role_json(
    group: &GroupRecord,
    (workspace, name): (&str, &str),
    permissions: Vec<Value>,
) -> Value {
    json!({
        "id": roles::numeric_id(&[&group.id]),
        "name": name,
        "workspace": workspace,
        "description": null,
        "permissions": permissions,
    })
}

/// A store error as basic-auth answers it: unknown names 404, taken names and rule breaks 400;
/// anything else is the store being unavailable.
fn refusal(error: StoreError) -> GatewayError {
    match error {
        StoreError::NotFound { kind, name } => GatewayError::NotFound {
            what: format!("{kind} {name:?}"),
        },
        StoreError::AlreadyExists { kind, name } => GatewayError::AlreadyExists {
            what: format!("{kind} {name:?}"),
        },
        StoreError::Invalid(message) => GatewayError::BadRequest(message),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mlgate_policy::Determining;

    use super::*;

    fn principal(kind: PrincipalKind) -> Principal {
        Principal {
            arn: "arn:aws:iam::111111111111:user/alice".into(),
            account: "111111111111".into(),
            name: "alice".into(),
            kind,
            groups: Vec::new(),
            tags: BTreeMap::new(),
            auth_method: AuthMethod::Basic,
        }
    }

    #[test]
    fn own_account_needs_no_policy_but_yields_to_a_deny() {
        let by = || Determining {
            policy: "p".into(),
            statement: "s".into(),
        };
        assert!(allows(&Decision::Allow(by()), false));
        assert!(allows(&Decision::ImplicitDeny, true));
        assert!(!allows(&Decision::ImplicitDeny, false));
        assert!(!allows(&Decision::ExplicitDeny(by()), true));
    }

    #[test]
    fn only_a_user_has_an_account_of_its_own() {
        assert!(is_own_account(&principal(PrincipalKind::User), "alice"));
        assert!(!is_own_account(&principal(PrincipalKind::User), "bob"));
        let federated = PrincipalKind::FederatedUser {
            provider: "corp".into(),
        };
        assert!(!is_own_account(&principal(federated), "alice"));
    }
}
