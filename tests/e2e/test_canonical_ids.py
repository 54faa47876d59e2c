"""MLflow reads experiment ids and model version numbers with Python's `int()`, so `01`, ` 1`,
`+1` and `1_0` name experiment 1 (10) and version 1 (10). mlgate builds ARNs from the number
MLflow will act on, so an explicit Deny on `experiment/<id>` or on a version cannot be dodged by
spelling the number another way."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests

from support import Identity, acting_as, assert_mlflow_error


@pytest.fixture(scope="module")
def guarded(stack, admin, tmp_path_factory):
    """An experiment and a model version, and a user allowed everything but reading that
    experiment and moving that version's stage."""
    tag = uuid.uuid4().hex[:6]
    with acting_as(admin) as client:
        experiment = client.create_experiment(f"guarded-{tag}")
        model = f"guarded-{tag}"
        client.create_registered_model(model)
        with_run = client.create_run(experiment)
        version = client.create_model_version(model, source=f"{with_run.info.artifact_uri}/m",
                                              run_id=with_run.info.run_id).version
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "mlflow:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "mlflow:GetExperiment",
         "Resource": f"arn:mlflow:*:*:experiment/{experiment}"},
        {"Effect": "Deny", "Action": "mlflow:TransitionModelVersionStage",
         "Resource": f"arn:mlflow:*:*:registered-model/{model}/version/{version}"},
    ]}
    user, password = f"guarded-{tag}", uuid.uuid4().hex
    path = Path(tmp_path_factory.mktemp("guarded"), "p.json")
    path.write_text(json.dumps(policy))
    stack.mlgate("user", "create", user, "--password-env", "PW", env={"PW": password})
    stack.mlgate("policy", "put", f"guarded-{tag}", "-f", str(path))
    stack.mlgate("policy", "attach", f"guarded-{tag}", "--user", user)
    return {"who": Identity(user, password), "experiment": experiment, "model": model,
            "version": version}


@pytest.mark.parametrize("spelling", ["{}", "0{}", "00{}", " {}", "{} ", "+{}", "\t{}"])
def test_an_experiment_id_spelled_otherwise_meets_the_deny(stack, guarded, spelling):
    sent = spelling.format(guarded["experiment"])
    r = requests.get(f"{stack.url}/api/2.0/mlflow/experiments/get",
                     params={"experiment_id": sent}, auth=guarded["who"].requests_auth(), timeout=30)
    body = assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    assert f"experiment/{guarded['experiment']} " in body["message"], body


@pytest.mark.parametrize("spelling", ["{}", "0{}", "+{}", " {}"])
def test_a_version_number_spelled_otherwise_meets_the_deny(stack, guarded, spelling):
    r = requests.post(f"{stack.url}/api/2.0/mlflow/model-versions/transition-stage",
                      json={"name": guarded["model"], "version": spelling.format(guarded["version"]),
                            "stage": "Production", "archive_existing_versions": False},
                      auth=guarded["who"].requests_auth(), timeout=30)
    assert_mlflow_error(r, 403, "PERMISSION_DENIED")


def test_non_ascii_digits_are_refused(stack, guarded):
    r = requests.get(f"{stack.url}/api/2.0/mlflow/experiments/get",
                     params={"experiment_id": "\u0661"}, auth=guarded["who"].requests_auth(),
                     timeout=30)
    assert_mlflow_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_other_experiments_stay_readable(stack, guarded, admin):
    with acting_as(admin) as client:
        other = client.create_experiment(f"open-{uuid.uuid4().hex[:6]}")
    r = requests.get(f"{stack.url}/api/2.0/mlflow/experiments/get",
                     params={"experiment_id": f"0{other}"}, auth=guarded["who"].requests_auth(),
                     timeout=30)
    assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] == other, r.text
