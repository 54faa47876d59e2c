//! `mlgate import mlflow-basic-auth <basic_auth.db | sqlite:///…>`: an MLflow basic-auth store's
//! users (with their password hashes), admins, roles, assignments and permissions, written
//! through [`Store::apply`] like `mlgate apply` (one transaction, each item reported, a second run
//! changes nothing, `--dry-run` writes nothing). The mapping is [`basic_auth::plan`].

mod basic_auth;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

use super::{AdminError, AdminIo, FileError, io_err, write_items, write_summary};
use crate::store::Store;
use basic_auth::{BasicAuthPermission, BasicAuthRole, BasicAuthRows, BasicAuthUser};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// An MLflow basic-auth store (`mlflow server --app-name basic-auth`), docs/basic-auth.md.
    MlflowBasicAuth(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The store: a `basic_auth.db` file or its SQLAlchemy URL (`sqlite:///basic_auth.db`).
    pub source: String,
    /// Report what would change without writing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// The tables a basic-auth store has (MLflow 3.17's schema).
const TABLES: [&str; 4] = [
    "users",
    "roles",
    "role_permissions",
    "user_role_assignments",
];

pub async fn import(
    command: ImportCommand,
    store: &Store,
    io: &mut AdminIo<'_>,
) -> Result<(), AdminError> {
    let ImportCommand::MlflowBasicAuth(args) = command;
    let path = sqlite_path(&args.source)?;
    let in_file = |source| AdminError::InFile {
        path: path.clone(),
        source,
    };
    let rows = read(&path).await.map_err(in_file)?;
    let groups: BTreeMap<String, Vec<String>> = store
        .list_groups(None)
        .await?
        .into_iter()
        .map(|g| (g.name, g.members))
        .collect();
    let plan = basic_auth::plan(&rows, &groups).map_err(in_file)?;
    let report = match args.dry_run {
        true => store.apply_dry_run(&plan).await?,
        false => store.apply(&plan).await?,
    };
    write_items(io, &report).map_err(io_err)?;
    write_summary(io, &report, args.dry_run).map_err(io_err)
}

/// The file of a SQLite store: a path, or SQLAlchemy's `sqlite:///<path>`.
fn sqlite_path(source: &str) -> Result<PathBuf, AdminError> {
    if let Some(path) = source.strip_prefix("sqlite:///") {
        return Ok(PathBuf::from(path));
    }
    if source.contains("://") {
        return Err(AdminError::Usage(format!(
            "{source:?}: only SQLite stores (a file or sqlite:///<file>) can be imported so far"
        )));
    }
    Ok(PathBuf::from(source))
}

/// Reads the rows of a basic-auth store, read-only. Not a basic-auth store: an error naming
/// the missing table.
async fn read(path: &std::path::Path) -> Result<BasicAuthRows, FileError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let mut c = SqliteConnection::connect_with(&options)
        .await
        .map_err(FileError::Database)?;
    let db = FileError::Database;
    for table in TABLES {
        let found = sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(table)
            .fetch_optional(&mut c)
            .await
            .map_err(db)?;
        if found.is_none() {
            return Err(FileError::NotBasicAuth(table));
        }
    }
    let mut rows = BasicAuthRows::default();
    for r in sqlx::query("SELECT id, username, password_hash, is_admin FROM users ORDER BY id")
        .fetch_all(&mut c)
        .await
        .map_err(db)?
    {
        rows.users.push(BasicAuthUser {
            id: r.try_get("id").map_err(db)?,
            username: r.try_get("username").map_err(db)?,
            password_hash: r.try_get("password_hash").map_err(db)?,
            is_admin: r
                .try_get::<Option<bool>, _>("is_admin")
                .map_err(db)?
                .unwrap_or(false),
        });
    }
    for r in sqlx::query("SELECT id, name, workspace FROM roles ORDER BY id")
        .fetch_all(&mut c)
        .await
        .map_err(db)?
    {
        rows.roles.push(BasicAuthRole {
            id: r.try_get("id").map_err(db)?,
            name: r.try_get("name").map_err(db)?,
            workspace: r.try_get("workspace").map_err(db)?,
        });
    }
    for r in sqlx::query(
        "SELECT role_id, resource_type, resource_pattern, permission FROM role_permissions \
         ORDER BY id",
    )
    .fetch_all(&mut c)
    .await
    .map_err(db)?
    {
        rows.permissions.push(BasicAuthPermission {
            role_id: r.try_get("role_id").map_err(db)?,
            resource_type: r.try_get("resource_type").map_err(db)?,
            resource_pattern: r.try_get("resource_pattern").map_err(db)?,
            permission: r.try_get("permission").map_err(db)?,
        });
    }
    for r in sqlx::query("SELECT user_id, role_id FROM user_role_assignments ORDER BY id")
        .fetch_all(&mut c)
        .await
        .map_err(db)?
    {
        rows.assignments.push((
            r.try_get("user_id").map_err(db)?,
            r.try_get("role_id").map_err(db)?,
        ));
    }
    Ok(rows)
}
