//! The administration CLI: `mlgate user|group|policy|token|account …` and `mlgate apply -f FILE`.
//!
//! Every command works on the store (SQLite in the data directory, or PostgreSQL with
//! `--store-url`) and may run while the server runs: every change bumps the store's change
//! counter, and running servers drop their caches when it moves (within a second).
//!
//! Passwords are never taken as command-line arguments (they would show in `ps` and shell
//! history): use `--password-stdin` (one line), `--password-env VAR`, or `--generate-password`
//! (prints a random password once). Tokens are printed once, at creation, on standard output
//! alone (so `TOKEN=$(mlgate token create --user alice)` works); notes go to standard error.

mod apply;
pub(crate) mod grant;
mod import;
mod keys;
pub(crate) mod mlflow_roles;

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use mlgate_policy::{NamedPolicy, PolicyDocument};

use crate::authenticate::token;
use crate::authorize::simulate::{HttpAsked, Simulated, request_headers, simulate, simulate_http};
use crate::config::{GatewaySettings, ServeArgs};
use crate::identity::{AuthMethod, Principal};
use crate::listen::Peer;
use crate::store::secrets::SecretError;
use crate::store::werkzeug::WerkzeugHashError;
use crate::store::{
    self, ApplyReport, AttachTarget, Change, Store, StoreConfig, StoreError, password,
};

pub use apply::{load_plan, parse_plan};
pub use keys::{AccessKeyCommand, RoleCommand};

/// Administration subcommands, mounted by `main.rs` as `mlgate <subcommand>`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Built-in users: create, list, delete, set-password, disable, enable, tag.
    #[command(subcommand)]
    User(UserCommand),
    /// Groups and their members.
    #[command(subcommand)]
    Group(GroupCommand),
    /// IAM policies: put from a file, attach to users and groups, show effective.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// API tokens (MLFLOW_TRACKING_TOKEN): create (shown once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Accounts (12-digit ids that scope users and groups).
    #[command(subcommand)]
    Account(AccountCommand),
    /// SigV4 access keys of users and roles: create (secret shown once), list, (de)activate, delete.
    #[command(subcommand)]
    AccessKey(AccessKeyCommand),
    /// Roles (for sts:AssumeRole): trust policy, maximum session duration, permission policies.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Apply a declarative TOML file of accounts, policies, users and groups (idempotent).
    Apply(ApplyArgs),
    /// Grant a permission level (READ, EDIT, MANAGE, STAGING_MANAGER, PRODUCTION_MANAGER) on
    /// experiments or models by name pattern (docs/permission-levels.md).
    Grant(grant::GrantArgs),
    /// Import users and permissions from another system (idempotent, `--dry-run`).
    #[command(subcommand)]
    Import(import::ImportCommand),
}

/// Where a password comes from. At most one; none means "no password".
#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Generate a random password and print it once on standard output.
    #[arg(long)]
    pub generate_password: bool,
}

