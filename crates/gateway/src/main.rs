//! `mlgate`: `mlgate serve` runs the gateway; every other subcommand administers the store.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use mlgate::admin;
use mlgate::audit::chain::CHECKPOINT_KEY_PURPOSE;
use mlgate::audit::explain::ExplainArgs;
use mlgate::audit::verify::AuditCommand;
use mlgate::audit::{AuditOptions, AuditOptionsError, AuditSink};
use mlgate::authenticate::jwt::OidcConfigError;
use mlgate::authenticate::sigv4::SigV4Settings;
use mlgate::authenticate::{AuthSettings, Authenticator};
use mlgate::cli::{Cli, Command};
use mlgate::config::{
    GatewaySettings, LogFormat, ServeArgs, default_audit_log, shares_public_socket,
};
use mlgate::error::error_chain;
use mlgate::listen::{
    self, Connections, Drain, ListenLimits, TlsCertificate, TlsError, TrustedProxies,
};
use mlgate::pipeline::{Gateway, GatewaySetupError};
use mlgate::portal::{self, PortalState};
use mlgate::store::secrets::SecretError;
use mlgate::store::{Database, SessionLimits, Store, StoreConfig, StoreError};
use mlgate::telemetry;
use mlgate::telemetry::traces::Traces;
use mlgate_sigv4::ConfigError;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: a request allocates many small, short-lived
/// buffers on several worker threads, where glibc's malloc showed in the profile
/// (docs/benchmarks.md, "Allocator"). Built with `no_thp`: huge pages on its arenas cost
/// ≈ 14 MiB of idle RSS and bought no measurable throughput.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Each command's error, with its causes, as the one line the operator reads.
    let result = match cli.store_config() {
        Err(e) => Err(error_chain(&e)),
        Ok(config) => match cli.command {
            Command::Serve(args) => {
                init_logging(args.log_format);
                serve(&args, &cli.data_dir, config)
                    .await
                    .map_err(|e| error_chain(&e))
            }
            Command::Audit(AuditCommand::Verify(args)) => {
                init_logging(LogFormat::Text);
                mlgate::audit::verify::run(args, &cli.data_dir)
                    .map(|report| println!("{report}"))
                    .map_err(|e| error_chain(&e))
            }
            Command::Audit(AuditCommand::Explain(args)) => {
                init_logging(LogFormat::Text);
                explain(args, &cli.data_dir, config)
                    .await
                    .map(|report| print!("{report}"))
            }
            Command::Admin(command) => {
                init_logging(LogFormat::Text);
                admin::run(command, &cli.data_dir, config)
                    .await
                    .map_err(|e| error_chain(&e))
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            eprintln!("mlgate: {line}");
            ExitCode::FAILURE
        }
    }
}

/// `mlgate audit explain`: opens the store the way admin commands do.
async fn explain(
    args: ExplainArgs,
    data_dir: &Path,
    config: StoreConfig,
) -> Result<String, String> {
    let store = Store::open_with(data_dir, config)
        .await
        .map_err(|e| error_chain(&e))?;
    mlgate::audit::explain::run(args, default_audit_log(data_dir), &store)
        .await
        .map_err(|e| error_chain(&e))
}

