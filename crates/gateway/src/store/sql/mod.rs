//! The statements of [`super::backend`], written once in the SQL subset both backends run (the
//! schemas in `migrations/sqlite` and `migrations/postgres` have the same tables and columns).
//!
//! Each file holds a macro that implements one `backend` trait for a connection type; a backend
//! invokes [`impl_queries!`] with its connection type and its `sql` function, which turns a
//! statement written with `?` placeholders into that backend's text (SQLite takes it as it is;
//! PostgreSQL numbers the placeholders). A macro rather than generic code: sqlx's executor and
//! type bounds over an unknown database would outweigh the statements. Row → record mapping
//! that needs no query lives beside each macro as plain functions, shared by both backends.

pub(crate) mod changes;
pub(crate) mod creators;
pub(crate) mod identities;
pub(crate) mod journal;
pub(crate) mod policies;
pub(crate) mod roles;
pub(crate) mod sessions;

/// Implements every trait of [`super::backend`] for the connection type `$conn`; `$sql` turns
/// a statement's text (`?` placeholders) into the backend's.
macro_rules! impl_queries {
    ($conn:ty, $sql:path) => {
        $crate::store::sql::changes::change_queries!($conn, $sql);
        $crate::store::sql::creators::creator_queries!($conn, $sql);
        $crate::store::sql::identities::identity_queries!($conn, $sql);
        $crate::store::sql::journal::journal_queries!($conn, $sql);
        $crate::store::sql::policies::policy_queries!($conn, $sql);
        $crate::store::sql::roles::role_queries!($conn, $sql);
        $crate::store::sql::sessions::session_queries!($conn, $sql);
    };
}
pub(crate) use impl_queries;
