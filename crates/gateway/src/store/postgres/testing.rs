//! A throwaway PostgreSQL server for the store tests, started once per test process by
//! `scripts/lib/postgres.sh` (the same helper the e2e fixtures use) and stopped by it when this
//! process exits and the pipe to it closes. Each test gets a database of its own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::PgLocation;

/// Why there is no server when the package is missing (the helper's exit code 3).
const NOT_INSTALLED: &str = "PostgreSQL is not installed (scripts/lib/postgres-deps.sh)";

/// The running test server.
struct Server {
    port: u16,
    /// Kept so that its stdin stays open for the life of the process.
    _helper: Mutex<Child>,
}

fn server() -> Result<&'static Server, String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER.get_or_init(start).as_ref().map_err(Clone::clone)
}

fn start() -> Result<Server, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/lib/postgres.sh");
    let mut helper = Command::new("bash")
        .args([script, "serve", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    let stdout = helper.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if !line.starts_with("ready") {
        let status = helper.wait().map_err(|e| e.to_string())?;
        if status.code() == Some(3) {
            return Err(NOT_INSTALLED.to_owned());
        }
        return Err(format!("{script} did not start PostgreSQL ({status})"));
    }
    Ok(Server {
        port,
        _helper: Mutex::new(helper),
    })
}

/// A new, empty database on the test server; `None` (after saying so) when PostgreSQL is not
/// installed here. Under CI (`CI=true`) a missing PostgreSQL is a failure, never a skip.
pub(crate) async fn fresh_database() -> Option<PgLocation> {
    let server = match server() {
        Ok(s) => s,
        Err(e) if e == NOT_INSTALLED && std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping the PostgreSQL variant: {e}");
            return None;
        }
        Err(e) => panic!("no PostgreSQL for the store tests: {e}"),
    };
    let admin = format!(
        "postgres://mlgate:mlgate@127.0.0.1:{}/postgres",
        server.port
    );
    let mut conn = PgConnection::connect(&admin).await.expect("connect");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = format!("postgres://mlgate:mlgate@127.0.0.1:{}/{name}", server.port);
    Some(PgLocation::parse(&url, None).expect("test URL"))
}
