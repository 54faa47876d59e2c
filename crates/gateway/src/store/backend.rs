//! The interface a storage backend implements: every statement the store runs, as methods on one
//! connection or transaction of that backend (`&mut self`). The statements are written once
//! (`sql/`) and implemented for `SqliteConnection` (`sqlite/`) and `PgConnection` (`postgres/`);
//! the rest of the store (caches, validation, policy parsing, apply planning) is written once
//! against these traits.
//!
//! A method here stores or reads; it does not decide. Rules (what a name may be, whether a
//! policy may be deleted, what "unchanged" means) live in the backend-independent modules.
//!
//! Times are Unix seconds. Ids are the store's own (UUIDs, access key ids, hex SHA-256 digests).

use std::collections::BTreeMap;

use super::error::StoreResult;
use super::model::{
    AccessKeyRecord, AccountRecord, GroupRecord, JournalRow, KeyOwnerId, LoginState, NewStsSession,
    PolicyRecord, PolicySource, RoleRecord, SessionRecord, StsSessionRecord, TokenRecord,
    UserRecord,
};

/// (policy name, document text) rows: what the policy loader parses.
pub(crate) type PolicyRows = Vec<(String, String)>;

/// Everything a backend connection must do.
pub(crate) trait Queries:
    IdentityQueries
    + PolicyQueries
    + SessionQueries
    + RoleQueries
    + CreatorQueries
    + ChangeQueries
    + JournalQueries
    + Send
{
}

impl<T> Queries for T where
    T: IdentityQueries
        + PolicyQueries
        + SessionQueries
        + RoleQueries
        + CreatorQueries
        + ChangeQueries
        + JournalQueries
        + Send
{
}

/// The change counter every server watches (`changes.rs`).
pub(crate) trait ChangeQueries {
    /// Adds one to the counter; on PostgreSQL the commit also notifies every server.
    async fn record_change(&mut self) -> StoreResult<()>;
    async fn change_version(&mut self) -> StoreResult<i64>;
}

/// The journal of administrative changes (`journal.rs`).
pub(crate) trait JournalQueries {
    async fn insert_admin_change(&mut self, row: &JournalRow) -> StoreResult<()>;
    async fn has_unrecorded_admin_changes(&mut self) -> StoreResult<bool>;
    /// The oldest changes no audit log holds yet, with their ids.
    async fn unrecorded_admin_changes(&mut self, limit: i64)
    -> StoreResult<Vec<(i64, JournalRow)>>;
    /// Marks every unrecorded change up to `through` as written into an audit log at `at`.
    async fn mark_admin_changes_recorded(&mut self, through: i64, at: i64) -> StoreResult<()>;
}

/// Accounts, users, groups, memberships and the users' API tokens.
pub(crate) trait IdentityQueries {
    /// The name of the account with this id.
    async fn account_name(&mut self, id: &str) -> StoreResult<Option<String>>;
    /// The id of the account with this name.
    async fn account_id_named(&mut self, name: &str) -> StoreResult<Option<String>>;
    /// Renames an account; false when there is no account with this id.
    async fn rename_account(&mut self, id: &str, name: &str) -> StoreResult<bool>;
    async fn insert_account(&mut self, id: &str, name: &str, at: i64) -> StoreResult<()>;
    /// Every account, by id.
    async fn list_accounts(&mut self) -> StoreResult<Vec<AccountRecord>>;

    async fn user_by_name(&mut self, account: &str, name: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&mut self, id: &str) -> StoreResult<Option<UserRecord>>;
    /// Users of one account (or of all), by account and name.
    async fn list_users(&mut self, account: Option<&str>) -> StoreResult<Vec<UserRecord>>;
    async fn user_id(&mut self, account: &str, name: &str) -> StoreResult<Option<String>>;
    async fn insert_user(
        &mut self,
        id: &str,
        account: &str,
        name: &str,
        password_hash: Option<&str>,
        tags: &BTreeMap<String, String>,
        at: i64,
    ) -> StoreResult<()>;
    /// Deletes a user with everything that belongs to it (memberships, attachments, tokens,
    /// sessions, access keys).
    async fn delete_user(&mut self, id: &str) -> StoreResult<()>;
    async fn set_password(&mut self, id: &str, hash: Option<&str>, at: i64) -> StoreResult<()>;
    /// Replaces the hash `old` by `new` (the same password, hashed anew) unless it changed
    /// meanwhile; whether it was replaced.
    async fn replace_password_hash(
        &mut self,
        id: &str,
        old: &str,
        new: &str,
        at: i64,
    ) -> StoreResult<bool>;
    async fn set_disabled(&mut self, id: &str, disabled: bool, at: i64) -> StoreResult<()>;
    async fn set_tags(
        &mut self,
        id: &str,
        tags: &BTreeMap<String, String>,
        at: i64,
    ) -> StoreResult<()>;

