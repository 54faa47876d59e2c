"""MLflow workspaces: a second MLflow started with `--enable-workspaces` (SQLite backend) behind
a second mlgate started with `--mlflow-workspaces`. Workspaces team-a and team-b each hold an
experiment and a registered model of the SAME name; a user confined to team-a (by the
`mlflow:Workspace` key, or by ARNs under `workspace/team-a/`) gets nothing of team-b's, through
the real MLflow client with `mlflow.set_workspace`."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Iterator

import pytest
import requests
from mlflow.genai import datasets as genai_datasets

from support import (
    ADMIN,
    Identity,
    acting_as,
    assert_mlflow_error,
    denied,
    documented_policy,
    mlflow,
    mlgate_stack,
    raw_http,
    users_with_policy,
)

TEAMS = ("team-a", "team-b")
SHARED_NAME = "shared-name"  # the experiment's and the registered model's, in both workspaces
HEADER = "X-MLflow-Workspace"
ARN = "arn:mlflow:us-east-1:111111111111"


@pytest.fixture(scope="module")
def ws_stack(stack, tmp_path_factory):
    """MLflow with workspaces, mlgate told so; bootstrapped with the demo file."""
    st = mlgate_stack.Stack(tmp_path_factory.mktemp("workspaces"), port=mlgate_stack.free_port(),
                            binary=stack.binary)
    st.apply(mlgate_stack.DEMO_FILE, stack.passwords)
    try:
        st.start_mlflow(extra_args=["--enable-workspaces"])
        st.start_gateway(extra_args=["--mlflow-workspaces"])
        yield st
    finally:
        st.down()


@contextlib.contextmanager
def in_workspace(st, identity: Identity, workspace: str) -> Iterator[mlflow.MlflowClient]:
    """The MLflow client as `identity`, talking to `st` in `workspace`."""
    saved = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(st.url)
    mlflow.set_workspace(workspace)
    try:
        with acting_as(identity) as client:
            yield client
    finally:
        mlflow.set_workspace(None)
        mlflow.set_tracking_uri(saved)


@pytest.fixture(scope="module")
def teams(ws_stack, users):
    """Both workspaces, each with experiment and registered model SHARED_NAME: name → ids."""
    admin = users[ADMIN]
    found = {}
    for team in TEAMS:
        r = requests.post(f"{ws_stack.url}/api/3.0/mlflow/workspaces", json={"name": team},
                          auth=admin.requests_auth(), timeout=30)
        assert r.status_code == 201, r.text
        with in_workspace(ws_stack, admin, team) as client:
            experiment_id = client.create_experiment(SHARED_NAME)
            run_id = client.create_run(experiment_id).info.run_id
            client.create_registered_model(SHARED_NAME)
        found[team] = {"experiment_id": experiment_id, "run_id": run_id}
    assert found["team-a"]["experiment_id"] != found["team-b"]["experiment_id"]
    return found


def test_a_user_confined_to_a_workspace_gets_nothing_of_another(ws_stack, teams, tmp_path):
    policy = json.loads(documented_policy("docs/policy-reference.md#TeamAWorkspace"))
    (alice,) = users_with_policy(ws_stack, "team-a-only", policy, tmp_path, 1)

    with in_workspace(ws_stack, alice, "team-a") as client:
        experiment = client.get_experiment_by_name(SHARED_NAME)
        assert experiment.experiment_id == teams["team-a"]["experiment_id"]
        client.create_run(experiment.experiment_id)
        assert client.get_registered_model(SHARED_NAME).name == SHARED_NAME
        client.set_registered_model_tag(SHARED_NAME, "owner", "alice")
        assert [e.name for e in client.search_experiments()] == [SHARED_NAME]
        assert [m.name for m in client.search_registered_models()] == [SHARED_NAME]

    b = teams["team-b"]
    with in_workspace(ws_stack, alice, "team-b") as client:
        denied(lambda: client.get_experiment_by_name(SHARED_NAME))
        denied(lambda: client.get_experiment(b["experiment_id"]))
        denied(lambda: client.create_run(b["experiment_id"]))
        denied(lambda: client.get_run(b["run_id"]))
        denied(lambda: client.get_registered_model(SHARED_NAME))
        denied(lambda: client.set_registered_model_tag(SHARED_NAME, "owner", "alice"))
        denied(lambda: client.create_experiment("alice-in-b"))
        # Searching in team-b is itself outside team-a.
        denied(lambda: client.search_experiments())
        denied(lambda: client.search_registered_models())
        assert client.search_runs([b["experiment_id"]]) == []


def test_a_resource_arn_names_its_workspace(ws_stack, teams, tmp_path):
    """A policy on registered model SHARED_NAME in team-a does not match the model of the same
    name in team-b; an experiment in team-a's ARN is not the same-numbered one anywhere else."""
    a = teams["team-a"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["mlflow:GetRegisteredModel", "mlflow:GetExperiment"],
            "Resource": [f"{ARN}:workspace/team-a/registered-model/{SHARED_NAME}",
                         f"{ARN}:workspace/team-a/experiment/{a['experiment_id']}"],
        }],
    }  # fmt: skip
    (bob,) = users_with_policy(ws_stack, "team-a-model", policy, tmp_path, 1)
    with in_workspace(ws_stack, bob, "team-a") as client:
        assert client.get_registered_model(SHARED_NAME).name == SHARED_NAME
        assert client.get_experiment(a["experiment_id"]).name == SHARED_NAME
    with in_workspace(ws_stack, bob, "team-b") as client:
        denied(lambda: client.get_registered_model(SHARED_NAME))
        # team-a's experiment asked for in team-b: never team-a's ARN (MLflow finds none there).
        with pytest.raises(mlflow.exceptions.MlflowException):
            client.get_experiment(a["experiment_id"])
    with in_workspace(ws_stack, bob, "default") as client:
        denied(lambda: client.get_registered_model(SHARED_NAME))


