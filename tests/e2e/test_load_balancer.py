"""Behind a load balancer: the probes (`/_mlgate/healthz`, `/_mlgate/readyz`), forwarding
headers believed only from `--trusted-proxies`, a graceful drain on SIGTERM, and the TLS
certificate reloaded without a restart.

The trusted-proxy gateway is a second mlgate on the session's store and MLflow that trusts
127.0.0.1 only; the tests reach it from 127.0.0.1 (a trusted proxy) and from 127.0.0.2 (any
other peer on the loopback). The session's gateway trusts no proxy at all."""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from support import AuditLog, MlflowAccessLog, assert_mlflow_error, raw_http, users_with_policy

SEARCH_EXPERIMENTS = "/api/2.0/mlflow/experiments/search?max_results=1"
SEARCH_MODELS = "/api/2.0/mlflow/registered-models/search?max_results=1"
CLIENT = "203.0.113.9"  # the address a proxy names; policies below allow its /24 only
UNTRUSTED_PEER = "127.0.0.2"


def _probe(url: str, name: str) -> requests.Response:
    return requests.get(f"{url}/_mlgate/{name}", timeout=30)


def test_probes_answer_without_credentials_and_are_audited(stack, audit):
    mark = audit.mark()
    alive = _probe(stack.url, "healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    ready = _probe(stack.url, "readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready",
                            "checks": {"store": "ok", "mlflow": "ok", "not_draining": "ok"}}
    assert ready.headers["cache-control"] == "no-store"
    records = audit.wait_for(mark, 2)
    probes = {r["path"]: r for r in records if r["path"].startswith("/_mlgate/")}
    for path in ("/_mlgate/healthz", "/_mlgate/readyz"):
        assert probes[path]["status"] == 200 and probes[path]["decision"] == "public", probes


def test_readyz_names_mlflow_when_it_is_down_and_healthz_stays_alive(stack):
    stack.stop_mlflow()
    try:
        ready = _probe(stack.url, "readyz")
        body = assert_mlflow_error(ready, 503, "TEMPORARILY_UNAVAILABLE")
        assert body["checks"] == {"store": "ok", "mlflow": "failing", "not_draining": "ok"}
        assert "mlflow" in body["message"]
        assert _probe(stack.url, "healthz").status_code == 200
    finally:
        stack.start_mlflow()
    assert _probe(stack.url, "readyz").status_code == 200


@pytest.fixture(scope="module")
def proxied(stack):
    """A gateway that believes forwarding headers from 127.0.0.1 only."""
    gateway = stack.replica()
    gateway.start_gateway(extra_args=["--trusted-proxies", "127.0.0.1/32"])
    try:
        yield gateway
    finally:
        gateway.stop_gateway()


