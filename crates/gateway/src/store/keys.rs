//! Roles, SigV4 access keys and STS sessions (issue 3), schema `0002_access_keys_roles.sql`.
//!
//! * Roles live in an account, have a trust policy (an IAM resource policy naming who may assume
//!   them) and permission policies attached through `role_attachments`.
//! * Access keys (`AKIA…`) belong to exactly one user or one role. The secret access key is
//!   generated here, returned once, and stored sealed under the master key
//!   ([`super::secrets::MasterKey`]).
//! * STS sessions (`ASIA…`) are temporary credentials of an assumed role: sealed secret, SHA-256
//!   of the session token, optional session policy, expiry.
//!
//! Hot-path lookups here are uncached; the SigV4 authenticator keeps its own short-lived cache
//! (at most [`super::MAX_CACHE_TTL`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine;
use mlgate_policy::{NamedPolicy, PolicyDocument};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;
use zeroize::Zeroizing;

use super::secrets::MasterKey;
use super::{
    Change, Store, StoreError, StoreResult, new_id, now, queries, validate_policy_name,
    validate_user_name,
};
use crate::identity::{Principal, PrincipalKind};

type Conn = SqliteConnection;

/// Shortest and longest session a role may allow (AWS: 1 h default, 12 h maximum).
pub const MIN_SESSION_SECONDS: i64 = 900;
pub const MAX_SESSION_SECONDS: i64 = 43_200;
pub const DEFAULT_MAX_SESSION_SECONDS: i64 = 3600;

/// IAM role names: 1–64 characters of `[A-Za-z0-9+=,.@_-]`.
pub fn validate_role_name(name: &str) -> StoreResult<()> {
    validate_user_name(name).map_err(|_| {
        StoreError::Invalid(format!(
            "invalid role name {name:?}: use 1 to 64 characters from A-Z a-z 0-9 + = , . @ _ -"
        ))
    })
}

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
}

pub fn assumed_role_arn(account: &str, role: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
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

// ----- generation ---------------------------------------------------------------------------

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `prefix` + 16 random base32 characters (80 bits): `AKIA…` for long-term keys, `ASIA…` for
/// temporary ones, as AWS spells them.
pub fn new_access_key_id(prefix: &str) -> String {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).expect("OS random number generator");
    let mut s = String::with_capacity(prefix.len() + 16);
    s.push_str(prefix);
    s.extend(buf.iter().map(|b| char::from(BASE32[usize::from(b & 31)])));
    s
}

/// A 40-character secret access key (240 random bits, base64 alphabet as AWS's).
pub fn new_secret_access_key() -> Zeroizing<String> {
    let mut buf = Zeroizing::new([0u8; 30]);
    getrandom::fill(buf.as_mut()).expect("OS random number generator");
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(buf.as_ref()))
}

/// An opaque session token (384 random bits).
pub fn new_session_token() -> Zeroizing<String> {
    let mut buf = Zeroizing::new([0u8; 48]);
    getrandom::fill(buf.as_mut()).expect("OS random number generator");
    Zeroizing::new(format!(
        "MLGATE{}",
        base64::engine::general_purpose::STANDARD.encode(buf.as_ref())
    ))
}

pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

// ----- SQL ----------------------------------------------------------------------------------

type RoleRow = (String, String, String, String, i64, String, i64);

async fn role_from_row(c: &mut Conn, r: RoleRow) -> StoreResult<RoleRecord> {
    let policies: Vec<(String,)> = sqlx::query_as(
        "SELECT p.name FROM policies p JOIN role_attachments a ON a.policy_id = p.id \
         WHERE a.role_id = ? ORDER BY p.name",
    )
    .bind(&r.0)
    .fetch_all(&mut *c)
    .await?;
    Ok(RoleRecord {
        id: r.0,
        account_id: r.1,
        name: r.2,
        trust_policy: r.3,
        max_session_duration: r.4,
        description: r.5,
        policies: policies.into_iter().map(|p| p.0).collect(),
        created_at: r.6,
    })
}