def test_the_workspace_header_is_read_once_and_checked(ws_stack, teams, users):
    admin = users[ADMIN]
    url = f"{ws_stack.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name={SHARED_NAME}"

    def get(workspace):
        return requests.get(url, headers={HEADER: workspace}, auth=admin.requests_auth(), timeout=30)

    basic = base64.b64encode(f"{admin.name}:{admin.password}".encode()).decode()

    def raw(**workspaces):
        return raw_http(ws_stack.url, "GET", url.removeprefix(ws_stack.url),
                        headers={"Authorization": f"Basic {basic}", **workspaces})

    # Trimmed as MLflow trims it; the same workspace decided and asked.
    status, _, body = raw(**{HEADER: "  team-b "})
    assert status == 200, body
    assert json.loads(body)["experiment"]["experiment_id"] == teams["team-b"]["experiment_id"]
    for bad in ("Team-B", "a", "api", "team_b", "-team"):
        assert_mlflow_error(get(bad), 400)
    # Two headers (any spelling) are two workspaces: refused, never read one way by each.
    status, _, body = raw(**{HEADER: "team-a", HEADER.lower(): "team-a"})
    assert status == 400, body


def test_workspace_admin_routes_need_their_own_actions(ws_stack, teams, tmp_path):
    policy = json.loads(documented_policy("docs/policy-reference.md#TeamAWorkspace"))
    (carol,) = users_with_policy(ws_stack, "team-a-only-2", policy, tmp_path, 1)
    r = requests.post(f"{ws_stack.url}/api/3.0/mlflow/workspaces", json={"name": "team-c"},
                      headers={HEADER: "team-a"}, auth=carol.requests_auth(), timeout=30)
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    r = requests.delete(f"{ws_stack.url}/api/3.0/mlflow/workspaces/team-b",
                        headers={HEADER: "team-a"}, auth=carol.requests_auth(), timeout=30)
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")


def test_without_the_flag_a_workspace_is_refused(stack, users):
    """The session's mlgate runs without --mlflow-workspaces: a request naming a workspace is a
    400, and one naming none (or an empty one) passes as before."""
    admin = users[ADMIN]
    url = f"{stack.url}/api/2.0/mlflow/experiments/search"
    r = requests.post(url, json={"max_results": 1}, headers={HEADER: "team-a"},
                      auth=admin.requests_auth(), timeout=30)
    assert_mlflow_error(r, 400)
    r = requests.post(url, json={"max_results": 1}, headers={HEADER: ""},
                      auth=admin.requests_auth(), timeout=30)
    assert r.status_code == 200, r.text


