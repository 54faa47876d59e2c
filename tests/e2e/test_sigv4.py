"""AWS SigV4 with real clients (issue 3): the MLflow client with MLFLOW_TRACKING_AWS_SIGV4=true
(requests-auth-aws-sigv4), credentials from env vars, an ~/.aws/credentials profile and
credential_process; botocore's SigV4Auth signer used directly; the reader/approver/admin
behaviour of the core issue repeated with access keys; and the negative cases (replay outside
the skew window, tampering, wrong service/region, unknown/inactive keys)."""

from __future__ import annotations

import datetime
import hashlib
import json
import time
import uuid
from pathlib import Path
from unittest import mock

import pytest
import requests

from support import (ADMIN, APPROVER, CHANGE_SEEN_SECONDS, READER, MlflowClient, assert_mlflow_error,
                     denied, mlflow)
from sigv4_support import (
    REGION,
    aws_env,
    botocore_request,
    create_key,
    signing_as,
)


@pytest.fixture(scope="module")
def admin_key(stack):
    return create_key(stack, user=ADMIN)


@pytest.fixture(scope="module")
def reader_key(stack):
    return create_key(stack, user=READER)


@pytest.fixture(scope="module")
def approver_key(stack):
    return create_key(stack, user=APPROVER)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def api(stack, path: str) -> str:
    return f"{stack.url}{path}"


# ----------------------------------------------------------------------------- MLflow client


def test_admin_workflow_with_the_mlflow_sigv4_client(stack, admin_key, world, audit):
    mark = audit.mark()
    with signing_as(admin_key) as client:
        name = unique("sigv4-admin")
        exp_id = client.create_experiment(name, tags={"via": "sigv4"})
        mlflow.set_experiment(experiment_id=exp_id)
        with mlflow.start_run() as run:
            mlflow.log_params({"alpha": "0.5"})
            mlflow.log_metric("rmse", 0.25, step=1)
            mlflow.set_tag("mlflow.user", "someone-else")  # forged: overwritten at CreateRun only
        got = client.get_run(run.info.run_id)
        assert got.info.user_id == ADMIN
        assert got.data.params["alpha"] == "0.5"
        assert got.data.metrics["rmse"] == 0.25
        model = unique("sigv4-model")
        client.create_registered_model(model)
        mv = client.create_model_version(
            model, source=world.model_uri, run_id=world.run_id, model_id=world.model_id
        )
        client.set_registered_model_alias(model, "champion", mv.version)
        client.transition_model_version_stage(model, mv.version, "Production")
        assert client.get_model_version_by_alias(model, "champion").current_stage == "Production"
        # Queries with spaces and quotes (requests encodes them with '+'): the raw-URI form.
        assert [m.name for m in client.search_registered_models(f"name = '{model}'")] == [model]
    records = [r for r in audit.records_since(mark) if r.get("auth_method") == "sigv4"]
    assert records and all(
        r["principal"] == f"arn:aws:iam::111111111111:user/{ADMIN}" for r in records
    )


def test_reader_with_sigv4(stack, reader_key, world):
    with signing_as(reader_key) as client:
        assert client.get_experiment(world.experiment_id).name == world.experiment_name
        runs = client.search_runs([world.experiment_id])
        assert [r.info.run_id for r in runs] == [world.run_id]
        assert client.get_latest_versions(world.model_name, stages=["Staging"])
        assert mlflow.artifacts.load_text(f"runs:/{world.run_id}/notes/hello.txt") == world.artifact_text
        denied(lambda: client.create_experiment(unique("sigv4-reader")))
        denied(lambda: client.log_param(world.run_id, "x", "1"))
        denied(lambda: client.create_registered_model(unique("sigv4-reader-model")))


def test_approver_with_sigv4(stack, approver_key, world):
    with signing_as(approver_key) as client:
        model = unique("sigv4-approver")
        client.create_registered_model(model)
        mv = client.create_model_version(
            model, source=world.model_uri, run_id=world.run_id, model_id=world.model_id
        )
        client.transition_model_version_stage(model, mv.version, "Staging")
        client.transition_model_version_stage(model, mv.version, "Production")
        denied(lambda: client.create_experiment(unique("sigv4-approver-exp")))
        denied(lambda: client.log_metric(world.run_id, "m", 1.0))


