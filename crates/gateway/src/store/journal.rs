//! The journal of administrative changes (docs/audit.md, "Administrative changes").
//!
//! Every change to users, groups, accounts, policies and their attachments, roles, access keys
//! and API tokens writes one journal row in the transaction of the change itself: who (the
//! [`Actor`] of the [`Store`] handle that made it), what (an action and its target, with the
//! state before and after where there is one: a policy's document, a user's tags) and when. A
//! change and its row commit together or not at all, whichever process made it.
//!
//! A row waits in the store until a server seals it into its audit log
//! ([`Store::record_admin_changes`], run by `audit::admin_changes`): the admin CLI does not write
//! the audit log, which the server holds locked. Servers take rows under the store's write lock,
//! so with replicas each change goes to one replica's log; a row is marked recorded only once
//! the log is flushed, so a crash in between writes it again (same `change_id`) rather than
//! losing it. Rows stay after that: the store keeps the whole history.
//!
//! Not journaled: what requests do (sign-ins, sessions, STS sessions, resource creators: each is
//! in the request's own audit record) and the replacement of an imported password hash at a
//! sign-in (the same password, re-hashed).

use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::backend::{JournalQueries, Queries};
use super::model::JournalRow;
use super::{Store, StoreError, StoreResult};

/// Who makes changes through a [`Store`] handle, as JSON.
#[derive(Clone, Debug)]
pub struct Actor(Arc<str>);

impl Actor {
    /// The operating-system user running this process (the admin CLI's user): uid, the name
    /// `USER`/`LOGNAME` give, `SUDO_USER` when run with sudo, and the host.
    pub fn os_user() -> Actor {
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned());
        Actor::of(&json!({
            "type": "os_user",
            "uid": uid,
            "user": env("USER").or_else(|| env("LOGNAME")),
            "sudo_user": env("SUDO_USER"),
            "host": host,
        }))
    }

    /// A principal acting through the server (MLflow's basic-auth API), in one request.
    pub fn principal(arn: &str, request_id: &str) -> Actor {
        Actor::of(&json!({
            "type": "principal",
            "arn": arn,
            "request_id": request_id,
        }))
    }

    fn of(value: &Value) -> Actor {
        let drop_nulls = match value {
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            other => other.clone(),
        };
        Actor(drop_nulls.to_string().into())
    }
}

/// One change, as a store method describes it.
#[derive(Debug)]
pub(super) struct Entry {
    action: &'static str,
    target: String,
    before: Option<Value>,
    after: Option<Value>,
}

impl Entry {
    /// `action` names the change (`PutPolicy`, `CreateUser`, ...); `target` what it changed
    /// (`policy/readers`, `user/111111111111/alice`).
    pub(super) fn new(action: &'static str, target: impl Into<String>) -> Entry {
        Entry {
            action,
            target: target.into(),
            before: None,
            after: None,
        }
    }

    pub(super) fn before(self, state: impl Serialize) -> Entry {
        Entry {
            before: serde_json::to_value(state).ok(),
            ..self
        }
    }

    pub(super) fn after(self, state: impl Serialize) -> Entry {
        Entry {
            after: serde_json::to_value(state).ok(),
            ..self
        }
    }
}

/// A document (a policy's, a trust policy's) as the journal shows it: its JSON, or its text
/// when it is not JSON.
pub(super) fn document(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// The target name of a user or group of an account.
pub(super) fn in_account(kind: &str, account: &str, name: &str) -> String {
    format!("{kind}/{account}/{name}")
}

/// Writes `entry` in the transaction `c` of the change it describes.
pub(super) async fn record<Q: Queries>(c: &mut Q, actor: &Actor, entry: Entry) -> StoreResult<()> {
    let text = |state: Option<Value>| state.map(|v| v.to_string());
    let row = JournalRow {
        changed_at: jiff::Timestamp::now().as_millisecond(),
        actor: actor.0.to_string(),
        action: entry.action.to_owned(),
        target: entry.target,
        before: text(entry.before),
        after: text(entry.after),
    };
    c.insert_admin_change(&row).await
}

/// A journaled change on its way into an audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdminChange {
    /// The journal's id: increasing, in commit order.
    pub change_id: i64,
    /// RFC 3339, when the change was made.
    pub time: String,
    pub actor: Value,
    pub action: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

impl AdminChange {
    fn from_row(change_id: i64, row: JournalRow) -> AdminChange {
        let json = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
        AdminChange {
            change_id,
            time: jiff::Timestamp::from_millisecond(row.changed_at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            actor: json(&row.actor),
            action: row.action,
            target: row.target,
            before: row.before.as_deref().map(json),
            after: row.after.as_deref().map(json),
        }
    }
}

/// Changes taken from the journal at a time.
const BATCH: i64 = 256;

impl Store {
    /// This handle, making its changes as `actor`.
    pub fn acting_as(&self, actor: Actor) -> Store {
        Store {
            inner: self.inner.clone(),
            actor,
        }
    }

    pub(super) fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Hands the changes no audit log holds yet (oldest first) to `write`, and marks them
    /// recorded when `write` says they are in the log, flushed. One process at a time: it
    /// holds the store's write lock meanwhile. Returns how many were recorded.
    pub async fn record_admin_changes<F, Fut>(&self, write: F) -> StoreResult<usize>
    where
        F: FnOnce(Vec<AdminChange>) -> Fut,
        Fut: Future<Output = bool>,
    {
        if !read_db!(self, |c| c.has_unrecorded_admin_changes().await)? {
            return Ok(0);
        }
        in_transaction!(self, quietly, |c| async {
            let rows = c.unrecorded_admin_changes(BATCH).await?;
            let Some(through) = rows.last().map(|(id, _)| *id) else {
                return Ok::<_, StoreError>(0);
            };
            let changes: Vec<AdminChange> = rows
                .into_iter()
                .map(|(id, row)| AdminChange::from_row(id, row))
                .collect();
            let count = changes.len();
            if !write(changes).await {
                return Ok(0);
            }
            let now = jiff::Timestamp::now().as_second();
            c.mark_admin_changes_recorded(through, now).await?;
            Ok(count)
        }
        .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_leaves_out_what_is_unknown() {
        let actor = Actor::principal("arn:aws:iam::111111111111:user/admin", "abc");
        let value: Value = serde_json::from_str(&actor.0).unwrap();
        assert_eq!(value["type"], "principal");
        assert_eq!(value["request_id"], "abc");
        let os: Value = serde_json::from_str(&Actor::os_user().0).unwrap();
        assert_eq!(os["type"], "os_user");
        assert!(os["uid"].is_u64());
        assert!(os.as_object().unwrap().values().all(|v| !v.is_null()));
    }

    #[test]
    fn a_document_that_is_not_json_is_kept_as_text() {
        assert_eq!(document(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(document("not json"), json!("not json"));
    }
}
