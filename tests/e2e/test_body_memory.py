"""Memory for request bodies mlgate reads: a body of many tiny objects must not cost many times
its size, and concurrent bodies share one process-wide budget (--parsed-body-budget)."""

import concurrent.futures

import pytest
import requests

from support import acting_as

MIB = 1 << 20
# Just under --max-parsed-body's default (16 MiB).
BODY_BYTES = 16 * MIB - 4096
CONCURRENT = 4
# Four 16 MiB bodies arriving, read, decided and forwarded at once cost their bytes a few
# times over; parsed into a JSON tree of many small objects they cost ~1.3 GB.
PEAK_GROWTH_BOUND_MIB = 400


def _status_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _log_batch_of_tiny_objects(run_id: str) -> bytes:
    """LogBatch with an `mlflow.user` tag (rewritten to the caller) beside a field of many tiny
    objects, which MLflow ignores (unknown fields are skipped) but mlgate must read past."""
    item = b'{"a":"b"},'
    head = (
        b'{"run_id":"' + run_id.encode()
        + b'","tags":[{"key":"mlflow.user","value":"x"}],"padding":['
    )
    count = (BODY_BYTES - len(head) - 2) // len(item)
    return head + item * (count - 1) + item[:-1] + b"]}"


@pytest.fixture
def fresh_gateway(stack):
    """A gateway process of its own, so its peak memory is this test's."""
    stack.stop_gateway()
    stack.start_gateway()
    yield stack
    stack.stop_gateway()
    stack.start_gateway()


def test_concurrent_large_bodies_of_tiny_objects_stay_within_a_memory_bound(
    fresh_gateway, admin, scratch_experiment
):
    with acting_as(admin) as client:
        run_id = client.create_run(scratch_experiment).info.run_id
    body = _log_batch_of_tiny_objects(run_id)
    assert len(body) <= BODY_BYTES
    url = f"{fresh_gateway.url}/api/2.0/mlflow/runs/log-batch"
    pid = fresh_gateway.gateway.pid

    def post(_):
        return requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/json"},
            auth=admin.requests_auth(),
            timeout=120,
        )

    baseline = _status_mib(pid, "VmRSS")
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(post, range(CONCURRENT)))
    growth = _status_mib(pid, "VmHWM") - baseline
    print(f"peak growth for {CONCURRENT} concurrent bodies: {growth:.0f} MiB")
    for answer in answers:
        assert answer.status_code == 200, answer.text[:300]
    assert growth < PEAK_GROWTH_BOUND_MIB, f"peak memory grew by {growth:.0f} MiB"
