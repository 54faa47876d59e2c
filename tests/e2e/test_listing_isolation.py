"""No leaks through lists and searches beyond experiments, runs and models (issue 5): traces,
evaluation datasets, scorers, latest versions, webhooks and artifact listings show only what
the caller may read; filtered pages stay full; mlgate's page tokens are bound to the caller and
the query, and survive an mlgate restart and a second replica sharing the master key.

Two kinds of callers: team users (team-a, team-b) whose policy allows everything on
experiments named `team-x/...` (as in test_isolation.py), and an auditor who may read
everything except a few of team-a's items, denied one by one (so the item-by-item filters
have something to drop)."""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path

import pytest
import requests

from support import Identity, acting_as, assert_mlflow_error, denied, mlflow, mlgate_stack
from test_isolation import TEAMS, team_policy

TRACES_PER_TEAM = 3
DATASETS_PER_TEAM = 3
DATASET_SEARCH = "/api/3.0/mlflow/datasets/search"


def _user(stack, prefix: str, policy: dict, d: Path) -> Identity:
    user = f"{prefix}-{uuid.uuid4().hex[:6]}"
    password = uuid.uuid4().hex
    stack.mlgate("user", "create", user, "--password-env", "LIST_PW", env={"LIST_PW": password})
    path = d / f"{user}.json"
    path.write_text(json.dumps(policy))
    stack.mlgate("policy", "put", user, "-f", str(path))
    stack.mlgate("policy", "attach", user, "--user", user)
    return Identity(user, password)


@pytest.fixture(scope="module")
def listing_teams(stack, tmp_path_factory):
    d = tmp_path_factory.mktemp("listing-policies")
    return {team: _user(stack, f"list-{team}", team_policy(team), d) for team in TEAMS}


@pytest.fixture(scope="module")
def holdings(stack, listing_teams, admin):
    """Each team: an experiment with traces (through the tracing API), evaluation datasets and
    a scorer; plus a model with two versions and two webhooks, made by the admin."""
    tag = uuid.uuid4().hex[:8]
    out = {"tag": tag}
    # Traces are exported while the team's credentials are set, not later from a thread; the
    # experiment they go to is MLFLOW_EXPERIMENT_ID (no global fluent state left behind).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        for team in TEAMS:
            with acting_as(listing_teams[team]) as client:
                exp = client.create_experiment(f"{team}/{tag}-traces")
                env.setenv("MLFLOW_EXPERIMENT_ID", exp)
                for i in range(TRACES_PER_TEAM):
                    with mlflow.start_span(name=f"{team}-span-{i}") as span:
                        span.set_inputs({"team": team, "i": i})
                        span.set_outputs({"secret": f"{team} secret {i}"})
                traces = client.search_traces(locations=[exp], include_spans=False)
                assert len(traces) == TRACES_PER_TEAM, traces
                datasets = [
                    client.create_dataset(f"{team}-{tag}-ds{i}", experiment_id=[exp]).dataset_id
                    for i in range(DATASETS_PER_TEAM)
                ]
            out[team] = {
                "experiment": exp,
                "traces": [t.info.trace_id for t in traces],
                "datasets": datasets,
            }
    with acting_as(admin) as client:
        model = f"listing-{tag}"
        client.create_registered_model(model)
        run = client.create_run("0")  # the Default experiment: no new experiment in the UI list
        for _ in range(2):
            client.create_model_version(model, source=f"{run.info.artifact_uri}/model",
                                        run_id=run.info.run_id)
        hooks = [
            # MLflow wants a public address; the event is one no test triggers.
            client.create_webhook(f"hook-{tag}-{i}", f"https://1.1.1.1/{tag}/{i}",
                                  events=["prompt_alias.deleted"]).webhook_id
            for i in range(2)
        ]
    out["model"], out["webhooks"] = model, hooks
    return out


