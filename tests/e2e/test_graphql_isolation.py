"""Team isolation through `/graphql` (issue 5): each root field is decided with its arguments as
the REST request it amounts to (run → experiment resolved, experiment name as condition key),
every field must be allowed, unknown fields are denied, aliases and fragments smuggle nothing, a
run's nested `experiment` is decided too, lists of model versions in the answer only hold
readable ones, and the audit record names each field's decision. The queries are the MLflow UI's
own (mlflow/server/js of the pinned MLflow)."""

from __future__ import annotations

import uuid

import pytest
import requests

from support import acting_as, assert_mlflow_error, mlflow
from test_isolation import TEAMS, teams  # noqa: F401  (session fixture)

# The UI's run page query (3.17.2), `@component` directive included.
UI_GET_RUN = """query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetRun(input: $data) {
      apiError { helpUrl code message }
      run {
        info { runName status runUuid experimentId artifactUri endTime lifecycleStage startTime userId }
        experiment { experimentId name tags { key value } artifactLocation lifecycleStage lastUpdateTime }
        modelVersions { status version name source }
        data { metrics { key value step timestamp } params { key value } tags { key value } }
      }
    }
  }"""

UI_GET_EXPERIMENT = """query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetExperiment(input: $input) {
      apiError { code message }
      experiment { artifactLocation creationTime experimentId lastUpdateTime lifecycleStage name tags { key value } }
    }
  }"""

UI_SEARCH_RUNS = """query SearchRuns($data: MlflowSearchRunsInput!) {
    mlflowSearchRuns(input: $data) {
      apiError { helpUrl code message }
      runs {
        info { runName status runUuid experimentId }
        experiment { experimentId name }
        data { params { key value } }
        modelVersions { version name creationTimestamp status source }
      }
    }
  }"""


def gql(stack, who, query: str, variables: dict | None = None, operation: str | None = None):
    body = {"query": query, "variables": variables or {}}
    if operation:
        body["operationName"] = operation
    return requests.post(f"{stack.url}/graphql", json=body, auth=who.requests_auth(), timeout=30)


def ok(resp) -> dict:
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert not out.get("errors"), out
    return out["data"]


@pytest.fixture(scope="module")
def estate(teams):  # noqa: F811
    """Each team: 2 experiments (`team-x/gql-<tag>-<i>`), a run with a param, a model version
    from the run. Small: other modules' UI tests look for experiments on the first page."""
    tag = uuid.uuid4().hex[:8]
    out = {"tag": tag}
    for team in TEAMS:
        with acting_as(teams[team]) as client:
            ids = [client.create_experiment(f"{team}/gql-{tag}-{i}") for i in range(2)]
            with mlflow.start_run(experiment_id=ids[0]) as run:
                mlflow.log_param("p", team)
            model = f"{team}-gql-{tag}"
            client.create_registered_model(model)
            client.create_model_version(model, source=f"runs:/{run.info.run_id}/m",
                                        run_id=run.info.run_id)
        out[team] = {"experiments": ids, "run": run.info.run_id, "model": model}
    return out


@pytest.fixture(scope="module")
def foreign_version(admin, estate):  # noqa: F811
    """A team-b model version registered (by an admin) from team-a's run: it shows up in the
    run's `modelVersions` for anyone who may read the run."""
    tag = estate["tag"]
    model = f"team-b-{tag}-from-a"
    with acting_as(admin) as client:
        client.create_registered_model(model)
        run = estate["team-a"]["run"]
        client.create_model_version(model, source=f"runs:/{run}/secret.txt", run_id=run)
    return model


def test_a_team_reads_its_own_run_and_experiment_as_the_ui_does(stack, teams, estate):  # noqa: F811
    a = teams["team-a"]
    mine = estate["team-a"]
    run = ok(gql(stack, a, UI_GET_RUN, {"data": {"runId": mine["run"]}}))["mlflowGetRun"]["run"]
    assert run["info"]["runUuid"] == mine["run"]
    assert run["experiment"]["experimentId"] == mine["experiments"][0]
    assert {"key": "p", "value": "team-a"} in run["data"]["params"]
    assert [v["name"] for v in run["modelVersions"]] == [mine["model"]]
    exp = ok(gql(stack, a, UI_GET_EXPERIMENT, {"input": {"experimentId": mine["experiments"][1]}}))
    assert exp["mlflowGetExperiment"]["experiment"]["name"].startswith("team-a/")
    runs = ok(gql(stack, a, UI_SEARCH_RUNS, {"data": {"experimentIds": [mine["experiments"][0]]}}))
    assert [r["info"]["runUuid"] for r in runs["mlflowSearchRuns"]["runs"]] == [mine["run"]]


