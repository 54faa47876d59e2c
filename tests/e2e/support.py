"""Helpers shared by the end-to-end tests (fixtures live in conftest.py).

The suite drives a real MLflow server behind mlgate with the real MLflow Python client. The
client reads its credentials from the environment on every call, so `acting_as` swaps
MLFLOW_TRACKING_USERNAME / PASSWORD / TOKEN for the duration of a `with` block.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "lib"))

import mlgate_stack  # noqa: E402  (scripts/lib: one implementation of start/stop/wait)

# Client-side settings for the whole session, before mlflow is imported anywhere:
#  * no retries: a 401/403 is never retried anyway, and a 502 must surface at once;
#  * no telemetry (closed network);
#  * no ambient credentials from whoever runs the suite.
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
CRED_VARS = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_AWS_SIGV4",
    "MLFLOW_TRACKING_AUTH",
)
os.environ.update(CLIENT_ENV)
for _var in CRED_VARS + ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
    os.environ.pop(_var, None)

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import requests  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

ADMIN = "mlflow-admin"
READER = "mlflow-reader"
APPROVER = "mlflow-model-approver"
BOOTSTRAP_ADMIN = mlgate_stack.ADMIN_USER

# A running server sees a change made with the CLI within a second (docs/administration.md).
CHANGE_SEEN_SECONDS = 1.0


@dataclass
class Identity:
    """Who the client is: a built-in user with a password, or an API token, or nobody."""

    name: Optional[str] = None
    password: Optional[str] = None
    token: Optional[str] = None

    def env(self) -> dict:
        if self.token is not None:
            return {"MLFLOW_TRACKING_TOKEN": self.token}
        if self.name is not None:
            return {
                "MLFLOW_TRACKING_USERNAME": self.name,
                "MLFLOW_TRACKING_PASSWORD": self.password or "",
            }
        return {}

    def requests_auth(self):
        if self.token is not None:
            return BearerAuth(self.token)
        if self.name is not None:
            return (self.name, self.password or "")
        return None


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


@contextlib.contextmanager
def acting_as(identity: Identity) -> Iterator[MlflowClient]:
    """Within the block, the MLflow client (fluent API and MlflowClient) is `identity`."""
    saved = {k: os.environ.get(k) for k in CRED_VARS}
    for k in CRED_VARS:
        os.environ.pop(k, None)
    os.environ.update(identity.env())
    try:
        yield MlflowClient()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _as_document(value) -> dict | None:
    """A policy document, a lone statement wrapped into one, or None for anything else."""
    if isinstance(value, dict) and "Statement" in value:
        return value
    if isinstance(value, dict) and "Effect" in value:
        return {"Version": "2012-10-17", "Statement": [value]}
    return None


def documented_policies() -> dict:
    """Every documented policy as JSON text, by `<page>#<Sid of its first statement>` (its
    Action when it has no Sid)."""
    found = {}
    for page in DOC_PAGES:
        text = page.read_text()
        documents = []
        for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
            documents.append(_as_document(json.loads(block)))
        for block in re.findall(r"```toml\n(.*?)```", text, flags=re.S):
            for entry in tomllib.loads(block).get("policies", []):
                if "document" in entry:
                    doc = entry["document"]
                    documents.append(_as_document(json.loads(doc) if isinstance(doc, str) else doc))
        for doc in filter(None, documents):
            statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
            label = statements[0].get("Sid") or statements[0]["Action"]
            key = f"{page.relative_to(ROOT)}#{label}"
            assert key not in found, f"two examples are called {key}"
            found[key] = json.dumps(doc)
    return found


def documented_policy(key: str) -> str:
    return documented_policies()[key]


BROWSER_DIR = ROOT / "tests" / "browser"


def run_browser_test(script: str, env: dict) -> subprocess.CompletedProcess:
    """Runs one headless Chromium test file of tests/browser with node's test runner (its output
    is printed; the caller reads the result). Chromium and the project's playwright-core must be
    installed (scripts/lib/browser-deps.sh)."""
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists() or not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        raise AssertionError("headless Chromium tests need Debian's chromium and `bash scripts/lib/browser-deps.sh`")
    shots = os.environ.get("MLGATE_SCREENSHOTS", str(BROWSER_DIR / "screenshots"))
    r = subprocess.run(
        ["node", "--test", "--test-reporter=spec", script],
        cwd=BROWSER_DIR,
        env={**os.environ, "CHROMIUM": chromium, "SCREENSHOT_DIR": shots, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(r.stdout[-6000:], r.stderr[-3000:])
    return r


def users_with_policy(stack, name: str, policy: dict, directory: Path, count: int) -> List[Identity]:
    """Stores `policy` as the policy `name` and creates `count` users `<name>-u<i>` with it."""
    path = Path(directory, f"{name}.json")
    path.write_text(json.dumps(policy))
    stack.mlgate("policy", "put", name, "-f", str(path))
    people = []
    for i in range(count):
        user, password = f"{name}-u{i}", uuid.uuid4().hex
        stack.mlgate("user", "create", user, "--password-env", "USER_PW", env={"USER_PW": password})
        stack.mlgate("policy", "attach", name, "--user", user)
        people.append(Identity(user, password))
    return people


def denied(fn: Callable[[], object], code: str = "PERMISSION_DENIED") -> MlflowException:
    """Calls fn, which must fail in the MLflow client with `code`; returns the exception."""
    try:
        fn()
    except MlflowException as e:
        assert e.error_code == code, f"expected {code}, got {e.error_code}: {e.message}"
        return e
    raise AssertionError(f"expected the call to fail with {code}, but it succeeded")


def assert_mlflow_error(resp: requests.Response, status: int, code: Optional[str] = None) -> dict:
    """`resp` is an error in MLflow's JSON shape: {"error_code": ..., "message": ...}."""
    assert resp.status_code == status, (
        f"expected HTTP {status}, got {resp.status_code}: {resp.text[:500]}"
    )
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.text[:500]!r}")
    assert isinstance(body, dict), body
    assert isinstance(body.get("error_code"), str) and body["error_code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert body["error_code"] == code, body
    return body


class MlflowAccessLog:
    """MLflow's own access log (uvicorn), to prove what reached MLflow and what did not."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int) -> List[str]:
        with open(self.path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace").splitlines()

    def saw(self, mark: int, needle: str, settle: float = 0.5) -> bool:
        """Whether a line containing `needle` was logged after `mark` (waits `settle` s)."""
        time.sleep(settle)
        return any(needle in line for line in self.since(mark))


def _arrival(record: dict) -> tuple:
    """A sort key for a record's RFC 3339 `time` (fractions of any length compare right)."""
    seconds, _, fraction = record.get("time", "").rstrip("Z").partition(".")
    return seconds, fraction.ljust(9, "0")


class AuditLog:
    """mlgate's audit log: one JSON object per line, in one file per replica (a stack of
    replicas reads as one log, its records in order of arrival)."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths

    def _sizes(self) -> tuple:
        return tuple(p.stat().st_size if p.exists() else 0 for p in self.paths)

    def mark(self) -> tuple:
        """The current end of the log, once earlier requests' records have been written (the
        writer is asynchronous: wait until the size holds still for 0.2 s)."""
        sizes = self._sizes()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self._sizes()
            if now == sizes:
                break
            sizes = now
        return sizes

    def records_since(self, mark: tuple) -> List[dict]:
        records: List[dict] = []
        for path, offset in zip(self.paths, mark):
            if not path.exists():
                continue
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
            # Only complete lines: the writer is asynchronous. Checkpoints and drop markers are
            # events, not request records.
            complete = data[: data.rfind(b"\n") + 1]
            lines = [json.loads(line) for line in complete.decode().splitlines() if line.strip()]
            records += [line for line in lines if "event" not in line]
        return sorted(records, key=_arrival) if len(self.paths) > 1 else records

    def wait_for(self, mark: tuple, count: int, timeout: float = 10.0) -> List[dict]:
        """Waits until at least `count` records were written after `mark`; returns them all."""
        deadline = time.monotonic() + timeout
        records: List[dict] = []
        while time.monotonic() < deadline:
            records = self.records_since(mark)
            if len(records) >= count:
                time.sleep(0.3)  # anything beyond `count` would show up now
                return self.records_since(mark)
            time.sleep(0.1)
        raise AssertionError(
            f"expected {count} audit record(s) after {mark}, found {len(records)}"
        )


class RoundRobin:
    """A round-robin HTTP/1.1 load balancer in front of replicas, for the tests: each request
    goes to the next replica. It rewrites each request to `Connection: close` (so the client's
    next request comes on a new connection, to the next replica) and relays bytes both ways.
    asyncio in a daemon thread."""

    def __init__(self, ports: List[int]) -> None:
        self.port = mlgate_stack.free_port()
        self._next = itertools.cycle(ports)
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, "127.0.0.1", self.port))
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)

    @staticmethod
    def _one_request(head: bytes) -> bytes:
        """The request head with `Connection: close` instead of the client's keep-alive."""
        lines = head.rstrip(b"\r\n").split(b"\r\n")
        kept = [line for line in lines[1:]
                if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
        return b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n"

    @staticmethod
    async def _pipe(source, sink) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def _relay(self, client_r, client_w) -> None:
        try:
            head = await client_r.readuntil(b"\r\n\r\n")
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", next(self._next))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            client_w.close()
            return
        upstream_w.write(self._one_request(head))
        uploading = asyncio.ensure_future(self._pipe(client_r, upstream_w))
        # The replica closes the connection after its one response: then so does the balancer.
        await self._pipe(upstream_r, client_w)
        uploading.cancel()
        for writer in (upstream_w, client_w):
            writer.close()


class Replicated:
    """Replicas of one stack (same MLflow, master key and PostgreSQL store) behind a
    `RoundRobin` balancer: reads like the one stack, with the balancer's URL and every
    replica's audit log."""

    def __init__(self, first, count: int) -> None:
        self.first = first
        self.others = [first.replica() for _ in range(count - 1)]
        for replica in self.others:
            replica.start_gateway()
        self.balancer = RoundRobin([first.port] + [r.port for r in self.others])

    def __getattr__(self, name: str):
        return getattr(self.first, name)

    @property
    def url(self) -> str:
        return self.balancer.url

    @property
    def audit_logs(self) -> List[Path]:
        return [self.first.audit_log] + [r.audit_log for r in self.others]

    def down(self) -> None:
        self.balancer.close()
        for replica in self.others:
            replica.stop_gateway()
        self.first.down()


def raw_http(url: str, method: str, target: str, body: bytes = b"",
             headers: Optional[dict] = None, source: Optional[str] = None) -> tuple:
    """One request with an exact request target (no client-side path normalization), from the
    local address `source` when given (e.g. 127.0.0.2: another peer on the loopback)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30,
                                      source_address=(source, 0) if source else None)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


class EchoModel(mlflow.pyfunc.PythonModel):
    """The smallest pyfunc model: returns its input (pickled by reference to this module)."""

    def predict(self, context, model_input, params=None):
        return model_input


def parse_token_output(stdout: str) -> tuple:
    """(token, token id) from `mlgate token create`, which prints the token alone on stdout.
    A token reads `mlg_<id>_<secret>`; `mlgate token revoke` takes the id."""
    token = stdout.strip()
    assert token.startswith("mlg_") and "\n" not in token, f"unexpected output: {stdout!r}"
    return token, token.split("_")[1]
