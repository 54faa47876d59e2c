//! `mlgate serve` settings from the command line and the environment. A leaf: the stages read
//! it, it depends on none of them (a stage that needs its own settings struct builds it from
//! [`ServeArgs`]).
//!
//! Every flag of `serve` also reads an `MLGATE_*` environment variable so scripts and CI can
//! drive the gateway without arguments. `docs/configuration.md` lists them.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use clap::{Args, ValueEnum};
use http::Uri;
use ipnet::IpNet;

/// Audit records waiting for the writer, by default, before `--audit-overload` applies.
pub const DEFAULT_AUDIT_QUEUE_CAPACITY: usize = 16_384;

/// Audit lines between two signed checkpoints, by default.
pub const DEFAULT_AUDIT_CHECKPOINT_RECORDS: u64 = 1000;

/// Longest time an audit line waits for a checkpoint, by default (`--audit-checkpoint-interval`).
pub const DEFAULT_AUDIT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// How long a request waits for room in a full audit queue under `--audit-overload block`, by
/// default, before it is refused (503) without being forwarded.
pub const DEFAULT_AUDIT_BLOCK_TIMEOUT: &str = "10s";

/// [`DEFAULT_AUDIT_CHECKPOINT_INTERVAL`] as `--audit-checkpoint-interval` reads it.
fn default_audit_checkpoint_interval() -> &'static str {
    static TEXT: LazyLock<String> =
        LazyLock::new(|| format!("{}s", DEFAULT_AUDIT_CHECKPOINT_INTERVAL.as_secs_f64()));
    &TEXT
}

/// Where the audit log is without `--audit-log`.
pub fn default_audit_log(data_dir: &Path) -> PathBuf {
    data_dir.join("audit.log")
}

/// What a request does when the audit queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum AuditOverload {
    /// Drop the record, count it and write the count into the log (availability first).
    #[default]
    Drop,
    /// Hold room in the queue for the request's record before the request is forwarded,
    /// waiting up to `--audit-block-timeout` (then 503, not forwarded): no request has an
    /// effect without its record, and no record is dropped (completeness first).
    Block,
}