def test_the_other_teams_run_experiment_and_artifacts_are_refused(stack, teams, estate):  # noqa: F811
    b = teams["team-b"]
    theirs = estate["team-a"]
    for query, variables in [
        (UI_GET_RUN, {"data": {"runId": theirs["run"]}}),
        (UI_GET_RUN, {"data": {"runUuid": theirs["run"]}}),
        (UI_GET_EXPERIMENT, {"input": {"experimentId": theirs["experiments"][0]}}),
        ("query L($r: String) { mlflowListArtifacts(input: {runId: $r}) { files { path } } }",
         {"r": theirs["run"]}),
        ("{ mlflowGetMetricHistoryBulkInterval(input: {runIds: [\"%s\", \"%s\"], metricKey: \"m\"})"
         " { metrics { value } } }" % (estate["team-b"]["run"], theirs["run"]), {}),
    ]:
        resp = gql(stack, b, query, variables)
        body = assert_mlflow_error(resp, 403, "PERMISSION_DENIED")
        assert "GraphQL field" in body["message"], body
        assert "team-a" not in resp.text


def test_search_runs_is_narrowed_to_readable_experiments(stack, teams, estate, audit):  # noqa: F811
    """As REST SearchRuns: the other team's experiments are dropped from `experimentIds` before
    MLflow sees them, whether the ids are written in the query, a variable, or the whole
    `input` variable; the owner's search is unchanged."""
    b = teams["team-b"]
    theirs, mine = estate["team-a"], estate["team-b"]
    both = [mine["experiments"][0], theirs["experiments"][0]]
    runs_of = lambda data, key="mlflowSearchRuns": [r["info"]["runUuid"] for r in data[key]["runs"]]
    # the whole input as a variable (the UI's query), its other fields kept (MLflow 3.17.2's
    # GraphQL cannot read a runViewType at all: graphene hands it the enum class)
    data = ok(gql(stack, b, UI_SEARCH_RUNS, {"data": {"experimentIds": both, "maxResults": 5,
                                                     "orderBy": ["attributes.start_time DESC"]}}))
    assert runs_of(data) == [mine["run"]]
    # a variable for the ids; inline literals (a list, a single id), as a query and as a
    # mutation, next to another root field
    data = ok(gql(stack, b, "query Q($ids: [String]) { mlflowSearchRuns(input: {experimentIds: $ids,"
                            " filter: \"\"}) { runs { info { runUuid } } } }", {"ids": both}))
    assert runs_of(data) == [mine["run"]]
    ids = ", ".join('"%s"' % i for i in both)
    data = ok(gql(stack, b, "mutation { one: mlflowSearchRuns(input: {experimentIds: \"%s\"}) { runs { info { runUuid } } }"
                            " both: mlflowSearchRuns(input: {filter: \"\" experimentIds: [%s] maxResults: 10})"
                            " { runs { info { runUuid } } } }" % (theirs["experiments"][0], ids)))
    assert runs_of(data, "one") == [] and runs_of(data, "both") == [mine["run"]]
    assert "team-a" not in str(data)
    # none readable: nothing searched
    data = ok(gql(stack, b, UI_SEARCH_RUNS, {"data": {"experimentIds": [theirs["experiments"][0]]}}))
    assert not data["mlflowSearchRuns"]["runs"]
    # the owner sees its runs in both
    data = ok(gql(stack, teams["team-a"], UI_SEARCH_RUNS, {"data": {"experimentIds": both}}))
    assert runs_of(data) == [theirs["run"]]
    # one variable shared by two searches is narrowed once for both; the audit record says so
    mark = audit.mark()
    data = ok(gql(stack, b, "query Q($ids: [String]) { s: mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runUuid } } }"
                            " t: mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runUuid } } } }",
                  {"ids": both}))
    assert runs_of(data, "s") == runs_of(data, "t") == [mine["run"]]
    records = [r for r in audit.wait_for(mark, 1) if r.get("path") == "/graphql"]
    assert "s=mlflowSearchRuns narrowed to 1 of 2 experiment(s)" in records[-1]["reason"], records[-1]


