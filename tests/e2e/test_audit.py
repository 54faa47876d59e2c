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


def _raw_exchange(stack, head: bytes, close_after_answer: bool = False) -> bytes:
    """Sends `head` on a connection of its own; returns what mlgate answered before closing
    (or, with `close_after_answer`, the first bytes of its answer, then closes)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(stack.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(head)
        answer = b""
        while not close_after_answer or b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_requests_refused_by_the_http_parser_are_audited(stack, audit):
    create = b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: mlgate\r\n"
    refused = [
        (create + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
        (create + b"Transfer-Encoding: gzip, chunked, gzip\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nHost: mlgate\r\nX-Nul: a\0b\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nHost: mlgate\r\nX-Big: " + b"a" * (70 << 10) + b"\r\n\r\n", 431),
    ]
    mark = audit.mark()
    for head, status in refused:
        answer = _raw_exchange(stack, head)
        assert answer.startswith(b"HTTP/1.1 %d" % status), answer[:200]
    # A client closing its keep-alive connection after an answer is no refusal.
    answer = _raw_exchange(stack, b"GET /health HTTP/1.1\r\nHost: mlgate\r\n\r\n", close_after_answer=True)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    records = audit.wait_for(mark, len(refused) + 1)
    by_parser = [r for r in records if (r.get("reason") or "").startswith("refused by the HTTP parser")]
    assert [r["status"] for r in by_parser] == [status for _, status in refused], records
    for r in by_parser:
        assert r["decision"] == "rejected", r
        assert r["source_ip"] == "127.0.0.1", r
        assert r["principal"] is None, r
    assert len(records) == len(refused) + 1, records
