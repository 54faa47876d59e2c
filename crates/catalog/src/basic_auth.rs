//! The REST API of MLflow's basic-auth app (`mlflow server --app-name basic-auth`,
//! `mlflow/server/auth/routes.py`), which mlgate answers itself (`docs/basic-auth.md`).
//!
//! Apart from the main [`crate::routes`] table: the default MLflow server does not serve these
//! routes (its coverage test would count them as extra), and they never reach MLflow. Each
//! route is served under both `/api/` (the Python client) and `/ajax-api/` (the UI).

use AuthOperation as Op;
use Callers::{Admins, OwnAccount};

/// Who basic-auth lets call a route besides admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callers {
    /// Only admins: in mlgate, whoever a policy allows.
    Admins,
    /// Any signed-in user on their own account; others as [`Callers::Admins`].
    OwnAccount,
}

/// An operation of basic-auth's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthOperation {
    CreateUser,
    GetUser,
    GetCurrentUser,
    ListUsers,
    UpdateUserPassword,
    UpdateUserAdmin,
    DeleteUser,
    ListCurrentUserPermissions,
    ListUserPermissions,
    GrantUserPermission,
    RevokeUserPermission,
    GetUserPermission,
    CreateRole,
    GetRole,
    ListRoles,
    UpdateRole,
    DeleteRole,
    AddRolePermission,
    RemoveRolePermission,
    ListRolePermissions,
    UpdateRolePermission,
    AssignRole,
    UnassignRole,
    ListUserRoles,
    ListRoleUsers,
}

impl AuthOperation {
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateUser => "CreateUser",
            Op::GetUser => "GetUser",
            Op::GetCurrentUser => "GetCurrentUser",
            Op::ListUsers => "ListUsers",
            Op::UpdateUserPassword => "UpdateUserPassword",
            Op::UpdateUserAdmin => "UpdateUserAdmin",
            Op::DeleteUser => "DeleteUser",
            Op::ListCurrentUserPermissions => "ListCurrentUserPermissions",
            Op::ListUserPermissions => "ListUserPermissions",
            Op::GrantUserPermission => "GrantUserPermission",
            Op::RevokeUserPermission => "RevokeUserPermission",
            Op::GetUserPermission => "GetUserPermission",
            Op::CreateRole => "CreateRole",
            Op::GetRole => "GetRole",
            Op::ListRoles => "ListRoles",
            Op::UpdateRole => "UpdateRole",
            Op::DeleteRole => "DeleteRole",
            Op::AddRolePermission => "AddRolePermission",
            Op::RemoveRolePermission => "RemoveRolePermission",
            Op::ListRolePermissions => "ListRolePermissions",
            Op::UpdateRolePermission => "UpdateRolePermission",
            Op::AssignRole => "AssignRole",
            Op::UnassignRole => "UnassignRole",
            Op::ListUserRoles => "ListUserRoles",
            Op::ListRoleUsers => "ListRoleUsers",
        }
    }
}

/// One route of basic-auth's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRoute {
    pub method: &'static str,
    /// The path after `/api/` or `/ajax-api/`.
    pub path: &'static str,
    pub operation: AuthOperation,
    pub callers: Callers,
}

impl AuthRoute {
    /// `mlflow:<Operation>`.
    pub fn action(&self) -> String {
        format!("mlflow:{}", self.operation.name())
    }
}

const fn route(
    method: &'static str,
    path: &'static str,
    operation: AuthOperation,
    callers: Callers,
) -> AuthRoute {
    AuthRoute {
        method,
        path,
        operation,
        callers,
    }
}

