"""A write is decided on every resource it names, not only on the one it writes.

Two users who may each only touch their own experiments (`mlflow:ExperimentName` like
`${aws:username}/*`) and their own models (`registered-model/${aws:username}-*`). The attack: bob
creates a version of *his own* model whose `source` names alice's model version, in each form
MLflow resolves (`models:/<name>/<version>`, `@alias`, `/latest`, a stage name, a zero-padded
version), or whose `source` lies in alice's run; MLflow would then serve alice's files through
bob's version. The legitimate uses keep working: registering from one's own run (the MLflow 3
logged-model flow and the `runs:/` flow), and `MlflowClient.copy_model_version` by someone who may
read the source model but not the experiment behind it.

Evaluation datasets and scorers lie under their experiment(s): each owner reads their own through
the real MLflow client with nothing but the experiment-name policy, and a dataset linked to an
experiment of someone else's is not listed by a search naming one's own experiment."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from mlflow.exceptions import MlflowException
from mlflow.genai import datasets as genai_datasets

from support import EchoModel, Identity, acting_as, assert_mlflow_error, denied, mlflow

CREATE_VERSION = "/api/2.0/mlflow/model-versions/create"
GET_VERSION_ARTIFACT = "/model-versions/get-artifact"
SECRET = "secret.txt"


def personal_policy(extra: list | None = None) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Searches",
                "Effect": "Allow",
                "Action": ["mlflow:SearchExperiments", "mlflow:SearchRegisteredModels",
                           "mlflow:SearchModelVersions", "mlflow:SearchLoggedModels",
                           "mlflow:SearchEvaluationDatasets"],
                "Resource": "arn:mlflow:*:*:server",
            },
            {
                "Sid": "OwnExperiments",
                "Effect": "Allow",
                "Action": "mlflow:*",
                "Resource": ["arn:mlflow:*:*:server", "arn:mlflow:*:*:experiment/*"],
                "Condition": {"StringLike": {"mlflow:ExperimentName": "${aws:username}/*"}},
            },
            {
                "Sid": "OwnModels",
                "Effect": "Allow",
                "Action": "mlflow:*",
                "Resource": "arn:mlflow:*:*:registered-model/${aws:username}-*",
            },
        ] + (extra or []),
    }


def _user(stack, name: str, policy: dict, directory: Path) -> Identity:
    password = uuid.uuid4().hex
    stack.mlgate("user", "create", name, "--password-env", "PW", env={"PW": password})
    path = Path(directory, f"{name}.json")
    path.write_text(json.dumps(policy))
    stack.mlgate("policy", "put", f"personal-{name}", "-f", str(path))
    stack.mlgate("policy", "attach", f"personal-{name}", "--user", name)
    return Identity(name, password)


@pytest.fixture(scope="module")
def people(stack, tmp_path_factory):
    """alice and bob (personal policies), and carol who may also read alice's model."""
    tag = uuid.uuid4().hex[:6]
    d = tmp_path_factory.mktemp("reference-policies")
    alice, bob, carol = (f"{who}{tag}" for who in ("alice", "bob", "carol"))
    read_alice_model = {
        "Sid": "ReadAlicesModel",
        "Effect": "Allow",
        "Action": ["mlflow:Get*"],
        "Resource": [f"arn:mlflow:*:*:registered-model/{alice}-m",
                     f"arn:mlflow:*:*:registered-model/{alice}-m/*"],
    }
    return {
        "alice": _user(stack, alice, personal_policy(), d),
        "bob": _user(stack, bob, personal_policy(), d),
        "carol": _user(stack, carol, personal_policy([read_alice_model]), d),
    }


def _own_run(client, who: Identity, text: str):
    """An experiment `<who>/refs`, a run with a secret artifact; returns the run."""
    experiment = client.create_experiment(f"{who.name}/refs-{uuid.uuid4().hex[:6]}")
    with mlflow.start_run(experiment_id=experiment) as run:
        with tempfile.TemporaryDirectory() as d:
            Path(d, SECRET).write_text(text)
            mlflow.log_artifact(str(Path(d, SECRET)), artifact_path="model")
    return run


