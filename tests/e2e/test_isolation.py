"""Team isolation with one shared MLflow: team-a and team-b each have a policy allowing everything
on experiments named `team-x/...` (condition key `mlflow:ExperimentName`, filled by mlgate from
MLflow) and on models named `team-x-...` (the name is in the ARN). Neither can read, search, list,
download or change the other's, and searches return full pages of only their own (filter stage).
Also the attack cases of issue 5 that the filter and resolve stages close."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from support import Identity, acting_as, assert_mlflow_error, denied, mlflow, users_with_policy

TEAMS = ("team-a", "team-b")
SEARCH = "/api/2.0/mlflow/experiments/search"


def team_policy(team: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Searches",
                "Effect": "Allow",
                "Action": [
                    "mlflow:SearchExperiments",
                    "mlflow:SearchRegisteredModels",
                    "mlflow:SearchModelVersions",
                ],
                "Resource": "arn:mlflow:*:*:server",
            },
            {
                "Sid": "OwnExperiments",
                "Effect": "Allow",
                "Action": "mlflow:*",
                "Resource": ["arn:mlflow:*:*:server", "arn:mlflow:*:*:experiment/*"],
                "Condition": {"StringLike": {"mlflow:ExperimentName": f"{team}/*"}},
            },
            {
                "Sid": "OwnModels",
                "Effect": "Allow",
                "Action": "mlflow:*",
                "Resource": f"arn:mlflow:*:*:registered-model/{team}-*",
            },
        ],
    }


@pytest.fixture(scope="session")
def teams(stack, tmp_path_factory):
    """One user per team, with the team policy attached; returns {team: Identity}."""
    out = {}
    d = tmp_path_factory.mktemp("team-policies")
    for team in TEAMS:
        user = f"{team}-user-{uuid.uuid4().hex[:6]}"
        password = uuid.uuid4().hex
        stack.mlgate("user", "create", user, "--password-env", "TEAM_PW", env={"TEAM_PW": password})
        path = Path(d, f"{team}.json")
        path.write_text(json.dumps(team_policy(team)))
        stack.mlgate("policy", "put", f"{team}-{user}", "-f", str(path))
        stack.mlgate("policy", "attach", f"{team}-{user}", "--user", user)
        out[team] = Identity(user, password)
    return out


@pytest.fixture(scope="session")
def estate(teams):
    """Each team: 5 experiments (`team-x/<tag>-<i>`), a run with an artifact, a model."""
    tag = uuid.uuid4().hex[:8]
    out = {"tag": tag}
    for team in TEAMS:
        with acting_as(teams[team]) as client:
            ids = [client.create_experiment(f"{team}/{tag}-{i}") for i in range(5)]
            with mlflow.start_run(experiment_id=ids[0]) as run:
                mlflow.log_param("p", team)
                with tempfile.TemporaryDirectory() as d:
                    Path(d, "secret.txt").write_text(f"{team} secret\n")
                    mlflow.log_artifact(str(Path(d, "secret.txt")))
            model = f"{team}-{tag}"
            client.create_registered_model(model)
            client.create_model_version(model, source=f"{run.info.artifact_uri}/secret.txt",
                                        run_id=run.info.run_id)
        out[team] = {"experiments": ids, "run": run.info.run_id, "model": model}
    return out


def _all_pages(fetch):
    items, token, pages = [], None, 0
    while True:
        page = fetch(token)
        pages += 1
        items.extend(page)
        token = page.token
        if not token:
            return items, pages


def test_searches_return_full_pages_of_only_their_own(teams, estate):
    tag = estate["tag"]
    for team in TEAMS:
        with acting_as(teams[team]) as client:
            # Both teams' experiments match the filter; only the caller's come back, 2 per page.
            flt = f"name LIKE 'team-%/{tag}-%'"
            seen, pages = _all_pages(
                lambda t: client.search_experiments(filter_string=flt, max_results=2, page_token=t)
            )
            assert sorted(e.experiment_id for e in seen) == sorted(estate[team]["experiments"])
            assert pages == 3  # 2 + 2 + 1: full pages while more readable items exist
            first = client.search_experiments(filter_string=flt, max_results=2)
            assert len(first) == 2 and first.token

            models = client.search_registered_models(filter_string=f"name LIKE '%{tag}%'")
            assert [m.name for m in models] == [estate[team]["model"]]
            versions = client.search_model_versions(f"name LIKE '%{tag}%'")
            assert {v.name for v in versions} == {estate[team]["model"]}


def test_name_like_filters_reveal_nothing(teams, estate):
    tag = estate["tag"]
    with acting_as(teams["team-b"]) as client:
        assert client.search_experiments(filter_string=f"name LIKE 'team-a/{tag}%'") == []
        assert client.search_registered_models(filter_string=f"name LIKE 'team-a-{tag}%'") == []
        assert client.search_model_versions(f"name = 'team-a-{tag}'") == []


def test_page_tokens_are_not_replayable_across_users(stack, teams, estate):
    tag = estate["tag"]
    body = {"filter": f"name LIKE 'team-%/{tag}-%'", "max_results": 1}
    a = teams["team-a"]
    resp = requests.post(stack.url + SEARCH, json=body, auth=a.requests_auth(), timeout=30)
    assert resp.status_code == 200, resp.text
    token = resp.json()["next_page_token"]
    # The owner can continue ...
    again = requests.post(stack.url + SEARCH, json={**body, "page_token": token},
                          auth=a.requests_auth(), timeout=30)
    assert again.status_code == 200 and again.json()["experiments"]
    # ... anyone else gets a 400, and a raw MLflow token is refused too.
    b = teams["team-b"]
    replay = requests.post(stack.url + SEARCH, json={**body, "page_token": token},
                           auth=b.requests_auth(), timeout=30)
    assert_mlflow_error(replay, 400, "INVALID_PARAMETER_VALUE")
    raw = requests.post(stack.url + SEARCH, json={**body, "page_token": "eyJvZmZzZXQiOiAxfQ=="},
                        auth=b.requests_auth(), timeout=30)
    assert_mlflow_error(raw, 400, "INVALID_PARAMETER_VALUE")


def test_neither_team_reads_or_changes_the_others(teams, estate, tmp_path):
    theirs = estate["team-a"]
    with acting_as(teams["team-b"]) as client:
        denied(lambda: client.get_experiment(theirs["experiments"][0]))
        denied(lambda: client.get_run(theirs["run"]))
        denied(lambda: client.create_run(theirs["experiments"][1]))
        denied(lambda: client.log_param(theirs["run"], "x", "y"))
        denied(lambda: client.set_experiment_tag(theirs["experiments"][0], "k", "v"))
        denied(lambda: client.rename_experiment(theirs["experiments"][0], "team-b/stolen"))
        denied(lambda: client.list_artifacts(theirs["run"]))
        denied(lambda: client.download_artifacts(theirs["run"], "secret.txt", str(tmp_path)))
        denied(lambda: client.get_registered_model(theirs["model"]))
        denied(lambda: client.get_model_version(theirs["model"], "1"))
        denied(lambda: client.set_registered_model_tag(theirs["model"], "k", "v"))
        # Their own still works, under the same policy.
        mine = estate["team-b"]
        assert client.get_run(mine["run"]).data.params["p"] == "team-b"
        assert client.get_experiment(mine["experiments"][0]).name.startswith("team-b/")


def test_ajax_and_artifact_routes_are_isolated_too(stack, teams, estate):
    theirs = estate["team-a"]
    b = teams["team-b"].requests_auth()
    exp = theirs["experiments"][0]
    r = requests.get(f"{stack.url}/ajax-api/2.0/mlflow/experiments/get",
                     params={"experiment_id": exp}, auth=b, timeout=30)
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    r = requests.get(f"{stack.url}/get-artifact", params={"run_id": theirs["run"], "path": "secret.txt"},
                     auth=b, timeout=30)
    assert r.status_code == 403, r.text
    r = requests.get(
        f"{stack.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{theirs['run']}/artifacts/secret.txt",
        auth=b, timeout=30)
    assert r.status_code == 403, r.text
    r = requests.get(f"{stack.url}/api/2.0/mlflow-artifacts/artifacts",
                     params={"path": f"{exp}/{theirs['run']}/artifacts"}, auth=b, timeout=30)
    assert r.status_code == 403, r.text
    # Traversal out of their own directory into the other team's is refused before anything.
    mine = estate["team-b"]
    sneaky = f"{mine['experiments'][0]}/{mine['run']}/artifacts/../../../{exp}/{theirs['run']}/artifacts/secret.txt"
    r = requests.get(f"{stack.url}/api/2.0/mlflow-artifacts/artifacts",
                     params={"path": sneaky}, auth=b, timeout=30)
    assert r.status_code in (400, 403), r.text
    assert "team-a secret" not in r.text


def test_search_runs_is_narrowed_to_readable_experiments(stack, teams, estate, mlflow_log):
    theirs, mine = estate["team-a"], estate["team-b"]
    with acting_as(teams["team-b"]) as client:
        runs = client.search_runs([theirs["experiments"][0], mine["experiments"][0]])
        assert [r.info.run_id for r in runs] == [mine["run"]]
        mark = mlflow_log.mark()
        assert list(client.search_runs([theirs["experiments"][0]])) == []
        assert not mlflow_log.saw(mark, "runs/search")


def test_attack_cases(stack, teams, estate):
    theirs, mine = estate["team-a"], estate["team-b"]
    b = teams["team-b"].requests_auth()
    # Dual spelling: `experiment_id` mine, `experimentId` theirs.
    r = requests.post(f"{stack.url}/api/2.0/mlflow/runs/create", auth=b, timeout=30,
                      json={"experiment_id": mine["experiments"][0],
                            "experimentId": theirs["experiments"][0]})
    assert_mlflow_error(r, 400)
    # run_uuid (legacy) names their run: decided on their run.
    r = requests.post(f"{stack.url}/api/2.0/mlflow/runs/log-parameter", auth=b, timeout=30,
                      json={"run_uuid": theirs["run"], "key": "x", "value": "y"})
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    # Both spellings at once: refused whatever they name.
    r = requests.post(f"{stack.url}/api/2.0/mlflow/runs/log-parameter", auth=b, timeout=30,
                      json={"run_id": mine["run"], "run_uuid": theirs["run"], "key": "x", "value": "y"})
    assert r.status_code in (400, 403), r.text
    # Their run inside a bulk request with mine.
    r = requests.get(f"{stack.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk", auth=b, timeout=30,
                     params=[("run_id", mine["run"]), ("run_id", theirs["run"]), ("metric_key", "m")])
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    # Renaming my model into their prefix.
    with acting_as(teams["team-b"]) as client:
        denied(lambda: client.rename_registered_model(mine["model"], f"team-a-{uuid.uuid4().hex[:6]}"))
        # Creating an experiment under their prefix, or moving mine there.
        denied(lambda: client.create_experiment(f"team-a/{uuid.uuid4().hex[:6]}"))
        denied(lambda: client.rename_experiment(mine["experiments"][4], f"team-a/{uuid.uuid4().hex[:6]}"))


def test_creators_manage_what_they_created(stack, tmp_path):
    """`mlflow:ResourceCreator` (recorded by mlgate at CreateExperiment / CreateRegisteredModel)
    against `${aws:username}`: each user manages what they created, and nothing else."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "CreateUnderOwned", "Effect": "Allow", "Action": "mlflow:CreateExperiment",
             "Resource": "arn:mlflow:*:*:server",
             "Condition": {"StringLike": {"mlflow:ExperimentName": "owned/*"}}},
            {"Sid": "CreateModels", "Effect": "Allow", "Action": "mlflow:CreateRegisteredModel",
             "Resource": "arn:mlflow:*:*:registered-model/owned-*"},
            {"Sid": "ManageOwn", "Effect": "Allow", "Action": "mlflow:*",
             "Resource": ["arn:mlflow:*:*:experiment/*", "arn:mlflow:*:*:registered-model/*"],
             "Condition": {"StringEquals": {"mlflow:ResourceCreator": "${aws:username}"}}},
        ],
    }
    name = f"owned-{uuid.uuid4().hex[:6]}"
    first, second = users_with_policy(stack, name, policy, tmp_path, 2)
    with acting_as(first) as client:
        exp = client.create_experiment(f"owned/{uuid.uuid4().hex[:6]}")
        run = client.create_run(exp)
        client.log_param(run.info.run_id, "k", "v")
        client.set_experiment_tag(exp, "t", "1")
        model = client.create_registered_model(f"{name}-m").name
        client.set_registered_model_tag(model, "t", "1")
    with acting_as(second) as client:
        denied(lambda: client.get_experiment(exp))
        denied(lambda: client.get_run(run.info.run_id))
        denied(lambda: client.create_run(exp))
        denied(lambda: client.get_registered_model(model))
        denied(lambda: client.delete_registered_model(model))
