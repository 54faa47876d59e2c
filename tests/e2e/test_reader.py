"""As mlflow-reader (group readers): every read works, including the reads MLflow sends as POST
(searches, get-latest-versions, GraphQL queries) and artifact and model downloads; every write
fails in the client with PERMISSION_DENIED, and nothing changes in MLflow."""

from pathlib import Path

import pytest
import requests

from support import (
    ADMIN,
    MlflowClient,
    acting_as,
    assert_mlflow_error,
    denied,
    mlflow,
)
from mlflow.entities import Metric, Param, RunTag


def test_reader_reads_experiments_and_runs(reader, world):
    with acting_as(reader) as client:
        exp = client.get_experiment(world.experiment_id)
        assert exp.name == world.experiment_name
        assert client.get_experiment_by_name(world.experiment_name).experiment_id == exp.experiment_id
        found = client.search_experiments(filter_string=f"name = '{world.experiment_name}'")
        assert [e.experiment_id for e in found] == [world.experiment_id]

        run = client.get_run(world.run_id)
        assert run.data.params["alpha"] == "0.5"
        assert run.data.metrics["rmse"] == 0.25
        assert run.data.tags["team"] == "e2e"
        assert run.info.user_id == ADMIN
        assert [m.value for m in client.get_metric_history(world.run_id, "rmse")] == [0.5, 0.3, 0.25]

        runs = client.search_runs([world.experiment_id], filter_string="params.alpha = '0.5'")
        assert [r.info.run_id for r in runs] == [world.run_id]
        df = mlflow.search_runs(experiment_ids=[world.experiment_id])
        assert list(df["run_id"]) == [world.run_id]
        df = mlflow.search_runs(experiment_names=[world.experiment_name])
        assert len(df) == 1


def test_reader_downloads_run_artifacts(reader, world, tmp_path):
    with acting_as(reader) as client:
        listed = {f.path for f in client.list_artifacts(world.run_id)}
        assert "notes" in listed
        assert {f.path for f in client.list_artifacts(world.run_id, "notes")} == {"notes/hello.txt"}

        path = client.download_artifacts(world.run_id, "notes/hello.txt", str(tmp_path / "a"))
        assert Path(path).read_text() == world.artifact_text

        path = mlflow.artifacts.download_artifacts(
            run_id=world.run_id, artifact_path="notes", dst_path=str(tmp_path / "b")
        )
        assert (Path(path) / "hello.txt").read_text() == world.artifact_text

        uri = f"runs:/{world.run_id}/notes/hello.txt"
        assert mlflow.artifacts.load_text(uri) == world.artifact_text


def test_reader_reads_the_registry(reader, world):
    with acting_as(reader) as client:
        rm = client.get_registered_model(world.model_name)
        assert rm.name == world.model_name
        names = [m.name for m in client.search_registered_models(f"name = '{world.model_name}'")]
        assert names == [world.model_name]

        mv = client.get_model_version(world.model_name, world.version)
        assert mv.current_stage == "Staging"
        assert "champion" in mv.aliases
        assert client.get_model_version_by_alias(world.model_name, "champion").version == world.version
        versions = client.search_model_versions(f"name = '{world.model_name}'")
        assert [v.version for v in versions] == [world.version]
        # get_latest_versions is a POST in MLflow: a read all the same.
        latest = client.get_latest_versions(world.model_name, stages=["Staging"])
        assert [v.version for v in latest] == [world.version]
        uri = client.get_model_version_download_uri(world.model_name, world.version)
        assert uri
        logged = client.get_logged_model(world.model_id)
        assert logged.model_id == world.model_id


def test_reader_downloads_and_loads_registered_models(reader, world, tmp_path):
    with acting_as(reader):
        local = mlflow.artifacts.download_artifacts(
            f"models:/{world.model_name}/{world.version}", dst_path=str(tmp_path / "m")
        )
        assert (Path(local) / "MLmodel").is_file()
        by_alias = mlflow.pyfunc.load_model(f"models:/{world.model_name}@champion")
        assert list(by_alias.predict([7, 8])) == [7, 8]
        # models:/<name>/<stage> resolves through get-latest-versions (POST): the article's
        # reader role could not do this.
        by_stage = mlflow.pyfunc.load_model(f"models:/{world.model_name}/Staging")
        assert list(by_stage.predict([1])) == [1]
        by_version = mlflow.pyfunc.load_model(f"models:/{world.model_name}/{world.version}")
        assert list(by_version.predict([2])) == [2]


def test_reader_graphql_query(stack, reader, world):
    query = {
        "query": "query q($id: String) { mlflowGetExperiment(input: {experimentId: $id})"
        " { experiment { experimentId name } } }",
        "variables": {"id": world.experiment_id},
        "operationName": "q",
    }
    resp = requests.post(f"{stack.url}/graphql", json=query, auth=reader.requests_auth(), timeout=30)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["data"]["mlflowGetExperiment"]["experiment"]["name"] == world.experiment_name


