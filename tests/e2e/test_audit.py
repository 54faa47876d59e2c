"""The audit log: one JSON line per request, allowed or denied, with the principal, the
authentication method, the action, the resources, the decision and the policy statement that
decided; never a secret."""

import requests

from support import READER, Identity

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"
CREATE = "/api/2.0/mlflow/experiments/create"
FIELDS = {"time", "request_id", "principal", "actions", "decision", "status"}


def test_one_line_per_request(stack, reader, audit):
    mark = audit.mark()
    n = 5
    for _ in range(n):
        assert requests.get(f"{stack.url}{SEARCH}", auth=reader.requests_auth(), timeout=30).ok
    records = audit.wait_for(mark, n)
    assert len(records) == n, records
    assert len({r["request_id"] for r in records}) == n
    for r in records:
        assert FIELDS <= r.keys(), r


def test_allowed_request_names_principal_action_and_statement(stack, reader, audit):
    mark = audit.mark()
    resp = requests.get(f"{stack.url}{SEARCH}", auth=reader.requests_auth(), timeout=30)
    assert resp.status_code == 200
    [r] = audit.wait_for(mark, 1)
    assert r["request_id"] == resp.headers["x-request-id"], r
    assert r["principal"].endswith(f":user/{READER}"), r
    assert r["auth_method"] == "basic"
    assert "mlflow:SearchExperiments" in r["actions"], r
    assert r["decision"] == "allow"
    assert r["policy"] and r["statement"], r
    assert r["status"] == 200
    assert r["method"] == "GET" and r["path"].startswith("/api/2.0/mlflow/experiments/search")
    assert isinstance(r["latency_ms"], (int, float))


def test_denied_request_is_audited(stack, reader, audit):
    mark = audit.mark()
    resp = requests.post(
        f"{stack.url}{CREATE}", json={"name": "audit-denied"}, auth=reader.requests_auth(),
        timeout=30,
    )  # fmt: skip
    assert resp.status_code == 403
    [r] = audit.wait_for(mark, 1)
    assert r["principal"].endswith(f":user/{READER}")
    assert "mlflow:CreateExperiment" in r["actions"], r
    assert r["decision"] in ("implicit_deny", "explicit_deny"), r
    assert r["status"] == 403


def test_authentication_failures_are_audited_without_secrets(stack, audit):
    secret = "Sup3r-Secret-Password-e2e"
    mark = audit.mark()
    resp = requests.get(
        f"{stack.url}{SEARCH}", auth=Identity(READER, secret).requests_auth(), timeout=30
    )
    assert resp.status_code == 401
    resp = requests.get(f"{stack.url}{SEARCH}", timeout=30)
    assert resp.status_code == 401
    records = audit.wait_for(mark, 2)
    assert len(records) == 2
    for r in records:
        assert r["decision"] == "unauthenticated", r
        assert r["status"] == 401
        assert r["principal"] is None
    assert secret not in stack.audit_log.read_text()
    assert secret not in stack.mlgate_log.read_text()


def test_passwords_never_reach_the_logs(stack, users):
    text = stack.audit_log.read_text() + stack.mlgate_log.read_text()
    for identity in users.values():
        assert identity.password not in text
