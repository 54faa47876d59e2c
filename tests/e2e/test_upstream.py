"""MLflow down: mlgate answers 502 in MLflow's JSON shape (the client shows it) and keeps serving;
once MLflow is back, the very next request works. Runs last (file order): it restarts MLflow."""

import time

import requests

from support import acting_as, assert_mlflow_error

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"


def test_mlflow_killed_gives_502_then_recovers(stack, admin, world, scratch_experiment, audit):
    url = f"{stack.url}{SEARCH}"
    assert requests.get(url, auth=admin.requests_auth(), timeout=30).status_code == 200

    stack.kill_mlflow()
    try:
        mark = audit.mark()
        start = time.monotonic()
        resp = requests.get(url, auth=admin.requests_auth(), timeout=60)
        assert time.monotonic() - start < 30, "mlgate should fail fast when MLflow is gone"
        assert_mlflow_error(resp, 502)
        [record] = audit.wait_for(mark, 1)
        assert record["status"] == 502 and record["decision"] == "allow", record
        # Denials and authentication failures do not depend on MLflow at all.
        assert requests.get(url, timeout=30).status_code == 401
        # mlgate itself is alive and still answering.
        resp = requests.get(url, auth=admin.requests_auth(), timeout=60)
        assert_mlflow_error(resp, 502)
    finally:
        stack.start_mlflow()

    # The first request after the restart works (no stale pooled connection).
    resp = requests.get(url, auth=admin.requests_auth(), timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    with acting_as(admin) as client:
        assert client.get_experiment(world.experiment_id).name == world.experiment_name
        run = client.create_run(scratch_experiment)
        client.log_metric(run.info.run_id, "after_restart", 1.0)
        assert client.get_run(run.info.run_id).data.metrics["after_restart"] == 1.0
