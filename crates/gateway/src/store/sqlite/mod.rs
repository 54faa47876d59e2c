//! The SQLite backend: one database file in the data directory, in WAL mode with a
//! `busy_timeout`, so the admin CLI can write to it while the server runs. Runtime queries only
//! (no `query!` macros, no `DATABASE_URL`); the schema is `migrations/`.
//!
//! This module and its children are the only place that knows SQLite: the connection pool and
//! its pragmas, how a write transaction starts, and the statements of `sql/` implemented for
//! `SqliteConnection`.

use std::borrow::Cow;
use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool, Transaction};

use super::error::{StoreError, StoreResult, io_err};

/// The database file inside the data directory.
pub const DB_FILE: &str = "mlgate.db";

/// An open SQLite database.
pub(crate) struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    /// Opens (creating if needed) `<data_dir>/mlgate.db` with mode 0600 and brings its schema up
    /// to date.
    pub(crate) async fn open(data_dir: &Path) -> StoreResult<Sqlite> {
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
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(Arc::new(e)))?;
        Ok(Sqlite { pool })
    }

    /// A connection from the pool, for reads and single statements.
    pub(crate) async fn connection(&self) -> StoreResult<PoolConnection<sqlx::Sqlite>> {
        Ok(self.pool.acquire().await?)
    }

    /// A write transaction. IMMEDIATE takes the write lock up front, so a read-then-write
    /// transaction cannot fail with SQLITE_BUSY half-way when another process (the admin CLI)
    /// writes concurrently.
    pub(crate) async fn begin_write(&self) -> StoreResult<Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// SQLite runs the shared statements as they are written.
fn sql(text: impl Into<Cow<'static, str>>) -> AssertSqlSafe<Cow<'static, str>> {
    AssertSqlSafe(text.into())
}

crate::store::sql::impl_queries!(SqliteConnection, sql);
