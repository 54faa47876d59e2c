//! Records of the store, as the rest of the gateway (and every backend) sees them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{StoreError, StoreResult};
use crate::identity::{AuthMethod, Principal, PrincipalKind, assumed_role_arn};

/// What a write did to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that width and alignment flags work in reports.
        f.pad(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountRecord {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

/// A built-in user. `Debug` never shows the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub(crate) password_hash: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub disabled: bool,
    /// Names of the groups the user is a member of, sorted.
    pub groups: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("has_password", &self.password_hash.is_some())
            .field("tags", &self.tags)
            .field("disabled", &self.disabled)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl UserRecord {
    /// `arn:aws:iam::<account>:user/<name>`
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:user/{}", self.account_id, self.name)
    }

    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }

    /// The stored argon2id PHC string (salt and hash, no password).
    pub fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_deref()
    }

    /// The principal this user authenticates as.
    pub fn principal(&self, auth_method: AuthMethod) -> Principal {
        Principal {
            arn: self.arn(),
            account: self.account_id.clone(),
            name: self.name.clone(),
            kind: PrincipalKind::User,
            groups: self.groups.clone(),
            tags: self.tags.clone(),
            auth_method,
        }
    }
}

/// A journal row (`journal.rs`): JSON text for the actor and the states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JournalRow {
    /// Unix milliseconds.
    pub changed_at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupRecord {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// Member user names, sorted.
    pub members: Vec<String>,
    /// Attached policy names, sorted.
    pub policies: Vec<String>,
    pub created_at: i64,
}

impl GroupRecord {
    /// `arn:aws:iam::<account>:group/<name>`
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:group/{}", self.account_id, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyRecord {
    pub id: String,
    pub name: String,
    /// The document as it was stored (validated at that time).
    pub document: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// How many users and groups it is attached to.
    pub attachment_count: i64,
}

/// Where a policy comes from, for a user's effective policies or a policy's attachments.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum PolicySource {
    User { account_id: String, name: String },
    Group { account_id: String, name: String },
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySource::User { account_id, name } => write!(f, "user {account_id}/{name}"),
            PolicySource::Group { account_id, name } => write!(f, "group {account_id}/{name}"),
        }
    }
}

/// An API token's metadata. `Debug` never shows the digest.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub user_name: String,
    pub name: String,
    #[serde(skip)]
    pub(crate) secret_sha256: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("id", &self.id)
            .field("user", &self.user_name)
            .field("name", &self.name)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// The hex SHA-256 of the secret, for the constant-time comparison.
    pub fn secret_sha256(&self) -> &str {
        &self.secret_sha256
    }

    pub fn is_expired_at(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

/// A browser session (the id itself is only known to the browser; the store keeps its SHA-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_sha256: String,
    pub owner: SessionOwner,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
}

/// Whom a browser session signs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionOwner {
    /// A built-in user, by id: the user's current state (disabled, groups) applies.
    User { user_id: String },
    /// A federated (OIDC) user, who has no `users` row: the principal as of sign-in.
    Federated(Principal),
}

/// How every backend keeps a federated principal in its session: this struct as JSON text.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FederatedPrincipal {
    arn: String,
    account: String,
    name: String,
    pub(crate) provider: String,
    groups: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl FederatedPrincipal {
    pub(crate) fn of(p: &Principal) -> StoreResult<FederatedPrincipal> {
        let PrincipalKind::FederatedUser { provider } = &p.kind else {
            return Err(StoreError::Invalid(format!(
                "{} is not a federated principal",
                p.arn
            )));
        };
        Ok(FederatedPrincipal {
            arn: p.arn.clone(),
            account: p.account.clone(),
            name: p.name.clone(),
            provider: provider.clone(),
            groups: p.groups.clone(),
            tags: p.tags.clone(),
        })
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for text that is not a stored principal.
    pub(crate) fn from_json(text: &str) -> Option<FederatedPrincipal> {
        serde_json::from_str(text).ok()
    }

    pub(crate) fn principal(self) -> Principal {
        Principal {
            arn: self.arn,
            account: self.account,
            name: self.name,
            kind: PrincipalKind::FederatedUser {
                provider: self.provider,
            },
            groups: self.groups,
            tags: self.tags,
            auth_method: AuthMethod::Session,
        }
    }
}

/// The pre-login state of one browser's OIDC sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginState {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleRecord {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub trust_policy: String,
    pub max_session_duration: i64,
    pub description: String,
    /// Attached permission policy names, sorted.
    pub policies: Vec<String>,
    pub created_at: i64,
}

impl RoleRecord {
    /// `arn:aws:iam::<account>:role/<name>`
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account_id, self.name)
    }
}

/// Who owns an access key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KeyOwner {
    User { account_id: String, name: String },
    Role { account_id: String, name: String },
}

impl fmt::Display for KeyOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOwner::User { account_id, name } => write!(f, "user {account_id}/{name}"),
            KeyOwner::Role { account_id, name } => write!(f, "role {account_id}/{name}"),
        }
    }
}

/// Names an owner for the admin commands.
#[derive(Clone, Copy, Debug)]
pub enum KeyOwnerRef<'a> {
    User(&'a str),
    Role(&'a str),
}

/// An owner by its internal id, as the backend stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyOwnerId {
    User(String),
    Role(String),
}

/// An access key's metadata. Never holds the secret in clear; `Debug` hides the sealed value.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct AccessKeyRecord {
    pub id: String,
    pub owner: KeyOwner,
    /// Internal id of the owning user or role.
    #[serde(skip)]
    pub owner_id: String,
    pub active: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    #[serde(skip)]
    pub(crate) secret_enc: String,
}

impl fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl AccessKeyRecord {
    /// The sealed secret (open it with the master key and this key's id).
    pub fn sealed_secret(&self) -> &str {
        &self.secret_enc
    }
}

/// Temporary credentials of an assumed role. `Debug` hides the sealed secret and token digest.
#[derive(Clone, PartialEq, Eq)]
pub struct StsSessionRecord {
    pub access_key_id: String,
    pub role_id: String,
    pub role_account_id: String,
    pub role_name: String,
    pub session_name: String,
    pub(crate) secret_enc: String,
    pub(crate) token_sha256: String,
    pub session_policy: Option<String>,
    pub source_identity: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub caller_arn: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl fmt::Debug for StsSessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsSessionRecord")
            .field("access_key_id", &self.access_key_id)
            .field("role", &self.role_name)
            .field("session", &self.session_name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl StsSessionRecord {
    pub fn sealed_secret(&self) -> &str {
        &self.secret_enc
    }
    /// Hex SHA-256 of the session token, for a constant-time comparison.
    pub fn token_sha256(&self) -> &str {
        &self.token_sha256
    }
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`
    pub fn arn(&self) -> String {
        assumed_role_arn(&self.role_account_id, &self.role_name, &self.session_name)
    }

    /// The principal a request signed with this session's credentials is.
    pub fn principal(&self) -> Principal {
        Principal::role_session(
            &self.role_account_id,
            &self.role_name,
            &self.session_name,
            &self.access_key_id,
            self.tags.clone(),
        )
    }
}

/// A new STS session, as the STS endpoint mints it.
#[derive(Clone)]
pub struct NewStsSession<'a> {
    pub access_key_id: &'a str,
    pub role_id: &'a str,
    pub session_name: &'a str,
    pub secret_enc: String,
    pub token_sha256: String,
    pub session_policy: Option<&'a str>,
    pub source_identity: Option<&'a str>,
    pub tags: &'a BTreeMap<String, String>,
    pub caller_arn: &'a str,
    pub expires_at: i64,
}