@pytest.fixture(scope="module")
def from_client_network(stack, tmp_path_factory):
    """A user allowed to search experiments only from 203.0.113.0/24, and registered models
    only over TLS."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "mlflow:SearchExperiments", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
        {"Effect": "Allow", "Action": "mlflow:SearchRegisteredModels", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    ]}  # fmt: skip
    [user] = users_with_policy(stack, "lb-client-net", policy, tmp_path_factory.mktemp("lb"), 1)
    return user


def _get(gateway, target: str, user, source: str, **headers) -> int:
    token = base64.b64encode(f"{user.name}:{user.password}".encode()).decode()
    status, _, _ = raw_http(gateway.url, "GET", target, source=source,
                            headers={"Authorization": f"Basic {token}", **headers})
    return status


def _source_ips(log: AuditLog, mark: int, count: int) -> list:
    return [r["source_ip"] for r in log.wait_for(mark, count) if r["path"].startswith("/api/")]


def test_spoofed_forwarding_headers_from_untrusted_peers_change_nothing(
        stack, proxied, from_client_network, audit):
    spoofed = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https",
               "Forwarded": f"for={CLIENT};proto=https", "X-Real-IP": CLIENT}
    user = from_client_network
    # The session's gateway trusts no proxy: not even 127.0.0.1.
    mark = audit.mark()
    assert _get(stack, SEARCH_EXPERIMENTS, user, "127.0.0.1", **spoofed) == 403
    assert _get(stack, SEARCH_MODELS, user, "127.0.0.1", **spoofed) == 403
    assert _source_ips(audit, mark, 2) == ["127.0.0.1", "127.0.0.1"]
    # The proxied gateway does not trust 127.0.0.2.
    proxied_audit = AuditLog(proxied.audit_log)
    mark = proxied_audit.mark()
    assert _get(proxied, SEARCH_EXPERIMENTS, user, UNTRUSTED_PEER, **spoofed) == 403
    assert _get(proxied, SEARCH_MODELS, user, UNTRUSTED_PEER, **spoofed) == 403
    assert _source_ips(proxied_audit, mark, 2) == [UNTRUSTED_PEER, UNTRUSTED_PEER]


def test_a_trusted_proxy_names_the_client(proxied, from_client_network, stack):
    user = from_client_network
    proxied_audit = AuditLog(proxied.audit_log)
    mlflow_log = MlflowAccessLog(stack.mlflow_log)
    mark, mlflow_mark = proxied_audit.mark(), mlflow_log.mark()
    # The client wrote 198.51.100.1 itself; the proxy appended the address it saw.
    hops = {"X-Forwarded-For": f"198.51.100.1, {CLIENT}"}
    assert _get(proxied, SEARCH_EXPERIMENTS, user, "127.0.0.1", **hops) == 200
    # The right-most hop that is not a trusted proxy is the client: here not in the /24.
    hops = {"X-Forwarded-For": f"{CLIENT}, 198.51.100.1"}
    assert _get(proxied, SEARCH_EXPERIMENTS, user, "127.0.0.1", **hops) == 403
    # Only the configured header counts (X-Forwarded-For): a Forwarded header is ignored.
    assert _get(proxied, SEARCH_EXPERIMENTS, user, "127.0.0.1", Forwarded=f"for={CLIENT}") == 403
    assert _source_ips(proxied_audit, mark, 3) == [CLIENT, "198.51.100.1", "127.0.0.1"]
    # MLflow is told the client's address too (uvicorn logs the X-Forwarded-For of 127.0.0.1).
    assert mlflow_log.saw(mlflow_mark, CLIENT)
    # aws:SecureTransport follows the proxy's X-Forwarded-Proto.
    https = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}
    assert _get(proxied, SEARCH_MODELS, user, "127.0.0.1", **https) == 200
    assert _get(proxied, SEARCH_MODELS, user, "127.0.0.1", **{**https,
                "X-Forwarded-Proto": "http"}) == 403


def _sign_in(gateway, user, source: str, **headers) -> tuple:
    """Signs in on the portal's form; (status, headers with lower-case names)."""
    form = urlencode({"username": user.name, "password": user.password}).encode()
    status, answer, _ = raw_http(gateway.url, "POST", "/_mlgate/login", body=form, source=source,
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          **headers})
    return status, {k.lower(): v for k, v in answer.items()}


def test_sign_in_cookie_and_origin_follow_the_trusted_proxys_scheme(proxied, from_client_network):
    user = from_client_network
    host = urlsplit(proxied.url).netloc
    https = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https",
             "Origin": f"https://{host}"}
    # Through the trusted proxy the browser is on HTTPS: the `__Host-` cookie, marked Secure,
    # and the https origin is this site's.
    status, headers = _sign_in(proxied, user, "127.0.0.1", **https)
    assert status == 303, status
    cookie = headers["set-cookie"]
    assert cookie.startswith("__Host-mlgate_session=") and "; Secure" in cookie, cookie
    # From any other peer the same headers are the client's own words: the request is plain
    # HTTP, so an https origin is another site's (CSRF) and the cookie is not Secure.
    status, headers = _sign_in(proxied, user, UNTRUSTED_PEER, **https)
    assert status == 403 and "set-cookie" not in headers, (status, headers)
    status, headers = _sign_in(proxied, user, UNTRUSTED_PEER,
                               **{**https, "Origin": f"http://{host}"})
    assert status == 303, status
    cookie = headers["set-cookie"]
    assert cookie.startswith("mlgate_session=") and "Secure" not in cookie, cookie


