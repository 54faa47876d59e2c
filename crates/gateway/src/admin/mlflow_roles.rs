//! How MLflow basic-auth's admins, roles and permissions map onto mlgate objects
//! (`docs/basic-auth.md`), pure, for its API (`crate::basic_auth`) and its import: `is_admin` is
//! membership of [`ADMINS_GROUP`]; a role is the group `mlflow-role.<workspace>.<name>`; a role permission or per-user grant is
//! the generated grant policy of `mlgate grant`, attached to the group or user. Ids are numbers
//! derived from the ids of those objects, as MLflow's clients and UI expect integer ids.

use sha2::{Digest, Sha256};

use super::grant::{self, Level, Scope};
use crate::store::GRANT_POLICY_PREFIX;

/// The group whose members basic-auth calls admins.
pub const ADMINS_GROUP: &str = "admins";

/// The policy that makes members of [`ADMINS_GROUP`] admins, attached when mlgate creates the
/// group (an existing group keeps its policies).
pub const ADMINS_POLICY: &str = "mlflow-basic-auth-admins";
pub const ADMINS_DOCUMENT: &str = r#"{"Version": "2012-10-17", "Statement": [{"Sid": "Everything",
"Effect": "Allow", "Action": ["mlflow:*", "execute-api:Invoke"], "Resource": "*"}]}"#;

/// The prefix of the groups that are basic-auth roles.
const ROLE_GROUP_PREFIX: &str = "mlflow-role.";

/// The workspace of MLflow without workspaces; the only one whose roles may hold permissions
/// (generated grants are not scoped to a workspace yet).
pub const DEFAULT_WORKSPACE: &str = "default";

/// The group of the role `name` in `workspace`: one per workspace, as MLflow scopes roles.
pub fn role_group(workspace: &str, name: &str) -> String {
    format!("{ROLE_GROUP_PREFIX}{workspace}.{name}")
}

/// The workspace and name of the role a group is, if it is one.
pub fn role_of_group(group: &str) -> Option<(&str, &str)> {
    let rest = group.strip_prefix(ROLE_GROUP_PREFIX)?;
    rest.split_once('.')
        .filter(|(workspace, name)| !workspace.is_empty() && !name.is_empty())
}

/// A stable integer id for the object named by `parts` (ids of mlgate objects): below 2^53,
/// so that JavaScript reads it exactly.
pub fn numeric_id(parts: &[&str]) -> i64 {
    let mut digest = Sha256::new();
    for part in parts {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    let bytes: [u8; 8] = digest.finalize()[..8].try_into().unwrap_or_default();
    (u64::from_be_bytes(bytes) & ((1 << 53) - 1)) as i64
}

/// A permission MLflow can express that mlgate cannot map (yet).
#[derive(Debug, thiserror::Error)]
pub enum Unmappable {
    #[error("{0:?} is not a permission MLflow defines")]
    Permission(String),
    #[error(
        "resource type {0:?} has no mlgate grant (yet): experiment, registered_model and prompt do"
    )]
    ResourceType(String),
    #[error("{0:?} cannot be a policy name of its own: use a name of [A-Za-z0-9._-]")]
    Pattern(String),
    #[error("{pattern:?}: {reason}")]
    Invalid { pattern: String, reason: String },
}

/// The level of an MLflow permission; `None` for `NO_PERMISSIONS` (nothing to grant).
fn level_of(permission: &str) -> Result<Option<Level>, Unmappable> {
    match permission {
        // USE adds "may invoke" on AI-gateway objects only; on what mlgate grants it reads.
        "READ" | "USE" => Ok(Some(Level::Read)),
        "EDIT" => Ok(Some(Level::Edit)),
        "MANAGE" => Ok(Some(Level::Manage)),
        "NO_PERMISSIONS" => Ok(None),
        "DENY" => Ok(Some(Level::Deny)),
        other => Err(Unmappable::Permission(other.to_owned())),
    }
}

/// The grant scope of an MLflow resource type and pattern.
pub fn scope_of(resource_type: &str, pattern: &str) -> Result<Scope, Unmappable> {
    Ok(match (resource_type, pattern) {
        ("experiment", "*") => Scope::Experiments("*".into()),
        ("experiment", id) => Scope::ExperimentId(id.into()),
        ("registered_model", name) => Scope::Models(name.into()),
        ("prompt", name) => Scope::Prompts(name.into()),
        (other, _) => return Err(Unmappable::ResourceType(other.to_owned())),
    })
}

/// An MLflow permission as mlgate holds it: which generated policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub resource_type: &'static str,
    pub resource_pattern: String,
    /// `READ`, `EDIT`, `MANAGE` or `DENY`.
    pub permission: &'static str,
}

