"""As mlflow-admin (group admins): the whole tracking and registry workflow works through mlgate,
artifacts included (uploaded and downloaded through MLflow's artifact proxy)."""

import hashlib
import os
from pathlib import Path

from support import ADMIN, acting_as, mlflow


def test_admin_tracks_logs_artifacts_and_manages_the_registry(admin, fresh_name, tmp_path):
    with acting_as(admin) as client:
        # Experiment
        exp_name = fresh_name("e2e-admin")
        exp_id = client.create_experiment(exp_name, tags={"owner": "e2e"})
        assert client.get_experiment(exp_id).name == exp_name
        assert client.get_experiment_by_name(exp_name).experiment_id == exp_id

        # Run with params, metrics and tags
        with mlflow.start_run(experiment_id=exp_id) as active:
            run_id = active.info.run_id
            mlflow.log_param("alpha", "0.5")
            mlflow.log_params({"l1_ratio": "0.1", "solver": "lbfgs"})
            mlflow.log_metric("rmse", 0.5, step=0)
            mlflow.log_metrics({"rmse": 0.25, "r2": 0.9}, step=1)
            mlflow.set_tag("team", "e2e")

            # Artifacts: a small text file and a larger binary one (upload through the proxy)
            small = tmp_path / "hello.txt"
            small.write_text("hello through mlgate\n")
            mlflow.log_artifact(str(small), artifact_path="notes")
            big = tmp_path / "weights.bin"
            big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
            mlflow.log_artifact(str(big))

            info = mlflow.pyfunc.log_model(
                name="model", python_model=_echo(), pip_requirements=["mlflow"]
            )

        run = client.get_run(run_id)
        assert run.data.params == {"alpha": "0.5", "l1_ratio": "0.1", "solver": "lbfgs"}
        assert run.data.metrics["rmse"] == 0.25
        assert run.data.tags["team"] == "e2e"
        assert run.info.status == "FINISHED"
        assert [m.value for m in client.get_metric_history(run_id, "rmse")] == [0.5, 0.25]
        # Attribution: the run belongs to the authenticated user, not to the local OS user.
        assert run.info.user_id == ADMIN
        assert run.data.tags.get("mlflow.user") == ADMIN

        # Artifacts: listed and downloaded back, byte for byte
        names = {f.path for f in client.list_artifacts(run_id)}
        assert {"notes", "weights.bin"} <= names
        dl = Path(client.download_artifacts(run_id, "notes/hello.txt", str(tmp_path / "dl")))
        assert dl.read_text() == "hello through mlgate\n"
        dl_big = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="weights.bin", dst_path=str(tmp_path / "dl2")
            )
        )
        assert _sha(dl_big) == _sha(big)

        # Registry: model, version, alias, stage transitions
        model_name = fresh_name("e2e-admin-model")
        mv = mlflow.register_model(info.model_uri, model_name)
        assert str(mv.version) == "1"
        client.set_registered_model_alias(model_name, "candidate", mv.version)
        assert client.get_model_version_by_alias(model_name, "candidate").version == mv.version
        client.transition_model_version_stage(model_name, mv.version, "Staging")
        client.transition_model_version_stage(model_name, mv.version, "Production")
        got = client.get_model_version(model_name, mv.version)
        assert got.current_stage == "Production"
        assert "candidate" in got.aliases
        client.update_model_version(model_name, mv.version, description="approved by e2e")
        client.set_model_version_tag(model_name, mv.version, "validated", "yes")

        # The registered model loads back through the proxy
        model = mlflow.pyfunc.load_model(f"models:/{model_name}@candidate")
        assert list(model.predict([1, 2, 3])) == [1, 2, 3]

        # Clean-up writes are admin rights too
        client.delete_model_version_tag(model_name, mv.version, "validated")
        client.delete_registered_model_alias(model_name, "candidate")
        client.set_experiment_tag(exp_id, "reviewed", "true")
        client.delete_run(run_id)
        client.restore_run(run_id)


def _echo():
    from support import EchoModel

    return EchoModel()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