@pytest.fixture(scope="module")
def auditor(stack, holdings, tmp_path_factory):
    """Reads everything but team-a's datasets, version 1 of the model, the first webhook and
    team-a's experiment (with its traces)."""
    arn = "arn:mlflow:*:*"
    a = holdings["team-a"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Resource": "*",
             "Action": ["mlflow:Get*", "mlflow:Search*", "mlflow:List*", "mlflow:BatchGet*"]},
            {"Effect": "Deny", "Action": "mlflow:GetDataset",
             "Resource": [f"{arn}:experiment/{a['experiment']}/dataset/{d}" for d in a["datasets"]]},
            {"Effect": "Deny", "Action": "mlflow:GetModelVersion",
             "Resource": f"{arn}:registered-model/{holdings['model']}/version/1"},
            {"Effect": "Deny", "Action": "mlflow:GetWebhook",
             "Resource": f"{arn}:webhook/{holdings['webhooks'][0]}"},
            {"Effect": "Deny", "Action": "mlflow:*",
             "Resource": [f"{arn}:experiment/{a['experiment']}", f"{arn}:experiment/{a['experiment']}/*"]},
        ],
    }
    return _user(stack, "list-auditor", policy, tmp_path_factory.mktemp("auditor-policy"))


def test_traces_of_the_other_team_are_neither_searched_nor_read(stack, listing_teams, holdings):
    theirs, mine = holdings["team-a"], holdings["team-b"]
    with acting_as(listing_teams["team-b"]) as client:
        own = client.search_traces(locations=[mine["experiment"]])
        assert sorted(t.info.trace_id for t in own) == sorted(mine["traces"])
        assert all("team-b" in json.dumps(t.data.spans[0].inputs) for t in own)
        denied(lambda: client.search_traces(locations=[theirs["experiment"]]))
        denied(lambda: client.search_traces(locations=[mine["experiment"], theirs["experiment"]]))
        denied(lambda: client.get_trace(theirs["traces"][0]))
    b = listing_teams["team-b"].requests_auth()
    # The batch routes with one of theirs among mine.
    r = requests.get(f"{stack.url}/api/3.0/mlflow/traces/batchGet", auth=b, timeout=30,
                     params=[("trace_ids", mine["traces"][0]), ("trace_ids", theirs["traces"][0])])
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    r = requests.post(f"{stack.url}/ajax-api/3.0/mlflow/traces/batchGetInfos", auth=b, timeout=30,
                      json={"trace_ids": [mine["traces"][0], theirs["traces"][0]]})
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    # Their trace's span data through the artifact proxy and the UI's trace artifact route.
    r = requests.get(f"{stack.url}/ajax-api/3.0/mlflow/get-trace-artifact", auth=b, timeout=30,
                     params={"request_id": theirs["traces"][0]})
    assert r.status_code == 403 and "team-a secret" not in r.text, r.text
    r = requests.get(f"{stack.url}/api/2.0/mlflow-artifacts/artifacts", auth=b, timeout=30,
                     params={"path": f"{theirs['experiment']}/traces"})
    assert r.status_code == 403, r.text


def test_a_trace_search_naming_no_experiment_lists_nothing(stack, reader, listing_teams, holdings):
    """MLflow's v2 trace search reads an empty `experiment_ids` as every experiment: mlgate
    answers it empty rather than list everyone's traces (a reader may read them all one by one,
    but a search naming nothing names nothing)."""
    for who in (reader, listing_teams["team-b"]):
        r = requests.get(f"{stack.url}/api/2.0/mlflow/traces", auth=who.requests_auth(), timeout=30)
        assert r.status_code in (200, 403), r.text
        assert "traces" not in r.json(), r.text
    # Naming an experiment still searches it.
    r = requests.get(f"{stack.url}/api/2.0/mlflow/traces", auth=reader.requests_auth(), timeout=30,
                     params={"experiment_ids": holdings["team-a"]["experiment"]})
    assert r.status_code == 200 and len(r.json()["traces"]) == TRACES_PER_TEAM, r.text


