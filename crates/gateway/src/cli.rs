//! The `mlgate` command line: `serve` (its flags are [`ServeArgs`]) and the admin subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::admin::AdminCommand;
use crate::audit::verify::AuditCommand;
use crate::config::ServeArgs;
use crate::store::{Database, PgLocation, StoreConfig, StoreLocationError};

#[derive(Debug, Parser)]
#[command(
    name = "mlgate",
    version,
    about = "Access control and audit in front of an MLflow tracking server"
)]
pub struct Cli {
    /// Directory of the embedded store (users, groups, policies, tokens, sessions) and the audit log.
    #[arg(
        long,
        env = "MLGATE_DATA_DIR",
        default_value = ".mlgate",
        global = true
    )]
    pub data_dir: PathBuf,

    /// PostgreSQL database holding the store, shared by every replica
    /// (`postgres://user@host:5432/mlgate`) [default: SQLite in the data directory].
    #[arg(long, env = "MLGATE_STORE_URL", global = true)]
    pub store_url: Option<String>,

    /// File whose first line is the PostgreSQL password (keeps it out of the URL and the
    /// process list).
    #[arg(long, env = "MLGATE_STORE_PASSWORD_FILE", global = true)]
    pub store_password_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The store's configuration from `--store-url` and `--store-password-file`.
    pub fn store_config(&self) -> Result<StoreConfig, StoreLocationError> {
        let database = match (&self.store_url, &self.store_password_file) {
            (None, None) => Database::Sqlite,
            (None, Some(_)) => {
                return Err(StoreLocationError::PasswordFileWithoutUrl);
            }
            (Some(url), file) => Database::Postgres(PgLocation::parse(url, file.as_deref())?),
        };
        Ok(StoreConfig {
            database,
            ..StoreConfig::default()
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway in front of an MLflow tracking server.
    Serve(Box<ServeArgs>),
    /// The audit log: verify its hash chain and signed checkpoints.
    #[command(subcommand)]
    Audit(AuditCommand),
    #[command(flatten)]
    Admin(AdminCommand),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::FrameAncestors;

    #[test]
    fn session_and_embedding_flags() {
        let cli = Cli::try_parse_from([
            "mlgate",
            "serve",
            "--session-lifetime",
            "8h",
            "--session-idle-timeout",
            "15m",
            "--frame-ancestors",
            "'self' https://*.studio.example.com",
            "--cross-site-cookies",
            "--oidc-config",
            "/etc/mlgate/oidc.toml",
        ])
        .expect("flags parse");
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(args.session_lifetime, Duration::from_secs(8 * 3600));
        assert_eq!(args.session_idle_timeout, Duration::from_secs(900));
        assert_eq!(
            args.frame_ancestors,
            Some(FrameAncestors(vec![
                "'self'".into(),
                "https://*.studio.example.com".into()
            ]))
        );
        assert!(args.cross_site_cookies);
        assert!(args.oidc_config.is_some());
        assert!(
            Cli::try_parse_from(["mlgate", "serve", "--frame-ancestors", "* 'unsafe-inline'"])
                .is_err()
        );
    }

    #[test]
    fn serve_flags() {
        // Explicit flags win over any MLGATE_* variable the environment may hold.
        let cli = Cli::try_parse_from([
            "mlgate",
            "--data-dir",
            "/srv/mlgate",
            "serve",
            "--listen",
            "0.0.0.0:8080",
            "--max-parsed-body",
            "1MiB",
            "--upstream-timeout",
            "5s",
        ])
        .expect("flags parse");
        let Command::Serve(mut args) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(args.listen, "0.0.0.0:8080".parse().expect("addr"));
        assert_eq!(args.max_parsed_body, 1 << 20);
        assert_eq!(args.upstream_timeout, Duration::from_secs(5));
        args.audit_log = None;
        assert_eq!(
            args.audit_log_path(&cli.data_dir),
            PathBuf::from("/srv/mlgate/audit.log")
        );
        assert!(Cli::try_parse_from(["mlgate", "serve", "--tls-cert", "c.pem"]).is_err());
    }
}
