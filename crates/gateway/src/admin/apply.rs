//! `mlgate apply -f FILE`: the declarative TOML file, turned into a [`crate::store::ApplyPlan`].
//!
//! ```toml
//! [[accounts]]                       # optional; the default account always exists
//! id = "222222222222"
//! name = "data-science"
//!
//! [[policies]]
//! name = "readers"
//! file = "policies/readers.json"     # relative to this file; or:
//! # document = '''{ "Version": "2012-10-17", "Statement": [...] }'''   (JSON text)
//! # [policies.document]              (or a TOML table with the same structure)
//!
//! [[users]]
//! name = "mlflow-reader"
//! account = "111111111111"           # optional: id or name; default account otherwise
//! password_env = "MLGATE_DEMO_PASSWORD"   # or password_file = "...", or password = "..." (discouraged)
//! tags = { team = "research" }       # optional: exactly these tags
//! disabled = false                   # optional
//! policies = []                      # optional: exactly these directly attached policies
//!
//! [[groups]]
//! name = "readers"
//! members = ["mlflow-reader"]        # optional: exactly these members
//! policies = ["readers"]             # optional: exactly these attached policies
//!
//! [[grants]]                         # a permission level, expanded as `mlgate grant` does
//! group = "team-a"                   # or user = "..."; account = "..." optional
//! level = "EDIT"                     # READ, EDIT, MANAGE, STAGING_MANAGER, PRODUCTION_MANAGER
//! prompts = "team-a-*"               # or experiments = "..." or models = "..."
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use clap::ValueEnum;

use super::grant::{self, Level, Scope};
use super::{AdminError, FileError, read_file};
use crate::store::{
    ApplyAccount, ApplyGrant, ApplyGroup, ApplyPlan, ApplyPolicy, ApplyUser, GrantSubject,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    accounts: Vec<FileAccount>,
    #[serde(default)]
    policies: Vec<FilePolicy>,
    #[serde(default)]
    users: Vec<FileUser>,
    #[serde(default)]
    groups: Vec<FileGroup>,
    #[serde(default)]
    grants: Vec<FileGrant>,
    /// `[[roles]]`: applied by `admin::keys::apply_roles` after the plan.
    #[serde(default)]
    #[allow(dead_code)]
    roles: Vec<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccount {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolicy {
    name: String,
    file: Option<PathBuf>,
    document: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    account: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    password: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    disabled: Option<bool>,
    policies: Option<Vec<String>>,
}

impl std::fmt::Debug for FileUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    name: String,
    account: Option<String>,
    members: Option<Vec<String>>,
    policies: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGrant {
    user: Option<String>,
    group: Option<String>,
    account: Option<String>,
    level: String,
    experiments: Option<String>,
    models: Option<String>,
    prompts: Option<String>,
}

impl FileGrant {
    /// The grant with its policy, generated exactly as `mlgate grant` generates it.
    fn into_grant(self) -> Result<ApplyGrant, FileError> {
        let (subject, name) = match (self.user, self.group) {
            (Some(user), None) => (GrantSubject::User, user),
            (None, Some(group)) => (GrantSubject::Group, group),
            _ => {
                return Err(FileError::invalid(
                    "grant",
                    "give exactly one of `user` or `group`",
                ));
            }
        };
        let what = format!("grant to {} {name:?}", subject.word());
        let level = Level::from_str(&self.level, true).map_err(|_| {
            FileError::invalid(&what, format_args!("unknown level {:?}", self.level))
        })?;
        let scope = Scope::from_options(self.experiments, self.models, self.prompts)
            .map_err(|e| FileError::invalid(&what, e))?;
        let document = grant::document(level, &scope).map_err(|e| FileError::invalid(&what, e))?;
        Ok(ApplyGrant {
            subject,
            account: self.account,
            name,
            policy: ApplyPolicy {
                name: grant::policy_name(level, &scope),
                document: document.to_string(),
            },
        })
    }
}

/// Reads and resolves an apply file: policy files are read relative to the file's directory,
/// passwords from the environment (`env`) or their files.
pub fn load_plan(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ApplyPlan, AdminError> {
    let text = read_file(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_plan(&text, base, env).map_err(|source| AdminError::InFile {
        path: path.to_owned(),
        source,
    })
}

/// Parses apply-file text; relative paths are resolved against `base`.
pub fn parse_plan(
    text: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ApplyPlan, FileError> {
    let spec: FileSpec = toml::from_str(text).map_err(|e| FileError::syntax(text, &e))?;
    let mut plan = ApplyPlan {
        accounts: spec
            .accounts
            .into_iter()
            .map(|a| ApplyAccount {
                id: a.id,
                name: a.name,
            })
            .collect(),
        ..ApplyPlan::default()
    };

    for p in spec.policies {
        let item = format!("policy {:?}", p.name);
        let document = match (&p.file, &p.document) {
            (Some(f), None) => {
                let path = base.join(f);
                std::fs::read_to_string(&path).map_err(|source| FileError::Unreadable {
                    item,
                    path,
                    source,
                })?
            }
            (None, Some(toml::Value::String(s))) => s.clone(),
            (None, Some(v @ toml::Value::Table(_))) => {
                serde_json::to_string_pretty(v).map_err(|e| FileError::invalid(item, e))?
            }
            (None, Some(_)) => {
                return Err(FileError::invalid(
                    item,
                    "`document` must be JSON text or a table",
                ));
            }
            _ => {
                return Err(FileError::invalid(
                    item,
                    "give exactly one of `file` or `document`",
                ));
            }
        };
        plan.policies.push(ApplyPolicy {
            name: p.name,
            document,
        });
    }

    for u in spec.users {
        let sources = usize::from(u.password_env.is_some())
            + usize::from(u.password_file.is_some())
            + usize::from(u.password.is_some());
        let item = format!("user {:?}", u.name);
        if sources > 1 {
            return Err(FileError::invalid(
                item,
                "give at most one of password_env, password_file, password",
            ));
        }
        let password = if let Some(var) = &u.password_env {
            match env(var) {
                Some(v) if !v.is_empty() => Some(v),
                _ => {
                    return Err(FileError::invalid(
                        item,
                        format_args!("environment variable {var} is not set or empty"),
                    ));
                }
            }
        } else if let Some(f) = &u.password_file {
            let path = base.join(f);
            let v = std::fs::read_to_string(&path).map_err(|source| FileError::Unreadable {
                item,
                path,
                source,
            })?;
            Some(v.trim_end_matches(['\n', '\r']).to_owned())
        } else {
            u.password.clone()
        };
        plan.users.push(ApplyUser {
            account: u.account,
            name: u.name,
            password,
            tags: u.tags,
            disabled: u.disabled,
            policies: u.policies,
            ..ApplyUser::default()
        });
    }

    plan.groups = spec
        .groups
        .into_iter()
        .map(|g| ApplyGroup {
            account: g.account,
            name: g.name,
            members: g.members,
            policies: g.policies,
        })
        .collect();
    plan.grants = spec
        .grants
        .into_iter()
        .map(FileGrant::into_grant)
        .collect::<Result<_, _>>()?;
    Ok(plan)
}