const ROLE_COLUMNS: &str =
    "id, account_id, name, trust_policy, max_session_duration, description, created_at";

pub(crate) async fn load_role(
    c: &mut Conn,
    acct: &str,
    name: &str,
) -> StoreResult<Option<RoleRecord>> {
    let q = sqlx::AssertSqlSafe(format!(
        "SELECT {ROLE_COLUMNS} FROM roles WHERE account_id = ? AND name = ?"
    ));
    let row: Option<RoleRow> = sqlx::query_as(q)
        .bind(acct)
        .bind(name)
        .fetch_optional(&mut *c)
        .await?;
    match row {
        Some(r) => Ok(Some(role_from_row(c, r).await?)),
        None => Ok(None),
    }
}

async fn role_id(c: &mut Conn, acct: &str, name: &str) -> StoreResult<String> {
    load_role(c, acct, name)
        .await?
        .map(|r| r.id)
        .ok_or_else(|| StoreError::NotFound {
            kind: "role",
            name: name.to_owned(),
        })
}

/// Creates or updates a role (trust policy, duration, description). Used by the CLI and apply.
pub(crate) async fn put_role(
    c: &mut Conn,
    acct: &str,
    name: &str,
    trust_policy: &str,
    max_session_duration: i64,
    description: &str,
) -> StoreResult<Change> {
    validate_role_name(name)?;
    check_trust_policy(name, trust_policy)?;
    check_duration(max_session_duration)?;
    let t = now();
    match load_role(c, acct, name).await? {
        Some(r)
            if r.trust_policy == trust_policy
                && r.max_session_duration == max_session_duration
                && r.description == description =>
        {
            Ok(Change::Unchanged)
        }
        Some(r) => {
            sqlx::query(
                "UPDATE roles SET trust_policy = ?, max_session_duration = ?, description = ?, \
                 updated_at = ? WHERE id = ?",
            )
            .bind(trust_policy)
            .bind(max_session_duration)
            .bind(description)
            .bind(t)
            .bind(&r.id)
            .execute(&mut *c)
            .await?;
            Ok(Change::Updated)
        }
        None => {
            sqlx::query(
                "INSERT INTO roles (id, account_id, name, trust_policy, max_session_duration, \
                 description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(new_id())
            .bind(acct)
            .bind(name)
            .bind(trust_policy)
            .bind(max_session_duration)
            .bind(description)
            .bind(t)
            .bind(t)
            .execute(&mut *c)
            .await?;
            Ok(Change::Created)
        }
    }
}

pub(crate) async fn attach_role_policy(
    c: &mut Conn,
    acct: &str,
    role: &str,
    policy: &str,
) -> StoreResult<bool> {
    validate_policy_name(policy)?;
    let rid = role_id(c, acct, role).await?;
    let pid = queries::policy_id(c, policy).await?;
    let r = sqlx::query(
        "INSERT INTO role_attachments (policy_id, role_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&pid)
    .bind(&rid)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// `role <account>/<name>` for each role the policy is attached to.
pub(crate) async fn roles_with_policy(c: &mut Conn, pid: &str) -> StoreResult<Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT r.account_id, r.name FROM roles r JOIN role_attachments a ON a.role_id = r.id \
         WHERE a.policy_id = ? ORDER BY 1, 2",
    )
    .bind(pid)
    .fetch_all(&mut *c)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(a, n)| format!("role {a}/{n}"))
        .collect())
}

async fn detach_role_policy(
    c: &mut Conn,
    acct: &str,
    role: &str,
    policy: &str,
) -> StoreResult<bool> {
    let rid = role_id(c, acct, role).await?;
    let pid = queries::policy_id(c, policy).await?;
    let r = sqlx::query("DELETE FROM role_attachments WHERE policy_id = ? AND role_id = ?")
        .bind(&pid)
        .bind(&rid)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() > 0)
}

type KeyRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    bool,
    i64,
    Option<i64>,
    String,
    String,
);

const KEY_SELECT: &str = "SELECT k.id, k.user_id, k.role_id, k.secret_enc, k.active, k.created_at, \
     k.last_used_at, COALESCE(u.account_id, r.account_id), COALESCE(u.name, r.name) \
     FROM access_keys k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN roles r ON r.id = k.role_id";

fn key_from_row(r: KeyRow) -> AccessKeyRecord {
    let (owner, owner_id) = match (r.1, r.2) {
        (Some(uid), _) => (
            KeyOwner::User {
                account_id: r.7,
                name: r.8,
            },
            uid,
        ),
        (None, rid) => (
            KeyOwner::Role {
                account_id: r.7,
                name: r.8,
            },
            rid.unwrap_or_default(),
        ),
    };
    AccessKeyRecord {
        id: r.0,
        owner,
        owner_id,
        active: r.4,
        created_at: r.5,
        last_used_at: r.6,
        secret_enc: r.3,
    }
}

pub(crate) async fn insert_access_key(
    c: &mut Conn,
    acct: &str,
    owner: KeyOwnerRef<'_>,
    id: &str,
    secret_enc: &str,
) -> StoreResult<()> {
    let (uid, rid) = match owner {
        KeyOwnerRef::User(u) => (Some(queries::user_id(c, acct, u).await?), None),
        KeyOwnerRef::Role(r) => (None, Some(role_id(c, acct, r).await?)),
    };
    sqlx::query(
        "INSERT INTO access_keys (id, user_id, role_id, secret_enc, active, created_at) \
         VALUES (?, ?, ?, ?, TRUE, ?)",
    )
    .bind(id)
    .bind(uid)
    .bind(rid)
    .bind(secret_enc)
    .bind(now())
    .execute(&mut *c)
    .await?;
    Ok(())
}

type SessionRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    i64,
);

impl Store {
    // ----- roles ----------------------------------------------------------------------------