def test_searches_return_nothing_of_the_other_team(stack, teams, estate):  # noqa: F811
    b = teams["team-b"]
    tag = estate["tag"]
    # Model versions of both teams match; only team-b's come back.
    data = ok(gql(stack, b, "{ mlflowSearchModelVersions(input: {filter: \"name LIKE '%%%s%%'\"})"
                            " { modelVersions { name version } } }" % tag))
    names = {v["name"] for v in data["mlflowSearchModelVersions"]["modelVersions"]}
    assert names == {estate["team-b"]["model"]}
    # Without the name selected mlgate cannot tell whose a version is: none is kept.
    data = ok(gql(stack, b, "{ mlflowSearchModelVersions(input: {filter: \"name LIKE '%%%s%%'\"})"
                            " { modelVersions { source } } }" % tag))
    assert data["mlflowSearchModelVersions"]["modelVersions"] == []


def test_model_version_pages_are_refilled(stack, teams, estate):  # noqa: F811
    """As the REST search: a page of `maxResults` readable versions, MLflow asked for more pages
    when the first holds the other team's; the token handed out is mlgate's."""
    tag = estate["tag"]
    query = ("query V($input: MlflowSearchModelVersionsInput) { mlflowSearchModelVersions(input: $input)"
             " { next: nextPageToken modelVersions { name version } } }")
    first = {"filter": f"name LIKE 'team-%-gql-{tag}'", "maxResults": 1, "orderBy": ["name ASC"]}
    # team-a's version sorts first: team-b's page of one is still full
    page = ok(gql(stack, teams["team-b"], query, {"input": first}))["mlflowSearchModelVersions"]
    assert [v["name"] for v in page["modelVersions"]] == [estate["team-b"]["model"]]
    assert page["next"] is None
    # the owner's first page holds its own, with mlgate's token to the next one
    page = ok(gql(stack, teams["team-a"], query, {"input": first}))["mlflowSearchModelVersions"]
    assert [v["name"] for v in page["modelVersions"]] == [estate["team-a"]["model"]]
    assert page["next"].startswith("mlg1."), page
    more = ok(gql(stack, teams["team-a"], query, {"input": {**first, "pageToken": page["next"]}}))
    assert more["mlflowSearchModelVersions"]["modelVersions"] == [] and more["mlflowSearchModelVersions"]["next"] is None
    # inline input, token not selected: none is added to the answer
    inline = ("{ mlflowSearchModelVersions(input: {filter: \"name LIKE 'team-%%-gql-%s'\", maxResults: 1,"
              " orderBy: [\"name ASC\"]}) { modelVersions { name version } } }" % tag)
    page = ok(gql(stack, teams["team-b"], inline))["mlflowSearchModelVersions"]
    assert page == {"modelVersions": [{"name": estate["team-b"]["model"], "version": "1"}]}
    # a token mlgate did not hand to this caller for this search is refused
    resp = gql(stack, teams["team-b"], query, {"input": {**first, "pageToken": "1"}})
    assert_mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_nested_model_versions_of_an_unreadable_model_are_stripped(stack, teams, estate, foreign_version):  # noqa: F811
    a = teams["team-a"]
    mine = estate["team-a"]
    run = ok(gql(stack, a, UI_GET_RUN, {"data": {"runId": mine["run"]}}))["mlflowGetRun"]["run"]
    assert [v["name"] for v in run["modelVersions"]] == [mine["model"]]
    runs = ok(gql(stack, a, UI_SEARCH_RUNS, {"data": {"experimentIds": [mine["experiments"][0]]}}))
    assert [v["name"] for v in runs["mlflowSearchRuns"]["runs"][0]["modelVersions"]] == [mine["model"]]
    assert foreign_version not in str(runs)


