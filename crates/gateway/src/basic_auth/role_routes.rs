//! basic-auth's role, role-permission, assignment and per-user grant routes, on mlgate's groups
//! and generated grant policies ([`crate::admin::mlflow_roles`]).
//!
//! A route naming a role by id is decided on the role's group ARN; a role id that names no role
//! is decided on the server's ARN before it is answered 404, so the answer tells a caller the
//! policies do not allow nothing about which roles exist.

use std::collections::BTreeMap;

use mlgate_catalog::AuthOperation as Op;
use serde_json::{Value, json};

use super::{
    AuthApi, AuthRequest, in_admins, is_admin, is_own_account, refusal, role_groups, role_json,
};
use crate::admin::mlflow_roles::{
    DEFAULT_WORKSPACE, Permission, grant_policy, numeric_id, role_of_group, scope_of,
};
use crate::audit::Trail;
use crate::error::GatewayError;
use crate::identity::PrincipalKind;
use crate::store::{AttachTarget, GroupRecord, PolicySource, UserRecord};

/// A role permission: the role's group and the grant policy attached to it.
struct RolePermission<'a> {
    group: &'a GroupRecord,
    policy: &'a str,
    permission: Permission,
}

impl RolePermission<'_> {
    fn id(&self) -> i64 {
        numeric_id(&[&self.group.id, self.policy])
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id(),
            "role_id": numeric_id(&[&self.group.id]),
            "resource_type": self.permission.resource_type,
            "resource_pattern": self.permission.resource_pattern,
            "permission": self.permission.permission,
        })
    }
}

/// The grants among `policies` (names), read with their `documents`.
fn grants<'a>(
    policies: &'a [String],
    documents: &BTreeMap<String, String>,
) -> impl Iterator<Item = (&'a str, Permission)> {
    policies.iter().filter_map(|name| {
        let document = documents.get(name)?;
        Some((name.as_str(), Permission::of_policy(name, document)?))
    })
}