impl Permission {
    /// The permission a generated grant policy (`name`, `document`) stands for, if it is one
    /// MLflow can express: a level of READ, EDIT, MANAGE or DENY on an experiment id, every
    /// experiment, a model or a prompt. The document must be exactly the generated one, so a
    /// policy written by hand under such a name is not mistaken for a grant.
    pub fn of_policy(name: &str, document: &str) -> Option<Permission> {
        let rest = name.strip_prefix(GRANT_POLICY_PREFIX)?;
        let mut words = rest.splitn(3, '.');
        let (level, permission) = match words.next()? {
            "read" => (Level::Read, "READ"),
            "edit" => (Level::Edit, "EDIT"),
            "manage" => (Level::Manage, "MANAGE"),
            "deny" => (Level::Deny, "DENY"),
            _ => return None,
        };
        let (kind, safe) = (words.next()?, words.next()?);
        let pattern = safe.replace('@', "*").replace('+', "?");
        let (resource_type, scope) = match kind {
            "experiments" if pattern == "*" => ("experiment", Scope::Experiments(pattern.clone())),
            "experiment-id" => ("experiment", Scope::ExperimentId(pattern.clone())),
            "models" => ("registered_model", Scope::Models(pattern.clone())),
            "prompts" => ("prompt", Scope::Prompts(pattern.clone())),
            _ => return None,
        };
        let generated = grant::document(level, &scope).ok()?;
        if grant::policy_name(level, &scope) != name
            || !crate::store::same_document(document, &generated.to_string())
        {
            return None;
        }
        Some(Permission {
            resource_type,
            resource_pattern: pattern,
            permission,
        })
    }
}

/// The generated grant policy (name, document) of an MLflow permission; `None` for
/// `NO_PERMISSIONS`. A pattern whose policy name would not say it back exactly is refused.
pub fn grant_policy(
    resource_type: &str,
    pattern: &str,
    permission: &str,
) -> Result<Option<(String, String)>, Unmappable> {
    let scope = scope_of(resource_type, pattern)?;
    let Some(level) = level_of(permission)? else {
        return Ok(None);
    };
    let document = grant::document(level, &scope)
        .map_err(|e| Unmappable::Invalid {
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })?
        .to_string();
    let name = grant::policy_name(level, &scope);
    match Permission::of_policy(&name, &document) {
        Some(p) if p.resource_type == resource_type && p.resource_pattern == pattern => {
            Ok(Some((name, document)))
        }
        _ => Err(Unmappable::Pattern(pattern.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_groups_say_their_workspace_and_name() {
        let group = role_group("default", "data.readers");
        assert_eq!(group, "mlflow-role.default.data.readers");
        assert_eq!(role_of_group(&group), Some(("default", "data.readers")));
        assert_eq!(role_of_group("admins"), None);
        assert_eq!(role_of_group("mlflow-role.default"), None);
    }

    #[test]
    fn numeric_ids_are_stable_and_exact_in_javascript() {
        let id = numeric_id(&["AGPA1", "grant.read.models.m"]);
        assert_eq!(id, numeric_id(&["AGPA1", "grant.read.models.m"]));
        assert_ne!(id, numeric_id(&["AGPA1grant.read.models.m"]));
        assert!((0..1 << 53).contains(&id));
    }

    #[test]
    fn permissions_round_trip_through_their_grant_policy() {
        for (resource_type, pattern, permission) in [
            ("experiment", "*", "READ"),
            ("experiment", "17", "EDIT"),
            ("registered_model", "churn-model_v2", "MANAGE"),
            ("prompt", "*", "READ"),
            ("experiment", "4", "DENY"),
            ("registered_model", "m", "DENY"),
        ] {
            let (name, document) = grant_policy(resource_type, pattern, permission)
                .unwrap()
                .unwrap();
            let back = Permission::of_policy(&name, &document).unwrap();
            assert_eq!(
                (
                    back.resource_type,
                    back.resource_pattern.as_str(),
                    back.permission
                ),
                (resource_type, pattern, permission)
            );
        }
        let (name, document) = grant_policy("experiment", "3", "USE").unwrap().unwrap();
        assert_eq!(
            Permission::of_policy(&name, &document).unwrap().permission,
            "READ"
        );
        assert!(
            grant_policy("prompt", "p", "NO_PERMISSIONS")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn what_cannot_be_said_back_is_refused_or_not_read() {
        let refused = |t, p, l| grant_policy(t, p, l).unwrap_err().to_string();
        assert!(refused("registered_model", "team a", "READ").contains("\"team a\""));
        assert!(refused("scorer", "*", "READ").contains("\"scorer\""));
        assert!(refused("experiment", "1", "OWNER").contains("\"OWNER\""));
        // A name pattern on experiments is an mlgate grant MLflow cannot express.
        let scope = Scope::Experiments("team-a/*".into());
        let document = grant::document(Level::Read, &scope).unwrap().to_string();
        assert!(
            Permission::of_policy(&grant::policy_name(Level::Read, &scope), &document).is_none()
        );
        // A hand-written policy under a grant's name is no grant.
        let allow_all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        assert!(Permission::of_policy("grant.read.models.m", allow_all).is_none());
    }
}