def test_unknown_fields_and_smuggling_are_refused(stack, teams, estate):  # noqa: F811
    b = teams["team-b"]
    theirs, mine = estate["team-a"], estate["team-b"]
    # an unknown root field, and a query field disguised as a mutation
    resp = gql(stack, b, "{ mlflowDeleteExperiment(input: {experimentId: \"1\"}) { ok } }")
    assert "unknown root field" in assert_mlflow_error(resp, 403, "PERMISSION_DENIED")["message"]
    resp = gql(stack, b, "mutation { mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } } }"
               % theirs["run"])
    assert_mlflow_error(resp, 403, "PERMISSION_DENIED")
    # an alias named like an allowed field, a fragment, an inline fragment: all decided
    for query in [
        "{ test: mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } } }" % theirs["run"],
        "{ ...F } fragment F on Query { mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } } }"
        % theirs["run"],
        "{ mine: mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } }"
        " ... on Query { x: mlflowGetExperiment(input: {experimentId: \"%s\"}) { experiment { name } } } }"
        % (mine["run"], theirs["experiments"][0]),
    ]:
        resp = gql(stack, b, query)
        assert_mlflow_error(resp, 403, "PERMISSION_DENIED")
        assert "team-a" not in resp.text
    # operationName picks what executes: the harmless operation cannot cover the other one
    doc = ("query Mine { mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } } }"
           " query Theirs { mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } } }"
           % (mine["run"], theirs["run"]))
    assert ok(gql(stack, b, doc, operation="Mine"))["mlflowGetRun"]["run"]["info"]["runId"] == mine["run"]
    assert_mlflow_error(gql(stack, b, doc, operation="Theirs"), 403, "PERMISSION_DENIED")
    assert_mlflow_error(gql(stack, b, doc), 400, "INVALID_PARAMETER_VALUE")
    # an alias passing another field off as the model name the filter reads
    resp = gql(stack, b, "{ mlflowSearchModelVersions(input: {}) { modelVersions { name: description version } } }")
    assert_mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")
    # deep nesting and garbage: a clean 400, never a 500
    deep = "{ test(inputString: \"x\") " + "{ a " * 200 + "}" * 201
    assert_mlflow_error(gql(stack, b, deep), 400, "INVALID_PARAMETER_VALUE")
    resp = requests.post(f"{stack.url}/graphql", data=b"{not json", auth=b.requests_auth(),
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert_mlflow_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_audit_names_each_fields_decision(stack, teams, estate, audit):  # noqa: F811
    b = teams["team-b"]
    mine, theirs = estate["team-b"], estate["team-a"]
    mark = audit.mark()
    query = ("{ own: mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } experiment { name } } }"
             " t: test(inputString: \"x\") { output } }" % mine["run"])
    assert gql(stack, b, query).status_code in (200, 403)
    denied = ("{ own: mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } }"
              " other: mlflowGetRun(input: {runId: \"%s\"}) { run { info { runId } } } }"
              % (mine["run"], theirs["run"]))
    assert_mlflow_error(gql(stack, b, denied), 403, "PERMISSION_DENIED")
    records = [r for r in audit.wait_for(mark, 2) if r.get("path") == "/graphql"]
    first, second = records[-2], records[-1]
    assert first["actions"][:2] == ["mlflow:GetRun", "mlflow:GetExperiment"], first
    assert any(r.endswith(f"/run/{mine['run']}") for r in first["resources"]), first
    if first["decision"] == "Allow":
        assert "own=mlflowGetRun mlflow:GetRun" in first["reason"], first
    assert second["actions"][:2] == ["mlflow:GetRun", "mlflow:GetRun"], second
    assert any(r.endswith(f"/run/{theirs['run']}") for r in second["resources"]), second
    assert second["decision"] != "Allow", second
    assert "GraphQL field 'other'" in second["reason"], second


def test_readers_graphql_introspection_and_test_fields(stack, reader, teams):  # noqa: F811
    # `test`, `__typename` and introspection are `mlflow:GraphQLQuery` on the server: the demo
    # reader has it, a team user (no such statement) does not.
    q = "{ __typename test(inputString: \"hi\") { output } __schema { queryType { name } } }"
    data = ok(gql(stack, reader, q))
    assert data["test"]["output"] == "hi" and data["__typename"] == "Query"
    assert_mlflow_error(gql(stack, teams["team-a"], q), 403, "PERMISSION_DENIED")
