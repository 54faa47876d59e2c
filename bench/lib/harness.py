#!/usr/bin/env python3
"""mlgate's benchmark suite: runs every case on loopback and writes results.json + REPORT.md.

Started by ``bench/run`` (which installs the tools first); see ``docs/benchmarks.md``.

Cases (``--cases`` picks some):

* ``micro``    criterion microbenchmarks: policy decisions, route classification, parameter
               reading, SigV4 verification, JWT verification (full and cached);
* ``gateway``  mlgate's cost alone against a fast stub upstream, side by side with the stub
               direct and nginx as a plain reverse proxy, for each credential type;
* ``e2e``      real MLflow (``--workers 1``): direct, through mlgate, and MLflow's own
               ``--app-name basic-auth``, on a read, a search and a small write;
* ``search``   issue 5's benchmark: SearchExperiments over 10,000 experiments of two teams in a
               real MLflow, filtered by mlgate for a reader of one team, versus MLflow direct;
* ``memory``   mlgate's idle RSS, and its peak RSS growth while a 1 GiB artifact goes up and
               down through it (to the stub, so that only mlgate's buffering is measured; then
               to a real MLflow's artifact proxy).

Cases alternate (A B C A B C ...) within each comparison so that a slow minute of this shared
machine hits every side. Exit status: 0 when every case ran, 1 when a case failed to run (a
load run that got errors or non-2xx answers counts as failing to run). Numbers are never
asserted on.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT / "scripts" / "lib"))
sys.path.insert(0, str(BENCH / "lib"))

import mlgate_stack as ms  # noqa: E402  (the quick start's helpers: MLflow + mlgate)
import report  # noqa: E402

# The identities and policies mlgate runs with: the quick start's (the shipped role policies).
DEMO_FILE = Path(os.environ.get("BENCH_APPLY_FILE") or ROOT / "deploy" / "demo.toml").resolve()
STUB_BIN = BENCH / ".target" / "release" / "mlgate-bench-stub"
# The load generator: Debian's wrk (bench/run installs it), driven by bench/lib/wrk.lua.
WRK_BIN = os.environ.get("WRK_BIN") or "wrk"
WRK_SCRIPT = BENCH / "lib" / "wrk.lua"
ACCOUNT = "111111111111"


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class CaseFailed(RuntimeError):
    """A case could not run (as opposed to a number that missed its goal)."""


# ------------------------------------------------------------------------------ settings


@dataclass
class Settings:
    quick: bool
    out: Path
    cases: List[str]
    # gateway case (stub upstream)
    duration: float = 6.0
    rounds: int = 3
    concurrency: int = 16
    light_rate: int = 500
    # e2e case (real MLflow)
    e2e_duration: float = 10.0
    e2e_rounds: int = 2
    e2e_concurrency: int = 8
    # search case (issue 5): experiments in MLflow, half of them readable by the caller
    search_experiments: int = 10_000
    # memory case: through the stub, and through MLflow's artifact proxy
    artifact_bytes: int = 1 << 30
    mlflow_artifact_bytes: int = 1 << 30
    # microbenchmarks: criterion flags
    criterion_args: List[str] = field(default_factory=list)

    @staticmethod
    def make(quick: bool, out: Path, cases: List[str]) -> "Settings":
        s = Settings(quick=quick, out=out, cases=cases)
        if quick:
            s.duration, s.rounds = 1.0, 1
            s.e2e_duration, s.e2e_rounds = 1.5, 1
            s.artifact_bytes = 256 << 20
            s.mlflow_artifact_bytes = 32 << 20
            s.search_experiments = 300
            s.criterion_args = ["--warm-up-time", "0.3", "--measurement-time", "1", "--sample-size", "10"]
        else:
            s.criterion_args = ["--warm-up-time", "1", "--measurement-time", "3"]
        return s


# ------------------------------------------------------------------------------ processes


def read_status(pid: int) -> Dict[str, int]:
    """VmRSS / VmHWM / VmSize of a process, in bytes."""
    out: Dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmSize", "Threads"):
                parts = value.split()
                out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


CLK_TCK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: Optional[int]) -> Optional[float]:
    """User + system CPU seconds of every live process in process group `pgid` (every child
    the suite starts leads its own group: nginx's workers, MLflow's uvicorn worker count)."""
    if pgid is None:
        return None
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is state (field 3); pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


class RssSampler:
    """Samples VmRSS of a pid every `interval` seconds in a thread; keeps the maximum."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval = pid, interval
        self.max_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.max_rss = max(self.max_rss, read_status(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_ready_line(child: ms.Child, prefix: str, timeout: float = 30.0) -> str:
    """Waits for a line starting with `prefix` in the child's log; returns the rest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise CaseFailed(f"{child.name} exited early:\n{ms.tail(child.log_path)}")
        if child.log_path.exists():
            for line in child.log_path.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
        time.sleep(0.05)
    raise CaseFailed(f"{child.name} did not print {prefix!r} within {timeout}s")


def start_stub(logs: Path, artifact_bytes: int) -> Tuple[ms.Child, int]:
    (logs / "stub.log").unlink(missing_ok=True)  # Child appends; the ready line must be this run's
    child = ms.Child(
        "stub",
        [str(STUB_BIN), "--listen", "127.0.0.1:0", "--artifact-bytes", str(artifact_bytes)],
        logs / "stub.log",
    )
    url = wait_ready_line(child, "stub: ready on ")
    return child, int(url.rsplit(":", 1)[1])


def start_nginx(work: Path, upstream_port: int) -> Tuple[ms.Child, int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = ms.free_port()
    work.mkdir(parents=True, exist_ok=True)
    (work / "tmp").mkdir(exist_ok=True)
    conf = (BENCH / "nginx.conf.tmpl").read_text()
    # Same core count as mlgate's runtime (one worker thread per core).
    replacements = {
        "@USER@": "user root;" if os.geteuid() == 0 else "",
        "@WORKERS@": str(os.cpu_count() or 2),
        "@DIR@": str(work),
        "@UPSTREAM_PORT@": str(upstream_port),
        "@PORT@": str(port),
    }
    for k, v in replacements.items():
        conf = conf.replace(k, v)
    (work / "nginx.conf").write_text(conf)
    child = ms.Child("nginx", [nginx, "-p", str(work), "-c", str(work / "nginx.conf")], work / "nginx.log")
    ms.wait_http(f"http://127.0.0.1:{port}/health", 20, child)
    return child, port


def demo_passwords() -> Dict[str, str]:
    """Fresh passwords for the users of deploy/demo.toml (the env vars `mlgate apply` reads)."""
    return {
        ms.ADMIN_PASSWORD_ENV: secrets.token_urlsafe(18),
        ms.DEMO_PASSWORD_ENV: secrets.token_urlsafe(18),
    }


def start_mlgate_in_front_of(port: int, data_dir: Path) -> Tuple[ms.Stack, Dict[str, str]]:
    """An mlgate (the quick start's Stack) whose "MLflow" is whatever listens on `port`."""
    passwords = demo_passwords()
    stack = ms.Stack(data_dir, port=ms.free_port(), mlflow_port=port, binary=ms.mlgate_binary())
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    stack.apply(DEMO_FILE, passwords)
    return stack, passwords


# ------------------------------------------------------------------------------ HTTP helpers


def http_call(
    url: str,
    method: str = "GET",
    body: Optional[bytes] = None,
    headers: Optional[Dict[str, str]] = None,
) -> Tuple[int, Dict[str, str], bytes]:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        target = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        # keep every Set-Cookie
        hdrs["set-cookie"] = "\n".join(v for k, v in resp.getheaders() if k.lower() == "set-cookie")
        return resp.status, hdrs, data
    finally:
        conn.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Target:
    """One side of a comparison: a base URL and the headers that authenticate on it."""

    name: str
    base: str
    headers: Dict[str, str] = field(default_factory=dict)
    pid: Optional[int] = None
    # An mlgate access key (id, secret): each run's request is signed with it (see signed_headers).
    sigv4_key: Optional[Tuple[str, str]] = None
    # The upstream's process group, whose CPU per request is recorded too.
    upstream_pid: Optional[int] = None


@dataclass
class Call:
    """One kind of request."""

    name: str
    method: str
    path: str
    body: Optional[str] = None

    @property
    def headers(self) -> Dict[str, str]:
        return {"Content-Type": "application/json"} if self.body is not None else {}


def request_headers(target: Target, call: Call) -> Dict[str, str]:
    """The headers one request of `call` carries to `target`, signed when the target uses SigV4.

    SigV4: botocore signs the request (header form, the current time, the way an AWS SDK client
    does) once per load run, and every request of the run repeats it. mlgate keeps no replay cache
    and no cache of verification results, so each repeat is verified in full (canonical request,
    HMAC, key lookup), exactly the work a freshly signed request costs; a run lasts far less than
    the accepted clock skew.
    """
    # wrk's own Host header leaves out the port; the signature covers it.
    headers = {"Host": urllib.parse.urlsplit(target.base).netloc, **call.headers, **target.headers}
    if target.sigv4_key is None:
        return headers
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(
        method=call.method,
        url=target.base + call.path,
        data=call.body.encode() if call.body is not None else b"",
        headers=headers,
    )
    SigV4Auth(Credentials(*target.sigv4_key), "execute-api", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def send_once(target: Target, call: Call) -> Tuple[int, bytes]:
    """One request of `call` to `target`: the status and the body."""
    status, _, data = http_call(
        target.base + call.path,
        call.method,
        call.body.encode() if call.body is not None else None,
        request_headers(target, call),
    )
    return status, data


def check(target: Target, call: Call) -> int:
    """One request; fails the case unless it is answered 2xx. Returns the body size."""
    status, data = send_once(target, call)
    if not 200 <= status < 300:
        raise CaseFailed(f"{target.name}: {call.method} {call.path} answered {status}: {data[:300]!r}")
    return len(data)


# ------------------------------------------------------------------------------ wrk


class Wrk:
    """wrk (Debian's package) with bench/lib/wrk.lua: closed loop at fixed concurrency, or paced
    to a fixed rate (the script's schedule; latency is measured from each actual send)."""

    def __init__(self, binary: str, script: Path, out: Path) -> None:
        self.binary = binary
        self.script = script
        self.out = out

    def version(self) -> str:
        # `wrk -v` prints its version and usage, and exits 1.
        r = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        return (r.stdout or r.stderr).splitlines()[0].split(" Copyright")[0].strip()

    def run(
        self,
        target: Target,
        call: Call,
        duration: float,
        concurrency: int,
        rate: Optional[float] = None,
    ) -> Dict[str, Any]:
        # Closed loop: a thread per core. Paced: a thread per connection, which wrk.lua's schedule needs.
        threads = concurrency if rate is not None else max(1, min(os.cpu_count() or 1, concurrency))
        env = {**os.environ, "BENCH_WRK_METHOD": call.method, "BENCH_WRK_THREADS": str(threads)}
        if call.body is not None:
            body_file = self.out / f"wrk-body-{call.name}.json"
            body_file.write_text(call.body)
            env["BENCH_WRK_BODY_FILE"] = str(body_file)
        if rate is not None:
            env["BENCH_WRK_RATE"] = f"{rate:.3f}"
        # wrk does not wait for the answers still in flight when the time is up: a run that ended
        # before its first answer came back (a server slower than the run is long, such as
        # basic-auth hashing a password per request under --quick) is repeated, five times longer.
        for seconds in (max(1, round(duration)), 5 * max(1, round(duration))):
            argv = [
                self.binary, "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s",
                "--timeout", "30s", "-s", str(self.script),
            ]  # fmt: skip
            for k, v in request_headers(target, call).items():
                argv += ["-H", f"{k}: {v}"]
            argv.append(target.base + call.path)
            started = time.time()
            cpu0, up0 = group_cpu_seconds(target.pid), group_cpu_seconds(target.upstream_pid)
            r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 120)
            cpu1, up1 = group_cpu_seconds(target.pid), group_cpu_seconds(target.upstream_pid)
            line = next((ln for ln in r.stdout.splitlines() if ln.startswith("BENCH-WRK ")), None)
            if r.returncode != 0 or line is None:
                raise CaseFailed(f"wrk failed ({r.returncode}) for {target.name} {call.name}: {(r.stderr or r.stdout)[-500:]}")
            data = json.loads(line[len("BENCH-WRK ") :])
            if data["requests"] or any(data[k] for k in ("connect", "read", "write", "timeout")):
                break
        total = data["requests"]
        # wrk counts an answer outside 2xx/3xx as a status error; none of the calls is redirected.
        ok = total - data["status"]
        errors = {k: data[k] for k in ("connect", "read", "write", "timeout") if data[k]}
        seconds = data["duration_us"] / 1e6

        def ms_(key: str) -> Optional[float]:
            return data[key] / 1000.0 if total else None

        result = {
            "target": target.name,
            "call": call.name,
            "mode": "rate" if rate is not None else "closed",
            "rate": rate,
            "concurrency": concurrency,
            "duration_s": seconds,
            "started": started,
            "requests": total,
            "ok": ok,
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "status_errors": data["status"],
            "rps": ok / seconds if seconds else 0.0,
            "p50_ms": ms_("p50_us"),
            "p90_ms": ms_("p90_us"),
            "p99_ms": ms_("p99_us"),
            "p999_ms": ms_("p999_us"),
            "mean_ms": ms_("mean_us"),
            "max_ms": ms_("max_us"),
            # CPU time of the target's processes (for a proxy: the proxy alone) per 2xx answer.
            "cpu_us_per_request": (cpu1 - cpu0) * 1e6 / ok if cpu0 is not None and cpu1 is not None and ok else None,
            "upstream_cpu_us_per_request": (up1 - up0) * 1e6 / ok if up0 is not None and up1 is not None and ok else None,
        }
        bad = total - ok + result["errors"]
        if total == 0 or bad > max(1, 0.01 * (total + result["errors"])):
            # wrk counts answers outside 2xx, not what they said: one more request shows it.
            status, body = send_once(target, call)
            raise CaseFailed(
                f"{target.name} {call.name}: {ok} of {total} answers were 2xx (socket errors {errors});"
                f" one more request is answered {status} {body[:200]!r}"
            )
        return result


def med(values: List[Optional[float]]) -> Optional[float]:
    vs = [v for v in values if v is not None]
    return statistics.median(vs) if vs else None


def summarize(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Median over rounds of every number, per (target, call, mode)."""
    keys = ["rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "mean_ms", "cpu_us_per_request", "upstream_cpu_us_per_request"]
    return {k: med([r[k] for r in runs]) for k in keys} | {
        "rounds": len(runs),
        "requests": sum(r["requests"] for r in runs),
    }


def alternate(
    wrk: Wrk,
    targets: List[Target],
    call: Call,
    rounds: int,
    duration: float,
    concurrency: int,
    rate: Optional[float],
    samplers: Optional[Dict[str, Callable[[], Dict[str, int]]]] = None,
) -> Tuple[Dict[str, Dict[str, Any]], List[Dict[str, Any]]]:
    """Runs A B C, A B C, ... and returns ({target: summary}, raw runs)."""
    raw: List[Dict[str, Any]] = []
    for rnd in range(rounds):
        for t in targets:
            res = wrk.run(t, call, duration, concurrency, rate)
            res["round"] = rnd
            if samplers and t.name in samplers:
                res["proc_status"] = samplers[t.name]()
            raw.append(res)
            log(
                f"  {call.name:<8} {t.name:<15} {'rate ' + format(rate, '.0f') if rate else 'closed c=' + str(concurrency):<11}"
                f" {res['rps']:9.0f} req/s  p50 {res['p50_ms']:8.3f} ms  p99 {res['p99_ms']:8.3f} ms"
            )
    summary = {t.name: summarize([r for r in raw if r["target"] == t.name]) for t in targets}
    return summary, raw


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def minus(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None:
        return None
    return a - b


# ------------------------------------------------------------------------------ case: micro


# The criterion bench targets: crates/policy/benches/decision.rs, crates/catalog/benches/catalog.rs,
# crates/sigv4/benches/verify.rs, crates/gateway/benches/jwt.rs.
MICRO = ["decision", "catalog", "verify", "jwt"]


def micro_cargo_args() -> List[str]:
    """`cargo bench` arguments selecting exactly the MICRO targets, in the release profile over
    the whole workspace: the feature set and profile of scripts/test's builds and of bench/run's
    `--no-run` build, so running them compiles nothing (selecting one package at a time would
    resolve other features and rebuild part of the dependency tree)."""
    return ["--profile", "release", "--workspace", *(a for bench in MICRO for a in ("--bench", bench))]


def case_micro(s: Settings, results: Dict[str, Any]) -> None:
    home = s.out / "criterion"
    if home.exists():
        shutil.rmtree(home)
    env = {**os.environ, "CRITERION_HOME": str(home)}
    benches: Dict[str, Any] = {}
    argv = ["cargo", "bench", "--quiet", *micro_cargo_args(), "--", *s.criterion_args]
    log(f"micro: {' '.join(argv)}")
    with open(s.out / "logs" / "criterion.log", "w") as logf:
        r = subprocess.run(argv, cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise CaseFailed(f"cargo bench failed; see {s.out / 'logs' / 'criterion.log'}")
    for est in sorted(home.rglob("new/estimates.json")):
        bench_json = est.parent / "benchmark.json"
        name = str(est.parent.parent.relative_to(home))
        if bench_json.exists():
            name = json.loads(bench_json.read_text()).get("full_id", name)
        e = json.loads(est.read_text())
        benches[name] = {
            "median_ns": e["median"]["point_estimate"],
            "median_ci_ns": [e["median"]["confidence_interval"]["lower_bound"], e["median"]["confidence_interval"]["upper_bound"]],
            "mean_ns": e["mean"]["point_estimate"],
        }
        log(f"  {name:<55} median {e['median']['point_estimate'] / 1000:9.3f} µs")
    results["benches"] = benches


# ------------------------------------------------------------------------------ case: gateway


GATEWAY_CALL = Call("get", "GET", "/api/2.0/mlflow/experiments/get?experiment_id=1")


def session_cookie(stack: ms.Stack, user: str, password: str) -> str:
    body = urllib.parse.urlencode({"username": user, "password": password, "next": "/"}).encode()
    status, headers, data = http_call(
        stack.url + "/_mlgate/login",
        "POST",
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": stack.url},
    )
    for line in headers.get("set-cookie", "").splitlines():
        name, _, rest = line.partition("=")
        if name.strip() in ("mlgate_session", "__Host-mlgate_session"):
            return f"{name.strip()}={rest.split(';', 1)[0]}"
    raise CaseFailed(f"sign-in did not set a session cookie (status {status}): {data[:200]!r}")


class OtlpSink:
    """An OTLP/HTTP receiver that accepts every export and keeps nothing: what exporting spans
    costs the gateway, without a collector's own cost on the shared cores."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()


def mlgate_supports(binary: Path, argv: List[str], word: str) -> bool:
    r = subprocess.run([str(binary), *argv, "--help"], capture_output=True, text=True)
    return word in r.stdout


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def start_idp(work: Path) -> Tuple[ms.Child, Path, str]:
    """A stub OIDC issuer on loopback (discovery + JWKS with one Ed25519 key) and a signed ID
    token for `jwt-reader` in group `ml-readers` (mapped to mlgate's `readers`), valid 4 hours.
    Returns (issuer process, mlgate --oidc-config file, token)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    work.mkdir(parents=True, exist_ok=True)
    port = ms.free_port()
    issuer = f"http://127.0.0.1:{port}"
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": "bench-1", "use": "sig", "alg": "EdDSA"}]}
    discovery = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks",
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    }
    (work / "jwks.json").write_text(json.dumps(jwks))
    (work / "discovery.json").write_text(json.dumps(discovery))
    (work / "idp.log").unlink(missing_ok=True)
    child = ms.Child(
        "OIDC issuer (stub)",
        [
            str(STUB_BIN), "--listen", f"127.0.0.1:{port}", "--threads", "1",
            "--file", f"/.well-known/openid-configuration={work / 'discovery.json'}",
            "--file", f"/jwks={work / 'jwks.json'}",
        ],  # fmt: skip
        work / "idp.log",
    )
    wait_ready_line(child, "stub: ready on ")
    now = int(time.time())
    header = {"alg": "EdDSA", "typ": "JWT", "kid": "bench-1"}
    claims = {
        "iss": issuer, "aud": "mlflow", "sub": "jwt-reader", "iat": now, "nbf": now - 5,
        "exp": now + 4 * 3600, "groups": ["ml-readers"],
    }  # fmt: skip
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    token = f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"
    config = work / "oidc.toml"
    config.write_text(
        "[[issuer]]\n"
        'name = "bench"\n'
        f'issuer = "{issuer}"\n'
        'audiences = ["mlflow"]\n'
        'algorithms = ["EdDSA"]\n'
        "[issuer.group_map]\n"
        'ml-readers = "readers"\n'
    )
    return child, config, token


def case_gateway(s: Settings, results: Dict[str, Any], wrk: Wrk) -> None:
    logs = s.out / "logs"
    stub, stub_port = start_stub(logs, 1024)
    nginx = stack = idp = None
    binary = ms.mlgate_binary()
    has_jwt = mlgate_supports(binary, ["serve"], "--oidc-config")
    has_sigv4 = mlgate_supports(binary, [], "access-key")
    has_metrics = mlgate_supports(binary, ["serve"], "--admin-listen")
    has_traces = mlgate_supports(binary, ["serve"], "--otlp-endpoint")
    skipped: Dict[str, str] = {}
    metered = traced = sink = None
    try:
        nginx, nginx_port = start_nginx(s.out / "nginx", stub_port)
        stack, pw = start_mlgate_in_front_of(stub_port, s.out / "mlgate-stub")
        jwt = None
        saved = os.environ.get("MLGATE_OIDC_CONFIG")
        if has_jwt:
            idp, oidc_config, jwt = start_idp(s.out / "idp")
            # Stack.start_gateway takes no extra serve flags; mlgate reads them from MLGATE_*.
            os.environ["MLGATE_OIDC_CONFIG"] = str(oidc_config)
        try:
            stack.start_gateway()
        finally:
            if has_jwt:
                if saved is None:
                    os.environ.pop("MLGATE_OIDC_CONFIG", None)
                else:
                    os.environ["MLGATE_OIDC_CONFIG"] = saved
        assert stack.gateway is not None
        gw_pid = stack.gateway.pid
        idle = read_status(gw_pid)
        reader_pw = pw[ms.DEMO_PASSWORD_ENV]
        token = stack.mlgate("token", "create", "--user", "mlflow-reader").stdout.strip()
        cookie = session_cookie(stack, "mlflow-reader", reader_pw)
        targets = [
            Target("direct", f"http://127.0.0.1:{stub_port}", pid=stub.pid),
            Target("nginx", f"http://127.0.0.1:{nginx_port}", pid=nginx.pid),
            Target("mlgate-basic", stack.url, {"Authorization": basic("mlflow-reader", reader_pw)}, gw_pid),
            Target("mlgate-token", stack.url, {"Authorization": f"Bearer {token}"}, gw_pid),
            Target("mlgate-cookie", stack.url, {"Cookie": cookie}, gw_pid),
        ]
        if jwt is not None:
            targets.append(Target("mlgate-jwt", stack.url, {"Authorization": f"Bearer {jwt}"}, gw_pid))
        else:
            skipped["mlgate-jwt"] = "bearer JWT: this mlgate has no --oidc-config"
        if has_sigv4:
            key = json.loads(
                stack.mlgate("access-key", "create", "--user", "mlflow-reader", "--format", "credential-process").stdout
            )
            targets.append(
                Target(
                    "mlgate-sigv4",
                    stack.url,
                    {},
                    gw_pid,
                    sigv4_key=(key["AccessKeyId"], key["SecretAccessKey"]),
                )
            )
        else:
            skipped["mlgate-sigv4"] = "AWS SigV4: this mlgate has no access keys"
        if has_metrics:
            # The same gateway with Prometheus metrics on (docs/observability.md), beside
            # `mlgate-token` without them: what recording every request costs.
            metered = stack.replica()
            metered.start_gateway(extra_args=["--admin-listen", f"127.0.0.1:{ms.free_port()}"])
            assert metered.gateway is not None
            targets.append(
                Target("mlgate-token-metrics", metered.url, {"Authorization": f"Bearer {token}"}, metered.gateway.pid)
            )
        else:
            skipped["mlgate-token-metrics"] = "metrics: this mlgate has no --admin-listen"
        if has_traces:
            # And with every request traced (a span per request and stage, exported over
            # OTLP/HTTP to a sink): what tracing costs.
            sink = OtlpSink()
            traced = stack.replica()
            traced.start_gateway(extra_args=["--otlp-endpoint", sink.url])
            assert traced.gateway is not None
            targets.append(
                Target("mlgate-token-traces", traced.url, {"Authorization": f"Bearer {token}"}, traced.gateway.pid)
            )
        else:
            skipped["mlgate-token-traces"] = "traces: this mlgate has no --otlp-endpoint"
        for t in targets:
            if t.name != "direct":
                t.upstream_pid = stub.pid
        body_bytes = max(check(t, GATEWAY_CALL) for t in targets)
        samplers = {t.name: (lambda pid=t.pid: read_status(pid)) for t in targets if t.name.startswith("mlgate")}

        log(f"gateway: peak throughput, closed loop c={s.concurrency}, {s.rounds} round(s) of {s.duration}s")
        peak, raw_peak = alternate(wrk, targets, GATEWAY_CALL, s.rounds, s.duration, s.concurrency, None, samplers)

        mlgate_peaks = [peak[t.name]["rps"] for t in targets if t.name.startswith("mlgate")]
        half = 0.5 * min(mlgate_peaks)
        log(f"gateway: latency at a fixed rate of {s.light_rate}/s (light) and {half:.0f}/s (half of mlgate's peak)")
        light, raw_light = alternate(wrk, targets, GATEWAY_CALL, s.rounds, s.duration, s.concurrency, s.light_rate)
        halfp, raw_half = alternate(wrk, targets, GATEWAY_CALL, s.rounds, s.duration, s.concurrency, half)
        after = read_status(gw_pid)

        derived: Dict[str, Any] = {}
        for t in targets:
            if not t.name.startswith("mlgate"):
                continue
            d: Dict[str, Any] = {
                "throughput_vs_nginx": ratio(peak[t.name]["rps"], peak["nginx"]["rps"]),
                "throughput_vs_direct": ratio(peak[t.name]["rps"], peak["direct"]["rps"]),
            }
            for label, table in (("light", light), ("half_peak", halfp)):
                added = minus(table[t.name]["p50_ms"], table["direct"]["p50_ms"])
                nginx_added = minus(table["nginx"]["p50_ms"], table["direct"]["p50_ms"])
                d[f"added_p50_ms_{label}"] = added
                d[f"nginx_added_p50_ms_{label}"] = nginx_added
                d[f"added_p50_vs_nginx_{label}"] = ratio(added, nginx_added)
                d[f"added_p99_ms_{label}"] = minus(table[t.name]["p99_ms"], table["direct"]["p99_ms"])
                d[f"nginx_added_p99_ms_{label}"] = minus(table["nginx"]["p99_ms"], table["direct"]["p99_ms"])
            derived[t.name] = d
        results.update(
            {
                "call": {"method": GATEWAY_CALL.method, "path": GATEWAY_CALL.path, "response_bytes": body_bytes},
                "concurrency": s.concurrency,
                "light_rate": s.light_rate,
                "half_peak_rate": half,
                "peak": peak,
                "light": light,
                "half_peak": halfp,
                "derived": derived,
                "skipped": skipped,
                "mlgate_rss": {"idle_after_start": idle, "after_load": after},
                "runs": raw_peak + raw_light + raw_half,
            }
        )
    finally:
        for replica in (metered, traced):
            if replica is not None:
                replica.stop_gateway()
        if sink is not None:
            sink.stop()
        if stack is not None:
            stack.down()
        if nginx is not None:
            nginx.stop()
        if idp is not None:
            idp.stop()
        stub.stop()


# ------------------------------------------------------------------------------ case: e2e


def start_basic_auth_mlflow(work: Path, admin_password: str) -> ms.Stack:
    """MLflow's own `--app-name basic-auth` (default settings), started exactly as the quick
    start starts MLflow (scripts/lib/mlgate_stack.py) plus the app name; only its MLflow runs."""
    work.mkdir(parents=True, exist_ok=True)
    ini = work / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{work / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
    )
    stack = ms.Stack(work, port=ms.free_port())
    stack.start_mlflow(
        timeout=180,
        extra_args=["--app-name", "basic-auth"],
        extra_env={"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)},
    )
    return stack


def mlflow_json(base: str, method: str, path: str, body: Optional[dict], headers: Dict[str, str]) -> dict:
    status, _, data = http_call(
        base + path,
        method,
        json.dumps(body).encode() if body is not None else None,
        {"Content-Type": "application/json", **headers},
    )
    if status != 200:
        raise CaseFailed(f"{method} {base}{path}: {status} {data[:300]!r}")
    return json.loads(data or b"{}")


def closed_rounds(
    wrk: Wrk, sides: List[Tuple[Target, Call]], s: Settings
) -> Tuple[Dict[str, Dict[str, Any]], List[Dict[str, Any]]]:
    """Closed loop at the end-to-end concurrency, each (target, its request) in turn per round;
    returns ({target: summary}, raw runs)."""
    per: List[Dict[str, Any]] = []
    for rnd in range(s.e2e_rounds):
        for t, c in sides:
            r = wrk.run(t, c, s.e2e_duration, s.e2e_concurrency)
            r["round"] = rnd
            per.append(r)
            log(f"  {c.name:<8} {t.name:<17} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:8.1f} ms  p99 {r['p99_ms']:8.1f} ms")
    return {t.name: summarize([r for r in per if r["target"] == t.name]) for t, _ in sides}, per


def seed(base: str, headers: Dict[str, str]) -> Tuple[str, str]:
    """An experiment with 20 runs (params, metrics, tags); returns (experiment id, run id)."""
    exp = mlflow_json(base, "POST", "/api/2.0/mlflow/experiments/create", {"name": f"bench-{secrets.token_hex(4)}"}, headers)
    eid = exp["experiment_id"]
    run_id = ""
    for i in range(20):
        run = mlflow_json(
            base, "POST", "/api/2.0/mlflow/runs/create",
            {"experiment_id": eid, "run_name": f"run-{i}", "start_time": 1761900000000 + i}, headers,
        )  # fmt: skip
        run_id = run["run"]["info"]["run_id"]
        mlflow_json(
            base, "POST", "/api/2.0/mlflow/runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": k, "value": 0.5 + i / 100, "timestamp": 1761900000000, "step": 1} for k in ("accuracy", "loss")],
                "params": [{"key": "lr", "value": f"0.00{i}"}, {"key": "batch_size", "value": "64"}],
                "tags": [{"key": "team", "value": "vision"}],
            },
            headers,
        )  # fmt: skip
    return eid, run_id


def e2e_calls(eid: str, run_id: str) -> List[Call]:
    return [
        Call("read", "GET", f"/api/2.0/mlflow/experiments/get?experiment_id={eid}"),
        Call("search", "POST", "/api/2.0/mlflow/runs/search", json.dumps({"experiment_ids": [eid], "max_results": 10})),
        Call("write", "POST", "/api/2.0/mlflow/runs/set-tag", json.dumps({"run_id": run_id, "key": "bench.tag", "value": "v"})),
    ]


def case_e2e(s: Settings, results: Dict[str, Any], wrk: Wrk) -> None:
    work = s.out / "e2e"
    passwords = demo_passwords()
    stack = ms.Stack(work / "stack", port=ms.free_port(), binary=ms.mlgate_binary())
    basic_auth: Optional[ms.Stack] = None
    try:
        log("e2e: starting MLflow (--workers 1) and mlgate in front of it (scripts/lib/mlgate_stack.py)")
        stack.up(DEMO_FILE, passwords)
        ba_password = secrets.token_urlsafe(12)
        log("e2e: starting MLflow --app-name basic-auth (--workers 1)")
        basic_auth = start_basic_auth_mlflow(work / "basic-auth", ba_password)
        assert basic_auth.mlflow is not None
        ba_url = basic_auth.mlflow_url
        admin = basic("mlflow-admin", passwords[ms.DEMO_PASSWORD_ENV])
        ba_admin = basic("admin", ba_password)
        eid, run_id = seed(stack.mlflow_url, {})
        ba_eid, ba_run = seed(ba_url, {"Authorization": ba_admin})
        assert stack.mlflow is not None and stack.gateway is not None
        direct = Target("direct", stack.mlflow_url, pid=stack.mlflow.pid)
        gate = Target("mlgate", stack.url, {"Authorization": admin}, stack.gateway.pid, upstream_pid=stack.mlflow.pid)
        ba = Target("basic-auth", ba_url, {"Authorization": ba_admin}, basic_auth.mlflow.pid)
        calls = e2e_calls(eid, run_id)
        ba_calls = {c.name: c for c in e2e_calls(ba_eid, ba_run)}
        for c in calls:
            check(direct, c)
            check(gate, c)
            check(ba, ba_calls[c.name])

        closed: Dict[str, Any] = {}
        rate_tables: Dict[str, Any] = {}
        raw: List[Dict[str, Any]] = []
        for c in calls:
            log(f"e2e: {c.name}: closed loop c={s.e2e_concurrency}, {s.e2e_rounds} round(s) of {s.e2e_duration}s")
            closed[c.name], per = closed_rounds(wrk, [(direct, c), (gate, c), (ba, ba_calls[c.name])], s)
            raw += per
            rate = 0.5 * closed[c.name]["direct"]["rps"]
            log(f"e2e: {c.name}: latency at a fixed rate of {rate:.1f}/s (half of direct MLflow's throughput)")
            table, rraw = alternate(wrk, [direct, gate], c, s.e2e_rounds, s.e2e_duration, s.e2e_concurrency, rate)
            raw += rraw
            rate_tables[c.name] = {"rate": rate, **table}
        derived = {
            c.name: {
                "mlgate_vs_direct": ratio(closed[c.name]["mlgate"]["rps"], closed[c.name]["direct"]["rps"]),
                "basic_auth_vs_direct": ratio(closed[c.name]["basic-auth"]["rps"], closed[c.name]["direct"]["rps"]),
                "added_p50_ms_half_rate": minus(rate_tables[c.name]["mlgate"]["p50_ms"], rate_tables[c.name]["direct"]["p50_ms"]),
                "added_p99_ms_half_rate": minus(rate_tables[c.name]["mlgate"]["p99_ms"], rate_tables[c.name]["direct"]["p99_ms"]),
            }
            for c in calls
        }
        results.update(
            {
                "concurrency": s.e2e_concurrency,
                "calls": {c.name: {"method": c.method, "path": c.path.split("?")[0], "body": c.body} for c in calls},
                "closed": closed,
                "half_rate": rate_tables,
                "derived": derived,
                "mlgate_rss_after": read_status(stack.gateway.pid),
                "runs": raw,
            }
        )
    finally:
        if basic_auth is not None:
            basic_auth.stop_mlflow()
        stack.down()


# ------------------------------------------------------------------------------ case: search


def seed_experiments(stack: ms.Stack, count: int) -> None:
    """`count` experiments in MLflow's SQLite store, alternating `team-a/exp-NNNNN` and
    `team-b/exp-NNNNN`, each with two tags. One template experiment is created through MLflow's
    REST API; the rest are copies of its rows made in SQL (every column copied, id, name,
    artifact location and times changed), so the schema stays MLflow's own and seeding 10,000
    takes a second instead of minutes (setup, not measured)."""
    template = mlflow_json(
        stack.mlflow_url, "POST", "/api/2.0/mlflow/experiments/create",
        {"name": "bench-template", "tags": [{"key": "team", "value": "bench"}, {"key": "purpose", "value": "search benchmark"}]},
        {},
    )["experiment_id"]  # fmt: skip
    db = sqlite3.connect(stack.mlflow_dir / "mlflow.db", timeout=30)
    try:
        cols = [r[1] for r in db.execute("PRAGMA table_info(experiments)")]
        row = dict(zip(cols, db.execute("SELECT * FROM experiments WHERE experiment_id = ?", (template,)).fetchone()))
        tags = db.execute('SELECT "key", value FROM experiment_tags WHERE experiment_id = ?', (template,)).fetchall()
        first = int(db.execute("SELECT MAX(experiment_id) FROM experiments").fetchone()[0]) + 1
        rows, tag_rows = [], []
        for i in range(count):
            eid = first + i
            team = "team-a" if i % 2 == 0 else "team-b"
            r = dict(row)
            r.update(
                experiment_id=eid,
                name=f"{team}/exp-{i:05d}",
                artifact_location=str(row["artifact_location"]).rsplit("/", 1)[0] + f"/{eid}",
                creation_time=int(row["creation_time"]) + i,
                last_update_time=int(row["last_update_time"]) + i,
            )
            rows.append(tuple(r[c] for c in cols))
            tag_rows += [(k, team if k == "team" else v, eid) for k, v in tags]
        db.executemany(f"INSERT INTO experiments ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})", rows)
        db.executemany('INSERT INTO experiment_tags ("key", value, experiment_id) VALUES (?, ?, ?)', tag_rows)
        db.commit()
    finally:
        db.close()


def search_call(max_results: int, name_like: Optional[str] = None) -> Call:
    body: Dict[str, Any] = {"max_results": max_results}
    if name_like:
        body["filter"] = f"name LIKE '{name_like}'"
    return Call(f"page{max_results}", "POST", "/api/2.0/mlflow/experiments/search", json.dumps(body))


def case_search(s: Settings, results: Dict[str, Any], wrk: Wrk) -> None:
    """Issue 5's benchmark: SearchExperiments over many experiments of two teams, through mlgate
    as a reader of team-a's (the filter drops team-b's and keeps pages full) versus MLflow direct."""
    work = s.out / "search"
    passwords = demo_passwords()
    stack = ms.Stack(work / "stack", port=ms.free_port(), binary=ms.mlgate_binary())
    try:
        stack.data_dir.mkdir(parents=True, exist_ok=True)
        stack.apply(DEMO_FILE, passwords)
        stack.mlgate("user", "create", "team-a-reader", "--password-env", ms.DEMO_PASSWORD_ENV, env=passwords)
        stack.mlgate("grant", "--user", "team-a-reader", "--level", "READ", "--experiments", "team-a/*")
        log(f"search: starting MLflow (--workers 1); {s.search_experiments:,} experiments, half team-a/*, half team-b/*")
        stack.start_mlflow()
        t0 = time.monotonic()
        seed_experiments(stack, s.search_experiments)
        seeded_s = time.monotonic() - t0
        stack.start_gateway()
        assert stack.mlflow is not None and stack.gateway is not None
        reader = {"Authorization": basic("team-a-reader", passwords[ms.DEMO_PASSWORD_ENV])}
        direct = Target("direct", stack.mlflow_url, pid=stack.mlflow.pid)
        gate = Target("mlgate", stack.url, reader, stack.gateway.pid, upstream_pid=stack.mlflow.pid)
        pages = [n for n in (100, 1000) if n <= s.search_experiments // 2]
        closed: Dict[str, Any] = {}
        rate_tables: Dict[str, Any] = {}
        derived: Dict[str, Any] = {}
        raw: List[Dict[str, Any]] = []
        for n in pages:
            call = search_call(n)
            # What MLflow answers the same user with a name filter: the same items, selected in SQL.
            like = Target("direct-name-like", stack.mlflow_url, pid=stack.mlflow.pid)
            like_call = search_call(n, "team-a/%")
            _, _, data = http_call(gate.base + call.path, "POST", call.body.encode(), {**call.headers, **gate.headers})
            page = json.loads(data)
            names = [e["name"] for e in page.get("experiments", [])]
            if len(names) != n or not all(x.startswith("team-a/") for x in names) or not page.get("next_page_token"):
                raise CaseFailed(f"search through mlgate: expected a full page of {n} team-a experiments and a token, got {len(names)}")
            log(f"search: max_results {n}: closed loop c={s.e2e_concurrency}, {s.e2e_rounds} round(s) of {s.e2e_duration}s")
            closed[call.name], per = closed_rounds(wrk, [(direct, call), (gate, call), (like, like_call)], s)
            raw += per
            # Half of the slower side's throughput: a rate both sustain, so the latency is a page's
            # own, not a queue's (mlgate's throughput is the lower one: MLflow serves it ~2 pages).
            rate = 0.5 * min(closed[call.name]["direct"]["rps"], closed[call.name]["mlgate"]["rps"])
            log(f"search: max_results {n}: latency at a fixed rate of {rate:.1f}/s (half of the slower side's throughput)")
            table, rraw = alternate(wrk, [direct, gate], call, s.e2e_rounds, s.e2e_duration, s.e2e_concurrency, rate)
            raw += rraw
            rate_tables[call.name] = {"rate": rate, **table}
            cg = closed[call.name]
            derived[call.name] = {
                "max_results": n,
                "mlgate_vs_direct": ratio(cg["mlgate"]["rps"], cg["direct"]["rps"]),
                "mlgate_vs_name_like": ratio(cg["mlgate"]["rps"], cg["direct-name-like"]["rps"]),
                "p50_ms_half_rate": {k: table[k]["p50_ms"] for k in ("direct", "mlgate")},
                "p99_ms_half_rate": {k: table[k]["p99_ms"] for k in ("direct", "mlgate")},
                "added_p50_ms_half_rate": minus(table["mlgate"]["p50_ms"], table["direct"]["p50_ms"]),
                "mlgate_cpu_us_per_page": cg["mlgate"]["cpu_us_per_request"],
                # Half of what MLflow returns is readable: the filter looks at ~2 items per item kept.
                "mlgate_cpu_us_per_item_examined": None
                if cg["mlgate"]["cpu_us_per_request"] is None
                else cg["mlgate"]["cpu_us_per_request"] / (2 * n),
                "upstream_cpu_us_per_page_via_mlgate": cg["mlgate"]["upstream_cpu_us_per_request"],
                "upstream_cpu_us_per_page_direct": cg["direct"]["cpu_us_per_request"],
            }
        results.update(
            {
                "experiments": s.search_experiments,
                "readable_fraction": 0.5,
                "seed_seconds": round(seeded_s, 2),
                "concurrency": s.e2e_concurrency,
                "calls": {search_call(n).name: {"method": "POST", "path": search_call(n).path, "body": search_call(n).body} for n in pages},
                "closed": closed,
                "half_rate": rate_tables,
                "derived": derived,
                "runs": raw,
            }
        )
    finally:
        stack.down()


# ------------------------------------------------------------------------------ case: memory


def curl_transfer(argv: List[str]) -> Dict[str, float]:
    fmt = '{"code":%{http_code},"seconds":%{time_total},"up":%{size_upload},"down":%{size_download}}'
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", fmt, *argv], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise CaseFailed(f"curl {' '.join(a for a in argv if not a.startswith('Authorization'))} failed: {r.stderr}")
    out = json.loads(r.stdout)
    if not 200 <= out["code"] < 300:
        raise CaseFailed(f"artifact transfer answered {out['code']}")
    return out


def artifact_round_trip(pid: int, auth: str, blob: Path, direct_url: str, gate_url: str) -> Dict[str, Any]:
    """PUT then GET `blob` directly and through mlgate (whose process is `pid`), sampling
    mlgate's RSS during its two transfers."""
    before = read_status(pid)
    direct_up = curl_transfer(["-T", str(blob), direct_url])
    direct_down = curl_transfer([direct_url])
    with RssSampler(pid) as up_sampler:
        up = curl_transfer(["-H", auth, "-T", str(blob), gate_url])
    after_up = read_status(pid)
    with RssSampler(pid) as down_sampler:
        down = curl_transfer(["-H", auth, gate_url])
    after_down = read_status(pid)
    peak = max(after_down["VmHWM"], up_sampler.max_rss, down_sampler.max_rss)
    log(
        f"memory: peak RSS growth {(peak - before['VmRSS']) / 2**20:.1f} MiB;"
        f" upload {up['seconds']:.2f}s (direct {direct_up['seconds']:.2f}s),"
        f" download {down['seconds']:.2f}s (direct {direct_down['seconds']:.2f}s)"
    )
    return {
        "before_transfer": before,
        "after_upload": after_up,
        "after_download": after_down,
        "peak_rss_growth_bytes": peak - before["VmRSS"],
        "upload_growth_bytes": max(after_up["VmHWM"], up_sampler.max_rss) - before["VmRSS"],
        "transfers": {
            "direct_upload": direct_up,
            "direct_download": direct_down,
            "mlgate_upload": up,
            "mlgate_download": down,
        },
    }


def sparse_file(path: Path, size: int) -> Path:
    """A file of `size` bytes that reads as zeros and takes no disk."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def case_memory(s: Settings, results: Dict[str, Any]) -> None:
    """Two measurements: mlgate in front of the stub (isolation: the stub discards uploads and
    streams downloads, so only mlgate's own buffering shows; this one carries the goals), then
    in front of a real MLflow's artifact proxy (`--serve-artifacts`, what users run)."""
    logs = s.out / "logs"
    size = s.artifact_bytes
    stub, stub_port = start_stub(logs, size)
    stack = None
    blob = sparse_file(s.out / "artifact.bin", size)
    try:
        stack, pw = start_mlgate_in_front_of(stub_port, s.out / "mlgate-memory")
        stack.start_gateway()
        assert stack.gateway is not None
        pid = stack.gateway.pid
        time.sleep(1.0)
        idle = read_status(pid)
        admin = basic("mlflow-admin", pw[ms.DEMO_PASSWORD_ENV])
        path = "/api/2.0/mlflow-artifacts/artifacts/1/0123456789abcdef0123456789abcdef/artifacts/big.bin"
        # One small authenticated request first, so the growth measured is the transfer's.
        check(Target("mlgate", stack.url, {"Authorization": admin}), GATEWAY_CALL)
        log(f"memory: idle RSS {idle['VmRSS'] / 2**20:.1f} MiB; {size / 2**20:.0f} MiB up and down through mlgate (stub upstream)")
        trip = artifact_round_trip(pid, f"Authorization: {admin}", blob, f"http://127.0.0.1:{stub_port}{path}", stack.url + path)
        results.update(
            {
                "upstream": "stub (isolation: only mlgate's own buffering is measured)",
                "artifact_bytes": size,
                "idle_after_start": idle,
                **trip,
            }
        )
    finally:
        if stack is not None:
            stack.down()
        stub.stop()
        blob.unlink(missing_ok=True)
    results["mlflow"] = memory_through_mlflow(s)


def memory_through_mlflow(s: Settings) -> Dict[str, Any]:
    """The same round trip through a real MLflow's artifact proxy: a run created through
    mlgate, its artifact uploaded to MLflow's local artifact store and read back."""
    size = s.mlflow_artifact_bytes
    passwords = demo_passwords()
    stack = ms.Stack(s.out / "memory-mlflow", port=ms.free_port(), binary=ms.mlgate_binary())
    blob = sparse_file(s.out / "artifact-mlflow.bin", size)
    try:
        log("memory: starting MLflow (--serve-artifacts) and mlgate in front of it")
        stack.up(DEMO_FILE, passwords)
        assert stack.gateway is not None
        pid = stack.gateway.pid
        time.sleep(1.0)
        idle = read_status(pid)
        admin = {"Authorization": basic("mlflow-admin", passwords[ms.DEMO_PASSWORD_ENV])}
        eid = mlflow_json(stack.url, "POST", "/api/2.0/mlflow/experiments/create", {"name": f"bench-{secrets.token_hex(4)}"}, admin)["experiment_id"]
        run = mlflow_json(stack.url, "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": eid}, admin)["run"]["info"]["run_id"]
        base = f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{run}/artifacts"
        log(f"memory: {size / 2**20:.0f} MiB up and down through mlgate to MLflow's artifact proxy")
        trip = artifact_round_trip(
            pid,
            f"Authorization: {admin['Authorization']}",
            blob,
            f"{stack.mlflow_url}{base}/direct.bin",
            f"{stack.url}{base}/through-mlgate.bin",
        )
        return {
            "upstream": "MLflow 3.17.2 --serve-artifacts (local artifact store on disk)",
            "artifact_bytes": size,
            "idle_after_start": idle,
            **trip,
        }
    finally:
        stack.down()
        blob.unlink(missing_ok=True)
        shutil.rmtree(stack.mlflow_dir / "artifacts", ignore_errors=True)


# ------------------------------------------------------------------------------ metadata


def sh(argv: List[str], cwd: Path = ROOT) -> str:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine() -> Dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


def metadata(s: Settings, wrk: Wrk) -> Dict[str, Any]:
    mlflow_version = sh([ms.venv_bin("python"), "-c", "import mlflow; print(mlflow.__version__)"])
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": sh(["git", "rev-parse", "--short=12", "HEAD"]),
        "dirty": bool(sh(["git", "status", "--porcelain", "--untracked-files=no"])),
        "mode": "quick" if s.quick else "full",
        "machine": machine(),
        "tools": {
            "load_generator": wrk.version(),
            "nginx": sh(["nginx", "-v"]) or subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
            "mlflow": mlflow_version,
            "rustc": sh(["rustc", "--version"]),
            "curl": sh(["curl", "--version"]).splitlines()[0] if sh(["curl", "--version"]) else "",
        },
        "settings": {
            "duration_s": s.duration,
            "rounds": s.rounds,
            "concurrency": s.concurrency,
            "light_rate": s.light_rate,
            "e2e_duration_s": s.e2e_duration,
            "e2e_rounds": s.e2e_rounds,
            "e2e_concurrency": s.e2e_concurrency,
            "artifact_bytes": s.artifact_bytes,
            "mlflow_artifact_bytes": s.mlflow_artifact_bytes,
            "search_experiments": s.search_experiments,
            "criterion_args": s.criterion_args,
        },
    }


# ------------------------------------------------------------------------------ main


# ------------------------------------------------------------------------------ case: replicas


def pg_transactions(url: str) -> int:
    """Transactions committed on the database at `url` so far (pg_stat_database)."""
    out = subprocess.run(
        ["bash", str(ms.Postgres.SCRIPT), "sql", url,
         "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"],
        check=True, capture_output=True, text=True).stdout
    return int(out.strip())


def parallel_load(wrk: Wrk, targets: List[Target], s: Settings) -> Dict[str, Any]:
    """The same closed-loop load (s.concurrency in total) split evenly over `targets`, all at
    once, as a load balancer would: summed throughput, the worst replica's p50 and p99."""
    per = max(1, s.concurrency // len(targets))
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
        runs = list(pool.map(lambda t: wrk.run(t, GATEWAY_CALL, s.duration, per), targets))
    return {
        "rps": sum(r["rps"] for r in runs),
        "p50_ms": max(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "runs": runs,
    }


def revocation_delays(stack: ms.Stack, replicas: List[ms.Stack], count: int) -> List[float]:
    """Seconds from `mlgate token revoke` until each replica refuses the token, `count` times."""
    delays = []
    for _ in range(count):
        token = stack.mlgate("token", "create", "--user", "mlflow-reader").stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}
        for r in replicas:  # cached everywhere first
            if http_call(r.url + GATEWAY_CALL.path, headers=auth)[0] != 200:
                raise CaseFailed("a fresh token was refused")
        stack.mlgate("token", "revoke", token.split("_")[1])
        revoked = time.monotonic()
        for r in replicas:
            while http_call(r.url + GATEWAY_CALL.path, headers=auth)[0] != 401:
                if time.monotonic() - revoked > 10:
                    raise CaseFailed(f"{r.url} still accepts a token revoked 10 s ago")
                time.sleep(0.005)
            delays.append(time.monotonic() - revoked)
    return sorted(delays)


def case_replicas(s: Settings, results: Dict[str, Any], wrk: Wrk) -> None:
    """1 mlgate on SQLite vs 1, 2 and 3 on one PostgreSQL, in front of the stub, same load; the
    PostgreSQL transactions during the load (the decision path is cached: only the replicas'
    change-counter checks and cache reloads, however many requests); the revocation propagation
    delay."""
    stub, stub_port = start_stub(s.out / "logs", 1024)
    postgres = ms.Postgres()
    running: List[ms.Stack] = []
    setups: Dict[str, Any] = {}
    try:
        for store, count in (("sqlite", 1), ("postgres", 1), ("postgres", 2), ("postgres", 3)):
            name = f"{store}-{count}"
            url = postgres.url(f"bench_{store}_{count}") if store == "postgres" else None
            first = ms.Stack(s.out / f"replicas-{name}", port=ms.free_port(), mlflow_port=stub_port,
                             binary=ms.mlgate_binary(), store_url=url)
            first.data_dir.mkdir(parents=True, exist_ok=True)
            first.apply(DEMO_FILE, demo_passwords())
            running = [first] + [first.replica() for _ in range(count - 1)]
            for r in running:
                r.start_gateway()
            token = first.mlgate("token", "create", "--user", "mlflow-reader").stdout.strip()
            targets = [Target(f"{name}-{i}", r.url, {"Authorization": f"Bearer {token}"},
                              r.gateway.pid) for i, r in enumerate(running)]
            for t in targets:
                check(t, GATEWAY_CALL)
            before = pg_transactions(url) if url else None
            load = parallel_load(wrk, targets, s)
            if url:
                load["pg_transactions"] = pg_transactions(url) - before
            log(f"  {name:<11} {load['rps']:9.0f} req/s  p99 {load['p99_ms']:8.3f} ms"
                + (f"  PostgreSQL transactions {load['pg_transactions']}" if url else ""))
            if name == "postgres-3":
                delays = revocation_delays(first, running, 3 if s.quick else 20)
                results["revocation_ms"] = {
                    "samples": len(delays),
                    "p50": 1000 * statistics.median(delays),
                    "p99": 1000 * delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))],
                    "max": 1000 * delays[-1],
                }
            setups[name] = load
            for r in running:
                r.stop_gateway()
            running = []
        results.update({"concurrency": s.concurrency, "duration_s": s.duration, "setups": setups})
    finally:
        for r in running:
            r.stop_gateway()
        postgres.close()
        stub.stop()