/// The header trusted proxies name the client in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`, with the scheme in `X-Forwarded-Proto` (most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded` (`for=` and `proto=`).
    Forwarded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Public address to listen on.
    #[arg(long, env = "MLGATE_LISTEN", default_value = "127.0.0.1:5000")]
    pub listen: SocketAddr,

    /// Admin address serving `/metrics` (Prometheus), `/healthz` and `/readyz`; off when unset.
    /// It must not be the public address: keep it on a private network.
    #[arg(long, env = "MLGATE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// OpenTelemetry: export a span per request and per stage to this OTLP/HTTP receiver's
    /// base URL (spans go to `<url>/v1/traces`), e.g. `http://collector:4318`; off when unset.
    #[arg(long, env = "MLGATE_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint)]
    pub otlp_endpoint: Option<Uri>,

    /// The MLflow tracking server (http only; it should listen on a private address).
    #[arg(long, env = "MLGATE_UPSTREAM", default_value = "http://127.0.0.1:5001", value_parser = parse_upstream)]
    pub upstream: Uri,

    /// Audit log file (JSON lines), `-` for standard output [default: <data-dir>/audit.log].
    #[arg(long, env = "MLGATE_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,

    /// When the audit writer is behind and its queue is full: `drop` the record (counted in the
    /// log) or `block`: a request waits for room for its record before it is forwarded (nothing
    /// dropped), and is refused with 503 after --audit-block-timeout.
    #[arg(long, env = "MLGATE_AUDIT_OVERLOAD", value_enum, default_value_t = AuditOverload::Drop)]
    pub audit_overload: AuditOverload,

    /// With `--audit-overload block`: how long a request waits for room in the audit queue
    /// before it is refused (503, not forwarded).
    #[arg(long, env = "MLGATE_AUDIT_BLOCK_TIMEOUT", default_value = DEFAULT_AUDIT_BLOCK_TIMEOUT,
          value_parser = parse_duration)]
    pub audit_block_timeout: Duration,

    /// Audit records waiting for the writer before --audit-overload applies.
    #[arg(long, env = "MLGATE_AUDIT_QUEUE_CAPACITY", default_value_t = DEFAULT_AUDIT_QUEUE_CAPACITY,
          value_parser = parse_positive)]
    pub audit_queue_capacity: usize,

    /// Audit lines between two signed checkpoints.
    #[arg(long, env = "MLGATE_AUDIT_CHECKPOINT_RECORDS", default_value_t = DEFAULT_AUDIT_CHECKPOINT_RECORDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_checkpoint_records: u64,

    /// Longest time an audit line waits for a signed checkpoint.
    #[arg(long, env = "MLGATE_AUDIT_CHECKPOINT_INTERVAL",
          default_value = default_audit_checkpoint_interval(), value_parser = parse_duration)]
    pub audit_checkpoint_interval: Duration,

    /// Rotate the audit file once it holds this many bytes (renamed to `<file>.<UTC time>`).
    #[arg(long, env = "MLGATE_AUDIT_MAX_BYTES", value_parser = parse_size)]
    pub audit_max_bytes: Option<u64>,

    /// Region used in resource ARNs and execute-api ARNs.
    #[arg(long, env = "MLGATE_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Account (12 digits) that owns the MLflow resources, used in resource and execute-api ARNs.
    #[arg(long, env = "MLGATE_ACCOUNT", default_value = "111111111111", value_parser = parse_account)]
    pub account: String,

    /// API id in execute-api ARNs (`arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/...`).
    #[arg(long, env = "MLGATE_API_ID", default_value = "mlgate")]
    pub api_id: String,

    /// Stage in execute-api ARNs.
    #[arg(long, env = "MLGATE_STAGE", default_value = "prod")]
    pub stage: String,

    /// PEM certificate chain; serves HTTPS (h2 and http/1.1) when given with --tls-key.
    #[arg(long, env = "MLGATE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "MLGATE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Load balancers and proxies (CIDRs or addresses, comma-separated) whose forwarding headers
    /// name the client; from any other peer they are ignored.
    #[arg(long, env = "MLGATE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<IpNet>,

    /// The header the trusted proxies name the client in; the other one is ignored.
    #[arg(long, env = "MLGATE_FORWARDED_HEADER", value_enum, default_value_t = ForwardedHeader::XForwardedFor)]
    pub forwarded_header: ForwardedHeader,

    /// Connections from --trusted-proxies start with a PROXY protocol v1 or v2 header naming the
    /// client (a TCP load balancer's); a connection from them without one is closed.
    #[arg(long, env = "MLGATE_PROXY_PROTOCOL", requires = "trusted_proxies")]
    pub proxy_protocol: bool,

    /// After SIGTERM, keep accepting connections this long while readiness reports draining
    /// (so the load balancer stops sending new requests first).
    #[arg(long, env = "MLGATE_DRAIN_DELAY", value_parser = parse_duration)]
    pub drain_delay: Option<Duration>,

    /// After SIGTERM (and --drain-delay), how long open requests have to finish before the
    /// process exits anyway.
    #[arg(long, env = "MLGATE_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Largest request body mlgate reads to decide (JSON API bodies); larger ones get 413.
    /// Artifact uploads are streamed and not limited by this.
    #[arg(long, env = "MLGATE_MAX_PARSED_BODY", default_value = "16MiB", value_parser = parse_size)]
    pub max_parsed_body: u64,

    /// Bytes of request bodies mlgate reads and decides at once, across all requests (at least
    /// --max-parsed-body); a body that cannot get its share within 10 s is refused with 503.
    #[arg(long, env = "MLGATE_PARSED_BODY_BUDGET", default_value = "64MiB", value_parser = parse_size)]
    pub parsed_body_budget: u64,

    /// Largest request head (request line and headers) accepted.
    #[arg(long, env = "MLGATE_MAX_HEADER_BYTES", default_value = "64KiB", value_parser = parse_size)]
    pub max_header_bytes: u64,

    /// Time a client has to send the request head.
    #[arg(long, env = "MLGATE_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Longest pause while a client sends a body; for a body mlgate parses, also the time to
    /// send all of it. Slow clients are cut off with 408.
    #[arg(long, env = "MLGATE_BODY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// Time MLflow has to start answering once it has the whole request.
    #[arg(long, env = "MLGATE_UPSTREAM_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,

    /// MLflow runs with workspaces (`mlflow server --enable-workspaces`): every resource's ARN
    /// lies under the request's workspace (`workspace/<ws>/...`), `mlflow:Workspace` is set on
    /// every request, and the `X-MLflow-Workspace` header is checked and passed on. Without it,
    /// a request naming a workspace is refused.
    #[arg(long, env = "MLGATE_MLFLOW_WORKSPACES")]
    pub mlflow_workspaces: bool,

    /// Log format on stderr.
    #[arg(long, env = "MLGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Regions a SigV4 credential scope may name (comma-separated) [default: --region].
    #[arg(long, env = "MLGATE_SIGV4_REGIONS", value_delimiter = ',')]
    pub sigv4_regions: Vec<String>,

    /// Services a SigV4 credential scope may name on the MLflow API (comma-separated). The STS
    /// endpoint (`/_mlgate/sts`) accepts `sts` only.
    #[arg(
        long,
        env = "MLGATE_SIGV4_SERVICES",
        value_delimiter = ',',
        default_value = "execute-api,sagemaker-mlflow"
    )]
    pub sigv4_services: Vec<String>,

    /// Largest difference between a SigV4 request's time and the server clock (at most 1h).
    #[arg(long, env = "MLGATE_SIGV4_CLOCK_SKEW", default_value = "5m", value_parser = parse_duration)]
    pub sigv4_clock_skew: Duration,

    /// OpenID Connect issuers (bearer JWTs, browser sign-in): a TOML file, see docs/oidc.md.
    #[arg(long, env = "MLGATE_OIDC_CONFIG")]
    pub oidc_config: Option<PathBuf>,

    /// Absolute lifetime of a browser session (built-in and OIDC sign-in).
    #[arg(long, env = "MLGATE_SESSION_LIFETIME", default_value = "12h", value_parser = parse_duration)]
    pub session_lifetime: Duration,

    /// A browser session unused for this long ends.
    #[arg(long, env = "MLGATE_SESSION_IDLE_TIMEOUT", default_value = "1h", value_parser = parse_duration)]
    pub session_idle_timeout: Duration,

    /// Embedding: CSP frame-ancestors sources allowed to frame the MLflow UI (space- or
    /// comma-separated, e.g. "https://*.studio.example.com 'self'"). Default: framing refused.
    #[arg(long, env = "MLGATE_FRAME_ANCESTORS", value_parser = parse_frame_ancestors)]
    pub frame_ancestors: Option<FrameAncestors>,

    /// Embedding: send the session cookie as `SameSite=None; Secure` (needs HTTPS) so the UI
    /// works inside a cross-site iframe.
    #[arg(long, env = "MLGATE_CROSS_SITE_COOKIES")]
    pub cross_site_cookies: bool,
}

