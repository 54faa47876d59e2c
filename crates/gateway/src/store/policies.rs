//! Policy documents, their attachments, and the policy loader: which policies apply to a
//! principal, parsed and cached.
//!
//! Every principal's policies go through one loader, [`Store::cached_policies`]: the rows of
//! (name, document text) a backend query returns are parsed by [`parse_policies`] and cached
//! for at most [`super::MAX_CACHE_TTL`] under a [`PolicyKey`]. Parsing fails closed: a stored
//! document that no longer parses is an error, never silently skipped (it might hold a Deny).

use std::sync::Arc;

use mlgate_policy::{NamedPolicy, PolicyDocument};

use super::backend::{IdentityQueries, PolicyQueries, PolicyRows, Queries, RoleQueries};
use super::identities::{group_id, resolve_account, user_id};
use super::journal::{self, Actor, Entry, document, in_account};
use super::model::{Change, PolicyRecord, PolicySource, StsSessionRecord};
use super::validate::validate_policy_name;
use super::{Store, StoreError, StoreResult, new_id, now};
use crate::identity::{Principal, PrincipalKind};

/// The name of the session policy of an STS session.
pub(super) const SESSION_POLICY_NAME: &str = "session-policy";
/// What an assumed-role principal whose STS session is gone gets as its session policy.
const SESSION_ENDED: (&str, &str) = (
    "session-ended",
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
);

/// Whose policies a cache entry holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum PolicyKey {
    /// A built-in user: attached to it or to any of its groups.
    User { account: String, name: String },
    /// A federated user: attached to the groups its token maps to.
    Federated {
        account: String,
        groups: Vec<String>,
    },
    /// A role's permission policies.
    Role { account: String, name: String },
    /// The session policy of an STS session (empty: none).
    Session { access_key_id: String },
}

/// Validates a policy document with the policy engine.
pub fn check_policy(name: &str, document: &str) -> StoreResult<()> {
    PolicyDocument::parse(document)
        .map(|_| ())
        .map_err(|e| invalid_policy(name, &e))
}

fn invalid_policy(name: &str, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::InvalidPolicy {
        name: name.to_owned(),
        message: e.to_string(),
    }
}

/// Parses stored (name, document) rows, in their order. Fails on the first document the
/// policy engine rejects, naming it.
pub(super) fn parse_policies(rows: PolicyRows) -> StoreResult<Arc<[NamedPolicy]>> {
    rows.into_iter()
        .map(|(name, text)| match PolicyDocument::parse(&text) {
            Ok(document) => Ok(NamedPolicy { name, document }),
            Err(e) => Err(invalid_policy(&name, &e)),
        })
        .collect()
}

