//! `mlgate access-key …` and `mlgate role …`, and the `[[roles]]` section of
//! `mlgate apply`.
//!
//! Access key secrets are printed once, on standard output alone, and stored sealed under the
//! master key (`MLGATE_MASTER_KEY`, or `<data-dir>/master.key`, created on first use).
//! `access-key create --format credential-process` prints the JSON that an AWS profile's
//! `credential_process` expects, so `credential_process = cat /path/to/file` works.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;

use super::{AccountArg, AdminError, AdminIo, FileError, fmt_time, io_err, json_out, read_file};
use crate::store::secrets::{MASTER_KEY_ENV, MasterKey};
use crate::store::{Change, DEFAULT_MAX_SESSION_SECONDS, KeyOwnerRef, Store};

/// A user or a role (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct OwnerArg {
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
}

impl OwnerArg {
    fn owner(&self) -> KeyOwnerRef<'_> {
        match (&self.user, &self.role) {
            (Some(u), _) => KeyOwnerRef::User(u),
            (None, Some(r)) => KeyOwnerRef::Role(r),
            (None, None) => unreachable!("clap requires one of --user/--role"),
        }
    }
}

/// Optional owner filter for `list`.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct OwnerFilter {
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    /// `AKIA… SECRET` on one line.
    Text,
    /// `AWS_ACCESS_KEY_ID=…` and `AWS_SECRET_ACCESS_KEY=…` lines (for `export $(…)` or an env file).
    Env,
    /// `{"Version": 1, "AccessKeyId": …, "SecretAccessKey": …}`: what `credential_process` prints.
    CredentialProcess,
}

