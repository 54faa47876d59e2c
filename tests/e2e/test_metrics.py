"""Prometheus metrics on the admin listener (docs/observability.md): after a scripted workload, a
scrape parsed with prometheus-client's text parser counts exactly the requests that were sent, by
decision, authentication method, MLflow operation and status; the public port serves none of it."""

from __future__ import annotations

from collections import Counter
from typing import Dict, Iterator, Tuple

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import unique
from support import READER, Identity, assert_mlflow_error, mlgate_stack, parse_token_output
from test_browser import sign_in

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"
CREATE = "/api/2.0/mlflow/experiments/create"
GET_DEFAULT = "/api/2.0/mlflow/experiments/get?experiment_id=0"
UNKNOWN = "/api/2.0/mlflow/no-such-route"

# The workload: how many of each were sent.
ALLOWED_BASIC, ALLOWED_TOKEN, DENIED, UNKNOWN_ROUTES, UNAUTHENTICATED, LOOKUPS = 5, 3, 4, 2, 3, 2


@pytest.fixture(scope="module")
def observed(stack) -> Iterator[Tuple[mlgate_stack.Stack, str]]:
    """A fresh gateway (so its counters start at zero) with an admin listener; its admin URL."""
    admin_port = mlgate_stack.free_port()
    gateway = stack.replica()
    gateway.start_gateway(extra_args=["--admin-listen", f"127.0.0.1:{admin_port}"])
    try:
        yield gateway, f"http://127.0.0.1:{admin_port}"
    finally:
        gateway.stop_gateway()


def scrape(admin_url: str) -> Dict[Tuple[str, frozenset], float]:
    """Every sample of the exposition, by name and label set."""
    resp = requests.get(f"{admin_url}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain"), resp.headers
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def requests_by(samples, **labels: str) -> float:
    """The sum of mlgate_requests_total over the series with these labels."""
    wanted = set(labels.items())
    return sum(value for (name, series), value in samples.items()
               if name == "mlgate_requests_total" and wanted <= series)


def total(samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (n, series), value in samples.items() if n == name and wanted <= series)


def test_the_counts_match_the_workload(observed, reader, stack):
    gateway, admin_url = observed
    token, _ = parse_token_output(stack.mlgate("token", "create", "--user", READER).stdout)
    by_token = Identity(token=token).requests_auth()
    by_password = reader.requests_auth()

    def send(method: str, path: str, auth, status: int, **kwargs) -> None:
        resp = requests.request(method, f"{gateway.url}{path}", auth=auth, timeout=30, **kwargs)
        assert resp.status_code == status, resp.text

    for _ in range(ALLOWED_BASIC):
        send("GET", SEARCH, by_password, 200)
    for _ in range(ALLOWED_TOKEN):
        send("GET", SEARCH, by_token, 200)
    for _ in range(DENIED):
        send("POST", CREATE, by_password, 403, json={"name": unique("metrics-denied")})
    for _ in range(UNKNOWN_ROUTES):
        send("GET", UNKNOWN, by_password, 404)
    for _ in range(UNAUTHENTICATED):
        send("GET", SEARCH, None, 401)
    for _ in range(LOOKUPS):
        send("GET", GET_DEFAULT, by_password, 200)

    samples = scrape(admin_url)
    search = {"operation": "SearchExperiments"}
    assert requests_by(samples, **search, decision="allow", auth_method="basic",
                       status="200") == ALLOWED_BASIC
    assert requests_by(samples, **search, decision="allow", auth_method="token",
                       status="200") == ALLOWED_TOKEN
    assert requests_by(samples, **search, decision="unauthenticated", auth_method="none",
                       status="401") == UNAUTHENTICATED
    assert requests_by(samples, **search) == ALLOWED_BASIC + ALLOWED_TOKEN + UNAUTHENTICATED
    assert requests_by(samples, operation="CreateExperiment", auth_method="basic",
                       status="403", decision="implicit_deny") == DENIED
    assert requests_by(samples, operation="CreateExperiment") == DENIED
    assert requests_by(samples, operation="unknown", decision="rejected", auth_method="basic",
                       status="404") == UNKNOWN_ROUTES
    assert requests_by(samples, operation="GetExperiment", decision="allow") == LOOKUPS

    # Every request is timed; every decided one has a decision time, every forwarded one an
    # upstream time (mlgate's own lookups count there too).
    assert total(samples, "mlgate_request_duration_seconds_count") == requests_by(samples)
    decided = ALLOWED_BASIC + ALLOWED_TOKEN + DENIED + LOOKUPS
    assert total(samples, "mlgate_decision_duration_seconds_count") == decided
    forwarded = ALLOWED_BASIC + ALLOWED_TOKEN + LOOKUPS
    assert total(samples, "mlgate_upstream_duration_seconds_count") >= forwarded
    assert total(samples, "mlgate_request_duration_seconds_bucket", le="+Inf") == requests_by(samples)

    # The experiment's facts were asked of MLflow once, then served from the cache.
    lookups = total(samples, "mlgate_cache_lookups_total", cache="experiments")
    misses = total(samples, "mlgate_cache_misses_total", cache="experiments")
    assert lookups >= LOOKUPS and 1 <= misses < lookups, (lookups, misses)

    assert total(samples, "mlgate_audit_dropped_records_total") == 0
    assert ("mlgate_audit_queue_depth", frozenset()) in samples
    assert total(samples, "mlgate_upstream_errors_total") == 0
    assert total(samples, "mlgate_store_errors_total") == 0

    # Labels are bounded: no path, id or user name in any of them.
    for (_, series) in samples:
        for _, value in series:
            assert READER not in value and "/" not in value, series


def test_a_sign_in_is_an_active_session(observed, reader):
    gateway, admin_url = observed
    before = total(scrape(admin_url), "mlgate_active_sessions")
    sign_in(gateway.url, reader.name, reader.password)
    assert total(scrape(admin_url), "mlgate_active_sessions") == before + 1


def test_the_metrics_are_not_on_the_public_port(observed, reader):
    gateway, _ = observed
    assert_mlflow_error(requests.get(f"{gateway.url}/metrics", timeout=10), 401)
    resp = requests.get(f"{gateway.url}/metrics", auth=reader.requests_auth(), timeout=10)
    assert_mlflow_error(resp, 404, "ENDPOINT_NOT_FOUND")
    assert "mlgate_requests_total" not in resp.text


def test_the_admin_listener_answers_the_probes(observed):
    _, admin_url = observed
    assert requests.get(f"{admin_url}/healthz", timeout=10).json() == {"status": "alive"}
    ready = requests.get(f"{admin_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
