"""MLflow basic-auth's REST API answered by mlgate (docs/basic-auth.md), driven by the REAL
`AuthServiceClient` of the installed MLflow: an admin (group `admins`) manages users, a user
manages their own account and nothing else, and none of it reaches MLflow."""

import uuid

import requests
from mlflow.server.auth.client import AuthServiceClient

from support import Identity, acting_as, assert_mlflow_error, denied

CURRENT = "2.0/mlflow/users/current"


def _password() -> str:
    return uuid.uuid4().hex


def test_an_admin_runs_every_user_method_of_the_auth_client(
    stack, admin, fresh_name, mlflow_log, audit
):
    name, first, second = fresh_name("ba-user"), _password(), _password()
    mlflow_mark, audit_mark = mlflow_log.mark(), audit.mark()
    with acting_as(admin):
        client = AuthServiceClient(stack.url)
        user = client.create_user(name, first)
        assert (user.username, user.is_admin) == (name, False)
        assert user.id
        denied(lambda: client.create_user(name, first), code="RESOURCE_ALREADY_EXISTS")
        assert client.get_user(name).username == name
        denied(lambda: client.get_user(fresh_name("nobody")), code="RESOURCE_DOES_NOT_EXIST")

        # Admin path of a password change: no current password needed.
        client.update_user_password(name, second)
        client.update_user_admin(name, True)
        assert client.get_user(name).is_admin
        client.update_user_admin(name, False)
        assert not client.get_user(name).is_admin
        denied(lambda: client.delete_user(admin.name), code="BAD_REQUEST")

    # The user is an ordinary mlgate user, signing in with the password the admin set.
    assert name in stack.mlgate("user", "list").stdout
    resp = requests.get(f"{stack.url}/api/{CURRENT}", auth=(name, second), timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["username"] == name
    assert resp.json()["user"]["is_admin"] is False
    resp = requests.get(f"{stack.url}/api/{CURRENT}", auth=(name, first), timeout=30)
    assert_mlflow_error(resp, 401, "UNAUTHENTICATED")

    # The UI's prefix serves the same API.
    resp = requests.get(
        f"{stack.url}/ajax-api/2.0/mlflow/users/list", auth=admin.requests_auth(), timeout=30
    )
    assert resp.status_code == 200, resp.text
    listed = {u["username"]: u for u in resp.json()["users"]}
    assert listed[name]["is_admin"] is False
    assert listed[admin.name]["is_admin"] is True

    with acting_as(admin):
        AuthServiceClient(stack.url).delete_user(name)
        denied(lambda: AuthServiceClient(stack.url).get_user(name), code="RESOURCE_DOES_NOT_EXIST")
    assert name not in stack.mlgate("user", "list").stdout

    # Answered by mlgate: MLflow never saw these routes; each was audited with its action.
    assert "/mlflow/users/" not in "\n".join(mlflow_log.since(mlflow_mark))
    records = audit.wait_for(audit_mark, 14)
    created = [r for r in records if "mlflow:CreateUser" in r["actions"]]
    assert created and created[0]["decision"] == "allow"
    assert any(r.endswith(f":user/{name}") for r in created[0]["resources"])


def test_a_user_manages_their_own_account_and_nothing_else(stack, admin, reader, fresh_name):
    name, first, second = fresh_name("ba-self"), _password(), _password()
    with acting_as(admin):
        AuthServiceClient(stack.url).create_user(name, first)
    me = Identity(name, first)
    with acting_as(me):
        client = AuthServiceClient(stack.url)
        assert client.get_user(name).username == name
        # Someone else's account and admin-only methods: refused.
        denied(lambda: client.get_user(admin.name))
        denied(lambda: client.create_user(fresh_name("ba-other"), _password()))
        denied(lambda: client.update_user_admin(name, True))
        denied(lambda: client.delete_user(reader.name))
        denied(lambda: client.update_user_password(reader.name, _password()))
        # One's own password: the current one is required, must match and must change.
        denied(lambda: client.update_user_password(name, second), code="INVALID_PARAMETER_VALUE")
        denied(
            lambda: client.update_user_password(name, second, current_password="wrong-one"),
            code="INVALID_PARAMETER_VALUE",
        )
        denied(
            lambda: client.update_user_password(name, first, current_password=first),
            code="INVALID_PARAMETER_VALUE",
        )
        client.update_user_password(name, second, current_password=first)
    with acting_as(Identity(name, second)):
        assert not AuthServiceClient(stack.url).get_user(name).is_admin
    with acting_as(admin):
        AuthServiceClient(stack.url).delete_user(name)


def test_refusals_are_mlflow_errors(stack, admin):
    url = f"{stack.url}/api/2.0/mlflow/users"
    resp = requests.get(f"{url}/current", timeout=30)
    assert_mlflow_error(resp, 401, "UNAUTHENTICATED")
    auth = admin.requests_auth()
    assert_mlflow_error(requests.get(f"{url}/get", auth=auth, timeout=30), 400,
                        "INVALID_PARAMETER_VALUE")
    assert_mlflow_error(
        requests.get(f"{url}/get?username=a&username=b", auth=auth, timeout=30),
        400, "INVALID_PARAMETER_VALUE",
    )
    assert_mlflow_error(
        requests.post(f"{url}/create", data="username=x&password=y", auth=auth, timeout=30,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}),
        400, "INVALID_PARAMETER_VALUE",
    )
    assert_mlflow_error(
        requests.post(f"{url}/create", json={"username": "", "password": "p"}, auth=auth,
                      timeout=30),
        400, "INVALID_PARAMETER_VALUE",
    )
    assert_mlflow_error(
        requests.patch(f"{url}/update-admin", json={"username": admin.name, "is_admin": "yes"},
                       auth=auth, timeout=30),
        400, "INVALID_PARAMETER_VALUE",
    )
    # Routes basic-auth does not declare stay unknown.
    assert_mlflow_error(
        requests.get(f"{stack.url}/api/3.0/mlflow/roles/everything", auth=auth, timeout=30),
        404, "ENDPOINT_NOT_FOUND",
    )


