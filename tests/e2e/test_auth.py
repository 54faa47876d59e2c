"""Authentication: no or bad credentials get 401 UNAUTHENTICATED (in the client too), API
tokens work as MLFLOW_TRACKING_TOKEN until revoked, and runs are attributed to the
authenticated principal whatever the client claims."""

import base64
import time

import pytest
import requests

from support import (
    ADMIN,
    BOOTSTRAP_ADMIN,
    READER,
    Identity,
    acting_as,
    assert_mlflow_error,
    denied,
    mlflow,
)

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"


# -------------------------------------------------------------------------- 401


def test_no_credentials_is_401_in_mlflow_shape(stack, mlflow_log):
    mark = mlflow_log.mark()
    resp = requests.get(f"{stack.url}{SEARCH}", timeout=30)
    assert_mlflow_error(resp, 401, "UNAUTHENTICATED")
    assert "experiments/search" not in "\n".join(mlflow_log.since(mark))


def test_no_credentials_in_the_mlflow_client(stack):
    with acting_as(Identity()) as client:
        denied(lambda: client.search_experiments(), code="UNAUTHENTICATED")
        denied(lambda: mlflow.search_runs(experiment_ids=["0"]), code="UNAUTHENTICATED")


@pytest.mark.parametrize(
    "who",
    [
        Identity(ADMIN, "wrong-password"),
        Identity(READER, ""),
        Identity("nobody-such-user", "whatever"),
    ],
    ids=["wrong-password", "empty-password", "unknown-user"],
)
def test_wrong_credentials_are_401(stack, who):
    resp = requests.get(f"{stack.url}{SEARCH}", auth=who.requests_auth(), timeout=30)
    body = assert_mlflow_error(resp, 401, "UNAUTHENTICATED")
    assert who.password is None or not who.password or who.password not in body["message"]
    with acting_as(who) as client:
        denied(lambda: client.search_experiments(), code="UNAUTHENTICATED")


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Bearer not-a-real-token",
        "Bearer ",
        "Digest username=admin",
    ],
    ids=["basic-garbage", "basic-no-colon", "bearer-unknown", "bearer-empty", "unknown-scheme"],
)
def test_malformed_credentials_are_401_not_500(stack, authorization):
    resp = requests.get(
        f"{stack.url}{SEARCH}", headers={"Authorization": authorization}, timeout=30
    )
    assert resp.status_code in (400, 401), resp.text
    assert_mlflow_error(resp, resp.status_code)


def test_bootstrap_admin_can_sign_in(users):
    with acting_as(users[BOOTSTRAP_ADMIN]) as client:
        client.search_experiments(max_results=1)


# -------------------------------------------------------------------------- attribution


def test_forged_user_on_create_run_is_overwritten(stack, admin, scratch_experiment):
    # Through the client: a forged mlflow.user tag
    with acting_as(admin) as client:
        run = client.create_run(scratch_experiment, tags={"mlflow.user": "mallory"})
        got = client.get_run(run.info.run_id)
        assert got.info.user_id == ADMIN
        assert got.data.tags["mlflow.user"] == ADMIN

        # The fluent API sets mlflow.user to the local OS user: also replaced.
        with mlflow.start_run(experiment_id=scratch_experiment) as active:
            pass
        got = client.get_run(active.info.run_id)
        assert got.info.user_id == ADMIN
        assert got.data.tags["mlflow.user"] == ADMIN

    # Raw REST: a forged user_id and tag
    resp = requests.post(
        f"{stack.url}/api/2.0/mlflow/runs/create",
        json={
            "experiment_id": scratch_experiment,
            "user_id": "mallory",
            "tags": [{"key": "mlflow.user", "value": "mallory"}, {"key": "x", "value": "y"}],
        },
        auth=admin.requests_auth(),
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["run"]["info"]["run_id"]
    with acting_as(admin) as client:
        got = client.get_run(run_id)
        assert got.info.user_id == ADMIN
        assert got.data.tags["mlflow.user"] == ADMIN
        assert got.data.tags["x"] == "y"


# -------------------------------------------------------------------------- API tokens


def test_api_token_works_until_revoked(stack, create_token, world):
    token, token_id = create_token(READER)
    assert token and len(token) >= 24
    who = Identity(token=token)
    with acting_as(who) as client:
        exp = client.get_experiment(world.experiment_id)
        assert exp.name == world.experiment_name
        # The token carries the reader's rights, not more.
        denied(lambda: client.create_experiment("token-should-not-create"))

    stack.mlgate("token", "revoke", token_id)
    # The server caches credentials briefly (docs/administration.md): wait for the revocation.
    deadline = time.monotonic() + 10
    while True:
        resp = requests.get(f"{stack.url}{SEARCH}", auth=who.requests_auth(), timeout=30)
        if resp.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert_mlflow_error(resp, 401, "UNAUTHENTICATED")
    with acting_as(who) as client:
        denied(lambda: client.search_experiments(), code="UNAUTHENTICATED")


def test_token_is_never_printed_twice_or_logged(stack, create_token):
    token, _ = create_token(READER)
    listing = stack.mlgate("token", "list").stdout + stack.mlgate("token", "list").stderr
    assert token not in listing
    requests.get(f"{stack.url}{SEARCH}", auth=Identity(token=token).requests_auth(), timeout=30)
    assert token not in stack.audit_log.read_text()
    assert token not in stack.mlgate_log.read_text()
