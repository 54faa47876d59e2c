"""As mlflow-model-approver (group model-approvers): reads everything, registers models and
versions, edits their tags and descriptions, sets aliases and moves versions through the stages;
cannot create experiments or runs, nor log to runs."""

import pytest
import requests

from support import acting_as, denied, mlflow


def test_approver_registers_a_version_and_promotes_it(approver, world, fresh_name):
    name = fresh_name("e2e-approved")
    with acting_as(approver) as client:
        # Reads first: the approver looks at the run it is about to register.
        run = client.get_run(world.run_id)
        assert run.data.metrics["rmse"] == 0.25

        client.create_registered_model(name, description="registered by the approver")
        mv = client.create_model_version(
            name, source=world.model_uri, run_id=world.run_id, model_id=world.model_id
        )
        assert str(mv.version) == "1"

        client.transition_model_version_stage(name, mv.version, "Staging")
        assert client.get_model_version(name, mv.version).current_stage == "Staging"
        client.transition_model_version_stage(name, mv.version, "Production")
        assert client.get_model_version(name, mv.version).current_stage == "Production"
        latest = client.get_latest_versions(name, stages=["Production"])
        assert [v.version for v in latest] == [mv.version]

        client.set_registered_model_alias(name, "prod", mv.version)
        client.update_model_version(name, mv.version, description="approved")
        client.set_model_version_tag(name, mv.version, "approved_by", "approver")
        client.set_registered_model_tag(name, "domain", "e2e")
        client.update_registered_model(name, description="approved models")

        got = client.get_model_version(name, mv.version)
        assert got.description == "approved"
        assert got.tags["approved_by"] == "approver"
        assert "prod" in got.aliases

        model = mlflow.pyfunc.load_model(f"models:/{name}@prod")
        assert list(model.predict([3])) == [3]


def test_approver_registers_with_the_fluent_api(approver, world, fresh_name):
    """`mlflow.register_model("models:/m-...")`, the usual call: after creating the version, the
    MLflow 3 client also tags the logged model (SetLoggedModelTags, `mlflow.modelVersions`)."""
    name = fresh_name("e2e-approved-fluent")
    with acting_as(approver) as client:
        mv = mlflow.register_model(world.model_uri, name)
        assert str(mv.version) == "1"
        client.transition_model_version_stage(name, mv.version, "Staging")
        assert client.get_model_version(name, mv.version).current_stage == "Staging"


def test_approver_cannot_create_experiments(approver, fresh_name):
    with acting_as(approver) as client:
        denied(lambda: client.create_experiment(fresh_name("approver-exp")))
        denied(lambda: mlflow.create_experiment(fresh_name("approver-exp")))


def test_approver_cannot_create_runs_or_log_to_runs(approver, world, tmp_path):
    with acting_as(approver) as client:
        denied(lambda: client.create_run(world.experiment_id))
        denied(lambda: client.log_metric(world.run_id, "approver_metric", 1.0))
        denied(lambda: client.log_param(world.run_id, "approver_param", "x"))
        denied(lambda: client.set_tag(world.run_id, "approved", "yes"))
        denied(lambda: client.delete_run(world.run_id))
        f = tmp_path / "approver.txt"
        f.write_text("no\n")
        with pytest.raises(requests.HTTPError) as info:
            client.log_artifact(world.run_id, str(f))
        assert info.value.response.status_code == 403

        run = client.get_run(world.run_id)
        assert "approver_metric" not in run.data.metrics
        assert "approver_param" not in run.data.params