def test_credentials_from_a_profile_file(stack, reader_key, world, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text(
        "[mlgate-reader]\n"
        f"aws_access_key_id = {reader_key.access_key_id}\n"
        f"aws_secret_access_key = {reader_key.secret_access_key}\n"
    )
    with aws_env({
        "MLFLOW_TRACKING_AWS_SIGV4": "true",
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_PROFILE": "mlgate-reader",
    }):
        assert MlflowClient().get_experiment(world.experiment_id).name == world.experiment_name


def test_credentials_from_credential_process(stack, world, tmp_path):
    # `access-key create --format credential-process` prints exactly what credential_process
    # must print, so the file can be served with `cat`.
    out = stack.mlgate("access-key", "create", "--user", READER, "--format", "credential-process")
    key_file = tmp_path / "key.json"
    key_file.write_text(out.stdout)
    key_file.chmod(0o600)
    config = tmp_path / "config"
    config.write_text(f"[profile mlgate]\ncredential_process = cat {key_file}\nregion = {REGION}\n")
    with aws_env({
        "MLFLOW_TRACKING_AWS_SIGV4": "true",
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_PROFILE": "mlgate",
    }):
        assert MlflowClient().get_experiment(world.experiment_id).name == world.experiment_name


def test_artifact_upload_fails_inside_the_mlflow_sigv4_client(stack, admin_key, scratch_experiment,
                                                              mlflow_log, tmp_path):
    """requests-auth-aws-sigv4 0.7 cannot sign a file body (mlflow/mlflow#15051): the upload
    never leaves the client. Documented in docs/sigv4.md; use botocore-signed PUTs instead."""
    p = tmp_path / "a.txt"
    p.write_text("x")
    with signing_as(admin_key) as client:
        run = client.create_run(scratch_experiment)
        mark = mlflow_log.mark()
        with pytest.raises(Exception) as e:
            client.log_artifact(run.info.run_id, str(p))
        assert "encode" in str(e.value), e.value
        assert not mlflow_log.saw(mark, "mlflow-artifacts/artifacts")


# ----------------------------------------------------------------------------- botocore signer


def test_botocore_signed_requests(stack, admin_key, world):
    url = api(stack, f"/api/2.0/mlflow/experiments/get?experiment_id={world.experiment_id}")
    r = botocore_request(admin_key, "GET", url)
    assert r.status_code == 200, r.text
    assert r.json()["experiment"]["name"] == world.experiment_name
    # The sagemaker-mlflow service name is accepted too; a body hashed without the header as well.
    body = json.dumps({"experiment_ids": [world.experiment_id], "max_results": 5}).encode()
    for service, declare in (("sagemaker-mlflow", True), ("execute-api", False)):
        r = botocore_request(
            admin_key, "POST", api(stack, "/api/2.0/mlflow/runs/search"), data=body,
            headers={"Content-Type": "application/json"}, service=service, declare_hash=declare,
        )
        assert r.status_code == 200, r.text
        assert [x["info"]["run_id"] for x in r.json()["runs"]] == [world.run_id]


def artifact_url(stack, exp_id: str, run_id: str, name: str) -> str:
    return api(stack, f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/{name}")


def test_artifact_upload_with_botocore_signed_put(stack, admin_key, scratch_experiment):
    with signing_as(admin_key) as client:
        run = client.create_run(scratch_experiment)
    url = artifact_url(stack, scratch_experiment, run.info.run_id, "up.txt")
    data = b"uploaded through mlgate with SigV4\n"
    r = botocore_request(admin_key, "PUT", url, data=data)
    assert r.status_code == 200, r.text
    r = botocore_request(admin_key, "GET", url)
    assert r.status_code == 200 and r.content == data


@pytest.mark.parametrize("size", [1024, 17 << 20], ids=["small", "streamed-17MiB"])
def test_a_tampered_upload_never_reaches_mlflow_complete(stack, admin_key, scratch_experiment, size):
    """The body is signed as A and B is sent (same length). Small bodies are checked before
    forwarding; bodies above the parsed-body limit are checked while they stream and the
    upstream request is aborted before its last chunk: no artifact is created either way."""
    with signing_as(admin_key) as client:
        run = client.create_run(scratch_experiment)
    name = f"tampered-{size}.bin"
    url = artifact_url(stack, scratch_experiment, run.info.run_id, name)
    signed = b"a" * size
    sent = b"a" * (size - 1) + b"b"

    def swap(prepared):
        prepared.body = sent

    r = botocore_request(admin_key, "PUT", url, data=signed, mutate=swap)
    body = assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    assert "x-amz-content-sha256" in body["message"], body
    time.sleep(0.5)
    with signing_as(admin_key) as client:
        names = [f.path for f in client.list_artifacts(run.info.run_id)]
    assert name not in names, names


# ----------------------------------------------------------------------------- negatives


def past(minutes: int):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
    return mock.patch("botocore.auth.get_current_datetime", return_value=t.replace(tzinfo=None))


def test_replay_outside_the_skew_window(stack, admin_key, world, audit):
    url = api(stack, f"/api/2.0/mlflow/experiments/get?experiment_id={world.experiment_id}")
    with past(2):
        assert botocore_request(admin_key, "GET", url).status_code == 200
    mark = audit.mark()
    with past(6):
        r = botocore_request(admin_key, "GET", url)
    body = assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    assert "signature expired" in body["message"]
    rec = audit.wait_for(mark, 1)[-1]
    assert rec["auth_method"] == "sigv4" and rec["decision"] == "unauthenticated"
    assert "signature expired" in rec["reason"]


def tamper_cases(stack, world):
    exp = world.experiment_id
    base = api(stack, f"/api/2.0/mlflow/experiments/get?experiment_id={exp}")

    def path(p):
        p.url = p.url.replace("/experiments/get", "/experiments/get-by-name")

    def query(p):
        p.url = p.url.replace(f"experiment_id={exp}", "experiment_id=0")

    def header(p):
        p.headers["X-Custom"] = "changed"

    return base, {"path": path, "query": query, "signed-header": header}


@pytest.mark.parametrize("what", ["path", "query", "signed-header"])
def test_tampering_after_signing_is_refused(stack, admin_key, world, mlflow_log, what):
    url, cases = tamper_cases(stack, world)
    mark = mlflow_log.mark()
    r = botocore_request(admin_key, "GET", url, headers={"X-Custom": "original"}, mutate=cases[what])
    body = assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    assert "signature does not match" in body["message"]
    assert not mlflow_log.saw(mark, "experiments/get")


def test_a_tampered_json_body_is_refused(stack, admin_key, scratch_experiment, mlflow_log):
    signed = json.dumps({"experiment_id": scratch_experiment, "tags": [{"key": "a", "value": "1"}]}).encode()
    sent = signed.replace(b'"1"', b'"2"')

    def swap(prepared):
        prepared.body = sent

    for declare in (True, False):
        mark = mlflow_log.mark()
        r = botocore_request(admin_key, "POST", api(stack, "/api/2.0/mlflow/runs/create"),
                             data=signed, headers={"Content-Type": "application/json"},
                             declare_hash=declare, mutate=swap)
        assert_mlflow_error(r, 403, "PERMISSION_DENIED")
        assert not mlflow_log.saw(mark, "runs/create")


@pytest.mark.parametrize("service,region,needle", [
    ("s3", REGION, "service 's3'"),
    ("sts", REGION, "service 'sts'"),
    ("execute-api", "eu-west-1", "region 'eu-west-1'"),
])
def test_wrong_service_or_region(stack, admin_key, world, service, region, needle):
    url = api(stack, f"/api/2.0/mlflow/experiments/get?experiment_id={world.experiment_id}")
    r = botocore_request(admin_key, "GET", url, service=service, region=region)
    body = assert_mlflow_error(r, 403, "PERMISSION_DENIED")
    assert needle in body["message"], body


def test_unknown_inactive_and_deleted_keys(stack, world):
    from sigv4_support import AwsKey

    url = api(stack, f"/api/2.0/mlflow/experiments/get?experiment_id={world.experiment_id}")
    r = botocore_request(AwsKey("AKIAUNKNOWNKEY234567", "x" * 40), "GET", url)
    assert "not known" in assert_mlflow_error(r, 403)["message"]
    key = create_key(stack, user=READER)
    assert botocore_request(key, "GET", url).status_code == 200
    stack.mlgate("access-key", "deactivate", key.access_key_id)
    time.sleep(CHANGE_SEEN_SECONDS)
    r = botocore_request(key, "GET", url)
    assert "inactive" in assert_mlflow_error(r, 403)["message"]
    stack.mlgate("access-key", "activate", key.access_key_id)
    time.sleep(CHANGE_SEEN_SECONDS)
    assert botocore_request(key, "GET", url).status_code == 200
    stack.mlgate("access-key", "delete", key.access_key_id)
    time.sleep(CHANGE_SEEN_SECONDS)
    assert botocore_request(key, "GET", url).status_code == 403


def test_the_secret_is_not_in_the_database(stack, admin_key):
    blob = stack.store_bytes()
    assert admin_key.access_key_id.encode() in blob
    assert admin_key.secret_access_key.encode() not in blob
    assert (Path(stack.data_dir, "master.key").stat().st_mode & 0o777) == 0o600


def test_presigned_download(stack, admin_key, world):
    """botocore's SigV4QueryAuth: a presigned GET of an artifact works without any header, and
    stops working when it expires."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    url = api(
        stack,
        f"/api/2.0/mlflow-artifacts/artifacts/{world.experiment_id}/{world.run_id}/artifacts/notes/hello.txt",
    )

    def presign(expires: int) -> str:
        req = AWSRequest(method="GET", url=url)
        SigV4QueryAuth(admin_key.credentials(), "execute-api", REGION, expires=expires).add_auth(req)
        return req.url

    r = requests.get(presign(60), timeout=30)
    assert r.status_code == 200, r.text
    assert r.text == world.artifact_text
    short = presign(1)
    time.sleep(2.1)
    body = assert_mlflow_error(requests.get(short, timeout=30), 403, "PERMISSION_DENIED")
    assert "presigned URL expired" in body["message"], body