def test_scorer_lists_naming_no_experiment_list_nothing(stack, reader, admin, holdings):
    theirs = holdings["team-a"]["experiment"]
    body = {"experiment_id": theirs, "name": f"judge-{holdings['tag']}",
            "serialized_scorer": json.dumps({"name": "judge", "builtin_scorer_class": "Safety",
                                             "builtin_scorer_pydantic_data": {"name": "judge"}})}
    r = requests.post(f"{stack.url}/api/3.0/mlflow/scorers/register", json=body,
                      auth=admin.requests_auth(), timeout=30)
    assert r.status_code == 200, r.text
    r = requests.get(f"{stack.url}/api/3.0/mlflow/scorers/list", auth=reader.requests_auth(), timeout=30)
    assert r.status_code == 200 and r.json().get("scorers", []) == [], r.text
    r = requests.get(f"{stack.url}/api/3.0/mlflow/scorers/list", auth=reader.requests_auth(),
                     timeout=30, params={"experiment_id": theirs})
    assert r.status_code == 200 and [s["scorer_name"] for s in r.json()["scorers"]] == [body["name"]]


def test_dataset_searches_show_only_readable_datasets_in_full_pages(stack, listing_teams, auditor,
                                                                    holdings):
    tag, theirs, mine = holdings["tag"], holdings["team-a"], holdings["team-b"]
    # A team names its own experiment: its datasets, and never the other's.
    with acting_as(listing_teams["team-b"]) as client:
        own = client.search_datasets(experiment_ids=[mine["experiment"]])
        assert sorted(d.dataset_id for d in own) == sorted(mine["datasets"])
        denied(lambda: client.search_datasets(experiment_ids=[theirs["experiment"]]))
    # The auditor searches every experiment: team-a's datasets are dropped item by item, and
    # pages stay full while readable ones remain.
    with acting_as(auditor) as client:
        flt = f"name LIKE '%-{tag}-ds%'"
        first = client.search_datasets(filter_string=flt, max_results=2)
        assert len(first) == 2 and first.token
        second = client.search_datasets(filter_string=flt, max_results=2, page_token=first.token)
        seen = [d.dataset_id for d in first] + [d.dataset_id for d in second]
        assert sorted(seen) == sorted(mine["datasets"])
        assert not second.token


def test_latest_versions_and_webhooks_are_filtered_item_by_item(auditor, admin, holdings):
    with acting_as(auditor) as client:
        assert [v.version for v in client.get_latest_versions(holdings["model"])] == ["2"]
        hooks = {h.webhook_id for h in client.list_webhooks(max_results=1000)}
        assert holdings["webhooks"][1] in hooks and holdings["webhooks"][0] not in hooks
    with acting_as(admin) as client:
        assert holdings["webhooks"][0] in {h.webhook_id for h in client.list_webhooks(max_results=1000)}


def _dataset_page(stack, who, token=None, flt=None):
    body = {"filter_string": flt, "max_results": 1}
    if token:
        body["page_token"] = token
    return requests.post(stack.url + DATASET_SEARCH, json=body, auth=who.requests_auth(), timeout=30)


def test_page_tokens_are_bound_to_caller_and_query_and_survive_restarts(
        stack, reader, auditor, holdings):
    flt = f"name LIKE '%-{holdings['tag']}-ds%'"
    r = _dataset_page(stack, auditor, flt=flt)
    assert r.status_code == 200, r.text
    token = r.json()["next_page_token"]
    assert token.startswith("mlg1.")
    # Another user, or the same user with another filter: refused.
    assert_mlflow_error(_dataset_page(stack, reader, token, flt), 400, "INVALID_PARAMETER_VALUE")
    assert_mlflow_error(_dataset_page(stack, auditor, token, "name LIKE '%'"), 400,
                        "INVALID_PARAMETER_VALUE")
    # A restarted mlgate accepts it (the key comes from the master key in the data dir) ...
    stack.stop_gateway()
    stack.start_gateway()
    after = _dataset_page(stack, auditor, token, flt)
    assert after.status_code == 200, after.text
    assert after.json()["datasets"][0]["dataset_id"] in holdings["team-b"]["datasets"]
    # ... and so does a second replica sharing the master key, but not one with another key.
    replica = stack.replica()
    replica.start_gateway()
    try:
        assert _dataset_page(replica, auditor, token, flt).status_code == 200
    finally:
        replica.stop_gateway()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLGATE_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
        replica.start_gateway()
    try:
        assert_mlflow_error(_dataset_page(replica, auditor, token, flt), 400,
                            "INVALID_PARAMETER_VALUE")
    finally:
        replica.stop_gateway()


