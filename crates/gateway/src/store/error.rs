//! The store's errors, shared by the backend-independent part and every backend.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

impl StoreError {
    /// Whether the database could not be reached (down, starting, network), as opposed to
    /// refusing what was asked: worth retrying later.
    pub fn is_unreachable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match &**e {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
            // Connection exceptions (08…) and "operator intervention" (57P…: shutting down,
            // starting up).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        }
    }

    pub(crate) fn not_found(kind: &'static str, name: &str) -> StoreError {
        StoreError::NotFound {
            kind,
            name: name.to_owned(),
        }
    }
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

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |e| StoreError::Io {
        path: path.to_owned(),
        source: Arc::new(e),
    }
}