def test_sigterm_drains_readiness_first_and_lets_an_upload_finish(stack, admin, world):
    gateway = stack.replica()
    gateway.start_gateway(extra_args=["--drain-delay", "2s", "--shutdown-grace", "20s"])
    path = f"{world.experiment_id}/{world.run_id}/artifacts/drain/slow-{os.getpid()}.bin"
    url = f"{gateway.url}/api/2.0/mlflow-artifacts/artifacts/{path}"
    chunks = [bytes([i]) * 65536 for i in range(8)]
    sent_some = threading.Event()
    answer = {}

    def slow_body():
        for i, chunk in enumerate(chunks):
            yield chunk
            if i == 1:
                sent_some.set()
            time.sleep(0.5)

    def upload():
        try:
            answer["response"] = requests.put(url, data=slow_body(), auth=admin.requests_auth(),
                                              timeout=60)
        except requests.RequestException as e:
            answer["error"] = e

    try:
        uploader = threading.Thread(target=upload)
        uploader.start()
        assert sent_some.wait(30)
        os.kill(gateway.gateway.pid, signal.SIGTERM)
        time.sleep(0.3)
        # Draining: still accepting, but no longer ready; alive all the same.
        ready = _probe(gateway.url, "readyz")
        assert_mlflow_error(ready, 503, "TEMPORARILY_UNAVAILABLE")
        assert ready.json()["checks"]["not_draining"] == "failing"
        assert _probe(gateway.url, "healthz").status_code == 200
        uploader.join(60)
        assert "error" not in answer, answer
        assert answer["response"].status_code == 200, answer["response"].text
        gateway.gateway.proc.wait(timeout=20)
        assert gateway.gateway.proc.returncode == 0
    finally:
        gateway.stop_gateway()
    # The whole upload reached MLflow.
    r = requests.get(f"{stack.url}/api/2.0/mlflow-artifacts/artifacts/{path}",
                     auth=admin.requests_auth(), timeout=30)
    assert r.status_code == 200 and r.content == b"".join(chunks)


def test_a_malformed_trusted_proxies_flag_is_refused_at_start(stack):
    result = stack.mlgate("serve", "--trusted-proxies", "lb.example.com", check=False)
    assert result.returncode != 0
    assert "not a CIDR or an IP address" in result.stderr, result.stderr


