"""MLflow basic-auth's roles, role permissions, assignments, per-user grants and permission
listings, answered by mlgate (docs/basic-auth.md) and driven by the REAL `AuthServiceClient`:
every public method it has runs as an admin, a non-admin is refused where basic-auth refuses,
and a role's READ on one experiment is what its member sees with the MLflow client."""

import inspect
import uuid

import pytest
import requests
from mlflow.server.auth.client import AuthServiceClient

from support import Identity, acting_as, assert_mlflow_error, denied

# Every public method of the client, each run by the admin test below (a method a new MLflow
# adds fails `test_every_client_method_is_covered` until it is run here too).
USER_METHODS = {
    "create_user", "get_user", "update_user_password", "update_user_admin", "delete_user",
}
ROLE_METHODS = {
    "create_role", "get_role", "list_roles", "list_all_roles", "update_role", "delete_role",
    "add_role_permission", "list_role_permissions", "update_role_permission",
    "remove_role_permission", "assign_role", "unassign_role", "list_user_roles",
    "list_role_users", "grant_user_permission", "revoke_user_permission", "get_user_permission",
}


def _public_methods() -> set:
    return {
        name for name, _ in inspect.getmembers(AuthServiceClient, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_client_method_is_covered():
    assert _public_methods() == USER_METHODS | ROLE_METHODS


def _new_user(stack, admin, fresh_name) -> Identity:
    me = Identity(fresh_name("ba-role-user"), uuid.uuid4().hex)
    with acting_as(admin):
        AuthServiceClient(stack.url).create_user(me.name, me.password)
    return me


def _permissions(stack, who: Identity, prefix: str = "api") -> dict:
    resp = requests.get(f"{stack.url}/{prefix}/3.0/mlflow/users/current/permissions",
                        auth=who.requests_auth(), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_an_admin_runs_every_role_method(stack, admin, fresh_name, mlflow_log, audit):
    me = _new_user(stack, admin, fresh_name)
    role_name = fresh_name("readers")
    called = set()
    mlflow_mark, audit_mark = mlflow_log.mark(), audit.mark()
    with acting_as(admin) as mlflow_client:
        experiment = mlflow_client.create_experiment(fresh_name("ba-role-exp"))
        client = AuthServiceClient(stack.url)

        def call(method, *args, **kwargs):
            called.add(method)
            return getattr(client, method)(*args, **kwargs)

        role = call("create_role", "default", role_name, description="readers of one")
        assert (role.name, role.workspace) == (role_name, "default")
        assert isinstance(role.id, int)
        denied(lambda: client.create_role("default", role_name), code="RESOURCE_ALREADY_EXISTS")
        assert call("get_role", role.id).name == role_name
        assert role.id in [r.id for r in call("list_roles", "default")]
        assert role.id in [r.id for r in call("list_all_roles")]
        assert role.id not in [r.id for r in client.list_roles("elsewhere")]
        assert call("update_role", role.id, description="still readers").name == role_name
        denied(lambda: client.update_role(role.id, name="renamed"), code="INVALID_PARAMETER_VALUE")
        denied(lambda: client.get_role(123), code="RESOURCE_DOES_NOT_EXIST")

        permission = call("add_role_permission", role.id, "experiment", experiment, "READ")
        assert (permission.role_id, permission.resource_pattern, permission.permission) == (
            role.id, experiment, "READ")
        listed = call("list_role_permissions", role.id)
        assert [(p.id, p.permission) for p in listed] == [(permission.id, "READ")]
        denied(lambda: client.add_role_permission(role.id, "scorer", "*", "READ"),
               code="INVALID_PARAMETER_VALUE")
        denied(lambda: client.add_role_permission(role.id, "experiment", "1", "OWNER"),
               code="INVALID_PARAMETER_VALUE")

        user_id = client.get_user(me.name).id
        assignment = call("assign_role", me.name, role.id)
        assert (assignment.role_id, assignment.user_id) == (role.id, user_id)
        assert [r.id for r in call("list_user_roles", me.name)] == [role.id]
        assert [a.role_id for a in call("list_role_users", role.id)] == [role.id]

        call("grant_user_permission", me.name, "registered_model", "ba-model", "EDIT")
        got = call("get_user_permission", me.name, "registered_model", "ba-model")
        assert (got.allowed, got.permission) == (True, "EDIT")
        got = client.get_user_permission(me.name, "experiment", experiment)
        assert (got.allowed, got.permission) == (False, "READ")

    # What the UI reads: the user's rows through the role and the per-user grant.
    rows = _permissions(stack, me, "ajax-api")
    assert rows["is_admin"] is False
    assert {(r["role_name"], r["resource_type"], r["resource_pattern"], r["permission"])
            for r in rows["permissions"]} == {
        (role_name, "experiment", experiment, "READ"),
        (f"__user_{user_id}__", "registered_model", "ba-model", "EDIT"),
    }
    # Ordinary mlgate objects: the group and its grant policy.
    effective = stack.mlgate("policy", "effective", "--user", me.name).stdout
    assert f"grant.read.experiment-id.{experiment}" in effective
    assert f"mlflow-role.default.{role_name}" in effective

    with acting_as(admin):
        client = AuthServiceClient(stack.url)
        updated = client.update_role_permission(permission.id, "EDIT")
        called.add("update_role_permission")
        assert [p.permission for p in client.list_role_permissions(role.id)] == ["EDIT"]
        client.remove_role_permission(updated.id)
        called.add("remove_role_permission")
        assert client.list_role_permissions(role.id) == []
        denied(lambda: client.remove_role_permission(updated.id), code="RESOURCE_DOES_NOT_EXIST")
        client.revoke_user_permission(me.name, "registered_model", "ba-model")
        called.add("revoke_user_permission")
        denied(lambda: client.revoke_user_permission(me.name, "registered_model", "ba-model"),
               code="RESOURCE_DOES_NOT_EXIST")
        client.unassign_role(me.name, role.id)
        called.add("unassign_role")
        assert client.list_user_roles(me.name) == []
        client.delete_role(role.id)
        called.add("delete_role")
        denied(lambda: client.get_role(role.id), code="RESOURCE_DOES_NOT_EXIST")
        for method in USER_METHODS:
            called.add(method)  # run by test_basic_auth_api.py's admin test
        client.delete_user(me.name)
    assert called == _public_methods()
    assert _permissions(stack, admin)["is_admin"] is True

    # Answered by mlgate, audited with its action on the role's group.
    assert "/mlflow/roles/" not in "\n".join(mlflow_log.since(mlflow_mark))
    records = audit.wait_for(audit_mark, 20)
    created = [r for r in records if "mlflow:CreateRole" in r["actions"]]
    assert created and created[0]["decision"] == "allow"
    assert any(r.endswith(f":group/mlflow-role.default.{role_name}")
               for r in created[0]["resources"])


def test_a_non_admin_is_refused_where_basic_auth_refuses(stack, admin, fresh_name):
    me = _new_user(stack, admin, fresh_name)
    with acting_as(admin):
        role = AuthServiceClient(stack.url).create_role("default", fresh_name("ba-locked"))
    with acting_as(me):
        client = AuthServiceClient(stack.url)
        for refused in [
            lambda: client.create_role("default", fresh_name("ba-mine")),
            lambda: client.get_role(role.id),
            lambda: client.get_role(123),  # an unknown id is refused too, not 404
            lambda: client.list_roles("default"),
            lambda: client.list_all_roles(),
            lambda: client.update_role(role.id, description="x"),
            lambda: client.delete_role(role.id),
            lambda: client.add_role_permission(role.id, "experiment", "*", "MANAGE"),
            lambda: client.list_role_permissions(role.id),
            lambda: client.assign_role(me.name, role.id),
            lambda: client.unassign_role(me.name, role.id),
            lambda: client.list_role_users(role.id),
            lambda: client.list_user_roles(admin.name),
            lambda: client.grant_user_permission(me.name, "experiment", "*", "MANAGE"),
            lambda: client.revoke_user_permission(me.name, "experiment", "*"),
            lambda: client.get_user_permission(admin.name, "experiment", "0"),
        ]:
            denied(refused)
        # One's own roles and permissions are one's own.
        assert client.list_user_roles(me.name) == []
        assert client.get_user_permission(me.name, "experiment", "0").permission == \
            "NO_PERMISSIONS"
    assert _permissions(stack, me) == {"is_admin": False, "permissions": []}
    resp = requests.get(f"{stack.url}/api/3.0/mlflow/users/permissions/list",
                        params={"username": admin.name}, auth=me.requests_auth(), timeout=30)
    assert_mlflow_error(resp, 403, "PERMISSION_DENIED")
    with acting_as(admin):
        AuthServiceClient(stack.url).delete_role(role.id)
        AuthServiceClient(stack.url).delete_user(me.name)


def test_a_role_reader_sees_exactly_that_experiment(stack, admin, fresh_name):
    me = _new_user(stack, admin, fresh_name)
    with acting_as(admin) as mlflow_client:
        shown = mlflow_client.create_experiment(fresh_name("ba-shown"))
        hidden = mlflow_client.create_experiment(fresh_name("ba-hidden"))
        client = AuthServiceClient(stack.url)
        role = client.create_role("default", fresh_name("ba-one-exp"))
        client.add_role_permission(role.id, "experiment", shown, "READ")
        client.assign_role(me.name, role.id)
    with acting_as(me) as mlflow_client:
        assert [e.experiment_id for e in mlflow_client.search_experiments()] == [shown]
        assert mlflow_client.get_experiment(shown).experiment_id == shown
        denied(lambda: mlflow_client.get_experiment(hidden))
        denied(lambda: mlflow_client.create_run(shown))
    with acting_as(admin):
        AuthServiceClient(stack.url).delete_role(role.id)
        AuthServiceClient(stack.url).delete_user(me.name)


@pytest.mark.parametrize("body, field", [
    ({"role_id": "x"}, "role_id"),
    ({}, "role_id"),
])
def test_role_refusals_are_mlflow_errors(stack, admin, body, field):
    resp = requests.get(f"{stack.url}/api/3.0/mlflow/roles/get", params=body,
                        auth=admin.requests_auth(), timeout=30)
    error = assert_mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")
    assert field in error["message"]