#[derive(Debug, Subcommand)]
pub enum AccessKeyCommand {
    /// Create an access key for a user or a role; the secret is printed once.
    Create {
        #[command(flatten)]
        owner: OwnerArg,
        #[command(flatten)]
        account: AccountArg,
        #[arg(long, value_enum, default_value_t = KeyFormat::Text)]
        format: KeyFormat,
    },
    /// List access keys (never their secrets).
    List {
        #[command(flatten)]
        owner: OwnerFilter,
        #[command(flatten)]
        account: AccountArg,
        #[arg(long)]
        json: bool,
    },
    /// Stop a key from working (within a second on every running server).
    Deactivate { id: String },
    /// Let a deactivated key work again.
    Activate { id: String },
    /// Delete a key for good.
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a role, or update its trust policy, maximum session duration and description.
    Create {
        name: String,
        /// The trust policy (IAM JSON with Principal): who may assume the role.
        #[arg(long, value_name = "FILE")]
        trust_policy: PathBuf,
        /// Longest session AssumeRole may grant, in seconds (900–43200).
        #[arg(long, default_value_t = DEFAULT_MAX_SESSION_SECONDS)]
        max_session_duration: i64,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        account: AccountArg,
    },
    List {
        #[command(flatten)]
        account: AccountArg,
        #[arg(long)]
        json: bool,
    },
    /// Print a role: ARN, trust policy, attached policies.
    Show {
        name: String,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Delete a role with its attachments, access keys and sessions.
    Delete {
        name: String,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Attach a permission policy to a role.
    Attach {
        role: String,
        policy: String,
        #[command(flatten)]
        account: AccountArg,
    },
    /// Detach a permission policy from a role.
    Detach {
        role: String,
        policy: String,
        #[command(flatten)]
        account: AccountArg,
    },
}

fn master_key(store: &Store, io: &AdminIo<'_>) -> Result<MasterKey, AdminError> {
    if let Some(text) = (io.env)(MASTER_KEY_ENV).filter(|t| !t.trim().is_empty()) {
        return MasterKey::from_base64(&text).map_err(AdminError::MasterKey);
    }
    MasterKey::load_or_create(store.data_dir()).map_err(AdminError::MasterKey)
}

pub async fn access_key(
    c: AccessKeyCommand,
    store: &Store,
    io: &mut AdminIo<'_>,
) -> Result<(), AdminError> {
    match c {
        AccessKeyCommand::Create {
            owner,
            account,
            format,
        } => {
            let master = master_key(store, io)?;
            let (key, secret) = store
                .create_access_key(account.account.as_deref(), owner.owner(), &master)
                .await?;
            match format {
                KeyFormat::Text => writeln!(io.out, "{} {}", key.id, secret.as_str()),
                KeyFormat::Env => writeln!(
                    io.out,
                    "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}",
                    key.id,
                    secret.as_str()
                ),
                KeyFormat::CredentialProcess => writeln!(
                    io.out,
                    "{}",
                    serde_json::json!({
                        "Version": 1,
                        "AccessKeyId": key.id,
                        "SecretAccessKey": secret.as_str(),
                    })
                ),
            }
            .map_err(io_err)?;
            writeln!(
                io.err,
                "created access key {} for {}; the secret is shown only now",
                key.id, key.owner
            )
            .map_err(io_err)
        }
        AccessKeyCommand::List {
            owner,
            account,
            json,
        } => {
            let filter = match (&owner.user, &owner.role) {
                (Some(u), _) => Some(KeyOwnerRef::User(u)),
                (None, Some(r)) => Some(KeyOwnerRef::Role(r)),
                _ => None,
            };
            let keys = store
                .list_access_keys(account.account.as_deref(), filter)
                .await?;
            if json {
                return json_out(io, &keys);
            }
            for k in keys {
                writeln!(
                    io.out,
                    "{}  {:<8}  {}  created {}  last used {}",
                    k.id,
                    if k.active { "active" } else { "inactive" },
                    k.owner,
                    fmt_time(k.created_at),
                    k.last_used_at.map_or_else(|| "never".into(), fmt_time)
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        AccessKeyCommand::Deactivate { id } => set_active(&id, false, store, io).await,
        AccessKeyCommand::Activate { id } => set_active(&id, true, store, io).await,
        AccessKeyCommand::Delete { id } => {
            store.delete_access_key(&id).await?;
            writeln!(io.out, "deleted access key {id}").map_err(io_err)
        }
    }
}

/// `access-key activate|deactivate`.
pub async fn set_active(
    id: &str,
    active: bool,
    store: &Store,
    io: &mut AdminIo<'_>,
) -> Result<(), AdminError> {
    let changed = store.set_access_key_active(id, active).await?;
    let state = if active { "active" } else { "inactive" };
    if changed {
        writeln!(io.out, "access key {id} is now {state}")
    } else {
        writeln!(io.out, "access key {id} was already {state}")
    }
    .map_err(io_err)
}

pub async fn role(c: RoleCommand, store: &Store, io: &mut AdminIo<'_>) -> Result<(), AdminError> {
    match c {
        RoleCommand::Create {
            name,
            trust_policy,
            max_session_duration,
            description,
            account,
        } => {
            let trust = read_file(&trust_policy)?;
            let change = store
                .put_role(
                    account.account.as_deref(),
                    &name,
                    &trust,
                    max_session_duration,
                    &description,
                )
                .await?;
            let role = store.get_role(account.account.as_deref(), &name).await?;
            writeln!(io.out, "{change} role {}", role.arn()).map_err(io_err)
        }
        RoleCommand::List { account, json } => {
            let roles = store.list_roles(account.account.as_deref()).await?;
            if json {
                return json_out(io, &roles);
            }
            for r in roles {
                writeln!(
                    io.out,
                    "{}  max {} s  policies: {}",
                    r.arn(),
                    r.max_session_duration,
                    r.policies.join(", ")
                )
                .map_err(io_err)?;
            }
            Ok(())
        }
        RoleCommand::Show { name, account } => {
            let r = store.get_role(account.account.as_deref(), &name).await?;
            writeln!(
                io.out,
                "{}\nmax session duration: {} s\npolicies: {}\ntrust policy:\n{}",
                r.arn(),
                r.max_session_duration,
                r.policies.join(", "),
                r.trust_policy
            )
            .map_err(io_err)
        }
        RoleCommand::Delete { name, account } => {
            store.delete_role(account.account.as_deref(), &name).await?;
            writeln!(io.out, "deleted role {name}").map_err(io_err)
        }
        RoleCommand::Attach {
            role,
            policy,
            account,
        } => attach(&role, &policy, account.account.as_deref(), true, store, io).await,
        RoleCommand::Detach {
            role,
            policy,
            account,
        } => attach(&role, &policy, account.account.as_deref(), false, store, io).await,
    }
}

/// `role attach|detach ROLE POLICY`.
pub async fn attach(
    role: &str,
    policy: &str,
    account: Option<&str>,
    attach: bool,
    store: &Store,
    io: &mut AdminIo<'_>,
) -> Result<(), AdminError> {
    let changed = store
        .attach_role_policy(account, role, policy, attach)
        .await?;
    let what = match (attach, changed) {
        (true, true) => "attached",
        (true, false) => "was already attached",
        (false, true) => "detached",
        (false, false) => "was not attached",
    };
    writeln!(io.out, "policy {policy} {what} (role {role})").map_err(io_err)
}

// ----- apply: [[roles]] --------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct RolesOnly {
    #[serde(default)]
    roles: Vec<FileRole>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRole {
    name: String,
    account: Option<String>,
    /// The trust policy as a file (relative to the apply file) or as JSON text.
    trust_policy_file: Option<PathBuf>,
    trust_policy: Option<String>,
    max_session_duration: Option<i64>,
    #[serde(default)]
    description: String,
    /// Exactly these attached permission policies.
    #[serde(default)]
    policies: Vec<String>,
}

/// Applies the `[[roles]]` of an apply file after the rest of the plan (policies exist by
/// then): each role is created or updated, and its attachments made exactly `policies`.
/// Returns `(change, name)` per role. Not part of the plan's transaction.
pub async fn apply_roles(
    file: &Path,
    store: &Store,
    dry_run: bool,
) -> Result<Vec<(Change, String)>, AdminError> {
    let text = read_file(file)?;
    let in_file = |source| AdminError::InFile {
        path: file.to_owned(),
        source,
    };
    let spec: RolesOnly =
        toml::from_str(&text).map_err(|e| in_file(FileError::syntax(&text, &e)))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for r in spec.roles {
        let trust = match (&r.trust_policy_file, &r.trust_policy) {
            (Some(f), None) => read_file(&base.join(f))?,
            (None, Some(t)) => t.clone(),
            _ => {
                return Err(in_file(FileError::invalid(
                    format!("role {}", r.name),
                    "give exactly one of trust_policy_file and trust_policy",
                )));
            }
        };
        crate::store::check_trust_policy(&r.name, &trust)?;
        let account = r.account.as_deref();
        let duration = r
            .max_session_duration
            .unwrap_or(DEFAULT_MAX_SESSION_SECONDS);
        if dry_run {
            let existing = store.get_role(account, &r.name).await.ok();
            let change = match existing {
                None => Change::Created,
                Some(e)
                    if e.trust_policy == trust
                        && e.max_session_duration == duration
                        && e.description == r.description
                        && sorted(&e.policies) == sorted(&r.policies) =>
                {
                    Change::Unchanged
                }
                Some(_) => Change::Updated,
            };
            out.push((change, r.name));
            continue;
        }
        let mut change = store
            .put_role(account, &r.name, &trust, duration, &r.description)
            .await?;
        let current = store.get_role(account, &r.name).await?.policies;
        for p in &current {
            if !r.policies.contains(p) {
                store.attach_role_policy(account, &r.name, p, false).await?;
                change = change.max_with(Change::Updated);
            }
        }
        for p in &r.policies {
            if store.attach_role_policy(account, &r.name, p, true).await? {
                change = change.max_with(Change::Updated);
            }
        }
        out.push((change, r.name));
    }
    Ok(out)
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

trait ChangeExt {
    fn max_with(self, other: Change) -> Change;
}

impl ChangeExt for Change {
    fn max_with(self, other: Change) -> Change {
        match (self, other) {
            (Change::Created, _) => Change::Created,
            (Change::Unchanged, o) => o,
            (Change::Updated, _) => Change::Updated,
        }
    }
}
