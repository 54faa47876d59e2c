//! Rows of the store, as the rest of the gateway sees them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::identity::{AuthMethod, Principal, PrincipalKind};

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

/// A browser session (the id itself is only known to the browser).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
}