    async fn group_id(&mut self, account: &str, name: &str) -> StoreResult<Option<String>>;
    async fn insert_group(
        &mut self,
        id: &str,
        account: &str,
        name: &str,
        at: i64,
    ) -> StoreResult<()>;
    /// Member user names, sorted.
    async fn group_members(&mut self, group_id: &str) -> StoreResult<Vec<String>>;
    /// Groups of one account (or of all), by account and name.
    async fn list_groups(&mut self, account: Option<&str>) -> StoreResult<Vec<GroupRecord>>;
    async fn delete_group(&mut self, id: &str) -> StoreResult<()>;
    /// False when the user already was a member.
    async fn add_member(&mut self, group_id: &str, user_id: &str) -> StoreResult<bool>;
    /// False when the user was not a member.
    async fn remove_member(&mut self, group_id: &str, user_id: &str) -> StoreResult<bool>;

    async fn insert_token(
        &mut self,
        id: &str,
        user_id: &str,
        name: &str,
        secret_sha256: &str,
        at: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<()>;
    async fn token(&mut self, id: &str) -> StoreResult<Option<TokenRecord>>;
    /// Tokens of one user (or of all), newest first.
    async fn list_tokens(&mut self, user_id: Option<&str>) -> StoreResult<Vec<TokenRecord>>;
    /// False when the token was already revoked.
    async fn revoke_token(&mut self, id: &str, at: i64) -> StoreResult<bool>;
    async fn touch_token(&mut self, id: &str, at: i64) -> StoreResult<()>;
}

/// Policy documents and their attachments to users, groups and roles.
pub(crate) trait PolicyQueries {
    /// A policy's id and document.
    async fn find_policy(&mut self, name: &str) -> StoreResult<Option<(String, String)>>;
    async fn insert_policy(
        &mut self,
        id: &str,
        name: &str,
        document: &str,
        at: i64,
    ) -> StoreResult<()>;
    async fn update_policy(&mut self, id: &str, document: &str, at: i64) -> StoreResult<()>;
    async fn policy(&mut self, name: &str) -> StoreResult<Option<PolicyRecord>>;
    /// Every policy, by name.
    async fn list_policies(&mut self) -> StoreResult<Vec<PolicyRecord>>;
    /// Deletes a policy and all its attachments.
    async fn delete_policy(&mut self, id: &str) -> StoreResult<()>;

    /// Attaches to a user or a group; false when it already was.
    async fn attach(
        &mut self,
        policy_id: &str,
        user_id: Option<&str>,
        group_id: Option<&str>,
    ) -> StoreResult<bool>;
    /// Detaches from a user or a group; false when it was not attached.
    async fn detach(
        &mut self,
        policy_id: &str,
        user_id: Option<&str>,
        group_id: Option<&str>,
    ) -> StoreResult<bool>;
    /// Names of the policies attached to a user itself, sorted.
    async fn user_policy_names(&mut self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Names of the policies attached to a group, sorted.
    async fn group_policy_names(&mut self, group_id: &str) -> StoreResult<Vec<String>>;
    /// The users, then the groups a policy is attached to, each by account and name.
    async fn policy_attachments(&mut self, policy_id: &str) -> StoreResult<Vec<PolicySource>>;
    /// The roles a policy is attached to, by account and name.
    async fn policy_roles(&mut self, policy_id: &str) -> StoreResult<Vec<(String, String)>>;

    /// Every policy attached to the user or to any of its groups, each once, by name.
    async fn user_policy_rows(&mut self, user_id: &str) -> StoreResult<PolicyRows>;
    /// Every policy attached to the group with this name in this account.
    async fn group_policy_rows(&mut self, account: &str, group: &str) -> StoreResult<PolicyRows>;
    /// Every policy attached to the role with this name in this account, by name.
    async fn role_policy_rows(&mut self, account: &str, role: &str) -> StoreResult<PolicyRows>;
    /// (policy name, source) for each attachment that gives the user a policy, by policy name,
    /// users before groups.
    async fn user_policy_sources(
        &mut self,
        user_id: &str,
    ) -> StoreResult<Vec<(String, PolicySource)>>;
}

/// Browser sessions (of built-in and of federated users) and OIDC pre-login state.
pub(crate) trait SessionQueries {
    async fn insert_session(&mut self, session: &SessionRecord) -> StoreResult<()>;
    /// The session with this id digest, of either kind. A federated session whose principal
    /// cannot be read back is `None`.
    async fn session(&mut self, id_sha256: &str) -> StoreResult<Option<SessionRecord>>;
    /// Moves a session's idle clock forward to `at` (never back).
    async fn touch_session(&mut self, session: &SessionRecord, at: i64) -> StoreResult<()>;
    /// Deletes the session with this id digest, of either kind; false when there was none.
    async fn delete_session(&mut self, id_sha256: &str) -> StoreResult<bool>;
    /// Deletes the sessions of every kind that expired at or before `expired_at`, or were last
    /// seen at or before `idle_since`.
    async fn delete_ended_sessions(&mut self, expired_at: i64, idle_since: i64) -> StoreResult<()>;
    /// Sessions of every kind that have not ended: expiring after `now`, last seen after
    /// `idle_since`.
    async fn count_live_sessions(&mut self, now: i64, idle_since: i64) -> StoreResult<i64>;
    /// Deletes a built-in user's sessions.
    async fn delete_user_sessions(&mut self, user_id: &str) -> StoreResult<()>;

