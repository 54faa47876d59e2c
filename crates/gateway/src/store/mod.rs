//! The identity store: accounts, users, groups, memberships, policies and their attachments,
//! API tokens and browser sessions, in an embedded SQLite database (`<data_dir>/mlgate.db`).
//!
//! * SQLite in WAL mode with a `busy_timeout`, so the admin CLI can write to the same file while
//!   the server runs. Runtime queries only (no `query!` macros, no `DATABASE_URL`); the SQL stays
//!   in the portable subset so a PostgreSQL implementation can follow (see `migrations/`).
//! * Secrets are never stored: passwords as argon2id PHC strings, token secrets and session ids
//!   as SHA-256 digests.
//! * The hot path (principal lookups, token and session lookups, effective policies) is served
//!   from short-lived [`moka`] caches. Their TTL is at most [`MAX_CACHE_TTL`] (2 s): a change made
//!   by another process (the admin CLI against the same database) is seen within that time, and
//!   a change made through this [`Store`] is seen at once (every write clears the caches).

mod apply;
mod creators;
mod federated;
mod keys;
mod model;
pub mod password;
mod queries;
pub mod secrets;
mod validate;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mlgate_policy::{NamedPolicy, PolicyDocument};
use moka::future::Cache;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};

use crate::identity::{Principal, PrincipalKind};

pub use apply::{
    ApplyAccount, ApplyGrant, ApplyGroup, ApplyItem, ApplyPlan, ApplyPolicy, ApplyReport,
    ApplyUser, Change, GRANT_POLICY_PREFIX, GrantSubject,
};
pub use keys::{
    AccessKeyRecord, DEFAULT_MAX_SESSION_SECONDS, KeyOwner, KeyOwnerRef, MAX_SESSION_SECONDS,
    MIN_SESSION_SECONDS, NewStsSession, RoleRecord, StsSessionRecord, assumed_role_arn,
    check_trust_policy, new_access_key_id, new_secret_access_key, new_session_token, token_digest,
    validate_role_name,
};
pub use model::{
    AccountRecord, GroupRecord, PolicyRecord, PolicySource, SessionRecord, TokenRecord, UserRecord,
};
pub use validate::{
    validate_account_id, validate_account_name, validate_group_name, validate_policy_name,
    validate_tag, validate_user_name,
};

/// The longest the store's caches may keep an entry. Keeps the delay between an admin CLI change
/// (made by another process) and its effect on a running server bounded.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(2);

/// The database file inside the data directory.
pub const DB_FILE: &str = "mlgate.db";

/// The account every deployment has; users and groups named without an account live here.
pub const DEFAULT_ACCOUNT_ID: &str = "111111111111";
pub const DEFAULT_ACCOUNT_NAME: &str = "mlflow";

/// How the store is set up.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The 12-digit account used when a user or group is named without one.
    pub default_account_id: String,
    pub default_account_name: String,
    /// TTL of the hot-path caches; clamped to [`MAX_CACHE_TTL`]. Zero disables caching.
    pub cache_ttl: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            default_account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            default_account_name: DEFAULT_ACCOUNT_NAME.to_owned(),
            cache_ttl: MAX_CACHE_TTL,
        }
    }
}