    /// Creates a role, or updates its trust policy, maximum session duration and description.
    pub async fn put_role(
        &self,
        account: Option<&str>,
        name: &str,
        trust_policy: &str,
        max_session_duration: i64,
        description: &str,
    ) -> StoreResult<Change> {
        let (account, name, trust, desc) = (
            account.map(str::to_owned),
            name.to_owned(),
            trust_policy.to_owned(),
            description.to_owned(),
        );
        let default = self.default_account_id().to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                put_role(c, &acct, &name, &trust, max_session_duration, &desc).await
            })
        })
        .await
    }

    pub async fn get_role(&self, account: Option<&str>, name: &str) -> StoreResult<RoleRecord> {
        let mut conn = self.inner.pool.acquire().await?;
        let acct = queries::resolve_account(&mut conn, account, self.default_account_id()).await?;
        load_role(&mut conn, &acct, name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "role",
                name: name.to_owned(),
            })
    }

    /// A role by account id and name, `None` when there is no such role (or account).
    pub async fn find_role(&self, account_id: &str, name: &str) -> StoreResult<Option<RoleRecord>> {
        let mut conn = self.inner.pool.acquire().await?;
        load_role(&mut conn, account_id, name).await
    }

    pub async fn list_roles(&self, account: Option<&str>) -> StoreResult<Vec<RoleRecord>> {
        let mut conn = self.inner.pool.acquire().await?;
        let rows: Vec<RoleRow> = match account {
            Some(a) => {
                let acct = queries::resolve_account(&mut conn, Some(a), "").await?;
                let q = sqlx::AssertSqlSafe(format!(
                    "SELECT {ROLE_COLUMNS} FROM roles WHERE account_id = ? ORDER BY account_id, name"
                ));
                sqlx::query_as(q).bind(acct).fetch_all(&mut *conn).await?
            }
            None => {
                let q = sqlx::AssertSqlSafe(format!(
                    "SELECT {ROLE_COLUMNS} FROM roles ORDER BY account_id, name"
                ));
                sqlx::query_as(q).fetch_all(&mut *conn).await?
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(role_from_row(&mut conn, r).await?);
        }
        Ok(out)
    }

    /// Deletes a role with its attachments, access keys and sessions.
    pub async fn delete_role(&self, account: Option<&str>, name: &str) -> StoreResult<()> {
        let role = self.get_role(account, name).await?;
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query("DELETE FROM roles WHERE id = ?")
                    .bind(&role.id)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Attaches (or with `attach = false` detaches) a permission policy to a role.
    pub async fn attach_role_policy(
        &self,
        account: Option<&str>,
        role: &str,
        policy: &str,
        attach: bool,
    ) -> StoreResult<bool> {
        let (account, role, policy) = (
            account.map(str::to_owned),
            role.to_owned(),
            policy.to_owned(),
        );
        let default = self.default_account_id().to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                if attach {
                    attach_role_policy(c, &acct, &role, &policy).await
                } else {
                    detach_role_policy(c, &acct, &role, &policy).await
                }
            })
        })
        .await
    }

    /// Hot path: the permission policies of a role (cached for at most the store TTL). A role
    /// that no longer exists has none. Fails closed on a document that no longer parses.
    pub async fn role_policies(
        &self,
        account_id: &str,
        role: &str,
    ) -> StoreResult<Arc<[NamedPolicy]>> {
        // Role names cannot contain ':', so this key never collides with a user's.
        let key = (format!("role:{account_id}"), role.to_owned());
        let inner = &self.inner;
        Ok(inner
            .policies
            .try_get_with(key, async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let mut conn = inner.pool.acquire().await?;
                let docs: Vec<(String, String)> = sqlx::query_as(
                    "SELECT p.name, p.document FROM policies p \
                     JOIN role_attachments a ON a.policy_id = p.id \
                     JOIN roles r ON r.id = a.role_id \
                     WHERE r.account_id = ? AND r.name = ? ORDER BY 1",
                )
                .bind(account_id)
                .bind(role)
                .fetch_all(&mut *conn)
                .await?;
                parse_named(docs)
            })
            .await?)
    }

    /// The session policy of an assumed-role principal, if its session was given one: the
    /// authorize stage requires it to allow too (it can only narrow the role's policies).
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
        // Cached like the other policies (at most the store TTL); an empty list means "no
        // session policy". Role names cannot contain ':', so the key never collides.
        let inner = &self.inner;
        let policies = inner
            .policies
            .try_get_with((format!("sts:{akid}"), String::new()), async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                match self.sts_session(akid).await? {
                    // The session is gone: deny everything.
                    None => parse_named(vec![(
                        "session-ended".to_owned(),
                        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#
                            .to_owned(),
                    )]),
                    Some(StsSessionRecord {
                        session_policy: None,
                        ..
                    }) => Ok(Arc::from(Vec::new())),
                    Some(StsSessionRecord {
                        session_policy: Some(text),
                        ..
                    }) => parse_named(vec![("session-policy".to_owned(), text)]),
                }
            })
            .await?;
        Ok((!policies.is_empty()).then_some(policies))
    }

    // ----- access keys ----------------------------------------------------------------------

    /// Creates an access key for a user or role. Returns the record and the secret, which is
    /// not stored in clear anywhere: show it once.
    pub async fn create_access_key(
        &self,
        account: Option<&str>,
        owner: KeyOwnerRef<'_>,
        master: &MasterKey,
    ) -> StoreResult<(AccessKeyRecord, Zeroizing<String>)> {
        let id = new_access_key_id("AKIA");
        let secret = new_secret_access_key();
        let sealed = master.seal(&id, secret.as_bytes());
        let account = account.map(str::to_owned);
        let (is_user, oname) = match owner {
            KeyOwnerRef::User(u) => (true, u.to_owned()),
            KeyOwnerRef::Role(r) => (false, r.to_owned()),
        };
        let default = self.default_account_id().to_owned();
        let kid = id.clone();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                let owner = if is_user {
                    KeyOwnerRef::User(&oname)
                } else {
                    KeyOwnerRef::Role(&oname)
                };
                insert_access_key(c, &acct, owner, &kid, &sealed).await
            })
        })
        .await?;
        let record = self
            .access_key(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "access key",
                name: id.clone(),
            })?;
        Ok((record, secret))
    }

    /// An access key by id (uncached).
    pub async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let mut conn = self.inner.pool.acquire().await?;
        let q = sqlx::AssertSqlSafe(format!("{KEY_SELECT} WHERE k.id = ?"));
        let row: Option<KeyRow> = sqlx::query_as(q)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.map(key_from_row))
    }

    /// Access keys, optionally of one user or role, oldest first.
    pub async fn list_access_keys(
        &self,
        account: Option<&str>,
        owner: Option<KeyOwnerRef<'_>>,
    ) -> StoreResult<Vec<AccessKeyRecord>> {
        let mut conn = self.inner.pool.acquire().await?;
        let rows: Vec<KeyRow> = match owner {
            None => {
                let q = sqlx::AssertSqlSafe(format!("{KEY_SELECT} ORDER BY k.created_at, k.id"));
                sqlx::query_as(q).fetch_all(&mut *conn).await?
            }
            Some(o) => {
                let acct =
                    queries::resolve_account(&mut conn, account, self.default_account_id()).await?;
                let (col, oid) = match o {
                    KeyOwnerRef::User(u) => {
                        ("k.user_id", queries::user_id(&mut conn, &acct, u).await?)
                    }
                    KeyOwnerRef::Role(r) => ("k.role_id", role_id(&mut conn, &acct, r).await?),
                };
                let q = sqlx::AssertSqlSafe(format!(
                    "{KEY_SELECT} WHERE {col} = ? ORDER BY k.created_at, k.id"
                ));
                sqlx::query_as(q).bind(oid).fetch_all(&mut *conn).await?
            }
        };
        Ok(rows.into_iter().map(key_from_row).collect())
    }

    /// Activates or deactivates a key. Returns false if it already was in that state.
    pub async fn set_access_key_active(&self, id: &str, active: bool) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let exists: Option<(bool,)> =
                    sqlx::query_as("SELECT active FROM access_keys WHERE id = ?")
                        .bind(&id)
                        .fetch_optional(&mut *c)
                        .await?;
                match exists {
                    None => Err(StoreError::NotFound {
                        kind: "access key",
                        name: id.clone(),
                    }),
                    Some((now_active,)) if now_active == active => Ok(false),
                    Some(_) => {
                        sqlx::query("UPDATE access_keys SET active = ? WHERE id = ?")
                            .bind(active)
                            .bind(&id)
                            .execute(&mut *c)
                            .await?;
                        Ok(true)
                    }
                }
            })
        })
        .await
    }

    pub async fn delete_access_key(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let r = sqlx::query("DELETE FROM access_keys WHERE id = ?")
                    .bind(&id)
                    .execute(&mut *c)
                    .await?;
                if r.rows_affected() == 0 {
                    return Err(StoreError::NotFound {
                        kind: "access key",
                        name: id.clone(),
                    });
                }
                Ok(())
            })
        })
        .await
    }

    /// Records a key's last use (throttled by the authenticator). Does not clear caches.
    pub async fn touch_access_key(&self, id: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE access_keys SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    // ----- STS sessions ---------------------------------------------------------------------

    /// Stores temporary credentials and removes those that expired.
    pub async fn insert_sts_session(&self, s: NewStsSession<'_>) -> StoreResult<()> {
        let t = now();
        sqlx::query("DELETE FROM sts_sessions WHERE expires_at <= ?")
            .bind(t)
            .execute(&self.inner.pool)
            .await?;
        let tags = serde_json::to_string(s.tags)
            .map_err(|e| StoreError::Invalid(format!("session tags: {e}")))?;
        sqlx::query(
            "INSERT INTO sts_sessions (access_key_id, role_id, session_name, secret_enc, \
             token_sha256, session_policy, source_identity, tags, caller_arn, created_at, \
             expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.access_key_id)
        .bind(s.role_id)
        .bind(s.session_name)
        .bind(&s.secret_enc)
        .bind(&s.token_sha256)
        .bind(s.session_policy)
        .bind(s.source_identity)
        .bind(tags)
        .bind(s.caller_arn)
        .bind(t)
        .bind(s.expires_at)
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// Temporary credentials by access key id (uncached; expired ones are still returned so the
    /// caller can say "expired" rather than "unknown").
    pub async fn sts_session(&self, access_key_id: &str) -> StoreResult<Option<StsSessionRecord>> {
        let row: Option<SessionRow> = sqlx::query_as(
            "SELECT s.access_key_id, s.role_id, r.account_id, r.name, s.session_name, \
             s.secret_enc, s.token_sha256, s.session_policy, s.source_identity, s.tags, \
             s.caller_arn, s.created_at, s.expires_at FROM sts_sessions s \
             JOIN roles r ON r.id = s.role_id WHERE s.access_key_id = ?",
        )
        .bind(access_key_id)
        .fetch_optional(&self.inner.pool)
        .await?;
        Ok(row.map(|r| StsSessionRecord {
            access_key_id: r.0,
            role_id: r.1,
            role_account_id: r.2,
            role_name: r.3,
            session_name: r.4,
            secret_enc: r.5,
            token_sha256: r.6,
            session_policy: r.7,
            source_identity: r.8,
            tags: serde_json::from_str(&r.9).unwrap_or_default(),
            caller_arn: r.10,
            created_at: r.11,
            expires_at: r.12,
        }))
    }
}

fn parse_named(docs: Vec<(String, String)>) -> StoreResult<Arc<[NamedPolicy]>> {
    let mut out = Vec::with_capacity(docs.len());
    for (name, text) in docs {
        let document = PolicyDocument::parse(&text).map_err(|e| StoreError::InvalidPolicy {
            name: name.clone(),
            message: e.to_string(),
        })?;
        out.push(NamedPolicy { name, document });
    }
    Ok(Arc::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"sts:AssumeRole"}]}"#;
    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"mlflow:*","Resource":"*"}]}"#;

    #[test]
    fn ids_and_secrets_have_the_aws_shape() {
        let id = new_access_key_id("AKIA");
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_ne!(id, new_access_key_id("AKIA"));
        let secret = new_secret_access_key();
        assert_eq!(secret.len(), 40);
        assert!(new_session_token().len() > 64);
    }

    #[tokio::test]
    async fn roles_keys_and_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let (master, _) = MasterKey::generate();
        store
            .ensure_account("222222222222", "data-science")
            .await
            .unwrap();
        assert_eq!(
            store
                .put_role(None, "mlflow-writer", TRUST, 3600, "")
                .await
                .unwrap(),
            Change::Created
        );
        assert_eq!(
            store
                .put_role(None, "mlflow-writer", TRUST, 3600, "")
                .await
                .unwrap(),
            Change::Unchanged
        );
        assert!(
            store.put_role(None, "bad", POLICY, 3600, "").await.is_err(),
            "a trust policy needs a Principal"
        );
        assert!(
            store
                .put_role(None, "long", TRUST, 50_000, "")
                .await
                .is_err()
        );
        store.put_policy("all", POLICY).await.unwrap();
        assert!(
            store
                .attach_role_policy(None, "mlflow-writer", "all", true)
                .await
                .unwrap()
        );
        let role = store.get_role(None, "mlflow-writer").await.unwrap();
        assert_eq!(role.policies, vec!["all".to_owned()]);
        // A policy a role holds is not deleted without --force.
        let e = store.delete_policy("all", false).await.unwrap_err();
        assert!(
            e.to_string().contains("role 111111111111/mlflow-writer"),
            "{e}"
        );
        assert_eq!(role.arn(), "arn:aws:iam::111111111111:role/mlflow-writer");
        let pols = store
            .role_policies("111111111111", "mlflow-writer")
            .await
            .unwrap();
        assert_eq!(pols.len(), 1);

        store
            .create_user(Some("data-science"), "scientist", None, BTreeMap::new())
            .await
            .unwrap();
        let (key, secret) = store
            .create_access_key(
                Some("data-science"),
                KeyOwnerRef::User("scientist"),
                &master,
            )
            .await
            .unwrap();
        assert!(key.id.starts_with("AKIA"));
        assert!(!key.sealed_secret().contains(secret.as_str()));
        assert_eq!(
            master
                .open(&key.id, key.sealed_secret())
                .unwrap()
                .as_slice(),
            secret.as_bytes()
        );
        // The database file holds no clear secret.
        let db = std::fs::read(dir.path().join("mlgate.db")).unwrap_or_default();
        let wal = std::fs::read(dir.path().join("mlgate.db-wal")).unwrap_or_default();
        for bytes in [db, wal] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
        assert!(store.set_access_key_active(&key.id, false).await.unwrap());
        assert!(!store.set_access_key_active(&key.id, false).await.unwrap());
        assert!(!store.access_key(&key.id).await.unwrap().unwrap().active);
        let listed = store
            .list_access_keys(Some("data-science"), Some(KeyOwnerRef::User("scientist")))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        let (role_key, _) = store
            .create_access_key(None, KeyOwnerRef::Role("mlflow-writer"), &master)
            .await
            .unwrap();
        assert!(matches!(role_key.owner, KeyOwner::Role { .. }));
        store.delete_access_key(&key.id).await.unwrap();
        assert!(store.access_key(&key.id).await.unwrap().is_none());

        let tags = BTreeMap::new();
        let token = new_session_token();
        store
            .insert_sts_session(NewStsSession {
                access_key_id: "ASIATESTTESTTESTTEST",
                role_id: &role.id,
                session_name: "job-1",
                secret_enc: master.seal("ASIATESTTESTTESTTEST", b"s"),
                token_sha256: token_digest(&token),
                session_policy: Some(POLICY),
                source_identity: None,
                tags: &tags,
                caller_arn: "arn:aws:iam::222222222222:user/scientist",
                expires_at: now() + 900,
            })
            .await
            .unwrap();
        let s = store
            .sts_session("ASIATESTTESTTESTTEST")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.arn(),
            "arn:aws:sts::111111111111:assumed-role/mlflow-writer/job-1"
        );
        assert_eq!(s.token_sha256(), token_digest(&token));
        let principal = Principal::role_session(
            "111111111111",
            "mlflow-writer",
            "job-1",
            "ASIATESTTESTTESTTEST",
            BTreeMap::new(),
        );
        assert_eq!(principal.arn, s.arn());
        let session = store.session_policies(&principal).await.unwrap().unwrap();
        assert_eq!(session[0].name, "session-policy");
        assert_eq!(store.effective_policies(&principal).await.unwrap().len(), 1);
        store.delete_role(None, "mlflow-writer").await.unwrap();
        // Session gone (role deleted): the session policy denies everything.
        let gone = store.session_policies(&principal).await.unwrap().unwrap();
        assert_eq!(gone[0].name, "session-ended");
        assert!(
            store
                .sts_session("ASIATESTTESTTESTTEST")
                .await
                .unwrap()
                .is_none()
        );
    }
}
