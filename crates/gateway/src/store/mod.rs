//! The identity store: accounts, users, groups, memberships, policies and their attachments,
//! API tokens, browser sessions, roles, access keys and STS sessions, OIDC pre-login state and
//! resource creators.
//!
//! * Secrets are never stored: passwords as argon2id PHC strings, token secrets and session ids
//!   as SHA-256 digests, SigV4 secrets sealed under the master key ([`secrets`]).
//! * The hot path (principal lookups, token and session lookups, effective policies, creators)
//!   is served from [`moka`] caches. A change made through this [`Store`] clears them at once;
//!   a change made by another process (the admin CLI, another replica) bumps the store's change
//!   counter, which a serving process watches ([`Store::watch_changes`], `changes.rs`): it
//!   drops its caches within [`changes::SQLITE_POLL`] on SQLite and at once on PostgreSQL
//!   (NOTIFY, with [`changes::POSTGRES_POLL`] as the bound when notifications are lost). The
//!   caches' TTL, at most [`MAX_CACHE_TTL`], is only a backstop.
//!
//! # Layout: one interface, backends below it
//!
//! * [`Store`] (this module and its siblings `identities`, `tokens`, `policies`, `sessions`,
//!   `oidc`, `roles`, `access_keys`, `sts`, `creators`, `apply`) is backend-independent: the
//!   caches, validation, the policy loader, the session rule, apply planning. It never writes
//!   SQL.
//! * `backend` is the interface: traits with one method per statement, implemented on a
//!   backend's connection type. `model` holds the records both sides share.
//! * `sql/` holds the statements, written once; `sqlite/` and `postgres/` are the backends: the
//!   pool, the migrations wiring, how a write transaction starts, and each one's placeholder
//!   style applied to the shared statements.
//!
//! The backend is chosen with an enum ([`Backend`]), not a `dyn` trait object: `async fn` in a
//! trait is not object-safe, and boxing every statement's future would cost an allocation per
//! query on the hot path. The backend-independent code is generic over the connection type; the
//! `read_db!`, `write_db!` and `in_transaction!` macros instantiate it once per enum variant.

/// Runs `$body` (a `StoreResult`) with `$c` bound to a pooled connection of the store's
/// backend: for reads and single statements.
macro_rules! read_db {
    ($store:expr, |$c:ident| $body:expr) => {
        match &$store.inner.backend {
            $crate::store::Backend::Sqlite(db) => {
                let mut conn = db.connection().await?;
                let $c = &mut *conn;
                $body
            }
            $crate::store::Backend::Postgres(db) => {
                let mut conn = db.connection().await?;
                let $c = &mut *conn;
                $body
            }
        }
    };
}

/// Runs `$body` (a `StoreResult`) in one write transaction of the store's backend, `$c` being
/// the transaction; when `$commit` is true and `$body` succeeded, records the change (so other
/// processes drop their caches) and commits, else rolls back. Leaves this handle's caches
/// alone: most callers want [`write_db!`].
/// `quietly` commits without recording a change: for bookkeeping no cache depends on.
macro_rules! in_transaction {
    ($store:expr, quietly, |$c:ident| $body:expr) => {
        in_transaction!(@backend $store, true, false, |$c| $body)
    };
    ($store:expr, $commit:expr, |$c:ident| $body:expr) => {
        in_transaction!(@backend $store, $commit, true, |$c| $body)
    };
    (@backend $store:expr, $commit:expr, $announce:expr, |$c:ident| $body:expr) => {
        match &$store.inner.backend {
            $crate::store::Backend::Sqlite(db) => {
                let mut tx = db.begin_write().await?;
                in_transaction!(@run tx, $commit, $announce, |$c| $body)
            }
            $crate::store::Backend::Postgres(db) => {
                let mut tx = db.begin_write().await?;
                in_transaction!(@run tx, $commit, $announce, |$c| $body)
            }
        }
    };
    (@run $tx:ident, $commit:expr, $announce:expr, |$c:ident| $body:expr) => {{
        let $c = &mut *$tx;
        let out = $body?;
        if $commit {
            if $announce {
                $crate::store::backend::ChangeQueries::record_change(&mut *$tx).await?;
            }
            $tx.commit().await?;
        } else {
            $tx.rollback().await?;
        }
        Ok::<_, $crate::store::StoreError>(out)
    }};
}

/// [`in_transaction!`] committed, then every cache cleared.
macro_rules! write_db {
    ($store:expr, |$c:ident| $body:expr) => {{
        let out = in_transaction!($store, true, |$c| $body)?;
        $store.invalidate_caches();
        Ok::<_, $crate::store::StoreError>(out)
    }};
}

mod access_keys;
mod apply;
mod backend;
mod changes;
mod creators;
mod credentials;
mod error;
mod identities;
mod journal;
mod model;
mod oidc;
pub mod password;
mod policies;
mod postgres;
mod roles;
pub mod secrets;
mod sessions;
mod sql;
mod sqlite;
mod sts;
mod tokens;
mod validate;
pub mod werkzeug;

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mlgate_policy::NamedPolicy;
use moka::future::Cache;