ALL_CASES = ["micro", "gateway", "e2e", "search", "memory", "replicas"]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="about 1-2 s per case (CI): checks the suite runs")
    p.add_argument("--cases", default=",".join(ALL_CASES), help=f"comma-separated subset of {','.join(ALL_CASES)}")
    p.add_argument("--out", default=None, help="output directory (default bench/out/<mode>-<time>)")
    p.add_argument("--publish", action="store_true", help="copy REPORT.md and results.json to bench/ (full runs only)")
    args = p.parse_args(argv)

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; choose from {ALL_CASES}")
    if args.publish and args.quick:
        p.error("--publish is for full runs: the committed report never comes from --quick")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else BENCH / "out" / f"{'quick' if args.quick else 'full'}-{stamp}"
    out = out.resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    s = Settings.make(args.quick, out, cases)
    wrk = Wrk(WRK_BIN, WRK_SCRIPT, out)

    doc: Dict[str, Any] = {"meta": metadata(s, wrk), "cases": {}}
    status = 0
    started = time.monotonic()
    for name in ALL_CASES:
        if name not in cases:
            continue
        log(f"=== case {name} ===")
        res: Dict[str, Any] = {}
        t0 = time.monotonic()
        try:
            if name == "micro":
                case_micro(s, res)
            elif name == "gateway":
                case_gateway(s, res, wrk)
            elif name == "e2e":
                case_e2e(s, res, wrk)
            elif name == "search":
                case_search(s, res, wrk)
            elif name == "memory":
                case_memory(s, res)
            elif name == "replicas":
                case_replicas(s, res, wrk)
            res["status"] = "ok"
        except Exception as e:  # a case that cannot run fails the suite; the others still run
            status = 1
            res["status"] = "failed"
            res["error"] = f"{type(e).__name__}: {e}"
            log(f"case {name} FAILED: {e}")
            traceback.print_exc()
        res["seconds"] = round(time.monotonic() - t0, 1)
        doc["cases"][name] = res
        # Written after every case, so an interrupted run keeps what it measured.
        (out / "results.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    doc["meta"]["seconds"] = round(time.monotonic() - started, 1)
    doc["meta"]["loadavg_at_end"] = os.getloadavg()
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "REPORT.md").write_text(report.render(doc))
    log(f"wrote {out / 'REPORT.md'} and {out / 'results.json'}")
    if args.publish:
        if status != 0:
            log("not publishing: a case failed")
        else:
            shutil.copy(out / "REPORT.md", BENCH / "REPORT.md")
            shutil.copy(out / "results.json", BENCH / "results.json")
            log("published bench/REPORT.md and bench/results.json")
    print(report.summary_lines(doc))
    return status


if __name__ == "__main__":
    sys.exit(main())