/// Errors from the store. Never contain a secret (queries bind their parameters, and sqlx does not
/// print bound values).
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("database migration failed: {0}")]
    Migrate(Arc<sqlx::migrate::MigrateError>),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: Arc<io::Error>,
    },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name:?} already exists")]
    AlreadyExists { kind: &'static str, name: String },
    /// A name, tag, duration or similar that does not meet the rules.
    #[error("{0}")]
    Invalid(String),
    /// A policy document that `mlgate-policy` rejects; `message` names the offending statement.
    #[error("policy {name:?} is invalid: {message}")]
    InvalidPolicy { name: String, message: String },
    /// The operation would break something else (e.g. deleting an attached policy).
    #[error("{0}")]
    Conflict(String),
    #[error("password hashing failed: {0}")]
    Password(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

impl From<Arc<StoreError>> for StoreError {
    fn from(e: Arc<StoreError>) -> Self {
        (*e).clone()
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the store. Cheap to clone; all clones share the pool and the caches.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    config: StoreConfig,
    accounts: Cache<String, Option<String>>,
    users_by_name: Cache<(String, String), Option<Arc<UserRecord>>>,
    users_by_id: Cache<String, Option<Arc<UserRecord>>>,
    policies: Cache<(String, String), Arc<[NamedPolicy]>>,
    tokens: Cache<String, Option<Arc<TokenRecord>>>,
    sessions: Cache<String, Option<Arc<SessionRecord>>>,
    /// Resource ARN → creator name (`None`: none recorded); see `creators.rs`.
    creators: Cache<String, Option<String>>,
    /// Number of hot-path loads that went to the database (cache misses); for tests and metrics.
    loads: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("default_account_id", &self.inner.config.default_account_id)
            .finish_non_exhaustive()
    }
}

fn cache<K, V>(ttl: Duration, capacity: u64) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity)
        .time_to_live(ttl)
        .build()
}

pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |e| StoreError::Io {
        path: path.to_owned(),
        source: Arc::new(e),
    }
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/mlgate.db` with the default configuration:
    /// the data directory is created with mode 0700 and the database file with mode 0600.
    pub async fn open(data_dir: &Path) -> StoreResult<Store> {
        Store::open_with(data_dir, StoreConfig::default()).await
    }

    /// Opens the store with an explicit configuration (default account, cache TTL).
    pub async fn open_with(data_dir: &Path, config: StoreConfig) -> StoreResult<Store> {
        validate_account_id(&config.default_account_id)?;
        validate_account_name(&config.default_account_name)?;
        prepare_data_dir(data_dir)?;
        let db_path = data_dir.join(DB_FILE);
        // Create the file ourselves so it is 0600 from the first byte; SQLite gives the -wal and
        // -shm files the same permissions as the database file.
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&db_path)
            .map_err(io_err(&db_path))?;

        let options = SqliteConnectOptions::new()
            .filename(&db_path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(Arc::new(e)))?;

        let ttl = config.cache_ttl.min(MAX_CACHE_TTL);
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                accounts: cache(ttl, 1_000),
                users_by_name: cache(ttl, 10_000),
                users_by_id: cache(ttl, 10_000),
                policies: cache(ttl, 10_000),
                tokens: cache(ttl, 10_000),
                sessions: cache(ttl, 10_000),
                creators: cache(ttl, 100_000),
                loads: AtomicU64::new(0),
                config,
            }),
        };
        let cfg = &store.inner.config;
        store
            .ensure_account(&cfg.default_account_id, &cfg.default_account_name)
            .await?;
        Ok(store)
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    pub fn default_account_id(&self) -> &str {
        &self.inner.config.default_account_id
    }

    /// The connection pool, for code that extends the store (later issues).
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Number of hot-path lookups that missed the cache and went to the database.
    pub fn cache_misses(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// Drops every cached entry. Called after each write made through this handle.
    pub fn invalidate_caches(&self) {
        let i = &self.inner;
        i.accounts.invalidate_all();
        i.users_by_name.invalidate_all();
        i.users_by_id.invalidate_all();
        i.policies.invalidate_all();
        i.tokens.invalidate_all();
        i.sessions.invalidate_all();
    }

    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        // IMMEDIATE takes the write lock up front, so a read-then-write transaction cannot fail
        // with SQLITE_BUSY half-way when another process (the admin CLI) writes concurrently.
        Ok(self.inner.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Runs `f` in one write transaction and clears the caches after it committed.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: for<'c> FnOnce(
            &'c mut SqliteConnection,
        )
            -> std::pin::Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'c>>,
    {
        let mut tx = self.write_tx().await?;
        let out = f(&mut tx).await?;
        tx.commit().await?;
        self.invalidate_caches();
        Ok(out)
    }

    /// Resolves an account given by 12-digit id or by name; `None` is the default account.
    pub async fn resolve_account(&self, account: Option<&str>) -> StoreResult<String> {
        let mut conn = self.inner.pool.acquire().await?;
        queries::resolve_account(&mut conn, account, self.default_account_id()).await
    }

    /// Hot path: the id of an account given by id or name, `None` if there is no such account.
    /// Cached for at most [`MAX_CACHE_TTL`].
    pub async fn account_id(&self, account: &str) -> StoreResult<Option<String>> {
        let inner = &self.inner;
        Ok(inner
            .accounts
            .try_get_with(account.to_owned(), async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let mut conn = inner.pool.acquire().await?;
                match queries::resolve_account(&mut conn, Some(account), "").await {
                    Ok(id) => Ok(Some(id)),
                    Err(StoreError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?)
    }

    // ----- accounts -------------------------------------------------------------------------

    /// Creates the account if it does not exist. Fails if the id exists under another name or
    /// the name under another id.
    pub async fn ensure_account(&self, id: &str, name: &str) -> StoreResult<Change> {
        let (id, name) = (id.to_owned(), name.to_owned());
        self.write(move |c| Box::pin(async move { queries::ensure_account(c, &id, &name).await }))
            .await
    }

    pub async fn list_accounts(&self) -> StoreResult<Vec<AccountRecord>> {
        let mut conn = self.inner.pool.acquire().await?;
        queries::list_accounts(&mut conn).await
    }

    // ----- users ----------------------------------------------------------------------------

    /// Creates a user. `password_hash` is an argon2id PHC string from [`password::hash`].
    pub async fn create_user(
        &self,
        account: Option<&str>,
        name: &str,
        password_hash: Option<String>,
        tags: BTreeMap<String, String>,
    ) -> StoreResult<UserRecord> {
        let account = account.map(str::to_owned);
        let name = name.to_owned();
        let default = self.default_account_id().to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                queries::create_user(c, &acct, &name, password_hash.as_deref(), &tags).await?;
                queries::load_user_by_name(c, &acct, &name)
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "user",
                        name: name.clone(),
                    })
            })
        })
        .await
    }

    /// Looks a user up, uncached (for the admin CLI).
    pub async fn get_user(&self, account: Option<&str>, name: &str) -> StoreResult<UserRecord> {
        let mut conn = self.inner.pool.acquire().await?;
        let acct = queries::resolve_account(&mut conn, account, self.default_account_id()).await?;
        queries::load_user_by_name(&mut conn, &acct, name)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "user",
                name: name.to_owned(),
            })
    }

    pub async fn list_users(&self, account: Option<&str>) -> StoreResult<Vec<UserRecord>> {
        let mut conn = self.inner.pool.acquire().await?;
        let acct = match account {
            Some(a) => {
                Some(queries::resolve_account(&mut conn, Some(a), self.default_account_id()).await?)
            }
            None => None,
        };
        queries::list_users(&mut conn, acct.as_deref()).await
    }

    pub async fn delete_user(&self, account: Option<&str>, name: &str) -> StoreResult<()> {
        let user = self.get_user(account, name).await?;
        self.write(move |c| Box::pin(async move { queries::delete_user(c, &user.id).await }))
            .await
    }

    /// Sets (or with `None`, removes) the password, and signs the user out of every browser
    /// session.
    pub async fn set_password(
        &self,
        account: Option<&str>,
        name: &str,
        password_hash: Option<String>,
    ) -> StoreResult<()> {
        let user = self.get_user(account, name).await?;
        self.write(move |c| {
            Box::pin(async move {
                queries::set_password(c, &user.id, password_hash.as_deref()).await?;
                queries::delete_user_sessions(c, &user.id).await
            })
        })
        .await
    }

    /// Disables or enables a user. Disabling also ends the user's browser sessions; its tokens
    /// stay (they stop working while the user is disabled).
    pub async fn set_disabled(
        &self,
        account: Option<&str>,
        name: &str,
        disabled: bool,
    ) -> StoreResult<()> {
        let user = self.get_user(account, name).await?;
        self.write(move |c| {
            Box::pin(async move {
                queries::set_disabled(c, &user.id, disabled).await?;
                if disabled {
                    queries::delete_user_sessions(c, &user.id).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Sets the given tags and removes the keys in `remove`.
    pub async fn tag_user(
        &self,
        account: Option<&str>,
        name: &str,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> StoreResult<UserRecord> {
        let user = self.get_user(account, name).await?;
        let mut tags = user.tags.clone();
        for k in &remove {
            tags.remove(k);
        }
        tags.extend(set);
        self.write(move |c| {
            Box::pin(async move {
                queries::set_tags(c, &user.id, &tags).await?;
                queries::load_user_by_id(c, &user.id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "user",
                        name: user.name.clone(),
                    })
            })
        })
        .await
    }

    /// Hot path: a user by account id and name, cached for at most [`MAX_CACHE_TTL`].
    pub async fn user_by_name(
        &self,
        account_id: &str,
        name: &str,
    ) -> StoreResult<Option<Arc<UserRecord>>> {
        let key = (account_id.to_owned(), name.to_owned());
        let inner = &self.inner;
        Ok(inner
            .users_by_name
            .try_get_with(key, async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let mut conn = inner.pool.acquire().await?;
                Ok::<_, StoreError>(
                    queries::load_user_by_name(&mut conn, account_id, name)
                        .await?
                        .map(Arc::new),
                )
            })
            .await?)
    }

    /// Hot path: a user by id, cached for at most [`MAX_CACHE_TTL`].
    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<Arc<UserRecord>>> {
        let inner = &self.inner;
        Ok(inner
            .users_by_id
            .try_get_with(id.to_owned(), async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let mut conn = inner.pool.acquire().await?;
                Ok::<_, StoreError>(queries::load_user_by_id(&mut conn, id).await?.map(Arc::new))
            })
            .await?)
    }

    // ----- groups ---------------------------------------------------------------------------

    pub async fn create_group(&self, account: Option<&str>, name: &str) -> StoreResult<()> {
        let account = account.map(str::to_owned);
        let name = name.to_owned();
        let default = self.default_account_id().to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                queries::create_group(c, &acct, &name).await.map(|_| ())
            })
        })
        .await
    }

    pub async fn list_groups(&self, account: Option<&str>) -> StoreResult<Vec<GroupRecord>> {
        let mut conn = self.inner.pool.acquire().await?;
        let acct = match account {
            Some(a) => {
                Some(queries::resolve_account(&mut conn, Some(a), self.default_account_id()).await?)
            }
            None => None,
        };
        queries::list_groups(&mut conn, acct.as_deref()).await
    }

    pub async fn delete_group(&self, account: Option<&str>, name: &str) -> StoreResult<()> {
        let account = account.map(str::to_owned);
        let name = name.to_owned();
        let default = self.default_account_id().to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                let gid = queries::group_id(c, &acct, &name).await?;
                queries::delete_group(c, &gid).await
            })
        })
        .await
    }

    /// Adds a user to a group of the same account. Returns whether it was added (false: was
    /// already a member).
    pub async fn add_member(
        &self,
        account: Option<&str>,
        group: &str,
        user: &str,
    ) -> StoreResult<bool> {
        let account = account.map(str::to_owned);
        let (group, user) = (group.to_owned(), user.to_owned());
        let default = self.default_account_id().to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                let gid = queries::group_id(c, &acct, &group).await?;
                let uid = queries::user_id(c, &acct, &user).await?;
                queries::add_member(c, &gid, &uid).await
            })
        })
        .await
    }

    /// Removes a user from a group. Returns whether it was a member.
    pub async fn remove_member(
        &self,
        account: Option<&str>,
        group: &str,
        user: &str,
    ) -> StoreResult<bool> {
        let account = account.map(str::to_owned);
        let (group, user) = (group.to_owned(), user.to_owned());
        let default = self.default_account_id().to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                let gid = queries::group_id(c, &acct, &group).await?;
                let uid = queries::user_id(c, &acct, &user).await?;
                queries::remove_member(c, &gid, &uid).await
            })
        })
        .await
    }

    // ----- policies -------------------------------------------------------------------------

    /// Validates `document` with `mlgate-policy` and stores it under `name` (creating or
    /// replacing). A document the policy engine rejects is refused with
    /// [`StoreError::InvalidPolicy`], whose message names the offending statement.
    pub async fn put_policy(&self, name: &str, document: &str) -> StoreResult<Change> {
        validate_policy_name(name)?;
        check_policy(name, document)?;
        let (name, document) = (name.to_owned(), document.to_owned());
        self.write(move |c| Box::pin(async move { queries::put_policy(c, &name, &document).await }))
            .await
    }

    pub async fn get_policy(&self, name: &str) -> StoreResult<PolicyRecord> {
        let mut conn = self.inner.pool.acquire().await?;
        queries::get_policy(&mut conn, name).await
    }

    pub async fn list_policies(&self) -> StoreResult<Vec<PolicyRecord>> {
        let mut conn = self.inner.pool.acquire().await?;
        queries::list_policies(&mut conn).await
    }

    /// Deletes a policy. An attached policy is only deleted (and detached everywhere) with
    /// `force`; otherwise [`StoreError::Conflict`] lists where it is attached.
    pub async fn delete_policy(&self, name: &str, force: bool) -> StoreResult<()> {
        let name = name.to_owned();
        self.write(move |c| Box::pin(async move { queries::delete_policy(c, &name, force).await }))
            .await
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
        let account = account.map(str::to_owned);
        let policy = policy.to_owned();
        let (is_user, tname) = match target {
            AttachTarget::User(u) => (true, u.to_owned()),
            AttachTarget::Group(g) => (false, g.to_owned()),
        };
        let default = self.default_account_id().to_owned();
        self.write(move |c| {
            Box::pin(async move {
                let acct = queries::resolve_account(c, account.as_deref(), &default).await?;
                let pid = queries::policy_id(c, &policy).await?;
                let (uid, gid) = if is_user {
                    (Some(queries::user_id(c, &acct, &tname).await?), None)
                } else {
                    (None, Some(queries::group_id(c, &acct, &tname).await?))
                };
                if attach {
                    queries::attach(c, &pid, uid.as_deref(), gid.as_deref()).await
                } else {
                    queries::detach(c, &pid, uid.as_deref(), gid.as_deref()).await
                }
            })
        })
        .await
    }

    /// Where a policy is attached: user and group names (with their account ids).
    pub async fn policy_attachments(&self, name: &str) -> StoreResult<Vec<PolicySource>> {
        let mut conn = self.inner.pool.acquire().await?;
        let pid = queries::policy_id(&mut conn, name).await?;
        queries::policy_attachments(&mut conn, &pid).await
    }

    /// The policies that apply to a user and why (directly, or through which groups), for
    /// `mlgate policy effective`. Uncached.
    pub async fn effective_policy_sources(
        &self,
        account: Option<&str>,
        user: &str,
    ) -> StoreResult<Vec<(String, Vec<PolicySource>)>> {
        let u = self.get_user(account, user).await?;
        let mut conn = self.inner.pool.acquire().await?;
        queries::effective_policy_sources(&mut conn, &u.id).await
    }

    /// Hot path: the principal's effective policies, i.e. the policies attached to the user
    /// itself ∪ those attached to **every** group it is a member of (not only the first), each
    /// policy once. Cached for at most [`MAX_CACHE_TTL`]. A principal whose user no longer
    /// exists has no policies (everything is implicitly denied). Fails closed: a stored document
    /// that no longer parses is an error, never silently skipped (it might hold a Deny).
    pub async fn effective_policies(
        &self,
        principal: &Principal,
    ) -> StoreResult<Arc<[NamedPolicy]>> {
        match principal.kind {
            PrincipalKind::User => {}
            // OIDC users: the policies of their mapped groups (store/federated.rs).
            PrincipalKind::FederatedUser { .. } => return self.federated_policies(principal).await,
            // An assumed role has its role's permission policies; a session policy, if any, is
            // checked on top by the authorize stage (`Store::session_policies`).
            PrincipalKind::AssumedRole { ref role, .. } => {
                return self.role_policies(&principal.account, role).await;
            }
        }
        let key = (principal.account.clone(), principal.name.clone());
        let inner = &self.inner;
        Ok(inner
            .policies
            .try_get_with(key, async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let mut conn = inner.pool.acquire().await?;
                let Some(uid) =
                    queries::find_user_id(&mut conn, &principal.account, &principal.name).await?
                else {
                    return Ok(Arc::from(Vec::new()));
                };
                let docs = queries::effective_documents(&mut conn, &uid).await?;
                let mut out = Vec::with_capacity(docs.len());
                for (name, text) in docs {
                    let document =
                        PolicyDocument::parse(&text).map_err(|e| StoreError::InvalidPolicy {
                            name: name.clone(),
                            message: e.to_string(),
                        })?;
                    out.push(NamedPolicy { name, document });
                }
                Ok::<_, StoreError>(Arc::from(out))
            })
            .await?)
    }

    // ----- API tokens -----------------------------------------------------------------------

    /// Stores a new token for a user. The caller minted `id` and the SHA-256 of the secret
    /// (see [`crate::authenticate::token::MintedToken`]); the secret itself is never stored.
    pub async fn insert_token(
        &self,
        account: Option<&str>,
        user: &str,
        token_id: &str,
        name: &str,
        secret_sha256_hex: &str,
        expires_at: Option<i64>,
    ) -> StoreResult<TokenRecord> {
        let u = self.get_user(account, user).await?;
        let (tid, name, digest) = (
            token_id.to_owned(),
            name.to_owned(),
            secret_sha256_hex.to_owned(),
        );
        self.write(move |c| {
            Box::pin(async move {
                queries::insert_token(c, &tid, &u.id, &name, &digest, expires_at).await?;
                queries::load_token(c, &tid)
                    .await?
                    .ok_or_else(|| StoreError::NotFound {
                        kind: "token",
                        name: tid.clone(),
                    })
            })
        })
        .await
    }

    /// Tokens, optionally of one user, newest first.
    pub async fn list_tokens(
        &self,
        account: Option<&str>,
        user: Option<&str>,
    ) -> StoreResult<Vec<TokenRecord>> {
        let uid = match user {
            Some(u) => Some(self.get_user(account, u).await?.id),
            None => None,
        };
        let mut conn = self.inner.pool.acquire().await?;
        queries::list_tokens(&mut conn, uid.as_deref()).await
    }

    /// Revokes a token. Returns false if it was already revoked.
    pub async fn revoke_token(&self, token_id: &str) -> StoreResult<bool> {
        let tid = token_id.to_owned();
        self.write(move |c| Box::pin(async move { queries::revoke_token(c, &tid).await }))
            .await
    }

    /// Hot path: a token by its public id, cached for at most [`MAX_CACHE_TTL`].
    pub async fn token_by_id(&self, token_id: &str) -> StoreResult<Option<Arc<TokenRecord>>> {
        let inner = &self.inner;
        Ok(inner
            .tokens
            .try_get_with(token_id.to_owned(), async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let mut conn = inner.pool.acquire().await?;
                Ok::<_, StoreError>(
                    queries::load_token(&mut conn, token_id)
                        .await?
                        .map(Arc::new),
                )
            })
            .await?)
    }

    /// Records that a token was used (the authenticator throttles this to about once a minute
    /// per token). Does not clear the caches.
    pub async fn touch_token(&self, token_id: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(token_id)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    // ----- sessions -------------------------------------------------------------------------

    /// Stores a new browser session (by the SHA-256 of its id) and removes expired ones.
    pub async fn create_session(
        &self,
        id_sha256_hex: &str,
        user_id: &str,
        expires_at: i64,
        idle_timeout: Duration,
    ) -> StoreResult<()> {
        let t = now();
        let idle = i64::try_from(idle_timeout.as_secs()).unwrap_or(i64::MAX);
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?")
            .bind(t)
            .bind(t.saturating_sub(idle))
            .execute(&self.inner.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_sha256, user_id, created_at, expires_at, last_seen_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id_sha256_hex)
        .bind(user_id)
        .bind(t)
        .bind(expires_at)
        .bind(t)
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// Hot path: a session by the SHA-256 of its id, cached for at most [`MAX_CACHE_TTL`].
    pub async fn session_by_hash(
        &self,
        id_sha256_hex: &str,
    ) -> StoreResult<Option<Arc<SessionRecord>>> {
        let inner = &self.inner;
        Ok(inner
            .sessions
            .try_get_with(id_sha256_hex.to_owned(), async {
                inner.loads.fetch_add(1, Ordering::Relaxed);
                let mut conn = inner.pool.acquire().await?;
                Ok::<_, StoreError>(
                    queries::load_session(&mut conn, id_sha256_hex)
                        .await?
                        .map(Arc::new),
                )
            })
            .await?)
    }

    /// Moves a session's idle clock forward (throttled by the authenticator).
    pub async fn touch_session(&self, id_sha256_hex: &str, at: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = ? WHERE id_sha256 = ? AND last_seen_at < ?",
        )
        .bind(at)
        .bind(id_sha256_hex)
        .bind(at)
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// Deletes a session (sign-out). Returns whether it existed.
    pub async fn delete_session(&self, id_sha256_hex: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM sessions WHERE id_sha256 = ?")
            .bind(id_sha256_hex)
            .execute(&self.inner.pool)
            .await?;
        self.inner.sessions.invalidate(id_sha256_hex).await;
        Ok(r.rows_affected() > 0)
    }

    // ----- declarative apply ----------------------------------------------------------------

    /// Applies a declarative plan (see [`ApplyPlan`]) in one transaction: creates what is
    /// missing, updates what differs, and reports each item as created, updated or unchanged.
    /// Nothing is written if any item fails.
    pub async fn apply(&self, plan: &ApplyPlan) -> StoreResult<ApplyReport> {
        let mut tx = self.write_tx().await?;
        let report = apply::apply(&mut tx, plan, self.default_account_id()).await?;
        tx.commit().await?;
        self.invalidate_caches();
        Ok(report)
    }

    /// Like [`Self::apply`], but rolls the transaction back: reports what would change.
    pub async fn apply_dry_run(&self, plan: &ApplyPlan) -> StoreResult<ApplyReport> {
        let mut tx = self.write_tx().await?;
        let report = apply::apply(&mut tx, plan, self.default_account_id()).await?;
        tx.rollback().await?;
        Ok(report)
    }
}

/// What a policy is attached to.
#[derive(Clone, Copy, Debug)]
pub enum AttachTarget<'a> {
    User(&'a str),
    Group(&'a str),
}

/// Validates a policy document with the policy engine.
pub fn check_policy(name: &str, document: &str) -> StoreResult<()> {
    PolicyDocument::parse(document)
        .map(|_| ())
        .map_err(|e| StoreError::InvalidPolicy {
            name: name.to_owned(),
            message: e.to_string(),
        })
}

fn prepare_data_dir(dir: &Path) -> StoreResult<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                // The directory holds password hashes: keep it private to the service user.
                fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700))
                    .map_err(io_err(dir))?;
                tracing::warn!(
                    path = %dir.display(),
                    "data directory was accessible to other users; tightened it to 0700"
                );
            }
            Ok(())
        }
        Ok(_) => Err(StoreError::Io {
            path: dir.to_owned(),
            source: Arc::new(io::Error::other("not a directory")),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir)),
        Err(e) => Err(io_err(dir)(e)),
    }
}

#[cfg(test)]
pub(crate) mod tests;
