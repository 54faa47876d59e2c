//! The PostgreSQL backend: one database shared by every replica. Runtime queries only, the
//! schema is `migrations/postgres`; the statements are those of `sql/`, with numbered
//! placeholders.
//!
//! Writes are serialized across replicas by a transaction-scoped advisory lock, as SQLite's
//! `BEGIN IMMEDIATE` does within one file: the store's read-then-write transactions (apply,
//! "create unless it exists") then behave the same on both backends. Writes are administrative
//! and rare; the request path only reads.

#[cfg(test)]
pub(crate) mod testing;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Transaction};

use super::error::{StoreError, StoreResult};

/// The channel the change counter's trigger notifies (`migrations/postgres`).
const CHANGES_CHANNEL: &str = "mlgate_changes";

/// Key of the advisory lock every write transaction takes.
const WRITE_LOCK: i64 = 0x6d6c_6761_7465; // "mlgate"

/// Longest a request waits for a pooled connection: when the database is down, requests that
/// need it are refused (503) within this time instead of hanging.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest one statement may run.
const STATEMENT_TIMEOUT: &str = "5s";

/// Where the PostgreSQL store is: the parsed `--store-url` with the password from a file, if
/// given. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct PgLocation(Box<PgConnectOptions>);

impl std::fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

impl PgLocation {
    /// Parses a `postgres://` (or `postgresql://`) URL; the password comes from `password_file`
    /// when given (its first line), else from the URL. Errors never repeat the URL: it may hold
    /// the password.
    pub fn parse(
        url: &str,
        password_file: Option<&Path>,
    ) -> Result<PgLocation, StoreLocationError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreLocationError::NotPostgres);
        }
        let mut options =
            PgConnectOptions::from_str(url).map_err(|e| StoreLocationError::InvalidUrl {
                reason: url_error(&e),
            })?;
        if let Some(path) = password_file {
            let text = std::fs::read_to_string(path).map_err(|source| {
                StoreLocationError::ReadPasswordFile {
                    path: path.to_owned(),
                    source,
                }
            })?;
            let password = text.lines().next().unwrap_or_default();
            if password.is_empty() {
                return Err(StoreLocationError::EmptyPasswordFile {
                    path: path.to_owned(),
                });
            }
            options = options.password(password);
        }
        Ok(PgLocation(Box::new(
            options
                .application_name("mlgate")
                .options([("statement_timeout", STATEMENT_TIMEOUT)]),
        )))
    }

    /// `host:port/database`, for log lines (no user, no password).
    pub fn describe(&self) -> String {
        let o = &self.0;
        format!(
            "postgres://{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or_default()
        )
    }
}

/// The reason of a URL parse error, without the URL.
fn url_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

/// Why `--store-url` and `--store-password-file` name no usable store. Never holds the URL: it
/// may hold the password.
#[derive(Debug, thiserror::Error)]
pub enum StoreLocationError {
    #[error("--store-url must be a postgres:// or postgresql:// URL")]
    NotPostgres,
    /// `reason` is the parser's complaint about the URL's form, without the URL.
    #[error("--store-url is not a valid PostgreSQL URL: {reason}")]
    InvalidUrl { reason: String },
    #[error("--store-password-file needs --store-url")]
    PasswordFileWithoutUrl,
    #[error("cannot read the store password file {}", .path.display())]
    ReadPasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the store password file {} is empty", .path.display())]
    EmptyPasswordFile { path: PathBuf },
}

/// An open PostgreSQL store.
pub(crate) struct Postgres {
    pool: PgPool,
}

impl Postgres {
    /// Connects and brings the schema up to date (sqlx's migrator takes an advisory lock, so
    /// replicas starting together do not race).
    pub(crate) async fn open(location: &PgLocation) -> StoreResult<Postgres> {
        // One direct connection first: its error says why (refused, authentication, TLS) where
        // the pool's would only say it timed out.
        PgConnection::connect_with(&location.0)
            .await?
            .close()
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with((*location.0).clone())
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(Arc::new(e)))?;
        Ok(Postgres { pool })
    }

    /// A connection from the pool, for reads and single statements.
    pub(crate) async fn connection(&self) -> StoreResult<PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// A write transaction holding the store's write lock until it ends.
    pub(crate) async fn begin_write(&self) -> StoreResult<Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A connection listening for change notifications.
    pub(crate) async fn listen(&self) -> StoreResult<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(listener)
    }
}

/// PostgreSQL numbers its placeholders.
fn sql(text: impl Into<Cow<'static, str>>) -> AssertSqlSafe<Cow<'static, str>> {
    AssertSqlSafe(numbered(text.into()))
}

/// `?` → `$1`, `$2`, … in order. The shared statements hold no `?` anywhere else (no string
/// literal or operator uses one).
fn numbered(text: Cow<'static, str>) -> Cow<'static, str> {
    if !text.contains('?') {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for ch in text.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    Cow::Owned(out)
}

crate::store::sql::impl_queries!(PgConnection, sql);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)".into()),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert!(matches!(numbered("SELECT 1".into()), Cow::Borrowed(_)));
    }

    #[test]
    fn store_urls_are_checked_without_echoing_them() {
        let bad = PgLocation::parse("mysql://u:secret@h/db", None)
            .unwrap_err()
            .to_string();
        assert!(!bad.contains("secret"), "{bad}");
        let bad = PgLocation::parse("postgres://u:secret@h:notaport/db", None)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("not a valid PostgreSQL URL"), "{bad}");
        assert!(!bad.contains("secret"), "{bad}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let ok =
            PgLocation::parse("postgres://u:secret@db.example:6432/mlgate", Some(&file)).unwrap();
        assert_eq!(ok.describe(), "postgres://db.example:6432/mlgate");
        assert!(!format!("{ok:?}").contains("secret"));
        std::fs::write(&file, "").unwrap();
        assert!(PgLocation::parse("postgres://h/db", Some(&file)).is_err());
    }
}
