//! `mlgate import mlflow-basic-auth <basic_auth.db | sqlite:///… | postgresql://…>`: an MLflow
//! basic-auth store's
//! users (with their password hashes), admins, roles, assignments and permissions, written
//! through [`Store::apply`] like `mlgate apply` (one transaction, each item reported, a second run
//! changes nothing, `--dry-run` writes nothing). The mapping is [`basic_auth::plan`].

mod basic_auth;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use sqlx::AnyConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, Row};

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
    /// The store: a `basic_auth.db` file or its SQLAlchemy URL (`sqlite:///basic_auth.db`,
    /// `postgresql://user:password@host:5432/db`, with or without a `+driver`).
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
    let source = Source::parse(&args.source)?;
    let in_file = |error| AdminError::InFile {
        path: PathBuf::from(source.shown()),
        source: error,
    };
    let rows = read(&source).await.map_err(in_file)?;
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

/// Where a basic-auth store is, as MLflow's `database_uri` says it.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    /// A SQLite file: a path, or SQLAlchemy's `sqlite:///<path>`.
    Sqlite(PathBuf),
    /// A PostgreSQL database: SQLAlchemy's `postgresql[+driver]://…`, as a libpq URL.
    Postgres(url::Url),
}

impl Source {
    fn parse(source: &str) -> Result<Source, AdminError> {
        if let Some(path) = source.strip_prefix("sqlite:///") {
            return Ok(Source::Sqlite(PathBuf::from(path)));
        }
        let Some((scheme, rest)) = source.split_once("://") else {
            return Ok(Source::Sqlite(PathBuf::from(source)));
        };
        let dialect = scheme.split('+').next().unwrap_or_default();
        match dialect {
            "postgresql" | "postgres" => url::Url::parse(&format!("postgres://{rest}"))
                .map(Source::Postgres)
                .map_err(|e| AdminError::Usage(format!("the PostgreSQL URL: {e}"))),
            _ => Err(AdminError::Usage(format!(
                "{dialect:?} stores cannot be imported: a SQLite file (or sqlite:///<file>) or a \
                 PostgreSQL URL (postgresql://…) can"
            ))),
        }
    }

    /// The store as messages name it: never its password.
    fn shown(&self) -> String {
        match self {
            Source::Sqlite(path) => path.display().to_string(),
            Source::Postgres(url) => {
                let mut shown = url.clone();
                if url.password().is_some() {
                    let _ = shown.set_password(Some("***"));
                }
                shown.to_string()
            }
        }
    }
}

/// Reads the rows of a basic-auth store, read-only. Not a basic-auth store: an error naming
/// the missing table. The queries are the same on both dialects (through sqlx's `Any` driver);
/// booleans are cast to integers, which SQLite stores them as.
async fn read(source: &Source) -> Result<BasicAuthRows, FileError> {
    let db = FileError::Database;
    sqlx::any::install_default_drivers();
    let url = match source {
        Source::Sqlite(path) => SqliteConnectOptions::new()
            .filename(std::path::absolute(path).map_err(|e| db(sqlx::Error::Io(e)))?)
            .read_only(true)
            .create_if_missing(false)
            .to_url_lossy(),
        Source::Postgres(url) => url.clone(),
    };
    let mut c = AnyConnection::connect(url.as_str()).await.map_err(db)?;
    if let Source::Postgres(_) = source {
        c.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            .await
            .map_err(db)?;
    }
    for table in TABLES {
        // A probe both dialects answer: an error only when the table is missing. The table
        // names are the constants above.
        let probe = sqlx::AssertSqlSafe(format!("SELECT 1 FROM {table} WHERE 1 = 0"));
        if c.fetch_optional(probe).await.is_err() {
            return Err(FileError::NotBasicAuth(table));
        }
    }
    let mut rows = BasicAuthRows::default();
    for r in sqlx::query(
        "SELECT id, username, password_hash, CAST(is_admin AS INTEGER) AS is_admin FROM users \
         ORDER BY id",
    )
    .fetch_all(&mut c)
    .await
    .map_err(db)?
    {
        rows.users.push(BasicAuthUser {
            id: r.try_get("id").map_err(db)?,
            username: r.try_get("username").map_err(db)?,
            password_hash: r.try_get("password_hash").map_err(db)?,
            is_admin: r
                .try_get::<Option<i64>, _>("is_admin")
                .map_err(db)?
                .is_some_and(|admin| admin != 0),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_read_as_mlflow_database_uris() {
        let sqlite = |p: &str| Source::Sqlite(PathBuf::from(p));
        assert_eq!(
            Source::parse("basic_auth.db").unwrap(),
            sqlite("basic_auth.db")
        );
        assert_eq!(
            Source::parse("sqlite:////srv/basic_auth.db").unwrap(),
            sqlite("/srv/basic_auth.db")
        );
        for uri in [
            "postgresql://u:secret@db:5432/auth",
            "postgresql+psycopg2://u:secret@db:5432/auth",
            "postgres://u:secret@db:5432/auth",
        ] {
            let source = Source::parse(uri).unwrap();
            let Source::Postgres(url) = &source else {
                panic!("{uri}: {source:?}");
            };
            assert_eq!(
                (url.scheme(), url.host_str(), url.path()),
                ("postgres", Some("db"), "/auth")
            );
            assert_eq!(source.shown(), "postgres://u:***@db:5432/auth");
        }
        for refused in ["mysql+pymysql://u:p@db/auth", "mssql://db/auth"] {
            let e = Source::parse(refused).unwrap_err().to_string();
            assert!(
                e.contains("cannot be imported") && !e.contains(":p@"),
                "{e}"
            );
        }
    }
}