impl ServeArgs {
    pub fn audit_log_path(&self, data_dir: &Path) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| default_audit_log(data_dir))
    }
}

/// Whether the admin address would be served on the public listener's socket: the same port on
/// the same address, or on every address of one of them. (Port 0 picks a fresh port.)
pub fn shares_public_socket(public: SocketAddr, admin: SocketAddr) -> bool {
    admin.port() == public.port()
        && admin.port() != 0
        && (admin.ip() == public.ip()
            || admin.ip().is_unspecified()
            || public.ip().is_unspecified())
}

impl ServeArgs {
    /// The settings `mlgate serve` would run with given no flags: its defaults and the
    /// `MLGATE_*` variables of this environment (the simulator decides as that server would).
    pub fn from_environment() -> Result<ServeArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        <Serve as clap::Parser>::try_parse_from(["mlgate-serve"]).map(|serve| serve.args)
    }
}

/// The settings the request pipeline needs, resolved from [`ServeArgs`].
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    pub region: String,
    pub account: String,
    pub api_id: String,
    pub stage: String,
    pub max_parsed_body: u64,
    pub parsed_body_budget: u64,
    pub body_timeout: Duration,
    pub upstream: Uri,
    pub upstream_timeout: Duration,
    pub mlflow_workspaces: bool,
}

impl From<&ServeArgs> for GatewaySettings {
    fn from(args: &ServeArgs) -> Self {
        GatewaySettings {
            region: args.region.clone(),
            account: args.account.clone(),
            api_id: args.api_id.clone(),
            stage: args.stage.clone(),
            max_parsed_body: args.max_parsed_body,
            parsed_body_budget: args.parsed_body_budget,
            body_timeout: args.body_timeout,
            upstream: args.upstream.clone(),
            upstream_timeout: args.upstream_timeout,
            mlflow_workspaces: args.mlflow_workspaces,
        }
    }
}

/// Validated CSP `frame-ancestors` sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameAncestors(pub Vec<String>);

/// Checks one `frame-ancestors` source: `'self'`, or a scheme + host (wildcards allowed) with an
/// optional port, e.g. `https://*.studio.example.com`, `https://jupyter.example.com:8443`.
fn valid_frame_source(s: &str) -> bool {
    if s == "'self'" {
        return true;
    }
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*' | b':'))
}

