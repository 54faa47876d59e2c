//! What an MLflow basic-auth store becomes in mlgate (`docs/basic-auth.md`), as an
//! [`ApplyPlan`]: pure, from the rows [`super::read`] found.
//!
//! The import only adds and updates: group members are the current ones plus the store's, grants
//! are added beside the ones already attached, and nothing is removed. Anything it cannot map is an error naming the item, before anything is
//! written.

use std::collections::{BTreeMap, BTreeSet};

use crate::admin::FileError;
use crate::admin::mlflow_roles::{
    ADMINS_DOCUMENT, ADMINS_GROUP, ADMINS_POLICY, DEFAULT_WORKSPACE, grant_policy,
};
use crate::store::werkzeug::WerkzeugHash;
use crate::store::{ApplyGrant, ApplyGroup, ApplyPlan, ApplyPolicy, ApplyUser, GrantSubject};

/// The rows of a basic-auth store.
#[derive(Clone, Debug, Default)]
pub struct BasicAuthRows {
    pub users: Vec<BasicAuthUser>,
    pub roles: Vec<BasicAuthRole>,
    pub permissions: Vec<BasicAuthPermission>,
    /// (user id, role id).
    pub assignments: Vec<(i64, i64)>,
}

#[derive(Clone, Debug)]
pub struct BasicAuthUser {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
}

#[derive(Clone, Debug)]
pub struct BasicAuthRole {
    pub id: i64,
    pub name: String,
    pub workspace: String,
}

#[derive(Clone, Debug)]
pub struct BasicAuthPermission {
    pub role_id: i64,
    pub resource_type: String,
    pub resource_pattern: String,
    pub permission: String,
}

/// The group of a basic-auth role: one per workspace, as MLflow scopes roles.
pub fn role_group(role: &BasicAuthRole) -> String {
    crate::admin::mlflow_roles::role_group(&role.workspace, &role.name)
}

/// MLflow's synthetic role of per-user grants (`__user_<id>__`): its grants go to the user.
fn synthetic_role_user(role: &BasicAuthRole) -> Option<i64> {
    role.name
        .strip_prefix("__user_")?
        .strip_suffix("__")?
        .parse()
        .ok()
}