def _self_signed(directory, name: str) -> tuple:
    """A fresh self-signed certificate for 127.0.0.1 and its key (PEM text)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    return cert.read_text(), key.read_text()


def _served_certificate(port: int) -> bytes:
    """The DER certificate a real TLS client (Python's ssl) is shown at 127.0.0.1:port."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as tcp:
        with context.wrap_socket(tcp) as tls:
            return tls.getpeercert(binary_form=True)


def _serves(port: int, pem: str, within: float) -> bool:
    """Whether new connections are shown `pem`, now or before `within` seconds pass."""
    wanted = ssl.PEM_cert_to_DER_cert(pem)
    deadline = time.monotonic() + within
    while True:
        if _served_certificate(port) == wanted:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def _write_keeping_times(path, text: str) -> None:
    """Rewrites a file and puts its times back, so only a signal can tell it changed."""
    before = path.stat()
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_tls_certificate_reloads_on_file_change_and_sighup(stack, tmp_path):
    first, second, third = (_self_signed(tmp_path, n) for n in ("first", "second", "third"))
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text(first[0])
    key.write_text(first[1])
    gateway = stack.replica()
    gateway.start_gateway(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        assert _serves(gateway.port, first[0], within=0)
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as tcp:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(tcp) as open_connection:
                # A renewal written in place is picked up without a signal; a connection opened
                # before keeps the certificate it was shown.
                key.write_text(second[1])
                cert.write_text(second[0])
                assert _serves(gateway.port, second[0], within=10)
                assert open_connection.getpeercert(binary_form=True) == \
                    ssl.PEM_cert_to_DER_cert(first[0])
        # A broken file keeps the certificate in use, and the listener keeps serving.
        cert.write_text("not a certificate")
        time.sleep(3)
        assert _serves(gateway.port, second[0], within=0)
        # SIGHUP reloads at once, and reopens the audit log in the same go.
        _write_keeping_times(key, third[1])
        _write_keeping_times(cert, third[0])
        time.sleep(3)
        assert _serves(gateway.port, second[0], within=0), "only the signal may reload now"
        rotated = gateway.audit_log.with_suffix(".rotated")
        gateway.audit_log.rename(rotated)
        os.kill(gateway.gateway.pid, signal.SIGHUP)
        assert _serves(gateway.port, third[0], within=5)
        r = requests.get(f"{gateway.url}/_mlgate/healthz", verify=False, timeout=30)
        assert r.status_code == 200
        records = AuditLog(gateway.audit_log).wait_for((0,), 1)
        assert [x["path"] for x in records] == ["/_mlgate/healthz"], records
    finally:
        gateway.stop_gateway()


def _exchange(gateway, source: str, raw: bytes) -> bytes:
    """Sends raw bytes from local address `source`; everything the gateway answers until it
    closes (b"" when it closes without a word: a close with unread bytes is a reset)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30,
                                  source_address=(source, 0)) as conn:
        answer = b""
        try:
            conn.sendall(raw)
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def _search_request(user) -> bytes:
    token = base64.b64encode(f"{user.name}:{user.password}".encode()).decode()
    return (f"GET {SEARCH_EXPERIMENTS} HTTP/1.1\r\nHost: mlgate\r\n"
            f"Authorization: Basic {token}\r\nConnection: close\r\n\r\n").encode()


def _v2_header(client: str) -> bytes:
    addresses = socket.inet_aton(client) + socket.inet_aton("10.0.0.1") + \
        (51000).to_bytes(2, "big") + (5000).to_bytes(2, "big")
    return b"\r\n\r\n\0\r\nQUIT\n" + bytes([0x21, 0x11]) + len(addresses).to_bytes(2, "big") + \
        addresses


def test_proxy_protocol_names_the_client_only_from_a_trusted_proxy(stack, from_client_network):
    user = from_client_network
    gateway = stack.replica()
    # The load balancer is 127.0.0.3, so the stack's own readiness check (from 127.0.0.1) is
    # an ordinary client.
    proxy = "127.0.0.3"
    gateway.start_gateway(extra_args=["--trusted-proxies", f"{proxy}/32", "--proxy-protocol"])
    try:
        log = AuditLog(gateway.audit_log)
        mark = log.mark()
        v1 = f"PROXY TCP4 {CLIENT} 10.0.0.1 51000 5000\r\n".encode()
        # The trusted proxy names the client in v1 and in v2: its address decides.
        assert _exchange(gateway, proxy, v1 + _search_request(user)).startswith(
            b"HTTP/1.1 200")
        assert _exchange(gateway, proxy, _v2_header(CLIENT) + _search_request(user)) \
            .startswith(b"HTTP/1.1 200")
        # Another client address in the header: not in the allowed /24.
        assert _exchange(gateway, proxy, _v2_header("198.51.100.1") +
                         _search_request(user)).startswith(b"HTTP/1.1 403")
        assert [r["source_ip"] for r in log.wait_for(mark, 3)] == [CLIENT, CLIENT, "198.51.100.1"]
        # From the trusted proxy a connection without a header is closed unanswered.
        assert _exchange(gateway, proxy, _search_request(user)) == b""
        # Any other peer is never read a header from: its PROXY line is a malformed request,
        # and its plain requests are its own.
        assert _exchange(gateway, UNTRUSTED_PEER, v1 + _search_request(user)).startswith(
            b"HTTP/1.1 400")
        assert _exchange(gateway, UNTRUSTED_PEER, _search_request(user)).startswith(
            b"HTTP/1.1 403")
    finally:
        gateway.stop_gateway()