fn parse_frame_ancestors(s: &str) -> Result<FrameAncestors, String> {
    let sources: Vec<String> = s
        .split([' ', ','])
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = sources.iter().find(|x| !valid_frame_source(x)) {
        return Err(format!(
            "{bad:?} is not a frame-ancestors source ('self' or https://host[:port], * allowed in the host)"
        ));
    }
    Ok(FrameAncestors(sources))
}

fn parse_upstream(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(
            "the upstream must be an http:// URL (MLflow listens on a private address)".into(),
        );
    }
    if uri.authority().is_none() {
        return Err("the upstream URL needs a host and port".into());
    }
    // A path prefix would be silently dropped; MLflow's --static-prefix is not supported yet.
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("the upstream URL must not have a path or query".into());
    }
    Ok(uri)
}

fn parse_otlp_endpoint(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err("the OTLP endpoint must be an http:// or https:// URL with a host".into());
    }
    if uri.query().is_some() {
        return Err("the OTLP endpoint must not have a query".into());
    }
    Ok(uri)
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address (`10.1.2.3`).
fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(|network| network.trunc())
        .map_err(|_| format!("not a CIDR or an IP address: {s:?}"))
}

fn parse_positive(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(0) | Err(_) => Err(format!("not a positive number: {s:?}")),
        Ok(n) => Ok(n),
    }
}

fn parse_account(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err("an account id is 12 digits".into())
    }
}

/// `1048576`, `64KiB`, `16MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB`, all binary).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown size unit in {s:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// `30s`, `500ms`, `2m`, `1m 30s` or ISO 8601 (`PT30S`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s.parse().map_err(|e| format!("not a duration: {e}"))?;
    let d = Duration::try_from(d).map_err(|_| format!("a duration must not be negative: {s:?}"))?;
    if d.is_zero() {
        return Err("a duration must be positive".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("2 GB"), Ok(2 << 30));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn the_checkpoint_interval_default_reads_back_as_the_constant() {
        assert_eq!(
            parse_duration(default_audit_checkpoint_interval()),
            Ok(DEFAULT_AUDIT_CHECKPOINT_INTERVAL)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("PT2S"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn upstream_urls() {
        assert!(parse_upstream("http://127.0.0.1:5001").is_ok());
        assert!(parse_upstream("http://127.0.0.1:5001/").is_ok());
        assert!(parse_upstream("https://mlflow:5001").is_err());
        assert!(parse_upstream("http://127.0.0.1:5001/mlflow").is_err());
        assert!(parse_upstream("127.0.0.1:5001").is_err());
    }

    #[test]
    fn networks() {
        assert_eq!(
            parse_network("10.0.0.0/8"),
            Ok("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            parse_network("10.1.2.3/8"),
            Ok("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(
            parse_network(" 10.1.2.3"),
            Ok("10.1.2.3/32".parse().unwrap())
        );
        assert_eq!(parse_network("::1"), Ok("::1/128".parse().unwrap()));
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("lb.example.com").is_err());
        assert!(parse_network("").is_err());
    }

    #[test]
    fn the_admin_address_never_shares_the_public_socket() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(shares_public_socket(
            at("127.0.0.1:5000"),
            at("127.0.0.1:5000")
        ));
        assert!(shares_public_socket(
            at("0.0.0.0:5000"),
            at("127.0.0.1:5000")
        ));
        assert!(shares_public_socket(at("10.0.0.1:5000"), at("[::]:5000")));
        assert!(!shares_public_socket(
            at("0.0.0.0:5000"),
            at("127.0.0.1:9090")
        ));
        assert!(!shares_public_socket(
            at("10.0.0.1:5000"),
            at("127.0.0.1:5000")
        ));
        assert!(!shares_public_socket(at("127.0.0.1:0"), at("127.0.0.1:0")));
    }

    #[test]
    fn accounts() {
        assert!(parse_account("111111111111").is_ok());
        assert!(parse_account("11111111111").is_err());
        assert!(parse_account("11111111111a").is_err());
    }

    #[test]
    fn frame_sources() {
        assert!(valid_frame_source("https://jupyter.example.com:8443"));
        assert!(valid_frame_source("https://*.example.com"));
        assert!(valid_frame_source("'self'"));
        assert!(!valid_frame_source("*"));
        assert!(!valid_frame_source("https://a.example; script-src *"));
        assert!(!valid_frame_source("'unsafe-inline'"));
    }
}