def test_artifact_listings_stay_inside_their_owner(stack, listing_teams, holdings):
    theirs, mine = holdings["team-a"], holdings["team-b"]
    b = listing_teams["team-b"].requests_auth()
    # Their experiment's directory, and a path that climbs from mine into theirs.
    for path in (f"{theirs['experiment']}", f"{mine['experiment']}/../{theirs['experiment']}"):
        r = requests.get(f"{stack.url}/api/2.0/mlflow-artifacts/artifacts", auth=b, timeout=30,
                         params={"path": path})
        assert r.status_code in (400, 403), r.text
    r = requests.get(f"{stack.url}/api/2.0/mlflow-artifacts/artifacts", auth=b, timeout=30,
                     params={"path": f"{mine['experiment']}/traces"})
    assert r.status_code == 200, r.text


def test_the_artifact_stores_root_lists_only_readable_experiments(stack, auditor, holdings):
    # The auditor may list the root (the server) but not team-a's experiment.
    theirs, mine = holdings["team-a"], holdings["team-b"]
    b = auditor.requests_auth()
    for prefix in ("/api/2.0", "/ajax-api/2.0"):
        for params in ({}, {"path": ""}):
            r = requests.get(f"{stack.url}{prefix}/mlflow-artifacts/artifacts", auth=b, timeout=30,
                             params=params)
            assert r.status_code == 200, r.text
            folders = {f["path"] for f in r.json().get("files", [])}
            assert mine["experiment"] in folders and theirs["experiment"] not in folders, folders


def test_searches_see_creators_as_the_direct_reads_do(stack, tmp_path):
    """`mlflow:ResourceCreator` in a search: each item is decided with the creator mlgate
    recorded for it, so a creator-scoped policy lists exactly what it lets the user get."""
    tag = uuid.uuid4().hex[:8]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Resource": "arn:mlflow:*:*:server",
             "Action": ["mlflow:CreateExperiment", "mlflow:SearchExperiments",
                        "mlflow:SearchRegisteredModels"]},
            {"Effect": "Allow", "Action": "mlflow:CreateRegisteredModel",
             "Resource": f"arn:mlflow:*:*:registered-model/{tag}-*"},
            {"Effect": "Allow", "Action": "mlflow:*",
             "Resource": ["arn:mlflow:*:*:experiment/*", "arn:mlflow:*:*:registered-model/*"],
             "Condition": {"StringEquals": {"mlflow:ResourceCreator": "${aws:username}"}}},
        ],
    }
    first, second = (_user(stack, f"creator{i}", policy, tmp_path) for i in range(2))
    made = {}
    for who, count in ((first, 2), (second, 1)):
        with acting_as(who) as client:
            made[who.name] = (
                sorted(client.create_experiment(f"{tag}/{who.name}-{i}") for i in range(count)),
                sorted(client.create_registered_model(f"{tag}-{who.name}-{i}").name
                       for i in range(count)),
            )
    for who in (first, second):
        with acting_as(who) as client:
            experiments = client.search_experiments(filter_string=f"name LIKE '{tag}/%'",
                                                    max_results=1)
            ids = [e.experiment_id for e in experiments]
            token = experiments.token
            while token:
                page = client.search_experiments(filter_string=f"name LIKE '{tag}/%'",
                                                 max_results=1, page_token=token)
                ids += [e.experiment_id for e in page]
                token = page.token
            assert sorted(ids) == made[who.name][0]
            models = client.search_registered_models(filter_string=f"name LIKE '{tag}-%'")
            assert sorted(m.name for m in models) == made[who.name][1]