def test_a_dataset_lies_under_its_experiment_in_its_workspace(ws_stack, teams, users, tmp_path):
    """A dataset's ARN is its experiment's, within the workspace: a policy on team-a's
    experiment's datasets reads it; the same experiment path outside the workspace does not."""
    experiment_id = teams["team-a"]["experiment_id"]
    with in_workspace(ws_stack, users[ADMIN], "team-a"):
        dataset_id = genai_datasets.create_dataset(name="team-a-data",
                                                   experiment_id=experiment_id).dataset_id

    def reader(prefix: str) -> dict:
        return {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["mlflow:GetDataset", "mlflow:GetDatasetExperimentIds"],
            "Resource": f"{ARN}:{prefix}experiment/{experiment_id}/dataset/*"}]}

    (carol,) = users_with_policy(ws_stack, "team-a-datasets", reader("workspace/team-a/"),
                                 tmp_path, 1)
    with in_workspace(ws_stack, carol, "team-a"):
        assert genai_datasets.get_dataset(dataset_id=dataset_id).dataset_id == dataset_id
    (dave,) = users_with_policy(ws_stack, "no-workspace-datasets", reader(""), tmp_path, 1)
    with in_workspace(ws_stack, dave, "team-a"):
        denied(lambda: genai_datasets.get_dataset(dataset_id=dataset_id))


def test_a_workspaces_artifact_paths_are_its_experiments(ws_stack, teams, users, tmp_path):
    """MLflow keeps a workspace's proxied artifacts under `workspaces/<ws>/`: a path written
    with that prefix is decided on the workspace's experiment (the same as without it), the
    prefix of another workspace is refused, and the workspace's root listing shows only the
    experiment folders the caller may list."""
    a, b = teams["team-a"], teams["team-b"]
    artifacts = f"{ws_stack.url}/api/2.0/mlflow-artifacts/artifacts"
    relative = f"{a['experiment_id']}/{a['run_id']}/artifacts/notes.txt"
    admin = users[ADMIN].requests_auth()
    r = requests.put(f"{artifacts}/workspaces/team-a/{relative}", data=b"team-a notes", auth=admin,
                     headers={HEADER: "team-a"}, timeout=30)
    assert r.status_code == 200, r.text

    def lister(experiment_id: str) -> dict:
        scope = f"{ARN}:workspace/team-a/experiment/{experiment_id}"
        return {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["mlflow:GetArtifact", "mlflow:ListArtifacts"],
            "Resource": [scope, f"{scope}/*"]}, {
            # the store's root (the workspace's server): listed, then filtered
            "Effect": "Allow", "Action": "mlflow:ListArtifacts",
            "Resource": f"{ARN}:workspace/team-a/server"}]}

    (carol,) = users_with_policy(ws_stack, "team-a-artifacts", lister(a["experiment_id"]), tmp_path, 1)
    (dave,) = users_with_policy(ws_stack, "team-a-other-artifacts", lister("999999"), tmp_path, 1)

    def get(who, path, params=None):
        return requests.get(f"{artifacts}/{path}" if path else artifacts, params=params,
                            auth=who.requests_auth(), headers={HEADER: "team-a"}, timeout=30)

    for path in (f"workspaces/team-a/{relative}", relative):
        r = get(carol, path)
        assert r.status_code == 200 and r.content == b"team-a notes", (path, r.text)
        assert_mlflow_error(get(dave, path), 403, "PERMISSION_DENIED")
    # Another workspace's prefix, whatever the policy: MLflow would refuse it too.
    r = get(carol, f"workspaces/team-b/{b['experiment_id']}/{b['run_id']}/artifacts/notes.txt")
    assert_mlflow_error(r, 400, "INVALID_PARAMETER_VALUE")
    # The workspace's root, with or without its prefix: only the readable experiment's folder.
    for params in ({"path": "workspaces/team-a"}, None):
        r = get(carol, "", params)
        assert r.status_code == 200, (params, r.text)
        assert [f["path"] for f in r.json().get("files", [])] == [a["experiment_id"]], r.text
        r = get(dave, "", params)
        assert r.status_code == 200, (params, r.text)
        assert r.json().get("files", []) == [], r.text