/// Two documents are the same when they are the same JSON value (formatting is ignored).
pub fn same_document(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Creates or replaces a policy document (the caller has validated it), journaled with the
/// document before and after.
pub(super) async fn put_policy<Q: Queries>(
    c: &mut Q,
    actor: &Actor,
    name: &str,
    text: &str,
) -> StoreResult<Change> {
    validate_policy_name(name)?;
    let entry = Entry::new("PutPolicy", format!("policy/{name}")).after(document(text));
    let (change, entry) = match c.find_policy(name).await? {
        Some((_, existing)) if same_document(&existing, text) => return Ok(Change::Unchanged),
        Some((id, existing)) => {
            c.update_policy(&id, text, now()).await?;
            (Change::Updated, entry.before(document(&existing)))
        }
        None => {
            c.insert_policy(&new_id(), name, text, now()).await?;
            (Change::Created, entry)
        }
    };
    journal::record(c, actor, entry).await?;
    Ok(change)
}

/// The id of a policy that must exist.
pub(super) async fn policy_id<Q: Queries>(c: &mut Q, name: &str) -> StoreResult<String> {
    c.find_policy(name)
        .await?
        .map(|(id, _)| id)
        .ok_or_else(|| StoreError::not_found("policy", name))
}

/// What a policy is attached to.
#[derive(Clone, Copy, Debug)]
pub enum AttachTarget<'a> {
    User(&'a str),
    Group(&'a str),
}

impl Store {
    /// The policy loader: `rows` (awaited only on a cache miss) parsed into the policies cached
    /// under `key`. Errors are not cached.
    async fn cached_policies(
        &self,
        key: PolicyKey,
        rows: impl Future<Output = StoreResult<PolicyRows>>,
    ) -> StoreResult<Arc<[NamedPolicy]>> {
        Ok(self
            .inner
            .policies
            .try_get_with(key, async {
                self.count_load();
                parse_policies(rows.await?)
            })
            .await?)
    }

    /// Validates `document` with `mlgate-policy` and stores it under `name` (creating or
    /// replacing). A document the policy engine rejects is refused with
    /// [`StoreError::InvalidPolicy`], whose message names the offending statement.
    pub async fn put_policy(&self, name: &str, document: &str) -> StoreResult<Change> {
        validate_policy_name(name)?;
        check_policy(name, document)?;
        write_db!(self, |c| put_policy(c, self.actor(), name, document).await)
    }

    pub async fn get_policy(&self, name: &str) -> StoreResult<PolicyRecord> {
        read_db!(self, |c| c.policy(name).await)?
            .ok_or_else(|| StoreError::not_found("policy", name))
    }

    pub async fn list_policies(&self) -> StoreResult<Vec<PolicyRecord>> {
        read_db!(self, |c| c.list_policies().await)
    }

    /// Deletes a policy. An attached policy is only deleted (and detached everywhere) with
    /// `force`; otherwise [`StoreError::Conflict`] lists where it is attached.
    pub async fn delete_policy(&self, name: &str, force: bool) -> StoreResult<()> {
        write_db!(self, |c| async {
            let pid = policy_id(c, name).await?;
            if !force {
                let mut holders: Vec<String> = c
                    .policy_attachments(&pid)
                    .await?
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                holders.extend(
                    c.policy_roles(&pid)
                        .await?
                        .into_iter()
                        .map(|(account, role)| format!("role {account}/{role}")),
                );
                if !holders.is_empty() {
                    return Err(StoreError::Conflict(format!(
                        "policy {name:?} is attached to {}; detach it first or delete with --force",
                        holders.join(", ")
                    )));
                }
            }
            let before = c.policy(name).await?.map(|p| document(&p.document));
            c.delete_policy(&pid).await?;
            let entry = Entry::new("DeletePolicy", format!("policy/{name}")).before(before);
            journal::record(c, self.actor(), entry).await
        }
        .await)
    }

    /// Attaches a policy to a user or group (`target`). Returns false if it already was.
    pub async fn attach_policy(
        &self,
        policy: &str,
        account: Option<&str>,
        target: AttachTarget<'_>,
    ) -> StoreResult<bool> {
        self.attach_or_detach(policy, account, target, true).await
    }

    /// Detaches a policy from a user or group. Returns false if it was not attached.
    pub async fn detach_policy(
        &self,
        policy: &str,
        account: Option<&str>,
        target: AttachTarget<'_>,
    ) -> StoreResult<bool> {
        self.attach_or_detach(policy, account, target, false).await
    }

    async fn attach_or_detach(
        &self,
        policy: &str,
        account: Option<&str>,
        target: AttachTarget<'_>,
        attach: bool,
    ) -> StoreResult<bool> {
        let default = self.default_account_id();
        write_db!(self, |c| async {
            let account = resolve_account(c, account, default).await?;
            let pid = policy_id(c, policy).await?;
            let (uid, gid) = match target {
                AttachTarget::User(u) => (Some(user_id(c, &account, u).await?), None),
                AttachTarget::Group(g) => (None, Some(group_id(c, &account, g).await?)),
            };
            let (changed, action) = if attach {
                (
                    c.attach(&pid, uid.as_deref(), gid.as_deref()).await?,
                    "AttachPolicy",
                )
            } else {
                (
                    c.detach(&pid, uid.as_deref(), gid.as_deref()).await?,
                    "DetachPolicy",
                )
            };
            if changed {
                let holder = match target {
                    AttachTarget::User(u) => in_account("user", &account, u),
                    AttachTarget::Group(g) => in_account("group", &account, g),
                };
                let entry = Entry::new(action, format!("policy/{policy}"))
                    .after(serde_json::json!({ "attached_to": holder }));
                journal::record(c, self.actor(), entry).await?;
            }
            Ok::<_, StoreError>(changed)
        }
        .await)
    }

    /// Where a policy is attached: user and group names (with their account ids).
    pub async fn policy_attachments(&self, name: &str) -> StoreResult<Vec<PolicySource>> {
        read_db!(self, |c| async {
            let pid = policy_id(c, name).await?;
            c.policy_attachments(&pid).await
        }
        .await)
    }

    /// The policies that apply to a user and why (directly, or through which groups), for
    /// `mlgate policy effective`. Uncached.
    pub async fn effective_policy_sources(
        &self,
        account: Option<&str>,
        user: &str,
    ) -> StoreResult<Vec<(String, Vec<PolicySource>)>> {
        let u = self.get_user(account, user).await?;
        let rows = read_db!(self, |c| c.user_policy_sources(&u.id).await)?;
        let mut out: Vec<(String, Vec<PolicySource>)> = Vec::new();
        for (policy, source) in rows {
            match out.last_mut() {
                Some((p, sources)) if *p == policy => sources.push(source),
                _ => out.push((policy, vec![source])),
            }
        }
        Ok(out)
    }

    /// Hot path: the principal's policies.
    ///
    /// * A built-in user: the policies attached to the user itself ∪ those attached to
    ///   **every** group it is a member of (not only the first), each policy once. A user that
    ///   no longer exists has none (everything is implicitly denied).
    /// * A federated (OIDC) user has no `users` row, only the mlgate groups its token's group
    ///   claim maps to: the union of the policies attached to those groups in its account. A
    ///   mapped group that does not exist gives nothing.
    /// * An assumed role: its role's permission policies; a session policy, if any, is checked
    ///   on top by the authorize stage ([`Store::session_policies`]).
    pub async fn effective_policies(
        &self,
        principal: &Principal,
    ) -> StoreResult<Arc<[NamedPolicy]>> {
        match &principal.kind {
            PrincipalKind::User => {
                let key = PolicyKey::User {
                    account: principal.account.clone(),
                    name: principal.name.clone(),
                };
                let rows = async {
                    read_db!(self, |c| async {
                        match c.user_id(&principal.account, &principal.name).await? {
                            Some(uid) => c.user_policy_rows(&uid).await,
                            None => Ok(Vec::new()),
                        }
                    }
                    .await)
                };
                self.cached_policies(key, rows).await
            }
            PrincipalKind::FederatedUser { .. } => {
                if principal.groups.is_empty() {
                    return Ok(Arc::from(Vec::new()));
                }
                let key = PolicyKey::Federated {
                    account: principal.account.clone(),
                    groups: principal.groups.clone(),
                };
                let rows = async {
                    read_db!(self, |c| async {
                        let mut rows = PolicyRows::new();
                        for group in &principal.groups {
                            rows.extend(c.group_policy_rows(&principal.account, group).await?);
                        }
                        rows.sort();
                        rows.dedup_by(|a, b| a.0 == b.0);
                        Ok(rows)
                    }
                    .await)
                };
                self.cached_policies(key, rows).await
            }
            PrincipalKind::AssumedRole { role, .. } => {
                self.role_policies(&principal.account, role).await
            }
        }
    }

    /// Hot path: the permission policies of a role. A role that no longer exists has none.
    pub async fn role_policies(
        &self,
        account_id: &str,
        role: &str,
    ) -> StoreResult<Arc<[NamedPolicy]>> {
        let key = PolicyKey::Role {
            account: account_id.to_owned(),
            name: role.to_owned(),
        };
        let rows = async { read_db!(self, |c| c.role_policy_rows(account_id, role).await) };
        self.cached_policies(key, rows).await
    }

    /// The session policy of an assumed-role principal, if its session was given one: the
    /// authorize stage requires it to allow too (it can only narrow the role's policies). A
    /// session that is gone gets a policy that denies everything.
    pub async fn session_policies(
        &self,
        principal: &Principal,
    ) -> StoreResult<Option<Arc<[NamedPolicy]>>> {
        let PrincipalKind::AssumedRole {
            access_key_id: Some(akid),
            ..
        } = &principal.kind
        else {
            return Ok(None);
        };
        if !akid.starts_with("ASIA") {
            return Ok(None);
        }
        let key = PolicyKey::Session {
            access_key_id: akid.clone(),
        };
        let rows = async {
            let session = read_db!(self, |c| c.sts_session(akid).await)?;
            Ok(match session {
                None => vec![(SESSION_ENDED.0.to_owned(), SESSION_ENDED.1.to_owned())],
                Some(StsSessionRecord {
                    session_policy: None,
                    ..
                }) => Vec::new(),
                Some(StsSessionRecord {
                    session_policy: Some(text),
                    ..
                }) => vec![(SESSION_POLICY_NAME.to_owned(), text)],
            })
        };
        let policies = self.cached_policies(key, rows).await?;
        Ok((!policies.is_empty()).then_some(policies))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ALLOW_ALL, doc, temp_store};
    use super::*;

    fn rows(items: &[(&str, &str)]) -> PolicyRows {
        items
            .iter()
            .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
            .collect()
    }

    #[test]
    fn the_loader_parses_rows_in_order_and_fails_closed() {
        let parsed = parse_policies(rows(&[("b", &doc("B")), ("a", ALLOW_ALL)])).unwrap();
        let names: Vec<&str> = parsed.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert!(parse_policies(Vec::new()).unwrap().is_empty());
        // One unparsable document fails the whole set, naming it: a skipped Deny would allow.
        let e = parse_policies(rows(&[("ok", ALLOW_ALL), ("broken", "{\"Statement\":1}")]))
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidPolicy { name, .. } if name == "broken"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn the_loader_caches_per_key_and_does_not_cache_errors() {
        let (_d, store) = temp_store().await;
        let key = PolicyKey::Role {
            account: "111111111111".into(),
            name: "r".into(),
        };
        let loaded = store
            .cached_policies(key.clone(), async { Ok(rows(&[("a", ALLOW_ALL)])) })
            .await
            .unwrap();
        assert_eq!(loaded.len(), 1);
        // A hit does not await the rows.
        let misses = store.cache_misses();
        let again = store
            .cached_policies(key.clone(), async {
                Err(StoreError::Invalid("a cache hit loads nothing".into()))
            })
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&loaded, &again));
        assert_eq!(store.cache_misses(), misses);
        // Another key is another entry.
        let session = PolicyKey::Session {
            access_key_id: "ASIAEXAMPLE".into(),
        };
        let empty = store
            .cached_policies(session.clone(), async { Ok(Vec::new()) })
            .await
            .unwrap();
        assert!(empty.is_empty());
        // A failed load (unparsable document or store error) is not cached.
        store.invalidate_caches();
        assert!(
            store
                .cached_policies(key.clone(), async { Ok(rows(&[("x", "not json")])) })
                .await
                .is_err()
        );
        assert!(
            store
                .cached_policies(key.clone(), async {
                    Err(StoreError::Invalid("unavailable".into()))
                })
                .await
                .is_err()
        );
        let reloaded = store
            .cached_policies(key, async { Ok(rows(&[("b", ALLOW_ALL)])) })
            .await
            .unwrap();
        assert_eq!(reloaded[0].name, "b");
    }
}