pub use apply::{
    ApplyAccount, ApplyGrant, ApplyGroup, ApplyItem, ApplyPlan, ApplyPolicy, ApplyReport,
    ApplyUser, GRANT_POLICY_PREFIX, GrantSubject,
};
pub use changes::{POSTGRES_POLL, SQLITE_POLL};
pub use credentials::{new_access_key_id, new_secret_access_key, new_session_token, token_digest};
use error::io_err;
pub use error::{StoreError, StoreResult};
pub use journal::{Actor, AdminChange};
pub use model::{
    AccessKeyRecord, AccountRecord, Change, GroupRecord, KeyOwner, KeyOwnerRef, LoginState,
    NewStsSession, PolicyRecord, PolicySource, RoleRecord, SessionOwner, SessionRecord,
    StsSessionRecord, TokenRecord, UserRecord,
};
pub use oidc::LOGIN_TTL_SECS;
use policies::PolicyKey;
pub use policies::{AttachTarget, check_policy, same_document};
pub use postgres::{ACQUIRE_TIMEOUT, PgLocation, StoreLocationError};
pub use roles::{
    DEFAULT_MAX_SESSION_SECONDS, MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, check_trust_policy,
};
pub use sessions::{SessionEnded, SessionLimits, TOUCH_INTERVAL};
pub use sqlite::DB_FILE;
pub use validate::{
    validate_account_id, validate_account_name, validate_group_name, validate_policy_name,
    validate_role_name, validate_tag, validate_user_name,
};

/// The longest the store's caches may keep an entry: a backstop behind the change counter (see
/// the module documentation), e.g. for a load that was in flight when a change arrived.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(2);

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
    /// Where the database is.
    pub database: Database,
    /// Whether opening waits (retrying with backoff, logging each failure) while the database
    /// cannot be reached, instead of failing at once: what a server wants, not the admin CLI.
    pub wait_for_database: bool,
}

/// The database behind the store.
#[derive(Clone, Debug, Default)]
pub enum Database {
    /// `<data-dir>/mlgate.db`, embedded: one server (and the admin CLI) on one machine.
    #[default]
    Sqlite,
    /// A PostgreSQL database, shared by any number of replicas.
    Postgres(PgLocation),
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            default_account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            default_account_name: DEFAULT_ACCOUNT_NAME.to_owned(),
            cache_ttl: MAX_CACHE_TTL,
            database: Database::Sqlite,
            wait_for_database: false,
        }
    }
}

/// Handle to the store. Cheap to clone; all clones share the backend and the caches.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Who the changes made through this handle are journaled as (`journal.rs`).
    actor: Actor,
}

/// The database behind a [`Store`] (see the module documentation for why an enum).
pub(crate) enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

struct Inner {
    backend: Backend,
    data_dir: PathBuf,
    config: StoreConfig,
    accounts: Cache<String, Option<String>>,
    users_by_name: Cache<(String, String), Option<Arc<UserRecord>>>,
    users_by_id: Cache<String, Option<Arc<UserRecord>>>,
    policies: Cache<PolicyKey, Arc<[NamedPolicy]>>,
    tokens: Cache<String, Option<Arc<TokenRecord>>>,
    sessions: Cache<String, Option<Arc<SessionRecord>>>,
    /// Resource ARN → creator name (`None`: none recorded); see `creators.rs`.
    creators: Cache<String, Option<String>>,
    /// Number of hot-path loads that went to the database (cache misses); for tests and metrics.
    loads: AtomicU64,
    /// Whether the database answered the last time it was asked (for a readiness probe).
    ready: AtomicBool,
    /// What else to clear when another process changed the store (caches kept outside it).
    on_change: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
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

impl Store {
    /// Opens (creating if needed) the store in `data_dir` with the default configuration: the
    /// data directory is created with mode 0700 and the database file with mode 0600.
    pub async fn open(data_dir: &Path) -> StoreResult<Store> {
        Store::open_with(data_dir, StoreConfig::default()).await
    }

    /// Opens the store with an explicit configuration (database, default account, cache TTL).
    /// `data_dir` is created either way: it holds the master key and the audit log too.
    pub async fn open_with(data_dir: &Path, config: StoreConfig) -> StoreResult<Store> {
        validate_account_id(&config.default_account_id)?;
        validate_account_name(&config.default_account_name)?;
        prepare_data_dir(data_dir)?;
        let backend = match &config.database {
            Database::Sqlite => Backend::Sqlite(sqlite::Sqlite::open(data_dir).await?),
            Database::Postgres(location) => {
                let mut delay = Duration::from_millis(500);
                loop {
                    match postgres::Postgres::open(location).await {
                        Ok(db) => break Backend::Postgres(db),
                        Err(e) if config.wait_for_database && e.is_unreachable() => {
                            tracing::warn!(
                                store = %location.describe(),
                                error = %e,
                                retry_in = ?delay,
                                "the PostgreSQL store cannot be reached; retrying"
                            );
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        let ttl = config.cache_ttl.min(MAX_CACHE_TTL);
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                data_dir: data_dir.to_owned(),
                accounts: cache(ttl, 1_000),
                users_by_name: cache(ttl, 10_000),
                users_by_id: cache(ttl, 10_000),
                policies: cache(ttl, 10_000),
                tokens: cache(ttl, 10_000),
                sessions: cache(ttl, 10_000),
                creators: cache(ttl, 100_000),
                loads: AtomicU64::new(0),
                ready: AtomicBool::new(true),
                on_change: Mutex::new(Vec::new()),
                config,
            }),
            actor: Actor::os_user(),
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

    /// The data directory the store was opened in (where `master.key` lives too).
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Number of hot-path lookups that missed the cache and went to the database.
    pub fn cache_misses(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// Counts a hot-path load that went to the database.
    fn count_load(&self) {
        self.inner.loads.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the database answered the last time this handle asked it (at open, then at each
    /// change check of [`Store::watch_changes`]).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed)
    }

    /// Registers what to clear, besides the store's own caches, when another process changed
    /// the store (a cache of store records kept elsewhere).
    pub fn on_change(&self, clear: impl Fn() + Send + Sync + 'static) {
        self.on_change_hooks().push(Box::new(clear));
    }

    fn on_change_hooks(&self) -> std::sync::MutexGuard<'_, Vec<Box<dyn Fn() + Send + Sync>>> {
        // A hook that panicked leaves the list intact: keep using it.
        self.inner
            .on_change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