def test_the_ui_sign_out_ends_the_mlgate_session(stack, admin, fresh_name, audit):
    # MLflow's UI signs out with an XMLHttpRequest of users/current given the Basic credentials
    # `mlflow-logged-out-<random>`, which Chromium sends only once challenged: mlgate challenges
    # that cookie-only request, then ends the browser session the credentials come with.
    name, password = fresh_name("ba-ui-sign-out"), _password()
    with acting_as(admin):
        AuthServiceClient(stack.url).create_user(name, password)
    browser = requests.Session()
    signed_in = browser.post(
        f"{stack.url}/_mlgate/login",
        data={"username": name, "password": password, "next": "/"},
        headers={"Origin": stack.url},
        allow_redirects=False,
        timeout=30,
    )
    assert signed_in.status_code == 303, signed_in.text
    current = f"{stack.url}/ajax-api/{CURRENT}"
    as_the_ui = {"Content-Type": "application/json; charset=utf-8"}  # MLflow's fetch wrapper
    resp = browser.get(current, headers=as_the_ui, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["username"] == name
    assert resp.json()["is_basic_auth"] is True
    session = dict(browser.cookies)

    # 1. The cookie-only request is challenged; the session lives on.
    challenged = browser.get(current, timeout=30)
    assert_mlflow_error(challenged, 401, "UNAUTHENTICATED")
    assert challenged.headers["WWW-Authenticate"].startswith("Basic ")
    assert browser.get(current, headers=as_the_ui, timeout=30).status_code == 200
    # A page load of the same URL is not a sign-out either.
    assert browser.get(current, headers={"Accept": "text/html"}, timeout=30).status_code != 401

    # 2. The sign-out credentials end it, without a challenge (no browser prompt).
    marker = f"mlflow-logged-out-{uuid.uuid4().hex[:8]}"
    mark = audit.mark()
    resp = browser.get(current, auth=(marker, marker), timeout=30)
    assert_mlflow_error(resp, 401, "UNAUTHENTICATED")
    assert "WWW-Authenticate" not in resp.headers
    assert "Max-Age=0" in resp.headers["Set-Cookie"]
    (record,) = [r for r in audit.wait_for(mark, 1) if r["path"].endswith(CURRENT)]
    assert record["reason"] == "signed out"

    # The session is gone on the server: replaying the old cookie signs no one in.
    replay = requests.get(current, cookies=session, headers=as_the_ui, timeout=30)
    assert_mlflow_error(replay, 401, "UNAUTHENTICATED")
