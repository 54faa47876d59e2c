"""Bad input is refused by mlgate with a clear 4xx in MLflow's JSON error shape, and MLflow never
sees the request: checked in MLflow's own access log and in its state (no run created)."""

import json
import uuid

import pytest
import requests

from support import acting_as, assert_mlflow_error, raw_http

CREATE_RUN = "/api/2.0/mlflow/runs/create"


def _run_count(admin, experiment_id: str) -> int:
    with acting_as(admin) as client:
        return len(client.search_runs([experiment_id], max_results=1000))


def _post(stack, who, path, body: bytes, content_type="application/json"):
    return requests.post(
        f"{stack.url}{path}",
        data=body,
        headers={"Content-Type": content_type},
        auth=who.requests_auth(),
        timeout=60,
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"experiment_id": "%s", ',
        b'{"experiment_id": "%s"} trailing',
        b"\xff\xfe{not utf-8}",
        b"[1, 2, 3]",
        # Python keeps the last of two equal keys, other parsers the first: ambiguous.
        b'{"experiment_id": "%s", "experiment_id": "0"}',
    ],
    ids=["truncated", "trailing-garbage", "not-utf8", "not-an-object", "duplicate-key"],
)
def test_malformed_json_is_400_and_never_forwarded(stack, admin, world, mlflow_log, body):
    body = body.replace(b"%s", world.experiment_id.encode())
    before = _run_count(admin, world.experiment_id)
    mark = mlflow_log.mark()
    resp = _post(stack, admin, CREATE_RUN, body)
    assert_mlflow_error(resp, 400)
    assert not mlflow_log.saw(mark, "runs/create")
    assert _run_count(admin, world.experiment_id) == before


def test_dual_spelling_in_json_body_is_400(stack, admin, world, mlflow_log):
    with acting_as(admin) as client:
        other = client.create_experiment(f"e2e-dual-{uuid.uuid4().hex[:8]}")
    before = _run_count(admin, world.experiment_id), _run_count(admin, other)
    mark = mlflow_log.mark()
    body = json.dumps({"experiment_id": world.experiment_id, "experimentId": other}).encode()
    resp = _post(stack, admin, CREATE_RUN, body)
    body = assert_mlflow_error(resp, 400)
    assert "experiment" in body["message"].lower()
    assert not mlflow_log.saw(mark, "runs/create")
    assert (_run_count(admin, world.experiment_id), _run_count(admin, other)) == before


def test_dual_spelling_run_id_and_run_uuid_disagreeing_is_400(stack, admin, world, mlflow_log):
    mark = mlflow_log.mark()
    other = uuid.uuid4().hex
    body = json.dumps(
        {"run_id": world.run_id, "run_uuid": other, "key": "k", "value": "v"}
    ).encode()
    resp = _post(stack, admin, "/api/2.0/mlflow/runs/set-tag", body)
    assert_mlflow_error(resp, 400)
    assert not mlflow_log.saw(mark, "runs/set-tag")


def test_repeated_query_parameter_is_400(stack, reader, world, mlflow_log):
    mark = mlflow_log.mark()
    resp = requests.get(
        f"{stack.url}/api/2.0/mlflow/experiments/get"
        f"?experiment_id={world.experiment_id}&experiment_id=0",
        auth=reader.requests_auth(),
        timeout=30,
    )
    assert_mlflow_error(resp, 400)
    assert not mlflow_log.saw(mark, "experiments/get?")


def test_oversized_body_is_413_and_never_forwarded(stack, admin, world, mlflow_log):
    # 17 MiB of JSON: more than mlgate's default limit for bodies it must parse (16 MiB).
    value = "x" * 1000
    params = [{"key": f"p{i}", "value": value} for i in range(17 * 1024)]
    body = json.dumps({"run_id": world.run_id, "params": params}).encode()
    assert len(body) > 17 * 1024 * 1024
    mark = mlflow_log.mark()
    resp = _post(stack, admin, "/api/2.0/mlflow/runs/log-batch", body)
    assert_mlflow_error(resp, 413)
    assert not mlflow_log.saw(mark, "log-batch")
    with acting_as(admin) as client:
        assert "p0" not in client.get_run(world.run_id).data.params


# "admin" too: policies/admins.json allows execute-api:Invoke on "*", but no policy can open a
# route outside the catalog.
@pytest.mark.parametrize("who", ["admin", "reader", "approver"])
def test_unknown_route_is_refused_and_never_forwarded(stack, request, mlflow_log, who):
    identity = request.getfixturevalue(who)
    marker = f"e2e-unknown-{uuid.uuid4().hex}"
    mark = mlflow_log.mark()
    for method, path in (
        ("GET", f"/api/2.0/mlflow/{marker}"),
        ("POST", f"/ajax-api/2.0/mlflow/{marker}/create"),
        ("GET", f"/{marker}"),
    ):
        resp = requests.request(
            method, f"{stack.url}{path}", json={} if method == "POST" else None,
            auth=identity.requests_auth(), timeout=30,
        )  # fmt: skip
        assert resp.status_code == 404, (path, resp.status_code, resp.text[:300])
        assert_mlflow_error(resp, 404)
        assert resp.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert not mlflow_log.saw(mark, marker)


@pytest.mark.parametrize(
    "target",
    [
        "/api/2.0/mlflow/runs%2Fcreate",
        "/api/2.0/mlflow/runs%2fcreate",
        "/api/2.0/mlflow/%72uns/create",
        "/api/2.0/mlflow/x/../runs/create",
        "/api/2.0/mlflow/./runs/create",
        "/api/2.0//mlflow/runs/create",
    ],
)
def test_ambiguous_paths_do_not_slip_past_the_catalog(stack, reader, world, mlflow_log, target):
    """The reader may not create runs however the path is spelled."""
    mark = mlflow_log.mark()
    body = json.dumps({"experiment_id": world.experiment_id}).encode()
    auth = requests.auth._basic_auth_str(reader.name, reader.password)
    status, _, payload = raw_http(
        stack.url, "POST", target, body,
        {"Content-Type": "application/json", "Authorization": auth},
    )  # fmt: skip
    assert 400 <= status < 500, (target, status, payload[:300])
    parsed = json.loads(payload)
    assert parsed.get("error_code") and parsed.get("message"), parsed
    assert not mlflow_log.saw(mark, "runs")


def test_mlflow_access_log_does_record_forwarded_requests(stack, reader, mlflow_log):
    """Control for the "never forwarded" checks above: a request mlgate does forward shows up."""
    marker = f"e2e-control-{uuid.uuid4().hex}"
    mark = mlflow_log.mark()
    resp = requests.get(
        f"{stack.url}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": marker},
        auth=reader.requests_auth(),
        timeout=30,
    )
    assert resp.status_code == 404, resp.text  # forwarded: MLflow says RESOURCE_DOES_NOT_EXIST
    assert_mlflow_error(resp, 404, "RESOURCE_DOES_NOT_EXIST")
    assert mlflow_log.saw(mark, marker)