/// The account a user or group belongs to.
#[derive(Debug, Args, Default)]
pub struct AccountArg {
    /// Account id (12 digits) or name; default: the default account.
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (without a password source, the user can only use API tokens).
    Create {
        name: String,
        #[command(flatten)]
        account: AccountArg,
        #[command(flatten)]
        password: PasswordSource,
        /// Principal tag KEY=VALUE (repeatable); policies see it as aws:PrincipalTag/KEY.
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_kv)]
        tags: Vec<(String, String)>,
    },
    /// List users.
    List {
        #[command(flatten)]
        account: AccountArg,
        #[arg(long)]
        json: bool,
    },
    /// Delete a user with its memberships, attachments, tokens and sessions.
    Delete {
        name: String,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Set (or with none of the sources, remove) a user's password; ends its browser sessions.
    SetPassword {
        name: String,
        #[command(flatten)]
        account: AccountArg,
        #[command(flatten)]
        password: PasswordSource,
        /// Remove the password instead (the user can then only use API tokens).
        #[arg(long, conflicts_with_all = ["password_stdin", "password_env", "generate_password"])]
        remove: bool,
    },
    /// Disable a user: every credential of it stops working, sessions end.
    Disable {
        name: String,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Enable a disabled user.
    Enable {
        name: String,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Set tags (KEY=VALUE) and remove tags (--remove KEY) of a user.
    Tag {
        name: String,
        #[arg(value_name = "KEY=VALUE", value_parser = parse_kv)]
        set: Vec<(String, String)>,
        #[arg(long = "remove", value_name = "KEY")]
        remove: Vec<String>,
        #[command(flatten)]
        account: AccountArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    Create {
        name: String,
        #[command(flatten)]
        account: AccountArg,
    },
    List {
        #[command(flatten)]
        account: AccountArg,
        #[arg(long)]
        json: bool,
    },
    /// Delete a group (its members stay; its attachments go).
    Delete {
        name: String,
        #[command(flatten)]
        account: AccountArg,
    },
    AddMember {
        group: String,
        user: String,
        #[command(flatten)]
        account: AccountArg,
    },
    RemoveMember {
        group: String,
        user: String,
        #[command(flatten)]
        account: AccountArg,
    },
}

/// A user or a group (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArg {
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

impl TargetArg {
    fn target(&self) -> AttachTarget<'_> {
        match (&self.user, &self.group) {
            (Some(u), _) => AttachTarget::User(u),
            (None, Some(g)) => AttachTarget::Group(g),
            (None, None) => unreachable!("clap requires one of --user/--group"),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create or replace a policy from an IAM JSON file (validated; errors name the statement).
    Put {
        name: String,
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print a policy document and where it is attached.
    Show { name: String },
    /// Delete a policy; an attached one only with --force (which detaches it everywhere).
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
    Attach {
        name: String,
        #[command(flatten)]
        target: TargetArg,
        #[command(flatten)]
        account: AccountArg,
    },
    Detach {
        name: String,
        #[command(flatten)]
        target: TargetArg,
        #[command(flatten)]
        account: AccountArg,
    },
    /// What the server would decide for a user asking an action on a resource, or sending an
    /// HTTP request, and why: the deciding statement, every statement about the action and what
    /// kept each from applying.
    Simulate {
        /// A user, with its policies and its groups'.
        #[arg(long, value_name = "USER",
              required_unless_present_any = ["group", "policy", "role_session"])]
        user: Option<String>,
        /// Instead of a user, a role session (STS) by its access key id (`ASIA...`): the role's
        /// policies narrowed by the session policy, its session tags.
        #[arg(long, value_name = "ACCESS_KEY_ID", conflicts_with_all = ["user", "group", "policy"])]
        role_session: Option<String>,
        /// Instead of a user, an ad-hoc principal in these groups (repeatable)...
        #[arg(long, value_name = "GROUP", conflicts_with = "user")]
        group: Vec<String>,
        /// ...and with these policy documents (repeatable).
        #[arg(long, value_name = "FILE", conflicts_with = "user")]
        policy: Vec<PathBuf>,
        #[command(flatten)]
        account: AccountArg,
        /// `mlflow:GetExperiment`, ...
        #[arg(long, required_unless_present = "method", requires = "resource")]
        action: Option<String>,
        /// The resource ARN (`arn:mlflow:<region>:<account>:experiment/7`, ...).
        #[arg(long, requires = "action")]
        resource: Option<String>,
        #[command(flatten)]
        http: Box<HttpRequestArgs>,
        /// A condition key of the request (`mlflow:ExperimentName=team-a/churn`); repeatable.
        #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        context: Vec<(String, String)>,
        /// The client address the request would come from (`aws:SourceIp`).
        #[arg(long, default_value = "127.0.0.1")]
        source_ip: std::net::IpAddr,
        /// The request would come over TLS (`aws:SecureTransport`).
        #[arg(long)]
        secure_transport: bool,
        #[arg(long)]
        json: bool,
    },
    /// The policies that apply to a user (its own ∪ all its groups'), and through what.
    Effective {
        #[arg(long, value_name = "USER")]
        user: String,
        #[command(flatten)]
        account: AccountArg,
        /// Also print each document.
        #[arg(long)]
        documents: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once on standard output and cannot be shown again.
    Create {
        #[arg(long, value_name = "USER")]
        user: String,
        #[command(flatten)]
        account: AccountArg,
        /// A label to tell tokens apart.
        #[arg(long, default_value = "default")]
        name: String,
        /// Lifetime like 90d, 12h, 30m, 2w, or "never".
        #[arg(long, value_name = "DURATION", default_value = "90d")]
        expires_in: String,
    },
    List {
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        #[command(flatten)]
        account: AccountArg,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (the part after `mlg_`, as `token list` shows it).
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create (or rename) an account.
    Create { id: String, name: String },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The TOML file (see docs/administration.md).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Report what would change without writing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Errors of the admin commands. Never contain a password or token.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot load the master key")]
    MasterKey(#[source] SecretError),
    #[error("{}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: FileError,
    },
}

/// What is wrong inside a file an admin command reads: an apply file, or the basic-auth store
/// an import reads. Names the item, never a password or a line of the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Not TOML of the file's shape: the parser's message, and its line when known.
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Syntax {
        line: Option<usize>,
        message: String,
    },
    /// A file an item names cannot be read.
    #[error("{item}: {}", path.display())]
    Unreadable {
        item: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An item that breaks a rule of the format; `rule` says which.
    #[error("{item}: {rule}")]
    Invalid { item: String, rule: String },
    /// An imported user's password hash in no format mlgate verifies.
    #[error("user {user:?}: password hash")]
    PasswordHash {
        user: String,
        #[source]
        source: WerkzeugHashError,
    },
    /// The store to import cannot be opened or read.
    #[error("cannot read the store")]
    Database(#[source] sqlx::Error),
    #[error("not an MLflow basic-auth store: it has no table {0:?}")]
    NotBasicAuth(&'static str),
}

impl FileError {
    /// A TOML error by its message and line only: toml's own rendering quotes the source line,
    /// which could be a `password = ...` line.
    pub(crate) fn syntax(text: &str, error: &toml::de::Error) -> FileError {
        FileError::Syntax {
            line: error
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            message: error.message().to_owned(),
        }
    }

    pub(crate) fn invalid(item: impl Into<String>, rule: impl ToString) -> FileError {
        FileError::Invalid {
            item: item.into(),
            rule: rule.to_string(),
        }
    }
}

/// Where commands read and write. [`run`] uses the process's stdin/stdout/stderr/environment.
pub struct AdminIo<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub stdin: &'a mut dyn BufRead,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Opens the store (`data_dir` and `config`) and runs the command with the process's standard
/// streams and environment.
pub async fn run(
    cmd: AdminCommand,
    data_dir: &Path,
    config: StoreConfig,
) -> Result<(), AdminError> {
    let store = Store::open_with(data_dir, config).await?;
    run_with(cmd, &store).await
}

/// Runs the command against an already opened store (e.g. one opened with the server's
/// configuration) with the process's standard streams and environment.
pub async fn run_with(cmd: AdminCommand, store: &Store) -> Result<(), AdminError> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let stdin = io::stdin();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut input = stdin.lock();
    let env = |k: &str| std::env::var(k).ok();
    let mut io = AdminIo {
        out: &mut out,
        err: &mut err,
        stdin: &mut input,
        env: &env,
    };
    execute(cmd, store, &mut io).await
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Parses `90d`, `12h`, `30m`, `45s`, `2w` into seconds; `never` is `None`.
pub fn parse_duration(s: &str) -> Result<Option<u64>, AdminError> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let bad = || {
        AdminError::Usage(format!(
            "invalid duration {s:?}: use e.g. 90d, 12h, 30m, 2w or never"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    if secs == 0 {
        return Err(bad());
    }
    Ok(Some(secs))
}

fn io_err(e: io::Error) -> AdminError {
    AdminError::Io {
        path: PathBuf::from("<output>"),
        source: e,
    }
}

fn fmt_time(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn random_password() -> String {
    use base64::Engine;
    let mut buf = [0u8; 18];
    getrandom::fill(&mut buf).expect("OS random number generator");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Reads the password from its source. `Ok(None)`: no source given.
fn read_password(src: &PasswordSource, io: &mut AdminIo<'_>) -> Result<Option<String>, AdminError> {
    if src.password_stdin {
        let mut line = String::new();
        io.stdin.read_line(&mut line).map_err(|e| AdminError::Io {
            path: PathBuf::from("<stdin>"),
            source: e,
        })?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        if pw.is_empty() {
            return Err(AdminError::Usage("no password on standard input".into()));
        }
        return Ok(Some(pw));
    }
    if let Some(var) = &src.password_env {
        return match (io.env)(var) {
            Some(pw) if !pw.is_empty() => Ok(Some(pw)),
            _ => Err(AdminError::Usage(format!(
                "environment variable {var} is not set or empty"
            ))),
        };
    }
    if src.generate_password {
        return Ok(Some(random_password()));
    }
    Ok(None)
}

fn json_out(io: &mut AdminIo<'_>, v: &impl serde::Serialize) -> Result<(), AdminError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| AdminError::Usage(e.to_string()))?;
    writeln!(io.out, "{s}").map_err(io_err)
}

/// Runs one admin command.
pub async fn execute(
    cmd: AdminCommand,
    store: &Store,
    io: &mut AdminIo<'_>,
) -> Result<(), AdminError> {
    match cmd {
        AdminCommand::User(c) => user(c, store, io).await,
        AdminCommand::Group(c) => group(c, store, io).await,
        AdminCommand::Policy(c) => policy(c, store, io).await,
        AdminCommand::Token(c) => token_cmd(c, store, io).await,
        AdminCommand::Account(c) => account(c, store, io).await,
        AdminCommand::AccessKey(c) => keys::access_key(c, store, io).await,
        AdminCommand::Role(c) => keys::role(c, store, io).await,
        AdminCommand::Grant(a) => grant::grant(a, store, io).await,
        AdminCommand::Apply(a) => {
            let plan = load_plan(&a.file, io.env)?;
            let report = if a.dry_run {
                store.apply_dry_run(&plan).await?
            } else {
                store.apply(&plan).await?
            };
            write_items(io, &report).map_err(io_err)?;
            // Roles after the plan, whose policies they attach.
            for (change, name) in keys::apply_roles(&a.file, store, a.dry_run).await? {
                writeln!(io.out, "{change:<9} {:<7} {name}", "role").map_err(io_err)?;
            }
            write_summary(io, &report, a.dry_run).map_err(io_err)
        }
        AdminCommand::Import(c) => import::import(c, store, io).await,
    }
}

/// Each item of an apply, one line: its change, kind and name.
fn write_items(io: &mut AdminIo<'_>, report: &ApplyReport) -> io::Result<()> {
    for item in &report.items {
        writeln!(io.out, "{:<9} {:<7} {}", item.change, item.kind, item.name)?;
    }
    Ok(())
}

/// The last line of an apply: how many items changed how.
fn write_summary(io: &mut AdminIo<'_>, report: &ApplyReport, dry_run: bool) -> io::Result<()> {
    writeln!(
        io.out,
        "{}{} created, {} updated, {} unchanged",
        if dry_run {
            "dry run (nothing written): "
        } else {
            ""
        },
        report.count(Change::Created),
        report.count(Change::Updated),
        report.count(Change::Unchanged),
    )
}

async fn user(c: UserCommand, store: &Store, io: &mut AdminIo<'_>) -> Result<(), AdminError> {
    match c {
        UserCommand::Create {
            name,
            account,
            password,
            tags,
        } => {
            let pw = read_password(&password, io)?;
            let hash = match &pw {
                Some(p) => Some(password::hash_async(p.clone()).await?),
                None => None,
            };
            let tags: BTreeMap<String, String> = tags.into_iter().collect();
            let u = store
                .create_user(account.account.as_deref(), &name, hash, tags)
                .await?;
            writeln!(io.err, "created user {}", u.arn()).map_err(io_err)?;
            if password.generate_password
                && let Some(p) = pw
            {
                writeln!(io.out, "{p}").map_err(io_err)?;
                writeln!(io.err, "the generated password above is shown only once")
                    .map_err(io_err)?;
            } else if pw.is_none() {
                writeln!(
                    io.err,
                    "no password set: the user can sign in only with API tokens (see `mlgate user set-password`)"
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        UserCommand::List { account, json } => {
            let users = store.list_users(account.account.as_deref()).await?;
            if json {
                let v: Vec<serde_json::Value> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "arn": u.arn(), "account": u.account_id, "name": u.name,
                            "groups": u.groups, "tags": u.tags, "disabled": u.disabled,
                            "has_password": u.has_password(), "created_at": fmt_time(u.created_at),
                        })
                    })
                    .collect();
                return json_out(io, &v);
            }
            for u in users {
                let mut flags = Vec::new();
                if u.disabled {
                    flags.push("disabled".to_owned());
                }
                if !u.has_password() {
                    flags.push("no-password".to_owned());
                }
                let tags: Vec<String> = u.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                writeln!(
                    io.out,
                    "{}\t{}\tgroups=[{}]\ttags=[{}]{}",
                    u.account_id,
                    u.name,
                    u.groups.join(","),
                    tags.join(","),
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!("\t{}", flags.join(","))
                    }
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        UserCommand::Delete { name, account } => {
            store.delete_user(account.account.as_deref(), &name).await?;
            writeln!(io.err, "deleted user {name}").map_err(io_err)
        }
        UserCommand::SetPassword {
            name,
            account,
            password,
            remove,
        } => {
            let hash = if remove {
                None
            } else {
                let pw = read_password(&password, io)?.ok_or_else(|| {
                    AdminError::Usage(
                        "give --password-stdin, --password-env VAR or --generate-password (or --remove)"
                            .into(),
                    )
                })?;
                let h = password::hash_async(pw.clone()).await?;
                if password.generate_password {
                    writeln!(io.out, "{pw}").map_err(io_err)?;
                }
                Some(h)
            };
            store
                .set_password(account.account.as_deref(), &name, hash)
                .await?;
            writeln!(
                io.err,
                "{} password of {name}; its browser sessions were ended",
                if remove { "removed the" } else { "set the" }
            )
            .map_err(io_err)
        }
        UserCommand::Disable { name, account } => {
            store
                .set_disabled(account.account.as_deref(), &name, true)
                .await?;
            writeln!(io.err, "disabled user {name}").map_err(io_err)
        }
        UserCommand::Enable { name, account } => {
            store
                .set_disabled(account.account.as_deref(), &name, false)
                .await?;
            writeln!(io.err, "enabled user {name}").map_err(io_err)
        }
        UserCommand::Tag {
            name,
            set,
            remove,
            account,
        } => {
            if set.is_empty() && remove.is_empty() {
                return Err(AdminError::Usage(
                    "give tags as KEY=VALUE and/or --remove KEY".into(),
                ));
            }
            let u = store
                .tag_user(
                    account.account.as_deref(),
                    &name,
                    set.into_iter().collect(),
                    remove,
                )
                .await?;
            let tags: Vec<String> = u.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            writeln!(io.out, "{}\ttags=[{}]", u.name, tags.join(",")).map_err(io_err)
        }
    }
}

async fn group(c: GroupCommand, store: &Store, io: &mut AdminIo<'_>) -> Result<(), AdminError> {
    match c {
        GroupCommand::Create { name, account } => {
            store
                .create_group(account.account.as_deref(), &name)
                .await?;
            writeln!(io.err, "created group {name}").map_err(io_err)
        }
        GroupCommand::List { account, json } => {
            let groups = store.list_groups(account.account.as_deref()).await?;
            if json {
                return json_out(io, &groups);
            }
            for g in groups {
                writeln!(
                    io.out,
                    "{}\t{}\tmembers=[{}]\tpolicies=[{}]",
                    g.account_id,
                    g.name,
                    g.members.join(","),
                    g.policies.join(",")
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        GroupCommand::Delete { name, account } => {
            store
                .delete_group(account.account.as_deref(), &name)
                .await?;
            writeln!(io.err, "deleted group {name}").map_err(io_err)
        }
        GroupCommand::AddMember {
            group,
            user,
            account,
        } => {
            let added = store
                .add_member(account.account.as_deref(), &group, &user)
                .await?;
            writeln!(
                io.err,
                "{user} {} {group}",
                if added { "added to" } else { "was already in" }
            )
            .map_err(io_err)
        }
        GroupCommand::RemoveMember {
            group,
            user,
            account,
        } => {
            let removed = store
                .remove_member(account.account.as_deref(), &group, &user)
                .await?;
            writeln!(
                io.err,
                "{user} {} {group}",
                if removed {
                    "removed from"
                } else {
                    "was not in"
                }
            )
            .map_err(io_err)
        }
    }
}

async fn policy(c: PolicyCommand, store: &Store, io: &mut AdminIo<'_>) -> Result<(), AdminError> {
    match c {
        PolicyCommand::Put { name, file } => {
            let doc = read_file(&file)?;
            let change = store.put_policy(&name, &doc).await?;
            writeln!(io.err, "{change} policy {name}").map_err(io_err)
        }
        PolicyCommand::List { json } => {
            let list = store.list_policies().await?;
            if json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "name": p.name, "attachments": p.attachment_count,
                            "updated_at": fmt_time(p.updated_at),
                        })
                    })
                    .collect();
                return json_out(io, &v);
            }
            for p in list {
                writeln!(
                    io.out,
                    "{}\tattachments={}\tupdated={}",
                    p.name,
                    p.attachment_count,
                    fmt_time(p.updated_at)
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        PolicyCommand::Show { name } => {
            let p = store.get_policy(&name).await?;
            let pretty = serde_json::from_str::<serde_json::Value>(&p.document)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or(p.document.clone());
            writeln!(io.out, "{pretty}").map_err(io_err)?;
            let at = store.policy_attachments(&name).await?;
            if at.is_empty() {
                writeln!(io.err, "# not attached").map_err(io_err)
            } else {
                let list: Vec<String> = at.iter().map(ToString::to_string).collect();
                writeln!(io.err, "# attached to: {}", list.join(", ")).map_err(io_err)
            }
        }
        PolicyCommand::Delete { name, force } => {
            store.delete_policy(&name, force).await?;
            writeln!(io.err, "deleted policy {name}").map_err(io_err)
        }
        PolicyCommand::Attach {
            name,
            target,
            account,
        } => {
            let changed = store
                .attach_policy(&name, account.account.as_deref(), target.target())
                .await?;
            writeln!(
                io.err,
                "policy {name} {} {}",
                if changed {
                    "attached to"
                } else {
                    "was already attached to"
                },
                describe(&target)
            )
            .map_err(io_err)
        }
        PolicyCommand::Detach {
            name,
            target,
            account,
        } => {
            let changed = store
                .detach_policy(&name, account.account.as_deref(), target.target())
                .await?;
            writeln!(
                io.err,
                "policy {name} {} {}",
                if changed {
                    "detached from"
                } else {
                    "was not attached to"
                },
                describe(&target)
            )
            .map_err(io_err)
        }
        PolicyCommand::Simulate {
            user,
            role_session,
            group,
            policy,
            account,
            action,
            resource,
            http,
            context,
            source_ip,
            secure_transport,
            json,
        } => {
            let principal = match (user, role_session) {
                (Some(user), _) => store
                    .get_user(account.account.as_deref(), &user)
                    .await?
                    .principal(AuthMethod::Basic),
                (None, Some(access_key_id)) => {
                    let session = store
                        .sts_session(&access_key_id)
                        .await?
                        .ok_or_else(|| StoreError::not_found("role session", &access_key_id))?;
                    if session.expires_at <= jiff::Timestamp::now().as_second() {
                        return Err(AdminError::Usage(format!(
                            "role session {access_key_id} has expired: the server refuses its requests"
                        )));
                    }
                    session.principal()
                }
                (None, None) => {
                    let account = store.resolve_account(account.account.as_deref()).await?;
                    Principal::simulated(account, group)
                }
            };
            let mut policies = Vec::with_capacity(policy.len());
            for file in policy {
                let text = read_file(&file)?;
                let document = PolicyDocument::parse(&text)
                    .map_err(|e| AdminError::Usage(format!("{}: {e}", file.display())))?;
                policies.push(NamedPolicy {
                    name: file.display().to_string(),
                    document,
                });
            }
            let peer = Peer {
                ip: source_ip,
                secure: secure_transport,
            };
            if let (Some(method), Some(path)) = (&http.method, &http.path) {
                let mut settings = GatewaySettings::from(
                    &ServeArgs::from_environment().map_err(|e| AdminError::Usage(e.to_string()))?,
                );
                settings.upstream = match &http.upstream {
                    Some(upstream) => upstream.clone(),
                    None => http::Uri::from_static(NO_UPSTREAM),
                };
                let asked = HttpAsked {
                    method: method.clone(),
                    target: path,
                    headers: http.headers()?,
                    body: http.body()?,
                    peer,
                    context: &context,
                    policies: &policies,
                };
                let mut simulation = simulate_http(store, &principal, &settings, &asked).await?;
                if http.upstream.is_none()
                    && let Some(refusal) = &mut simulation.refusal
                    && refusal.status == 502
                {
                    refusal.message = format!(
                        "{} (the request names resources only MLflow can resolve: give --upstream)",
                        refusal.message
                    );
                }
                return print_simulation(io, &simulation, json);
            }
            let (Some(action), Some(resource)) = (&action, &resource) else {
                return Err(AdminError::Usage(
                    "give --action and --resource, or --method and --path".into(),
                ));
            };
            let asked = Simulated {
                action,
                resource,
                peer,
                context: &context,
                policies: &policies,
            };
            let simulation = simulate(store, &principal, &asked).await?;
            print_simulation(io, &simulation, json)
        }
        PolicyCommand::Effective {
            user,
            account,
            documents,
        } => {
            let sources = store
                .effective_policy_sources(account.account.as_deref(), &user)
                .await?;
            if sources.is_empty() {
                writeln!(
                    io.err,
                    "no policies apply to {user}: every request is denied"
                )
                .map_err(io_err)?;
            }
            for (name, via) in sources {
                let via: Vec<String> = via.iter().map(ToString::to_string).collect();
                writeln!(io.out, "{name}\tvia {}", via.join(", ")).map_err(io_err)?;
                if documents {
                    let p = store.get_policy(&name).await?;
                    writeln!(io.out, "{}", p.document.trim_end()).map_err(io_err)?;
                }
            }
            Ok(())
        }
    }
}

/// A simulation, as text or (`--json`) JSON.
fn print_simulation(
    io: &mut AdminIo<'_>,
    simulation: &(impl serde::Serialize + std::fmt::Display),
    json: bool,
) -> Result<(), AdminError> {
    if json {
        let text = serde_json::to_string_pretty(simulation)
            .map_err(|e| AdminError::Usage(e.to_string()))?;
        return writeln!(io.out, "{text}").map_err(io_err);
    }
    write!(io.out, "{simulation}").map_err(io_err)
}

/// A file an admin command reads, or the error naming it.
fn read_file(path: &Path) -> Result<String, AdminError> {
    std::fs::read_to_string(path).map_err(|e| AdminError::Io {
        path: path.to_owned(),
        source: e,
    })
}

/// The HTTP form of `policy simulate`: a request as MLflow's client would send it, decided by the
/// server's stages.
#[derive(Debug, Args)]
pub struct HttpRequestArgs {
    /// The request's method (`GET`, `POST`, ...), instead of --action/--resource.
    #[arg(long, conflicts_with_all = ["action", "resource"], requires = "path")]
    pub method: Option<http::Method>,
    /// Its path and query (`/api/2.0/mlflow/runs/get?run_id=...`).
    #[arg(long, requires = "method")]
    pub path: Option<String>,
    /// Its body: JSON text, or `@FILE`.
    #[arg(long, requires = "method")]
    pub body: Option<String>,
    /// A request header (`Content-Type: application/json` is the default with a body);
    /// repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE", requires = "method")]
    pub headers: Vec<String>,
    /// The MLflow server to resolve ids against (a run's experiment, an experiment's name and
    /// tags), as the server does; without it, a request that needs MLflow is refused saying so.
    #[arg(long, value_name = "URL", requires = "method")]
    pub upstream: Option<http::Uri>,
}

impl HttpRequestArgs {
    fn headers(&self) -> Result<http::HeaderMap, AdminError> {
        let mut given = Vec::with_capacity(self.headers.len());
        for header in &self.headers {
            given.push(
                header
                    .split_once(':')
                    .ok_or_else(|| AdminError::Usage(format!("{header:?} is not NAME: VALUE")))?,
            );
        }
        request_headers(self.body.is_some(), given).map_err(AdminError::Usage)
    }

    fn body(&self) -> Result<bytes::Bytes, AdminError> {
        Ok(match self.body.as_deref() {
            None => bytes::Bytes::new(),
            Some(text) => match text.strip_prefix('@') {
                Some(file) => read_file(Path::new(file))?.into(),
                None => bytes::Bytes::from(text.to_owned()),
            },
        })
    }
}

/// Where the simulator resolves ids without `--upstream`: nowhere (port 0 refuses at once),
/// so a request that needs MLflow is refused, and says so.
const NO_UPSTREAM: &str = "http://127.0.0.1:0";

/// `KEY=VALUE`.
pub(crate) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

fn describe(t: &TargetArg) -> String {
    match (&t.user, &t.group) {
        (Some(u), _) => format!("user {u}"),
        (None, Some(g)) => format!("group {g}"),
        _ => String::new(),
    }
}

async fn token_cmd(c: TokenCommand, store: &Store, io: &mut AdminIo<'_>) -> Result<(), AdminError> {
    match c {
        TokenCommand::Create {
            user,
            account,
            name,
            expires_in,
        } => {
            let lifetime = parse_duration(&expires_in)?;
            let expires_at =
                lifetime.map(|s| store::now().saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
            let minted = token::mint();
            let rec = store
                .insert_token(
                    account.account.as_deref(),
                    &user,
                    &minted.id,
                    &name,
                    &minted.secret_sha256,
                    expires_at,
                )
                .await?;
            writeln!(io.out, "{}", minted.token).map_err(io_err)?;
            writeln!(
                io.err,
                "token {} for {}/{} ({}), expires {}; shown only once: store it now \
                 (e.g. export MLFLOW_TRACKING_TOKEN=...)",
                rec.id,
                rec.account_id,
                rec.user_name,
                rec.name,
                rec.expires_at.map_or("never".to_owned(), fmt_time),
            )
            .map_err(io_err)
        }
        TokenCommand::List {
            user,
            account,
            json,
        } => {
            let list = store
                .list_tokens(account.account.as_deref(), user.as_deref())
                .await?;
            if json {
                return json_out(io, &list);
            }
            let now = store::now();
            for t in list {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.is_expired_at(now) {
                    "expired"
                } else {
                    "active"
                };
                writeln!(
                    io.out,
                    "{}\t{}/{}\t{}\t{}\tcreated={}\texpires={}\tlast_used={}",
                    t.id,
                    t.account_id,
                    t.user_name,
                    t.name,
                    state,
                    fmt_time(t.created_at),
                    t.expires_at.map_or("never".to_owned(), fmt_time),
                    t.last_used_at.map_or("never".to_owned(), fmt_time),
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            // Accept the whole token too, but only ever use its id part.
            let id = token::parse(&id).map_or(id.as_str(), |(i, _)| i).to_owned();
            let changed = store.revoke_token(&id).await?;
            writeln!(
                io.err,
                "token {id} {}",
                if changed {
                    "revoked"
                } else {
                    "was already revoked"
                }
            )
            .map_err(io_err)
        }
    }
}

async fn account(c: AccountCommand, store: &Store, io: &mut AdminIo<'_>) -> Result<(), AdminError> {
    match c {
        AccountCommand::Create { id, name } => {
            let change = store.ensure_account(&id, &name).await?;
            writeln!(io.err, "{change} account {id} ({name})").map_err(io_err)
        }
        AccountCommand::List { json } => {
            let list = store.list_accounts().await?;
            if json {
                return json_out(io, &list);
            }
            for a in list {
                let default = if a.id == store.default_account_id() {
                    "\tdefault"
                } else {
                    ""
                };
                writeln!(io.out, "{}\t{}{default}", a.id, a.name).map_err(io_err)?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