impl AuthApi<'_> {
    /// The role, role-permission, assignment and per-user grant routes.
    pub(super) async fn answer_roles(
        &self,
        request: &AuthRequest<'_>,
        trail: &mut Trail,
    ) -> Result<Value, GatewayError> {
        let principal = request.asker.principal;
        let store = &self.store;
        let account = Some(principal.account.as_str());
        let fields = &request.fields;
        let groups = store.list_groups(account).await.map_err(refusal)?;
        let documents: BTreeMap<String, String> = store
            .list_policies()
            .await
            .map_err(refusal)?
            .into_iter()
            .map(|p| (p.name, p.document))
            .collect();
        let permissions_of = |group: &GroupRecord| -> Vec<Value> {
            grants(&group.policies, &documents)
                .map(|(policy, permission)| {
                    RolePermission {
                        group,
                        policy,
                        permission,
                    }
                    .to_json()
                })
                .collect()
        };
        let roles_json = |roles: &mut dyn Iterator<Item = &GroupRecord>| -> Vec<Value> {
            roles
                .filter_map(|g| Some(role_json(g, role_of_group(&g.name)?, permissions_of(g))))
                .collect()
        };
        Ok(match request.route.operation {
            Op::CreateRole => {
                let name = fields.string("name")?;
                let workspace = fields.string("workspace")?;
                if name.trim().is_empty() {
                    return Err(bad("Role name cannot be empty."));
                }
                if workspace.trim().is_empty() {
                    return Err(bad("Workspace cannot be empty."));
                }
                fields.optional_string("description")?;
                let group = super::roles::role_group(workspace, name);
                self.decide(request, self.scope.group(&group), false, trail)?;
                store.create_group(account, &group).await.map_err(refusal)?;
                let created = store.list_groups(account).await.map_err(refusal)?;
                let created = created
                    .iter()
                    .find(|g| g.name == group)
                    .ok_or_else(|| not_found(format!("role {name:?}")))?;
                json!({ "role": role_json(created, (workspace, name), Vec::new()) })
            }
            Op::GetRole | Op::ListRolePermissions | Op::DeleteRole | Op::ListRoleUsers => {
                let group = self.role(request, &groups, trail)?;
                match request.route.operation {
                    Op::GetRole => {
                        let role = role_of_group(&group.name).unwrap_or_default();
                        json!({ "role": role_json(group, role, permissions_of(group)) })
                    }
                    Op::ListRolePermissions => json!({ "role_permissions": permissions_of(group) }),
                    Op::DeleteRole => {
                        store
                            .delete_group(account, &group.name)
                            .await
                            .map_err(refusal)?;
                        json!({})
                    }
                    _ => {
                        let users = store.list_users(account).await.map_err(refusal)?;
                        let assignments: Vec<Value> = users
                            .iter()
                            .filter(|u| group.members.contains(&u.name))
                            .map(|u| assignment_json(group, u))
                            .collect();
                        json!({ "assignments": assignments })
                    }
                }
            }
            Op::ListRoles => {
                let workspace = fields.optional_string("workspace")?;
                if workspace.is_some_and(|w| w.trim().is_empty()) {
                    return Err(bad(
                        "Parameter 'workspace' must be a non-empty string when provided.",
                    ));
                }
                self.decide(request, self.scope.server(), false, trail)?;
                let mut roles = role_groups(&groups)
                    .filter(|(_, (ws, _))| workspace.is_none_or(|w| w == *ws))
                    .map(|(g, _)| g);
                json!({ "roles": roles_json(&mut roles) })
            }
            Op::UpdateRole => {
                let name = fields.optional_string("name")?;
                let description = fields.optional_string("description")?;
                if name.is_none() && description.is_none() {
                    return Err(bad(
                        "At least one of 'name' or 'description' must be provided to update a \
                         role.",
                    ));
                }
                let group = self.role(request, &groups, trail)?;
                let (workspace, current) = role_of_group(&group.name).unwrap_or_default();
                if name.is_some_and(|n| n != current) {
                    return Err(bad(
                        "mlgate does not rename roles: create a role with the new name, assign \
                         its users and add its permissions",
                    ));
                }
                json!({ "role": role_json(group, (workspace, current), permissions_of(group)) })
            }
            Op::AddRolePermission => {
                let resource_type = fields.string("resource_type")?;
                let pattern = fields.string("resource_pattern")?;
                let permission = fields.string("permission")?;
                let group = self.role(request, &groups, trail)?;
                let (policy, document) =
                    self.role_grant(group, resource_type, pattern, permission)?;
                store
                    .put_policy(&policy, &document)
                    .await
                    .map_err(refusal)?;
                store
                    .attach_policy(&policy, account, AttachTarget::Group(&group.name))
                    .await
                    .map_err(refusal)?;
                let permission = Permission::of_policy(&policy, &document).ok_or_else(|| {
                    GatewayError::Internal("a grant that does not read back".into())
                })?;
                let added = RolePermission {
                    group,
                    policy: &policy,
                    permission,
                };
                json!({ "role_permission": added.to_json() })
            }
            Op::RemoveRolePermission | Op::UpdateRolePermission => {
                let id = fields.int("role_permission_id")?;
                let new_permission = match request.route.operation {
                    Op::UpdateRolePermission => Some(fields.string("permission")?),
                    _ => None,
                };
                let found = groups.iter().find_map(|group| {
                    role_of_group(&group.name)?;
                    grants(&group.policies, &documents)
                        .map(|(policy, permission)| RolePermission {
                            group,
                            policy,
                            permission,
                        })
                        .find(|p| p.id() == id)
                });
                let Some(old) = found else {
                    self.decide(request, self.scope.server(), false, trail)?;
                    return Err(not_found(format!("role permission {id}")));
                };
                self.decide(request, self.scope.group(&old.group.name), false, trail)?;
                let replacement = match new_permission {
                    Some(permission) => Some(self.role_grant(
                        old.group,
                        old.permission.resource_type,
                        &old.permission.resource_pattern,
                        permission,
                    )?),
                    None => None,
                };
                store
                    .detach_policy(old.policy, account, AttachTarget::Group(&old.group.name))
                    .await
                    .map_err(refusal)?;
                match replacement {
                    None => json!({}),
                    Some((policy, document)) => {
                        store
                            .put_policy(&policy, &document)
                            .await
                            .map_err(refusal)?;
                        store
                            .attach_policy(&policy, account, AttachTarget::Group(&old.group.name))
                            .await
                            .map_err(refusal)?;
                        let permission =
                            Permission::of_policy(&policy, &document).ok_or_else(|| {
                                GatewayError::Internal("a grant that does not read back".into())
                            })?;
                        let updated = RolePermission {
                            group: old.group,
                            policy: &policy,
                            permission,
                        };
                        json!({ "role_permission": updated.to_json() })
                    }
                }
            }
            Op::AssignRole | Op::UnassignRole => {
                let username = fields.string("username")?;
                let group = self.role(request, &groups, trail)?;
                let user = store.get_user(account, username).await.map_err(refusal)?;
                match request.route.operation {
                    Op::AssignRole => {
                        store
                            .add_member(account, &group.name, username)
                            .await
                            .map_err(refusal)?;
                        json!({ "assignment": assignment_json(group, &user) })
                    }
                    _ => {
                        store
                            .remove_member(account, &group.name, username)
                            .await
                            .map_err(refusal)?;
                        json!({})
                    }
                }
            }
            Op::ListUserRoles => {
                let username = fields.string("username")?;
                self.named_user(request, username, trail).await?;
                let mut roles = role_groups(&groups)
                    .filter(|(g, _)| g.members.iter().any(|m| m == username))
                    .map(|(g, _)| g);
                json!({ "roles": roles_json(&mut roles) })
            }
            // A federated user or role session has no `users` row: its roles are the groups
            // it is in, and it has no per-user grants.
            Op::ListCurrentUserPermissions if principal.kind != PrincipalKind::User => {
                self.decide(request, self.scope.user(&principal.name), true, trail)?;
                let rows = self
                    .permission_rows(&principal.groups, None, &groups, &documents)
                    .await?;
                json!({
                    "is_admin": in_admins(&principal.groups),
                    "permissions": rows,
                })
            }
            Op::ListCurrentUserPermissions | Op::ListUserPermissions => {
                let username = match request.route.operation {
                    Op::ListCurrentUserPermissions => principal.name.as_str(),
                    _ => fields.string("username")?,
                };
                let user = self.named_user(request, username, trail).await?;
                let rows = self
                    .permission_rows(&user.groups, Some(&user), &groups, &documents)
                    .await?;
                json!({
                    "is_admin": is_admin(&user),
                    "permissions": rows,
                })
            }
            Op::GrantUserPermission | Op::RevokeUserPermission | Op::GetUserPermission => {
                let username = fields.string("username")?;
                let resource_type = fields.string("resource_type")?;
                let resource_id = fields.string("resource_id")?;
                let permission = match request.route.operation {
                    Op::GrantUserPermission => Some(fields.string("permission")?),
                    _ => None,
                };
                scope_of(resource_type, resource_id).map_err(|e| bad(e.to_string()))?;
                let user = match (request.route.operation, resource_id) {
                    // As in basic-auth, whoever may manage a resource may grant and revoke
                    // per-user permissions on it: decided on the resource, where a MANAGE grant
                    // allows `mlflow:*` and EDIT leaves these two actions out. A grant on `*`
                    // names no resource: it is decided on the user, like the role routes.
                    (Op::GrantUserPermission | Op::RevokeUserPermission, id) if id != "*" => {
                        let arn = match resource_type {
                            "experiment" => self.scope.experiment(id),
                            "registered_model" => self.scope.registered_model(id),
                            _ => self.scope.prompt(id),
                        };
                        self.decide(request, arn, false, trail)?;
                        let account = Some(principal.account.as_str());
                        store.get_user(account, username).await.map_err(refusal)?
                    }
                    _ => self.named_user(request, username, trail).await?,
                };
                if request.route.operation == Op::GetUserPermission {
                    let rows = self
                        .permission_rows(&user.groups, Some(&user), &groups, &documents)
                        .await?;
                    let level = effective_level(&rows, resource_type, resource_id);
                    return Ok(json!({
                        "allowed": matches!(level, "USE" | "EDIT" | "MANAGE"),
                        "permission": level,
                    }));
                }
                let granted = match permission {
                    Some(permission) => grant_policy(resource_type, resource_id, permission)
                        .map_err(|e| bad(e.to_string()))?,
                    None => None,
                };
                let direct = self.direct_grants(&user, &documents).await?;
                let replaced: Vec<&String> = direct
                    .iter()
                    .filter(|(_, p)| {
                        p.resource_type == resource_type && p.resource_pattern == resource_id
                    })
                    .map(|(name, _)| name)
                    .collect();
                if permission.is_none() && replaced.is_empty() {
                    return Err(not_found(format!(
                        "a grant of user {username:?} on {resource_type} {resource_id:?}"
                    )));
                }
                for policy in replaced {
                    store
                        .detach_policy(policy, account, AttachTarget::User(username))
                        .await
                        .map_err(refusal)?;
                }
                if let Some((policy, document)) = granted {
                    store
                        .put_policy(&policy, &document)
                        .await
                        .map_err(refusal)?;
                    store
                        .attach_policy(&policy, account, AttachTarget::User(username))
                        .await
                        .map_err(refusal)?;
                }
                json!({})
            }
            _ => return Err(GatewayError::Internal("not a role route".into())),
        })
    }

    /// The user a request names, decided on its ARN (one's own account needs no policy on an
    /// own-account route).
    async fn named_user(
        &self,
        request: &AuthRequest<'_>,
        username: &str,
        trail: &mut Trail,
    ) -> Result<UserRecord, GatewayError> {
        let principal = request.asker.principal;
        let own = is_own_account(principal, username);
        self.decide(request, self.scope.user(username), own, trail)?;
        let account = Some(principal.account.as_str());
        let store = &self.store;
        store.get_user(account, username).await.map_err(refusal)
    }

    /// The role a request names by `role_id`, decided on its group; one that does not exist
    /// is decided on the server, then answered 404.
    fn role<'g>(
        &self,
        request: &AuthRequest<'_>,
        groups: &'g [GroupRecord],
        trail: &mut Trail,
    ) -> Result<&'g GroupRecord, GatewayError> {
        let id = request.fields.int("role_id")?;
        let found = groups
            .iter()
            .find(|g| role_of_group(&g.name).is_some() && numeric_id(&[&g.id]) == id);
        let arn = match found {
            Some(group) => self.scope.group(&group.name),
            None => self.scope.server(),
        };
        self.decide(request, arn, false, trail)?;
        found.ok_or_else(|| not_found(format!("role {id}")))
    }

    /// The grant policy of a permission of `group`'s role (only roles of the default
    /// workspace hold permissions: generated grants are not scoped to a workspace).
    fn role_grant(
        &self,
        group: &GroupRecord,
        resource_type: &str,
        pattern: &str,
        permission: &str,
    ) -> Result<(String, String), GatewayError> {
        let (workspace, _) = role_of_group(&group.name).unwrap_or_default();
        if workspace != DEFAULT_WORKSPACE {
            return Err(bad(format!(
                "roles of workspace {workspace:?} cannot hold permissions in mlgate yet: only \
                 roles of {DEFAULT_WORKSPACE:?} can"
            )));
        }
        grant_policy(resource_type, pattern, permission)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("NO_PERMISSIONS grants nothing: remove the permission instead"))
    }

    /// The grant policies attached to `user` directly (its per-user grants).
    async fn direct_grants(
        &self,
        user: &UserRecord,
        documents: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, Permission)>, GatewayError> {
        let sources = self
            .store
            .effective_policy_sources(Some(&user.account_id), &user.name)
            .await
            .map_err(refusal)?;
        let direct: Vec<String> = sources
            .into_iter()
            .filter(|(_, from)| from.iter().any(|s| matches!(s, PolicySource::User { .. })))
            .map(|(policy, _)| policy)
            .collect();
        Ok(grants(&direct, documents)
            .map(|(name, permission)| (name.to_owned(), permission))
            .collect())
    }

    /// basic-auth's rows of a user's permissions: those of each role it holds, and its
    /// per-user grants as MLflow's synthetic role `__user_<id>__`.
    /// The rows basic-auth lists for a principal: the permissions of every role among
    /// `member_of`, then `user`'s per-user grants.
    async fn permission_rows(
        &self,
        member_of: &[String],
        user: Option<&UserRecord>,
        groups: &[GroupRecord],
        documents: &BTreeMap<String, String>,
    ) -> Result<Vec<Value>, GatewayError> {
        let row = |role_id: i64, role_name: &str, workspace: &str, p: &Permission| {
            json!({
                "role_id": role_id,
                "role_name": role_name,
                "workspace": workspace,
                "resource_type": p.resource_type,
                "resource_pattern": p.resource_pattern,
                "permission": p.permission,
            })
        };
        let mut rows = Vec::new();
        for (group, (workspace, name)) in role_groups(groups) {
            if member_of.contains(&group.name) {
                for (_, p) in grants(&group.policies, documents) {
                    rows.push(row(numeric_id(&[&group.id]), name, workspace, &p));
                }
            }
        }
        let Some(user) = user else {
            return Ok(rows);
        };
        let synthetic = format!("__user_{}__", user.id);
        for (_, p) in self.direct_grants(user, documents).await? {
            rows.push(row(
                numeric_id(&[&user.id]),
                &synthetic,
                DEFAULT_WORKSPACE,
                &p,
            ));
        }
        Ok(rows)
    }
}