/// Why `mlgate serve` could not start or stop cleanly; each variant names the step.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot open the store in {location}")]
    Store {
        location: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot load the master key")]
    MasterKey(#[source] SecretError),
    #[error(transparent)]
    AuditOptions(#[from] AuditOptionsError),
    #[error("cannot open the audit log {}", .path.display())]
    OpenAudit {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot handle SIGHUP")]
    Hangup(#[source] io::Error),
    #[error(transparent)]
    Oidc(#[from] OidcConfigError),
    #[error("SigV4 settings")]
    SigV4(#[source] ConfigError),
    #[error(transparent)]
    Gateway(#[from] GatewaySetupError),
    #[error("--admin-listen {admin} would share the public listener's socket {public}")]
    AdminOnPublicSocket {
        admin: SocketAddr,
        public: SocketAddr,
    },
    #[error("cannot set up the OTLP trace exporter")]
    Traces(#[source] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot set up the metrics")]
    Metrics(#[source] metrics_exporter_prometheus::BuildError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("a shutdown step (the audit log, the last spans) did not finish")]
    ShutdownTask(#[source] tokio::task::JoinError),
    #[error("cannot close the audit log")]
    CloseAudit(#[source] io::Error),
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(args: &ServeArgs, data_dir: &Path, config: StoreConfig) -> Result<(), ServeError> {
    if let Some(admin) = args.admin_listen
        && shares_public_socket(args.listen, admin)
    {
        return Err(ServeError::AdminOnPublicSocket {
            admin,
            public: args.listen,
        });
    }
    let (tls, certificate) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let (acceptor, certificate) = listen::load_tls(cert, key)?;
            certificate.reload_on_change();
            (Some(acceptor), Some(certificate))
        }
        _ => (None, None),
    };
    let location = match &config.database {
        Database::Sqlite => data_dir.display().to_string(),
        Database::Postgres(location) => location.describe(),
    };
    let config = StoreConfig {
        wait_for_database: true,
        ..config
    };
    let store = Store::open_with(data_dir, config)
        .await
        .map_err(|source| ServeError::Store { location, source })?;
    // Other processes' changes (the admin CLI, other replicas) drop this server's caches.
    store.watch_changes();
    // SigV4 secrets are sealed, and audit checkpoints signed, under the master key (env or
    // <data-dir>/master.key).
    let master = mlgate::store::secrets::MasterKey::load_or_create(data_dir)
        .map_err(ServeError::MasterKey)?;
    let audit_path = args.audit_log_path(data_dir);
    let audit = AuditSink::open(
        &audit_path,
        AuditOptions::from_args(args)?,
        master.derive(CHECKPOINT_KEY_PURPOSE),
    )
    .map_err(|source| ServeError::OpenAudit {
        path: audit_path.clone(),
        source,
    })?;
    reload_on_hangup(audit.clone(), certificate)?;
    mlgate::audit::admin_changes::spawn(store.clone(), audit.clone());
    let auth_settings = AuthSettings {
        session: SessionLimits {
            lifetime: args.session_lifetime,
            idle_timeout: args.session_idle_timeout,
        },
        cross_site_cookies: args.cross_site_cookies,
        frame_ancestors: args
            .frame_ancestors
            .clone()
            .map(|f| f.0)
            .unwrap_or_default(),
        ..AuthSettings::default()
    };
    let mut authenticator = Authenticator::new(store.clone(), auth_settings);
    if let Some(path) = &args.oidc_config {
        let config = mlgate::authenticate::jwt::OidcConfig::load(path)?;
        let oidc = std::sync::Arc::new(mlgate::authenticate::jwt::Oidc::new(
            config,
            store.default_account_id(),
        ));
        oidc.warm_up().await;
        authenticator = authenticator.with_oidc(oidc);
    }
    let sigv4 = mlgate::authenticate::sigv4::SigV4Auth::new(
        &SigV4Settings::from(args),
        store.clone(),
        master,
    )
    .map_err(ServeError::SigV4)?;
    authenticator = authenticator.with_sigv4(std::sync::Arc::new(sigv4));
    let portal = portal::router(PortalState::new(authenticator.clone()));
    let (traces, exporter) = match &args.otlp_endpoint {
        Some(endpoint) => {
            let (traces, exporter) =
                telemetry::traces::install(endpoint).map_err(ServeError::Traces)?;
            tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
            (traces, Some(exporter))
        }
        None => (Traces::default(), None),
    };
    let gateway = Gateway::new(
        GatewaySettings::from(args),
        store,
        authenticator,
        portal,
        audit.clone(),
    )?
    .with_traces(traces);
    let drain = Drain {
        delay: args.drain_delay,
        grace: args.shutdown_grace,
        draining: gateway.draining(),
    };
    let connections = Connections {
        tls,
        limits: ListenLimits {
            max_header_bytes: usize::try_from(args.max_header_bytes).unwrap_or(usize::MAX),
            header_read_timeout: args.header_read_timeout,
        },
        proxies: TrustedProxies::new(args.trusted_proxies.clone(), args.forwarded_header),
        proxy_protocol: args.proxy_protocol,
    };

    let metrics = match args.admin_listen {
        Some(_) => Some(telemetry::install().map_err(ServeError::Metrics)?),
        None => None,
    };
    let routers = gateway.into_routers(metrics);
    if let (Some(addr), Some(admin)) = (args.admin_listen, routers.admin) {
        let (listener, addr) = bind(addr).await?;
        tracing::info!(%addr, "mlgate admin listening (/metrics, /healthz, /readyz, /simulate)");
        tokio::spawn(async move {
            // The simulator audits the caller's address.
            let admin = admin.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(error) = axum::serve(listener, admin).await {
                tracing::error!(%error, "the admin listener stopped");
            }
        });
    }
    let (listener, addr) = bind(args.listen).await?;
    let scheme = if connections.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, upstream = %args.upstream, audit = %audit_path.display(), "mlgate listening");
    // The one line scripts wait for; stdout is flushed so a pipe sees it at once.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "mlgate: ready on {scheme}://{addr}");
    let _ = stdout.flush();

    listen::serve(
        listener,
        connections,
        routers.public,
        audit.parser_refusals(),
        listen::shutdown_signal(),
        drain,
    )
    .await;
    if let Some(exporter) = exporter {
        tokio::task::spawn_blocking(move || exporter.shutdown())
            .await
            .map_err(ServeError::ShutdownTask)?;
    }
    tokio::task::spawn_blocking(move || audit.close())
        .await
        .map_err(ServeError::ShutdownTask)?
        .map_err(ServeError::CloseAudit)?;
    Ok(())
}

/// A listening socket on `addr`, and the address it got (port 0 picks one).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let listening = async {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok::<_, io::Error>((listener, local))
    };
    listening
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

/// SIGHUP: the audit log continues in a new file at the same path (logrotate renamed it), and
/// the TLS certificate and key are read again (renewed), both on the one signal.
fn reload_on_hangup(
    audit: AuditSink,
    certificate: Option<TlsCertificate>,
) -> Result<(), ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).map_err(ServeError::Hangup)?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reopening the audit log");
            audit.reopen();
            if let Some(certificate) = &certificate {
                certificate.reload_logged("SIGHUP");
            }
        }
    });
    Ok(())
}
