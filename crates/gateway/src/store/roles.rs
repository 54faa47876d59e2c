//! Roles: an account's roles, each with a trust policy (an IAM resource policy naming who may
//! assume it), a maximum session duration and permission policies attached through
//! `role_attachments`.

use mlgate_policy::PolicyDocument;

use super::backend::{Queries, RoleQueries};
use super::identities::resolve_account;
use super::journal::{self, Entry, document, in_account};
use super::model::{Change, RoleRecord};
use super::policies::policy_id;
use super::validate::{validate_policy_name, validate_role_name};
use super::{Store, StoreError, StoreResult, new_id, now};

/// Shortest and longest session a role may allow (AWS: 1 h default, 12 h maximum).
pub const MIN_SESSION_SECONDS: i64 = 900;
pub const MAX_SESSION_SECONDS: i64 = 43_200;
pub const DEFAULT_MAX_SESSION_SECONDS: i64 = 3600;

/// Validates a trust policy (a resource policy: every statement needs a Principal).
pub fn check_trust_policy(role: &str, document: &str) -> StoreResult<PolicyDocument> {
    PolicyDocument::parse_resource_policy(document).map_err(|e| StoreError::InvalidPolicy {
        name: format!("trust policy of role {role}"),
        message: e.to_string(),
    })
}

fn check_duration(seconds: i64) -> StoreResult<()> {
    if !(MIN_SESSION_SECONDS..=MAX_SESSION_SECONDS).contains(&seconds) {
        return Err(StoreError::Invalid(format!(
            "max session duration must be between {MIN_SESSION_SECONDS} and {MAX_SESSION_SECONDS} seconds, not {seconds}"
        )));
    }
    Ok(())
}

/// The id of a role that must exist.
pub(super) async fn role_id<Q: Queries>(
    c: &mut Q,
    account: &str,
    name: &str,
) -> StoreResult<String> {
    c.role(account, name)
        .await?
        .map(|r| r.id)
        .ok_or_else(|| StoreError::not_found("role", name))
}

impl Store {
    /// Creates a role, or updates its trust policy, maximum session duration and description.
    pub async fn put_role(
        &self,
        account: Option<&str>,
        name: &str,
        trust_policy: &str,
        max_session_duration: i64,
        description: &str,
    ) -> StoreResult<Change> {
        validate_role_name(name)?;
        check_trust_policy(name, trust_policy)?;
        check_duration(max_session_duration)?;
        let default = self.default_account_id();
        write_db!(self, |c| async {
            let account = resolve_account(c, account, default).await?;
            let existing = c.role(&account, name).await?;
            let mut role = RoleRecord {
                id: new_id(),
                account_id: account,
                name: name.to_owned(),
                trust_policy: trust_policy.to_owned(),
                max_session_duration,
                description: description.to_owned(),
                policies: Vec::new(),
                created_at: now(),
            };
            let target = in_account("role", &role.account_id, name);
            let entry = Entry::new("PutRole", target).after(role_state(&role));
            let (change, entry) = match existing {
                Some(r)
                    if r.trust_policy == role.trust_policy
                        && r.max_session_duration == role.max_session_duration
                        && r.description == role.description =>
                {
                    return Ok(Change::Unchanged);
                }
                Some(r) => {
                    let entry = entry.before(role_state(&r));
                    role.id = r.id;
                    c.update_role(&role, now()).await?;
                    (Change::Updated, entry)
                }
                None => {
                    c.insert_role(&role, now()).await?;
                    (Change::Created, entry)
                }
            };
            journal::record(c, self.actor(), entry).await?;
            Ok::<_, StoreError>(change)
        }
        .await)
    }

    pub async fn get_role(&self, account: Option<&str>, name: &str) -> StoreResult<RoleRecord> {
        read_db!(self, |c| async {
            let account = resolve_account(c, account, self.default_account_id()).await?;
            c.role(&account, name)
                .await?
                .ok_or_else(|| StoreError::not_found("role", name))
        }
        .await)
    }

    /// A role by account id and name, `None` when there is no such role (or account).
    pub async fn find_role(&self, account_id: &str, name: &str) -> StoreResult<Option<RoleRecord>> {
        read_db!(self, |c| c.role(account_id, name).await)
    }

    pub async fn list_roles(&self, account: Option<&str>) -> StoreResult<Vec<RoleRecord>> {
        read_db!(self, |c| async {
            let account = match account {
                Some(a) => Some(resolve_account(c, Some(a), "").await?),
                None => None,
            };
            c.list_roles(account.as_deref()).await
        }
        .await)
    }

    /// Deletes a role with its attachments, access keys and sessions.
    pub async fn delete_role(&self, account: Option<&str>, name: &str) -> StoreResult<()> {
        let role = self.get_role(account, name).await?;
        write_db!(self, |c| async {
            c.delete_role(&role.id).await?;
            let target = in_account("role", &role.account_id, &role.name);
            let entry = Entry::new("DeleteRole", target).before(role_state(&role));
            journal::record(c, self.actor(), entry).await
        }
        .await)
    }

    /// Attaches (or with `attach = false` detaches) a permission policy to a role.
    pub async fn attach_role_policy(
        &self,
        account: Option<&str>,
        role: &str,
        policy: &str,
        attach: bool,
    ) -> StoreResult<bool> {
        if attach {
            validate_policy_name(policy)?;
        }
        let default = self.default_account_id();
        write_db!(self, |c| async {
            let account = resolve_account(c, account, default).await?;
            let rid = role_id(c, &account, role).await?;
            let pid = policy_id(c, policy).await?;
            let (changed, action) = if attach {
                (c.attach_role_policy(&pid, &rid).await?, "AttachRolePolicy")
            } else {
                (c.detach_role_policy(&pid, &rid).await?, "DetachRolePolicy")
            };
            if changed {
                let entry = Entry::new(action, in_account("role", &account, role))
                    .after(serde_json::json!({ "policy": policy }));
                journal::record(c, self.actor(), entry).await?;
            }
            Ok::<_, StoreError>(changed)
        }
        .await)
    }
}

/// A role as the journal shows it: its trust policy, session bound and description.
fn role_state(role: &RoleRecord) -> serde_json::Value {
    serde_json::json!({
        "trust_policy": document(&role.trust_policy),
        "max_session_duration": role.max_session_duration,
        "description": role.description,
    })
}