/// A user's permission on one resource as basic-auth's `users/permissions/get` resolves it:
/// DENY if any row on it or on `*` denies, else the highest of those rows. Being an admin
/// changes nothing here, as in basic-auth: admins pass every check without a permission.
fn effective_level(rows: &[Value], resource_type: &str, id: &str) -> &'static str {
    const ORDER: [&str; 4] = ["NO_PERMISSIONS", "READ", "EDIT", "MANAGE"];
    let on_it: Vec<&Value> = rows
        .iter()
        .filter(|r| r["resource_type"] == resource_type)
        .filter(|r| r["resource_pattern"] == id || r["resource_pattern"] == "*")
        .collect();
    if on_it.iter().any(|r| r["permission"] == "DENY") {
        return "DENY";
    }
    on_it
        .iter()
        .filter_map(|r| ORDER.iter().position(|level| r["permission"] == *level))
        .max()
        .map_or(ORDER[0], |i| ORDER[i])
}

/// basic-auth's `UserRoleAssignment.to_json`.
fn assignment_json(group: &GroupRecord, user: &UserRecord) -> Value {
    json!({
        "id": numeric_id(&[&group.id, &user.id]),
        "user_id": user.id,
        "role_id": numeric_id(&[&group.id]),
    })
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(message.into())
}

fn not_found(what: String) -> GatewayError {
    GatewayError::NotFound { what }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_grant_on_the_resource_or_every_one_wins() {
        let row = |t: &str, p: &str, l: &str| json!({"resource_type": t, "resource_pattern": p, "permission": l});
        let rows = [
            row("experiment", "*", "READ"),
            row("experiment", "7", "EDIT"),
            row("registered_model", "7", "MANAGE"),
        ];
        assert_eq!(effective_level(&rows, "experiment", "7"), "EDIT");
        assert_eq!(effective_level(&rows, "experiment", "8"), "READ");
        assert_eq!(effective_level(&rows, "prompt", "7"), "NO_PERMISSIONS");
        assert_eq!(effective_level(&[], "prompt", "7"), "NO_PERMISSIONS");
        let denied = [rows[0].clone(), row("experiment", "8", "DENY")];
        assert_eq!(effective_level(&denied, "experiment", "8"), "DENY");
        assert_eq!(effective_level(&denied, "experiment", "7"), "READ");
    }
}