/// The import's plan. `groups` are mlgate's current groups with their members.
pub fn plan(
    rows: &BasicAuthRows,
    groups: &BTreeMap<String, Vec<String>>,
) -> Result<ApplyPlan, FileError> {
    let mut plan = ApplyPlan {
        grants_add_only: true,
        ..ApplyPlan::default()
    };
    let user_name: BTreeMap<i64, &str> = rows
        .users
        .iter()
        .map(|u| (u.id, u.username.as_str()))
        .collect();
    for user in &rows.users {
        WerkzeugHash::parse(&user.password_hash).map_err(|source| FileError::PasswordHash {
            user: user.username.clone(),
            source,
        })?;
        plan.users.push(ApplyUser {
            name: user.username.clone(),
            imported_hash: Some(user.password_hash.clone()),
            ..ApplyUser::default()
        });
    }

    let admins = rows
        .users
        .iter()
        .filter(|u| u.is_admin)
        .map(|u| &u.username);
    let admins_exist = groups.contains_key(ADMINS_GROUP);
    plan.groups.push(ApplyGroup {
        name: ADMINS_GROUP.into(),
        members: Some(with_current(groups, ADMINS_GROUP, admins)),
        policies: (!admins_exist).then(|| vec![ADMINS_POLICY.to_owned()]),
        ..ApplyGroup::default()
    });
    if !admins_exist {
        plan.policies.push(ApplyPolicy {
            name: ADMINS_POLICY.into(),
            document: ADMINS_DOCUMENT.into(),
        });
    }

    // Each role's grant subject, and its workspace.
    let mut subject_of_role: BTreeMap<i64, (GrantSubject, String, &str)> = BTreeMap::new();
    for role in &rows.roles {
        if let Some(user_id) = synthetic_role_user(role) {
            let name = user_name
                .get(&user_id)
                .ok_or_else(|| missing_user(role, user_id))?;
            subject_of_role.insert(
                role.id,
                (GrantSubject::User, (*name).to_owned(), &role.workspace),
            );
            continue;
        }
        let group = role_group(role);
        let assigned = rows
            .assignments
            .iter()
            .filter(|(_, role_id)| *role_id == role.id)
            .map(|(user_id, _)| {
                user_name
                    .get(user_id)
                    .map(|name| (*name).to_owned())
                    .ok_or_else(|| missing_user(role, *user_id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        plan.groups.push(ApplyGroup {
            name: group.clone(),
            members: Some(with_current(groups, &group, assigned.iter())),
            ..ApplyGroup::default()
        });
        subject_of_role.insert(role.id, (GrantSubject::Group, group, &role.workspace));
    }

    for p in &rows.permissions {
        let (subject, name, workspace) = subject_of_role.get(&p.role_id).ok_or_else(|| {
            FileError::invalid(
                format!("permission {} on role id {}", p.permission, p.role_id),
                "no role has this id",
            )
        })?;
        let item = || {
            format!(
                "permission {} on {} {:?} of {} {name:?}",
                p.permission,
                p.resource_type,
                p.resource_pattern,
                subject.word()
            )
        };
        let Some((policy, document)) =
            grant_policy(&p.resource_type, &p.resource_pattern, &p.permission)
                .map_err(|e| FileError::invalid(item(), e))?
        else {
            continue;
        };
        if *workspace != DEFAULT_WORKSPACE {
            return Err(FileError::invalid(
                item(),
                format_args!(
                    "a role of workspace {workspace:?} cannot hold permissions in mlgate yet: \
                     only roles of {DEFAULT_WORKSPACE:?} can"
                ),
            ));
        }
        plan.grants.push(ApplyGrant {
            subject: *subject,
            account: None,
            name: name.clone(),
            policy: ApplyPolicy {
                name: policy,
                document,
            },
        });
    }
    Ok(plan)
}

/// The current members of `group` plus `added`, sorted and without repeats.
fn with_current<'a>(
    groups: &BTreeMap<String, Vec<String>>,
    group: &str,
    added: impl Iterator<Item = &'a String>,
) -> Vec<String> {
    let mut members: BTreeSet<String> = groups.get(group).into_iter().flatten().cloned().collect();
    members.extend(added.cloned());
    members.into_iter().collect()
}

fn missing_user(role: &BasicAuthRole, user_id: i64) -> FileError {
    FileError::invalid(
        format!("role {:?}", role.name),
        format_args!("user id {user_id} does not exist"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "pbkdf2:sha256:1000$Sl7cqAUMSygDZZcn$3f58184fff665c5aecaf503239f7f407a1b18f3a5f5a00ea8ff18d2a3aac9fbb";

    fn rows() -> BasicAuthRows {
        let user = |id, name: &str, is_admin| BasicAuthUser {
            id,
            username: name.into(),
            password_hash: HASH.into(),
            is_admin,
        };
        let role = |id, name: &str| BasicAuthRole {
            id,
            name: name.into(),
            workspace: "default".into(),
        };
        let permission =
            |role_id, resource_type: &str, pattern: &str, permission: &str| BasicAuthPermission {
                role_id,
                resource_type: resource_type.into(),
                resource_pattern: pattern.into(),
                permission: permission.into(),
            };
        BasicAuthRows {
            users: vec![user(1, "root", true), user(2, "alice", false)],
            roles: vec![role(10, "readers"), role(11, "__user_2__")],
            permissions: vec![
                permission(10, "experiment", "*", "READ"),
                permission(11, "experiment", "7", "EDIT"),
                permission(11, "registered_model", "m", "MANAGE"),
                permission(11, "prompt", "p", "NO_PERMISSIONS"),
            ],
            assignments: vec![(2, 10), (2, 11)],
        }
    }

    #[test]
    fn users_admins_roles_and_grants() {
        let current = BTreeMap::from([(ADMINS_GROUP.to_owned(), vec!["admin".to_owned()])]);
        let plan = plan(&rows(), &current).unwrap();
        let users: Vec<_> = plan.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(users, ["root", "alice"]);
        assert_eq!(plan.users[0].imported_hash.as_deref(), Some(HASH));
        let admins = &plan.groups[0];
        assert_eq!(admins.members.as_deref().unwrap(), ["admin", "root"]);
        assert_eq!(
            admins.policies, None,
            "an existing admins group keeps its policies"
        );
        assert!(plan.policies.is_empty());
        let readers = &plan.groups[1];
        assert_eq!(readers.name, "mlflow-role.default.readers");
        assert_eq!(readers.members.as_deref().unwrap(), ["alice"]);
        assert_eq!(plan.groups.len(), 2, "the synthetic role is no group");
        let grants: Vec<_> = plan
            .grants
            .iter()
            .map(|g| (g.subject, g.name.as_str(), g.policy.name.as_str()))
            .collect();
        assert_eq!(
            grants,
            [
                (
                    GrantSubject::Group,
                    "mlflow-role.default.readers",
                    "grant.read.experiments.@"
                ),
                (GrantSubject::User, "alice", "grant.edit.experiment-id.7"),
                (GrantSubject::User, "alice", "grant.manage.models.m"),
            ]
        );
    }

    #[test]
    fn a_new_admins_group_gets_the_admins_policy() {
        let plan = plan(&rows(), &BTreeMap::new()).unwrap();
        assert_eq!(plan.groups[0].policies.as_deref().unwrap(), [ADMINS_POLICY]);
        assert_eq!(plan.policies[0].name, ADMINS_POLICY);
        assert!(crate::store::check_policy(ADMINS_POLICY, &plan.policies[0].document).is_ok());
    }

    #[test]
    fn what_cannot_be_mapped_is_named() {
        type Corruption = fn(&mut BasicAuthRows);
        let cases: [(Corruption, &str); 6] = [
            (
                |r| r.users[1].password_hash = "md5$a$b".into(),
                "user \"alice\": password hash: method \"md5\"",
            ),
            (
                |r| r.permissions[0].permission = "OWNER".into(),
                "permission OWNER on experiment \"*\" of group \"mlflow-role.default.readers\": \"OWNER\" is not a permission MLflow defines",
            ),
            (
                |r| r.permissions[0].resource_type = "scorer".into(),
                "resource type \"scorer\"",
            ),
            (
                |r| r.permissions[1].resource_pattern = "x".into(),
                "not a number",
            ),
            (|r| r.assignments.push((9, 10)), "user id 9 does not exist"),
            (
                |r| r.roles[0].workspace = "team-a".into(),
                "a role of workspace \"team-a\" cannot hold permissions",
            ),
        ];
        for (break_it, error) in cases {
            let mut rows = rows();
            break_it(&mut rows);
            let e = crate::error::error_chain(&plan(&rows, &BTreeMap::new()).unwrap_err());
            assert!(e.contains(error), "{e}");
        }
    }
}