    async fn insert_login(
        &mut self,
        id_sha256: &str,
        login: &LoginState,
        at: i64,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// Deletes and returns a pre-login state with its expiry (single use).
    async fn take_login(&mut self, id_sha256: &str) -> StoreResult<Option<(LoginState, i64)>>;
    async fn delete_expired_logins(&mut self, now: i64) -> StoreResult<()>;
    async fn count_logins(&mut self) -> StoreResult<i64>;
}

/// Roles, SigV4 access keys and STS sessions.
pub(crate) trait RoleQueries {
    async fn role(&mut self, account: &str, name: &str) -> StoreResult<Option<RoleRecord>>;
    /// Roles of one account (or of all), by account and name.
    async fn list_roles(&mut self, account: Option<&str>) -> StoreResult<Vec<RoleRecord>>;
    /// Inserts `role` (its id, account, name, trust policy, duration and description).
    async fn insert_role(&mut self, role: &RoleRecord, at: i64) -> StoreResult<()>;
    /// Sets the trust policy, maximum session duration and description of role `role.id`.
    async fn update_role(&mut self, role: &RoleRecord, at: i64) -> StoreResult<()>;
    /// Deletes a role with its attachments, access keys and sessions.
    async fn delete_role(&mut self, id: &str) -> StoreResult<()>;
    /// False when it already was attached.
    async fn attach_role_policy(&mut self, policy_id: &str, role_id: &str) -> StoreResult<bool>;
    /// False when it was not attached.
    async fn detach_role_policy(&mut self, policy_id: &str, role_id: &str) -> StoreResult<bool>;

    async fn insert_access_key(
        &mut self,
        id: &str,
        owner: &KeyOwnerId,
        secret_enc: &str,
        at: i64,
    ) -> StoreResult<()>;
    async fn access_key(&mut self, id: &str) -> StoreResult<Option<AccessKeyRecord>>;
    /// Access keys of one owner (or of all), oldest first.
    async fn list_access_keys(
        &mut self,
        owner: Option<&KeyOwnerId>,
    ) -> StoreResult<Vec<AccessKeyRecord>>;
    async fn set_access_key_active(&mut self, id: &str, active: bool) -> StoreResult<()>;
    /// False when there was no such key.
    async fn delete_access_key(&mut self, id: &str) -> StoreResult<bool>;
    async fn touch_access_key(&mut self, id: &str, at: i64) -> StoreResult<()>;

    async fn insert_sts_session(&mut self, session: &NewStsSession<'_>, at: i64)
    -> StoreResult<()>;
    /// An STS session with its role, expired or not.
    async fn sts_session(&mut self, access_key_id: &str) -> StoreResult<Option<StsSessionRecord>>;
    async fn delete_expired_sts_sessions(&mut self, now: i64) -> StoreResult<()>;
}

/// Who created an experiment or registered model through mlgate.
pub(crate) trait CreatorQueries {
    /// Records the creator of a resource, replacing any earlier record.
    async fn put_creator(
        &mut self,
        resource_arn: &str,
        creator_name: &str,
        creator_arn: &str,
        at: i64,
    ) -> StoreResult<()>;
    async fn delete_creator(&mut self, resource_arn: &str) -> StoreResult<()>;
    /// Moves the record of `from` to `to` (the caller removed any record of `to` first).
    async fn rename_creator(&mut self, from: &str, to: &str) -> StoreResult<()>;
    async fn creator(&mut self, resource_arn: &str) -> StoreResult<Option<String>>;
    /// (resource ARN, creator name) for those of `resource_arns` that have a record.
    async fn creators(&mut self, resource_arns: &[String]) -> StoreResult<Vec<(String, String)>>;
}