/// Every route of basic-auth's API that mlgate answers.
pub const AUTH_ROUTES: &[AuthRoute] = &[
    route("POST", "2.0/mlflow/users/create", Op::CreateUser, Admins),
    route("GET", "2.0/mlflow/users/get", Op::GetUser, OwnAccount),
    route(
        "GET",
        "2.0/mlflow/users/current",
        Op::GetCurrentUser,
        OwnAccount,
    ),
    route("GET", "2.0/mlflow/users/list", Op::ListUsers, Admins),
    route(
        "PATCH",
        "2.0/mlflow/users/update-password",
        Op::UpdateUserPassword,
        OwnAccount,
    ),
    route(
        "PATCH",
        "2.0/mlflow/users/update-admin",
        Op::UpdateUserAdmin,
        Admins,
    ),
    route("DELETE", "2.0/mlflow/users/delete", Op::DeleteUser, Admins),
    route(
        "GET",
        "3.0/mlflow/users/current/permissions",
        Op::ListCurrentUserPermissions,
        OwnAccount,
    ),
    route(
        "GET",
        "3.0/mlflow/users/permissions/list",
        Op::ListUserPermissions,
        OwnAccount,
    ),
    route(
        "POST",
        "3.0/mlflow/users/permissions/grant",
        Op::GrantUserPermission,
        Admins,
    ),
    route(
        "POST",
        "3.0/mlflow/users/permissions/revoke",
        Op::RevokeUserPermission,
        Admins,
    ),
    route(
        "GET",
        "3.0/mlflow/users/permissions/get",
        Op::GetUserPermission,
        OwnAccount,
    ),
    route(
        "GET",
        "3.0/mlflow/users/roles/list",
        Op::ListUserRoles,
        OwnAccount,
    ),
    route("POST", "3.0/mlflow/roles/create", Op::CreateRole, Admins),
    route("GET", "3.0/mlflow/roles/get", Op::GetRole, Admins),
    route("GET", "3.0/mlflow/roles/list", Op::ListRoles, Admins),
    route("PATCH", "3.0/mlflow/roles/update", Op::UpdateRole, Admins),
    route("DELETE", "3.0/mlflow/roles/delete", Op::DeleteRole, Admins),
    route(
        "POST",
        "3.0/mlflow/roles/permissions/add",
        Op::AddRolePermission,
        Admins,
    ),
    route(
        "DELETE",
        "3.0/mlflow/roles/permissions/remove",
        Op::RemoveRolePermission,
        Admins,
    ),
    route(
        "GET",
        "3.0/mlflow/roles/permissions/list",
        Op::ListRolePermissions,
        Admins,
    ),
    route(
        "PATCH",
        "3.0/mlflow/roles/permissions/update",
        Op::UpdateRolePermission,
        Admins,
    ),
    route("POST", "3.0/mlflow/roles/assign", Op::AssignRole, Admins),
    route(
        "DELETE",
        "3.0/mlflow/roles/unassign",
        Op::UnassignRole,
        Admins,
    ),
    route(
        "GET",
        "3.0/mlflow/roles/users/list",
        Op::ListRoleUsers,
        Admins,
    ),
];

/// The basic-auth route of a method and normalized path, if it is one.
pub fn classify_auth(method: &str, normalized_path: &str) -> Option<&'static AuthRoute> {
    let rest = normalized_path
        .strip_prefix("/api/")
        .or_else(|| normalized_path.strip_prefix("/ajax-api/"))?;
    AUTH_ROUTES
        .iter()
        .find(|r| r.method == method && r.path == rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_prefixes_and_only_the_declared_method() {
        for prefix in ["/api/", "/ajax-api/"] {
            let path = format!("{prefix}2.0/mlflow/users/create");
            let r = classify_auth("POST", &path).expect("a basic-auth route");
            assert_eq!(r.action(), "mlflow:CreateUser");
            assert_eq!(r.callers, Admins);
            assert!(classify_auth("GET", &path).is_none());
        }
        assert!(classify_auth("GET", "/2.0/mlflow/users/get").is_none());
        assert!(classify_auth("GET", "/api/2.0/mlflow/users/get/").is_none());
        assert!(classify_auth("GET", "/api/3.0/mlflow/users/get").is_none());
        let roles = classify_auth("GET", "/ajax-api/3.0/mlflow/roles/list").expect("a route");
        assert_eq!(roles.action(), "mlflow:ListRoles");
    }

    #[test]
    fn own_account_routes_are_the_ones_basic_auth_lets_any_user_call_on_themselves() {
        let own: Vec<String> = AUTH_ROUTES
            .iter()
            .filter(|r| r.callers == OwnAccount)
            .map(AuthRoute::action)
            .collect();
        assert_eq!(
            own,
            [
                "mlflow:GetUser",
                "mlflow:GetCurrentUser",
                "mlflow:UpdateUserPassword",
                "mlflow:ListCurrentUserPermissions",
                "mlflow:ListUserPermissions",
                "mlflow:GetUserPermission",
                "mlflow:ListUserRoles",
            ]
        );
    }

    #[test]
    fn no_basic_auth_route_is_an_mlflow_route() {
        for r in AUTH_ROUTES {
            for prefix in ["/api/", "/ajax-api/"] {
                let path = format!("{prefix}{}", r.path);
                assert!(
                    matches!(crate::classify(r.method, &path), crate::Classified::Unknown),
                    "{} {path} is also in the MLflow catalog",
                    r.method
                );
            }
        }
    }
}