@pytest.fixture(scope="module")
def alices(people):
    """alice's model `<alice>-m`: version 1 from her run, alias `champion`, stage Production."""
    alice = people["alice"]
    with acting_as(alice) as client:
        run = _own_run(client, alice, "alice's secret\n")
        model = f"{alice.name}-m"
        client.create_registered_model(model)
        version = client.create_model_version(
            model, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        client.set_registered_model_alias(model, "champion", version.version)
        client.transition_model_version_stage(model, version.version, "Production")
    return {"model": model, "run": run, "version": version.version}


def _post(stack, who: Identity, body: dict) -> requests.Response:
    return requests.post(stack.url + CREATE_VERSION, json=body, auth=who.requests_auth(), timeout=30)


def _version_file(stack, who: Identity, model: str, version: str) -> requests.Response:
    return requests.get(stack.url + GET_VERSION_ARTIFACT,
                        params={"name": model, "version": version, "path": SECRET},
                        auth=who.requests_auth(), timeout=30)


@pytest.mark.parametrize("suffix", ["/1", "/01", "@champion", "/latest", "/LATEST", "/Production",
                                    "/production"])
def test_a_source_naming_someone_elses_model_version_is_refused(stack, people, alices, suffix):
    bob = people["bob"]
    own = f"{bob.name}-m{uuid.uuid4().hex[:4]}"
    with acting_as(bob) as client:
        client.create_registered_model(own)
        # Bob may not read alice's model himself...
        denied(lambda: client.get_model_version(alices["model"], alices["version"]))
        # ...nor make MLflow copy it into his, in any spelling MLflow resolves.
        source = f"models:/{alices['model']}{suffix}"
        e = denied(lambda: client.create_model_version(own, source=source))
        assert "mlflow:GetArtifact" in e.message and f"registered-model/{alices['model']}/version/1" in e.message
        assert client.search_model_versions(f"name = '{own}'") == []
    # The URI scheme is read case-insensitively by MLflow, and so by mlgate.
    r = _post(stack, bob, {"name": own, "source": f"MODELS:/{alices['model']}/1"})
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    # Forms MLflow could read past mlgate are refused outright.
    for odd in (f"models://x/{alices['model']}/1", f"models:/{alices['model']}/1?x=1",
                f"models:/{alices['model']}/\u0661"):
        assert_mlflow_error(_post(stack, bob, {"name": own, "source": odd}), 400,
                            "INVALID_PARAMETER_VALUE")


def test_a_source_inside_someone_elses_run_is_refused(stack, people, alices):
    bob = people["bob"]
    alice_run = alices["run"]
    with acting_as(bob) as client:
        own_run = _own_run(client, bob, "bob's own\n")
        own = f"{bob.name}-m{uuid.uuid4().hex[:4]}"
        client.create_registered_model(own)
        attempts = [
            # runs:/ of alice's run, with her run id as MLflow requires.
            {"source": f"runs:/{alice_run.info.run_id}/model", "run_id": alice_run.info.run_id},
            # alice's artifact location, tied to her run.
            {"source": f"{alice_run.info.artifact_uri}/model", "run_id": alice_run.info.run_id},
            # alice's artifact location, tied to bob's own run: not inside it, so the files
            # belong to no experiment bob may read.
            {"source": f"{alice_run.info.artifact_uri}/model", "run_id": own_run.info.run_id},
            # a storage location MLflow itself does not check against the run.
            {"source": "s3://bucket/elsewhere/model", "run_id": own_run.info.run_id},
            {"source": "s3://bucket/elsewhere/model"},
        ]
    for attempt in attempts:
        r = _post(stack, bob, {"name": own, **attempt})
        assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    with acting_as(bob) as client:
        assert client.search_model_versions(f"name = '{own}'") == []


def test_registering_from_ones_own_run_keeps_working(stack, people):
    bob = people["bob"]
    with acting_as(bob) as client:
        run = _own_run(client, bob, "bob's model\n")
        own = f"{bob.name}-m{uuid.uuid4().hex[:4]}"
        client.create_registered_model(own)
        v1 = client.create_model_version(own, source=f"runs:/{run.info.run_id}/model",
                                         run_id=run.info.run_id)
        v2 = client.create_model_version(own, source=f"{run.info.artifact_uri}/model",
                                         run_id=run.info.run_id)
        # MLflow 3's flow: a logged model, then register_model with its models:/<model_id> URI.
        experiment = client.get_run(run.info.run_id).info.experiment_id
        with mlflow.start_run(experiment_id=experiment):
            logged = mlflow.pyfunc.log_model(name="echo", python_model=EchoModel())
        v3 = mlflow.register_model(logged.model_uri, own)
        assert [v1.version, v2.version, v3.version] == ["1", "2", "3"]
        # A version copied from one of his own keeps working, by alias too.
        client.set_registered_model_alias(own, "best", "2")
        copy = client.create_model_version(own, source=f"models:/{own}@best")
        assert copy.source == f"models:/{own}/2"
    r = _version_file(stack, bob, own, copy.version)
    assert r.status_code == 200 and r.text == "bob's model\n"


def test_a_reader_of_the_source_model_may_copy_it(stack, people, alices, audit):
    carol = people["carol"]
    target = f"{carol.name}-copy"
    with acting_as(carol) as client:
        # carol may read alice's model, but not alice's experiment or run.
        denied(lambda: client.get_run(alices["run"].info.run_id))
        mark = audit.mark()
        copy = client.copy_model_version(f"models:/{alices['model']}@champion", target)
        # MLflow resolves the alias; mlgate pinned the version it decided.
        assert copy.source == f"models:/{alices['model']}/{alices['version']}"
    r = _version_file(stack, carol, target, copy.version)
    assert r.status_code == 200 and r.text == "alice's secret\n"
    audit.mark()  # the records of the copy's requests are all written
    created = [rec for rec in audit.records_since(mark)
               if rec.get("path", "").endswith(CREATE_VERSION) and rec["status"] == 200]
    assert created, "the copy is audited"
    record = created[-1]
    assert {"mlflow:CreateModelVersion", "mlflow:GetArtifact"} <= set(record["actions"]), record
    assert any(arn.endswith(f"registered-model/{alices['model']}/version/{alices['version']}")
               for arn in record["resources"]), record

    # Bob, who may not read alice's model, cannot make the same copy.
    # (copy_model_version wraps the server's error in one of its own.)
    with acting_as(people["bob"]) as client:
        with pytest.raises(MlflowException) as refused:
            client.copy_model_version(f"models:/{alices['model']}/1", f"{people['bob'].name}-copy")
        assert "PERMISSION_DENIED" in str(refused.value) or "not authorized" in str(refused.value)
        assert client.search_model_versions(f"name = '{people['bob'].name}-copy'") == []


def _trace_info(trace_id: str, experiment: str) -> dict:
    return {"trace": {"trace_info": {
        "trace_id": trace_id,
        "trace_location": {"type": "MLFLOW_EXPERIMENT",
                           "mlflow_experiment": {"experiment_id": experiment}},
        "request_time": "2026-01-01T00:00:00Z",
        "state": "OK",
        "trace_metadata": {"overwritten": "yes"},
    }}}


def test_a_trace_id_in_the_body_names_an_existing_trace(stack, people):
    """StartTrace with someone else's trace id would overwrite their trace and move it into the
    caller's experiment: the existing trace is decided as a write of its own experiment."""
    alice, bob = people["alice"], people["bob"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        with acting_as(alice) as client:
            alice_exp = client.create_experiment(f"{alice.name}/traces-{uuid.uuid4().hex[:6]}")
            env.setenv("MLFLOW_EXPERIMENT_ID", alice_exp)
            with mlflow.start_span(name="alice-span") as span:
                span.set_outputs({"secret": "alice"})
            (trace,) = client.search_traces(locations=[alice_exp], include_spans=False)
        with acting_as(bob) as client:
            bob_exp = client.create_experiment(f"{bob.name}/traces-{uuid.uuid4().hex[:6]}")
    url = stack.url + "/api/3.0/mlflow/traces"
    r = requests.post(url, json=_trace_info(trace.info.trace_id, bob_exp), auth=bob.requests_auth(),
                      timeout=30)
    body = assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    assert "mlflow:StartTrace" in body["message"] and f"trace/{trace.info.trace_id}" in body["message"]
    with acting_as(alice) as client:
        info = client.get_trace(trace.info.trace_id).info
        assert info.experiment_id == alice_exp and "overwritten" not in info.trace_metadata
    # A new trace id, and the caller writing their own trace again, are fine.
    own = f"tr-{uuid.uuid4().hex}"
    for _ in range(2):
        r = requests.post(url, json=_trace_info(own, bob_exp), auth=bob.requests_auth(), timeout=30)
        assert r.status_code == 200, r.text


def test_a_body_cannot_retarget_a_path_identifier(stack, people):
    """MLflow's FinalizeLoggedModel finalizes the model_id of the body, not the path's: a body
    naming someone else's logged model under one's own path is refused."""
    alice, bob = people["alice"], people["bob"]
    with acting_as(alice) as client:
        exp = client.create_experiment(f"{alice.name}/lm-{uuid.uuid4().hex[:6]}")
        theirs = client.create_logged_model(experiment_id=exp, name="theirs")
    with acting_as(bob) as client:
        exp = client.create_experiment(f"{bob.name}/lm-{uuid.uuid4().hex[:6]}")
        mine = client.create_logged_model(experiment_id=exp, name="mine")
    url = f"{stack.url}/api/2.0/mlflow/logged-models/{mine.model_id}"
    r = requests.patch(url, json={"model_id": theirs.model_id, "status": "LOGGED_MODEL_UPLOAD_FAILED"},
                       auth=bob.requests_auth(), timeout=30)
    assert_mlflow_error(r, 400, "INVALID_PARAMETER_VALUE")
    with acting_as(alice) as client:
        assert str(client.get_logged_model(theirs.model_id).status) != "FAILED"
    r = requests.patch(url, json={"model_id": mine.model_id, "status": "LOGGED_MODEL_READY"},
                       auth=bob.requests_auth(), timeout=30)
    assert r.status_code == 200, r.text


def _register_scorer(stack, who: Identity, experiment: str, name: str) -> requests.Response:
    """A built-in judge registered in `experiment` (as the MLflow client serializes one)."""
    body = {"experiment_id": experiment, "name": name,
            "serialized_scorer": json.dumps({"name": name, "builtin_scorer_class": "Safety",
                                             "builtin_scorer_pydantic_data": {"name": name}})}
    return requests.post(f"{stack.url}/api/3.0/mlflow/scorers/register", json=body,
                         auth=who.requests_auth(), timeout=30)


@pytest.fixture(scope="module")
def evaluation(stack, people, admin):
    """alice's and bob's experiments, each with a dataset of its owner and a scorer, and a dataset
    the admin linked to both."""
    tag = uuid.uuid4().hex[:6]
    out = {}
    for who in ("alice", "bob"):
        person = people[who]
        with acting_as(person) as client:
            experiment = client.create_experiment(f"{person.name}/eval-{tag}")
            dataset = genai_datasets.create_dataset(name=f"{who}-{tag}", experiment_id=experiment)
        assert _register_scorer(stack, admin, experiment, f"judge-{tag}").status_code == 200
        out[who] = {"experiment": experiment, "dataset": dataset.dataset_id,
                    "scorer": f"judge-{tag}"}
    with acting_as(admin):
        shared = genai_datasets.create_dataset(
            name=f"shared-{tag}", experiment_id=[out["alice"]["experiment"], out["bob"]["experiment"]])
    out["shared"] = shared.dataset_id
    return out


def _get_scorer(stack, who: Identity, experiment: str, name: str) -> requests.Response:
    return requests.get(f"{stack.url}/api/3.0/mlflow/scorers/get",
                        params={"experiment_id": experiment, "name": name},
                        auth=who.requests_auth(), timeout=30)


def test_owners_read_their_datasets_and_scorers_under_their_experiments(stack, people, evaluation):
    for who in ("alice", "bob"):
        mine = evaluation[who]
        with acting_as(people[who]):
            dataset = genai_datasets.get_dataset(dataset_id=mine["dataset"])
            assert dataset.experiment_ids == [mine["experiment"]]
            dataset.merge_records([{"inputs": {"q": who}, "expectations": {"a": who}}])
            assert len(genai_datasets.get_dataset(dataset_id=mine["dataset"]).to_df()) == 1
            # An all-experiments search lists one's own datasets (and nothing of anyone else's).
            listed = {d.dataset_id for d in genai_datasets.search_datasets(filter_string=None)}
            assert mine["dataset"] in listed and evaluation["shared"] not in listed
        # Scorers by their experiment and name (the client's get_scorer also asks for online
        # configs by scorer id, which stay `scorer/<id>`: see docs/policy-reference.md).
        own = f"{mine['scorer']}-{who}"
        assert _register_scorer(stack, people[who], mine["experiment"], own).status_code == 200
        for name in (mine["scorer"], own):
            r = _get_scorer(stack, people[who], mine["experiment"], name)
            assert r.status_code == 200 and r.json()["scorer"]["scorer_name"] == name, r.text


def test_datasets_and_scorers_of_someone_elses_experiment_are_neither_read_nor_listed(
        stack, people, evaluation):
    alices, bobs = evaluation["alice"], evaluation["bob"]
    with acting_as(people["bob"]):
        # A search naming bob's own experiment lists his dataset, not the one also linked to
        # alice's experiment.
        listed = {d.dataset_id for d in genai_datasets.search_datasets(
            experiment_ids=[bobs["experiment"]], filter_string=None)}
        assert listed == {bobs["dataset"]}
        for dataset in (alices["dataset"], evaluation["shared"]):
            denied(lambda: genai_datasets.get_dataset(dataset_id=dataset))
    assert_mlflow_error(_get_scorer(stack, people["bob"], alices["experiment"], alices["scorer"]),
                        403, "PERMISSION_DENIED")
    # Nor may bob link alice's dataset to his experiment, or register a scorer in hers.
    r = requests.post(f"{stack.url}/api/3.0/mlflow/datasets/{alices['dataset']}/add-experiments",
                      json={"experiment_ids": [bobs["experiment"]]},
                      auth=people["bob"].requests_auth(), timeout=30)
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    assert_mlflow_error(_register_scorer(stack, people["bob"], alices["experiment"], "bobs"),
                        403, "PERMISSION_DENIED")


def _judge(name: str, model: str) -> str:
    """A serialized LLM judge (as the MLflow client serializes an instructions judge)."""
    return json.dumps({"name": name, "instructions_judge_pydantic_data": {
        "instructions": "Is {{ outputs }} polite?", "model": model}})


def _register_judge(stack, who: Identity, experiment: str, name: str, serialized: str):
    body = {"experiment_id": experiment, "name": name, "serialized_scorer": serialized}
    return requests.post(f"{stack.url}/api/3.0/mlflow/scorers/register", json=body,
                         auth=who.requests_auth(), timeout=30)


def _refused_endpoint(r: requests.Response, endpoint: str) -> None:
    body = assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    assert "InvokeGatewayEndpoint" in body["message"] and f"gateway-endpoint/{endpoint}" in body["message"], body


def _gateway_endpoint(stack, admin: Identity, name: str) -> None:
    """An AI-gateway endpoint (MLflow checks that a judge's `gateway:/` endpoint exists)."""
    def create(what: str, body: dict) -> dict:
        r = requests.post(f"{stack.url}/api/3.0/mlflow/gateway/{what}/create", json=body,
                          auth=admin.requests_auth(), timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    secret = create("secrets", {"secret_name": f"{name}-key", "secret_value": {"api_key": "sk-test"},
                                "provider": "openai"})["secret"]["secret_id"]
    model = create("model-definitions", {"name": f"{name}-model", "secret_id": secret, "provider": "openai",
                                         "model_name": "gpt-4.1-mini"})["model_definition"]["model_definition_id"]
    create("endpoints", {"name": name, "model_configs": [
        {"model_definition_id": model, "linkage_type": "PRIMARY", "weight": 1}]})


@pytest.fixture(scope="module")
def judges(stack, people, admin, tmp_path_factory):
    """alice's experiment with a trace in it, and dave, who may also call one AI-gateway endpoint."""
    tag = uuid.uuid4().hex[:6]
    allowed = f"judge-ok-{tag}"
    call_one = {"Sid": "CallOneEndpoint", "Effect": "Allow", "Action": "mlflow:InvokeGatewayEndpoint",
                "Resource": f"arn:mlflow:*:*:gateway-endpoint/{allowed}"}
    dave = _user(stack, f"dave{tag}", personal_policy([call_one]), tmp_path_factory.mktemp("judges"))
    secret = f"judge-secret-{tag}"
    for endpoint in (allowed, secret):
        _gateway_endpoint(stack, admin, endpoint)
    alice = people["alice"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        with acting_as(alice) as client:
            experiment = client.create_experiment(f"{alice.name}/judges-{tag}")
            span = mlflow.start_span_no_context(name="judged", experiment_id=experiment)
            span.set_outputs({"answer": "hello"})
            span.end()
            (trace,) = client.search_traces(locations=[experiment], include_spans=False)
    return {"tag": tag, "allowed": allowed, "secret": secret, "dave": dave, "experiment": experiment,
            "trace": trace.info.trace_id}


def test_a_judge_is_decided_on_the_ai_gateway_endpoints_it_calls(stack, people, judges):
    """A judge MLflow runs on the server calls the endpoints its model URIs name: registering it
    needs the right to call each, wherever in the serialized JSON it hides."""
    alice, dave, tag = people["alice"], judges["dave"], judges["tag"]
    experiment, secret = judges["experiment"], judges["secret"]
    _refused_endpoint(_register_judge(stack, alice, experiment, "plain", _judge("plain", f"gateway:/{secret}")), secret)
    # An escaped slash and another case, as JSON text allows.
    escaped = '{"name": "escaped", "instructions_judge_pydantic_data": {"model": "GATEWAY:\\/' + secret + '"}}'
    _refused_endpoint(_register_judge(stack, alice, experiment, "escaped", escaped), secret)
    # An ensemble whose second judge is serialized inside a string.
    nested = json.dumps({"name": "ensemble", "ensemble_scorer_data": {"scorers": [
        json.loads(_judge("first", "openai:/gpt-4.1-mini")), {"payload": _judge("second", f"endpoints:/{secret}")}]}})
    _refused_endpoint(_register_judge(stack, alice, experiment, "ensemble", nested), secret)
    # A judge that is not JSON is refused, never passed on undecided.
    assert_mlflow_error(_register_judge(stack, alice, experiment, "broken", "{not json"), 400)
    # A judge calling no endpoint, and one calling the endpoint its registrant may call: allowed.
    r = _register_judge(stack, alice, experiment, "direct", _judge("direct", "openai:/gpt-4.1-mini"))
    assert r.status_code == 200, r.text
    with acting_as(dave) as client:
        own = client.create_experiment(f"{dave.name}/judges-{tag}")
    r = _register_judge(stack, dave, own, "allowed", _judge("allowed", f"gateway:/{judges['allowed']}"))
    assert r.status_code == 200, r.text
    _refused_endpoint(_register_judge(stack, dave, own, "other", _judge("other", f"gateway:/{secret}")), secret)


def test_a_registered_judge_run_in_place_of_the_one_sent_is_decided_too(stack, people, admin, judges):
    """InvokeScorer and InvokeGenaiEvaluate naming a registered scorer version make MLflow run the
    stored judge, not the one in the request: its endpoints are read from MLflow and decided."""
    alice, experiment, secret = people["alice"], judges["experiment"], judges["secret"]
    r = _register_judge(stack, admin, experiment, "stored", _judge("stored", f"gateway:/{secret}"))
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    harmless = _judge("stored", "openai:/gpt-4.1-mini")
    r = requests.post(f"{stack.url}/ajax-api/3.0/mlflow/scorer/invoke", auth=alice.requests_auth(), timeout=30,
                      json={"experiment_id": experiment, "serialized_scorer": harmless, "scorer_name": "stored",
                            "scorer_version": version, "trace_ids": [judges["trace"]]})
    _refused_endpoint(r, secret)
    r = requests.post(f"{stack.url}/ajax-api/3.0/mlflow/genai/evaluate/invoke", auth=alice.requests_auth(),
                      timeout=30, json={"experiment_id": experiment, "trace_ids": [judges["trace"]],
                                        "serialized_scorers": [harmless], "scorer_versions": [version]})
    _refused_endpoint(r, secret)
    # A version that does not exist is not found, never allowed.
    r = requests.post(f"{stack.url}/ajax-api/3.0/mlflow/scorer/invoke", auth=alice.requests_auth(), timeout=30,
                      json={"experiment_id": experiment, "serialized_scorer": harmless, "scorer_name": "stored",
                            "scorer_version": 999, "trace_ids": [judges["trace"]]})
    assert_mlflow_error(r, 404)