def _writes(world):
    """(name, call) for every write a reader might try; each must be PERMISSION_DENIED."""
    c = MlflowClient()
    exp, run, model, ver = world.experiment_id, world.run_id, world.model_name, world.version
    return [
        ("create_experiment", lambda: c.create_experiment("reader-should-not-create")),
        ("set_experiment_tag", lambda: c.set_experiment_tag(exp, "hacked", "yes")),
        ("delete_experiment_tag", lambda: c.delete_experiment_tag(exp, "team")),
        ("rename_experiment", lambda: c.rename_experiment(exp, "renamed-by-reader")),
        ("delete_experiment", lambda: c.delete_experiment(exp)),
        ("create_run", lambda: c.create_run(exp)),
        ("log_param", lambda: c.log_param(run, "reader_param", "x")),
        ("log_metric", lambda: c.log_metric(run, "reader_metric", 1.0)),
        ("log_batch", lambda: c.log_batch(run, metrics=[Metric("m", 1.0, 0, 0)],
                                          params=[Param("p", "v")], tags=[RunTag("t", "v")])),
        ("set_tag", lambda: c.set_tag(run, "hacked", "yes")),
        ("delete_tag", lambda: c.delete_tag(run, "team")),
        ("update_run", lambda: c.update_run(run, name="renamed-by-reader")),
        ("set_terminated", lambda: c.set_terminated(run, "FAILED")),
        ("delete_run", lambda: c.delete_run(run)),
        ("create_registered_model", lambda: c.create_registered_model("reader-model")),
        ("rename_registered_model", lambda: c.rename_registered_model(model, "reader-renamed")),
        ("update_registered_model", lambda: c.update_registered_model(model, "reader was here")),
        ("set_registered_model_tag", lambda: c.set_registered_model_tag(model, "hacked", "yes")),
        ("delete_registered_model_tag", lambda: c.delete_registered_model_tag(model, "team")),
        ("delete_registered_model", lambda: c.delete_registered_model(model)),
        ("create_model_version", lambda: c.create_model_version(
            model, source=world.model_uri, run_id=run, model_id=world.model_id)),
        ("transition_model_version_stage", lambda: c.transition_model_version_stage(
            model, ver, "Production")),
        ("update_model_version", lambda: c.update_model_version(model, ver, "reader notes")),
        ("set_model_version_tag", lambda: c.set_model_version_tag(model, ver, "hacked", "yes")),
        ("set_registered_model_alias", lambda: c.set_registered_model_alias(model, "reader", ver)),
        ("delete_registered_model_alias", lambda: c.delete_registered_model_alias(
            model, "champion")),
        ("delete_model_version", lambda: c.delete_model_version(model, ver)),
    ]


@pytest.fixture
def reader_writes(world):
    return dict(_writes(world))


@pytest.mark.parametrize(
    "write",
    [
        "create_experiment", "set_experiment_tag", "delete_experiment_tag", "rename_experiment",
        "delete_experiment", "create_run", "log_param", "log_metric", "log_batch", "set_tag",
        "delete_tag", "update_run", "set_terminated", "delete_run", "create_registered_model",
        "rename_registered_model", "update_registered_model", "set_registered_model_tag",
        "delete_registered_model_tag", "delete_registered_model", "create_model_version",
        "transition_model_version_stage", "update_model_version", "set_model_version_tag",
        "set_registered_model_alias", "delete_registered_model_alias", "delete_model_version",
    ],
)  # fmt: skip
def test_reader_write_is_denied(reader, reader_writes, write):
    with acting_as(reader):
        e = denied(reader_writes[write])
        assert "mlflow:" in e.message, f"the denial should name the action: {e.message}"


def test_reader_artifact_upload_is_denied(reader, world, tmp_path):
    f = tmp_path / "evil.txt"
    f.write_text("should never be stored\n")
    with acting_as(reader) as client:
        with pytest.raises(requests.HTTPError) as info:
            client.log_artifact(world.run_id, str(f), artifact_path="notes")
        assert info.value.response.status_code == 403
        assert "PERMISSION_DENIED" in info.value.response.text
        names = {x.path for x in client.list_artifacts(world.run_id, "notes")}
        assert "notes/evil.txt" not in names


def test_reader_artifact_delete_is_denied(stack, reader, world):
    path = f"{world.experiment_id}/{world.run_id}/artifacts/notes/hello.txt"
    resp = requests.delete(
        f"{stack.url}/api/2.0/mlflow-artifacts/artifacts/{path}",
        auth=reader.requests_auth(),
        timeout=30,
    )
    assert_mlflow_error(resp, 403, "PERMISSION_DENIED")


def test_reader_writes_changed_nothing(admin, world):
    """After all the denied writes above, the admin sees the world as it was made."""
    with acting_as(admin) as client:
        exp = client.get_experiment(world.experiment_id)
        assert exp.name == world.experiment_name and exp.lifecycle_stage == "active"
        assert "hacked" not in exp.tags
        run = client.get_run(world.run_id)
        assert run.info.lifecycle_stage == "active"
        assert "hacked" not in run.data.tags and "reader_param" not in run.data.params
        assert run.info.run_name != "renamed-by-reader"
        versions = client.search_model_versions(f"name = '{world.model_name}'")
        assert [(v.version, v.current_stage) for v in versions] == [(world.version, "Staging")]
        assert not [m for m in client.search_registered_models("name = 'reader-model'")]
