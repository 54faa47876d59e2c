"""Replicas on one PostgreSQL store: three mlgate processes behave as one service (sessions, page
tokens, revocation within a second), a PostgreSQL outage is a 503 that heals by itself, and a bad
store URL or an unreachable database at start is reported clearly.

The replicas share the session's MLflow and data dir (the master key); their store is a database
of their own on the session's throwaway PostgreSQL server (the `postgres` fixture)."""

from __future__ import annotations

import statistics
import subprocess
import time

import pytest
import requests

from support import READER, acting_as, assert_mlflow_error, mlgate_stack, parse_token_output
from test_browser import sign_in

SEARCH = "/api/2.0/mlflow/experiments/search"
# How long a replica may take to refuse a revoked token (the brief's bound).
PROPAGATION_BOUND = 1.0


@pytest.fixture(scope="module")
def replicas(stack, postgres, tmp_path_factory):
    """Replicas A, B and C on one PostgreSQL database, bootstrapped with the demo file."""
    a = mlgate_stack.Stack(tmp_path_factory.mktemp("replicas"), port=mlgate_stack.free_port(),
                           mlflow_port=stack.mlflow_port, binary=stack.binary,
                           store_url=postgres.url("e2e_replicas"))
    a.apply(mlgate_stack.DEMO_FILE, stack.passwords)
    all_three = [a, a.replica(), a.replica()]
    try:
        for replica in all_three:
            replica.start_gateway()
        # Everything below must come from the database, not from a file they share.
        assert not (a.data_dir / mlgate_stack.STORE_FILE).exists()
        yield all_three
    finally:
        for replica in all_three:
            replica.stop_gateway()


def _search(url: str, token: str, **body) -> requests.Response:
    return requests.post(url + SEARCH, json={"max_results": 1, **body},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _refused_at(url: str, token: str, deadline: float) -> float:
    """Polls until `url` refuses the token; the time it did."""
    while time.monotonic() < deadline:
        r = _search(url, token)
        if r.status_code == 401:
            return time.monotonic()
        assert r.status_code == 200, r.text
        time.sleep(0.01)
    raise AssertionError(f"{url} still accepts the revoked token")


def test_a_revoked_token_is_refused_by_every_replica_within_a_second(replicas):
    a = replicas[0]
    delays = []
    for _ in range(8):
        token, token_id = parse_token_output(a.mlgate("token", "create", "--user", READER).stdout)
        for replica in replicas:  # cached on every one
            assert _search(replica.url, token).status_code == 200
            assert _search(replica.url, token).status_code == 200
        a.mlgate("token", "revoke", token_id)
        revoked = time.monotonic()
        for replica in replicas:
            delays.append(_refused_at(replica.url, token, revoked + 5) - revoked)
    delays.sort()
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    print(f"\nrevocation propagation over {len(delays)} refusals: p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms")
    assert delays[-1] < PROPAGATION_BOUND, delays


def test_a_browser_session_from_one_replica_works_on_another(replicas, stack, users):
    a, *others = replicas
    reader = users[READER]
    session, _ = sign_in(a.url, reader.name, reader.password)
    # The cookie is host-only (127.0.0.1), so the same browser sends it to B and C.
    for replica in others:
        whoami = session.get(replica.url + "/_mlgate/whoami", timeout=30)
        assert whoami.status_code == 200, whoami.text
        assert READER in whoami.text


def test_a_search_page_token_from_one_replica_continues_on_another(replicas, admin, fresh_name):
    prefix = fresh_name("replica-page")
    with acting_as(admin) as client:
        created = {client.create_experiment(f"{prefix}-{i}") for i in range(4)}
    token, _ = parse_token_output(replicas[0].mlgate("token", "create", "--user", READER).stdout)
    flt = f"name LIKE '{prefix}-%'"
    ids, page_token = [], None
    for replica in replicas:  # page 1 from A, page 2 from B, page 3 from C
        page = _search(replica.url, token, filter=flt,
                       **({"page_token": page_token} if page_token else {}))
        assert page.status_code == 200, page.text
        ids += [e["experiment_id"] for e in page.json()["experiments"]]
        page_token = page.json()["next_page_token"]
    assert len(set(ids)) == 3 and set(ids) <= created


def test_a_store_outage_is_a_503_and_heals_by_itself(replicas, postgres):
    a = replicas[0]
    token, _ = parse_token_output(a.mlgate("token", "create", "--user", READER).stdout)
    assert _search(a.url, token).status_code == 200
    postgres.stop()
    try:
        # Cached credentials keep working for at most the cache TTL (2 s); then every request
        # that needs the store is refused in MLflow's shape, each within the pool's acquire
        # timeout (3 s), never hanging.
        deadline = time.monotonic() + 15
        while True:
            started = time.monotonic()
            r = _search(a.url, token)
            assert time.monotonic() - started < 5, "a request hung on the stopped store"
            if r.status_code == 503:
                break
            assert r.status_code == 200, r.text
            assert time.monotonic() < deadline, "the stopped store never gave a 503"
            time.sleep(0.1)
        assert_mlflow_error(r, 503)
    finally:
        postgres.start()
    deadline = time.monotonic() + 30
    while _search(a.url, token).status_code != 200:
        assert time.monotonic() < deadline, "mlgate did not recover when the store came back"
        time.sleep(0.2)


def test_a_malformed_store_url_is_one_clear_line(stack):
    result = subprocess.run(
        [str(stack.binary), "serve", "--store-url", "postgres://u:s3cret@host:notaport/db",
         "--data-dir", str(stack.data_dir)],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--store-url" in lines[0], result.stderr
    assert "s3cret" not in result.stderr


def test_an_unreachable_store_at_start_is_retried_with_a_clear_log_line(stack, tmp_path):
    closed = mlgate_stack.free_port()
    replica = mlgate_stack.Stack(tmp_path, port=mlgate_stack.free_port(),
                                 mlflow_port=stack.mlflow_port, binary=stack.binary,
                                 store_url=f"postgres://mlgate:mlgate@127.0.0.1:{closed}/x")
    with pytest.raises(RuntimeError, match="did not answer"):
        replica.start_gateway(timeout=4)
    try:
        assert replica.gateway.alive(), "mlgate gave up instead of retrying"
        log = replica.mlgate_log.read_text()
        assert log.count("cannot be reached; retrying") >= 2, log
    finally:
        replica.stop_gateway()
