#!/usr/bin/env python3
"""Start, wait for and stop the pair "MLflow on a private port + mlgate in front of it".

One implementation of that idea, used by:

* ``scripts/up``          -> ``python scripts/lib/mlgate_stack.py up`` (the foreground quick start)
* ``tests/e2e/conftest.py`` -> ``Stack(...)`` (a throw-away stack on free ports per test session),
  and ``Postgres`` when the stack's store is PostgreSQL (``scripts/lib/postgres.sh`` does the
  PostgreSQL part, for the Rust store tests too)

Every child runs in its own process group (so Ctrl-C in the terminal reaches only this
supervisor, which then stops the groups in order) and gets SIGTERM if the supervisor dies
(Linux PR_SET_PDEATHSIG), so nothing is left running.

Standard library only: it runs under the project venv's Python, but needs nothing from it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
DEMO_FILE = ROOT / "deploy" / "demo.toml"
# mlgate's SQLite store inside its data dir (absent when the store is PostgreSQL).
STORE_FILE = "mlgate.db"

# The users deploy/demo.toml creates, and the env vars it reads their passwords from.
ADMIN_USER = "admin"
DEMO_USERS = ("mlflow-admin", "mlflow-reader", "mlflow-model-approver")
ADMIN_PASSWORD_ENV = "MLGATE_ADMIN_PASSWORD"
DEMO_PASSWORD_ENV = "MLGATE_DEMO_PASSWORD"

# MLflow 3.17 starts helper processes by default. Read from mlflow/server/__init__.py and
# mlflow/environment_variables.py of the pinned version:
#  * MLFLOW_SERVER_ENABLE_JOB_EXECUTION (default true) makes `mlflow server` spawn the job
#    runner (`python -m mlflow.server.jobs._job_runner`), which in turn keeps one
#    `huey_consumer` process per job type plus a periodic-tasks consumer alive. None of
#    that is needed behind mlgate (jobs serve the GenAI judges/online scoring features).
#  * MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS: belt and braces for the periodic consumer.
#  * --workers 1: uvicorn defaults to 4 worker processes; one is plenty here.
#  * MLFLOW_DISABLE_TELEMETRY: no usage reports to the internet from a private server.
# What remains is two processes: the `mlflow server` CLI (it only waits and forwards
# signals) and one uvicorn worker.
MLFLOW_QUIET_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PYTHONUNBUFFERED": "1",
}


# ---------------------------------------------------------------------------- small helpers


def log(msg: str) -> None:
    print(f"mlgate: {msg}", file=sys.stderr, flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def mlgate_binary() -> Path:
    """The mlgate binary to run: $MLGATE_BIN, else the release build of this checkout."""
    override = os.environ.get("MLGATE_BIN")
    return Path(override) if override else ROOT / "target" / "release" / "mlgate"


def build_mlgate() -> Path:
    """`cargo build --release -p mlgate` (a no-op when up to date), unless $MLGATE_BIN is set."""
    if os.environ.get("MLGATE_BIN"):
        return mlgate_binary()
    log("building mlgate (cargo build --release -p mlgate; the first build takes a few minutes)")
    subprocess.run(
        ["cargo", "build", "--release", "-p", "mlgate"], cwd=ROOT, check=True
    )
    return mlgate_binary()


def venv_bin(name: str) -> str:
    path = VENV / "bin" / name
    if not path.exists():
        raise SystemExit(f"mlgate: {path} is missing: run scripts/lib/venv.sh first")
    return str(path)


def tail(path: Optional[Path], lines: int = 40) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _die_with_parent() -> None:
    """preexec_fn: own process group + SIGTERM when the supervisor dies (Linux only)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except Exception:  # best effort: process groups + traps still stop everything
            pass


# ---------------------------------------------------------------------------- one child


class Child:
    """A child process in its own process group, stopped as a group."""

    def __init__(
        self,
        name: str,
        argv: List[str],
        log_path: Path,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[Path] = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(cwd) if cwd else None,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _group_gone(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the whole group, SIGKILL to what is left after `timeout` seconds."""
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.proc.poll()
            if self._group_gone():
                break
            time.sleep(0.1)
        else:
            self._signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def kill(self) -> None:
        """SIGKILL to the whole group at once (simulates a crash)."""
        self._signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        # Orphaned grandchildren are reparented to init and reaped there; give that a moment
        # (callers that reuse a port wait for the port itself: see Stack.start_mlflow).
        deadline = time.monotonic() + 2
        while not self._group_gone() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._log.close()


def wait_http(url: str, timeout: float, child: Optional[Child] = None) -> None:
    """Wait until `url` answers with any HTTP status (a 401 also proves the server is up)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(
                f"{child.name} exited with status {child.proc.returncode} before it answered;"
                f" last lines of {child.log_path}:\n{tail(child.log_path)}"
            )
        # Only whether it answers: a test certificate needs no verification here.
        context = ssl._create_unverified_context() if url.startswith("https:") else None
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                resp.read()
                return
        except urllib.error.HTTPError:
            return  # an HTTP error status is an answer
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.25)
    where = f"; last lines of {child.log_path}:\n{tail(child.log_path)}" if child else ""
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s ({last}){where}")


# ---------------------------------------------------------------------------- the pair


class Stack:
    """MLflow bound to 127.0.0.1:<mlflow_port> plus mlgate on <host>:<port>, one data dir.

    Layout of data_dir:
      mlflow/mlflow.db        MLflow's SQLite backend store
      mlflow/artifacts/       MLflow's artifact store (served through its artifact proxy)
      logs/mlflow.log         MLflow's output, including uvicorn's access log
      logs/mlgate.log         mlgate's output
      audit.log               mlgate's audit log (one JSON line per request)
      everything else         mlgate's own store (--data-dir)
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        mlflow_port: Optional[int] = None,
        host: str = "127.0.0.1",
        binary: Optional[Path] = None,
        store_url: Optional[str] = None,
        audit_log: Optional[Path] = None,
        mlgate_log: Optional[Path] = None,
    ) -> None:
        """`audit_log` and `mlgate_log` default to the data dir's; a second gateway on the same
        data dir needs an audit log of its own (mlgate locks it)."""
        self.data_dir = Path(data_dir).resolve()
        # mlgate's store: PostgreSQL at this URL for the server and the CLI, else SQLite in
        # the data dir.
        self.store_url = store_url
        self.store_env = {"MLGATE_STORE_URL": store_url} if store_url else {}
        self._audit_log = audit_log
        self._mlgate_log = mlgate_log
        self.host = host
        self.port = port
        self.scheme = "http"  # "https" once started with --tls-cert
        self.mlflow_port = mlflow_port or free_port()
        self.binary = Path(binary) if binary else mlgate_binary()
        self.mlflow: Optional[Child] = None
        self.gateway: Optional[Child] = None

    # Paths and URLs ------------------------------------------------------------------

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"{self.scheme}://{shown}:{self.port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def mlflow_log(self) -> Path:
        return self.data_dir / "logs" / "mlflow.log"

    @property
    def mlgate_log(self) -> Path:
        return self._mlgate_log or self.data_dir / "logs" / "mlgate.log"

    @property
    def audit_log(self) -> Path:
        return self._audit_log or self.data_dir / "audit.log"

    @property
    def audit_logs(self) -> List[Path]:
        """Every audit log requests to this stack's URL may land in."""
        return [self.audit_log]

    # mlgate CLI ----------------------------------------------------------------------

    def mlgate(
        self, *args: str, env: Optional[Dict[str, str]] = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run an mlgate admin command against this stack's data dir; returns the result."""
        argv = [str(self.binary), *args, "--data-dir", str(self.data_dir)]
        result = subprocess.run(
            argv,
            env={**os.environ, **self.store_env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"`mlgate {' '.join(args)}` failed with status {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def store_execute(self, statement: str, params: Sequence[object] = ()) -> None:
        """Runs one statement (`?` placeholders) on mlgate's store behind mlgate's back: for
        tests that age a record or look at what is stored."""
        if self.store_url is None:
            import sqlite3

            with sqlite3.connect(self.data_dir / STORE_FILE) as db:
                db.execute(statement, tuple(params))
            return
        for value in params:  # test values only: ints and plain ids
            literal = str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"
            statement = statement.replace("?", literal, 1)
        subprocess.run(["bash", str(Postgres.SCRIPT), "sql", self.store_url, statement], check=True)

    def store_bytes(self) -> bytes:
        """Everything mlgate's store holds, as bytes: the SQLite files, or a pg_dump."""
        if self.store_url is None:
            files = [self.data_dir / STORE_FILE, self.data_dir / f"{STORE_FILE}-wal"]
            return b"".join(f.read_bytes() for f in files if f.exists())
        return subprocess.run(["bash", str(Postgres.SCRIPT), "dump", self.store_url],
                              check=True, capture_output=True).stdout

    def apply(self, file: Path, env: Dict[str, str]) -> None:
        """`mlgate apply -f FILE` (idempotent) with the password env vars the file names."""
        self.mlgate("apply", "-f", str(file), env=env)

    # MLflow --------------------------------------------------------------------------

    def start_mlflow(
        self,
        timeout: float = 120.0,
        extra_args: Sequence[str] = (),
        extra_env: Optional[Dict[str, str]] = None,
    ) -> None:
        """Start MLflow; `extra_args` are appended to `mlflow server` (e.g. the benchmark's
        `--app-name basic-auth`) and `extra_env` added to its environment."""
        deadline = time.monotonic() + 10  # a just-killed MLflow may still hold the port
        while port_in_use(self.mlflow_port) and time.monotonic() < deadline:
            time.sleep(0.1)
        if port_in_use(self.mlflow_port):
            raise RuntimeError(
                f"MLflow's private port {self.mlflow_port} is in use (set MLGATE_MLFLOW_PORT)"
            )
        (self.mlflow_dir / "artifacts").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **MLFLOW_QUIET_ENV, **(extra_env or {})}
        # The client-side tracking variables of whoever runs this are not MLflow's business.
        for k in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                  "MLFLOW_TRACKING_TOKEN"):
            env.pop(k, None)
        argv = [
            venv_bin("mlflow"), "server",
            "--host", "127.0.0.1",
            "--port", str(self.mlflow_port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.mlflow_dir / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination", str(self.mlflow_dir / "artifacts"),
            *extra_args,
        ]  # fmt: skip
        self.mlflow = Child("MLflow", argv, self.mlflow_log, env=env, cwd=self.mlflow_dir)
        wait_http(f"{self.mlflow_url}/health", timeout, self.mlflow)

    def stop_mlflow(self) -> None:
        if self.mlflow is not None:
            self.mlflow.stop()
            self.mlflow = None

    def kill_mlflow(self) -> None:
        """SIGKILL MLflow's whole process group (a crash, not a shutdown)."""
        if self.mlflow is not None:
            self.mlflow.kill()
            self.mlflow = None

    # mlgate --------------------------------------------------------------------------

    def start_gateway(self, timeout: float = 60.0, extra_args: Sequence[str] = ()) -> None:
        """Start mlgate; `extra_args` are appended to `mlgate serve`."""
        if port_in_use(self.port, "127.0.0.1"):
            raise RuntimeError(f"port {self.port} is in use (set MLGATE_PORT)")
        argv = [
            str(self.binary), "serve",
            "--listen", f"{self.host}:{self.port}",
            "--upstream", self.mlflow_url,
            "--data-dir", str(self.data_dir),
            "--audit-log", str(self.audit_log),
            *extra_args,
        ]  # fmt: skip
        env = {**os.environ, **self.store_env}
        env.setdefault("RUST_LOG", "info")
        env.setdefault("NO_COLOR", "1")  # the log is a file: no terminal colour codes
        self.scheme = "https" if "--tls-cert" in extra_args else "http"
        self.gateway = Child("mlgate", argv, self.mlgate_log, env=env)
        wait_http(f"{self.url}/_mlgate/login", timeout, self.gateway)

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    def replica(self, port: Optional[int] = None) -> "Stack":
        """Another mlgate on this stack's data dir (master key), store and MLflow: a replica.
        Start it with `start_gateway`. It writes an audit log and a log of its own."""
        port = port or free_port()
        return Stack(self.data_dir, port=port, mlflow_port=self.mlflow_port,
                     host=self.host, binary=self.binary, store_url=self.store_url,
                     audit_log=self.data_dir / f"audit-{port}.log",
                     mlgate_log=self.data_dir / f"mlgate-{port}.log")

    # Together ------------------------------------------------------------------------

    def up(self, declarative_file: Path, password_env: Dict[str, str]) -> None:
        """Bootstrap (mlgate apply), start MLflow, start mlgate; tears down on any failure."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.apply(declarative_file, password_env)
            self.start_mlflow()
            self.start_gateway()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Stop mlgate first (no new requests), then MLflow. Safe to call twice."""
        self.stop_gateway()
        self.stop_mlflow()

    def first_dead(self) -> Optional[Child]:
        for child in (self.gateway, self.mlflow):
            if child is not None and not child.alive():
                return child
        return None


# ---------------------------------------------------------------------------- PostgreSQL


class Postgres:
    """A throwaway PostgreSQL server (scripts/lib/postgres.sh) on a free port: started here,
    stopped and deleted when `close` is called or this process dies (the helper waits on its
    stdin). `stop` and `start` take it down and up again in between (an outage)."""

    SCRIPT = ROOT / "scripts" / "lib" / "postgres.sh"

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["bash", str(self.SCRIPT), "serve", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("ready "):
            code = self.proc.wait()
            raise RuntimeError(
                f"{self.SCRIPT} could not start PostgreSQL (exit {code}"
                + ("; install it with scripts/lib/postgres-deps.sh)" if code == 3 else ")")
            )
        self.dir = line.split(" ", 1)[1]

    def url(self, database: str) -> str:
        """A new database on this server, as a store URL (password in the URL: tests only)."""
        subprocess.run(["bash", str(self.SCRIPT), "createdb", self.dir, database], check=True)
        return f"postgres://mlgate:mlgate@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        subprocess.run(["bash", str(self.SCRIPT), "stop", self.dir], check=True)

    def start(self) -> None:
        subprocess.run(["bash", str(self.SCRIPT), "start", self.dir, str(self.port)], check=True)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


# ---------------------------------------------------------------------------- scripts/up


def _int_env(name: str, default: Optional[int]) -> Optional[int]:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"mlgate: {name} must be a port number, not {value!r}")


def plan_keeping_passwords(src: Path, keep: List[str], dest: Path) -> Path:
    """A copy of the declarative file `src` without the `password_env = "<VAR>"` lines of the
    variables in `keep` (so apply leaves those users' passwords as they are), with policy
    `file` paths made absolute (the copy lives elsewhere). Written to `dest`."""
    out = []
    for line in src.read_text().splitlines():
        m = re.match(r'\s*password_env\s*=\s*"([A-Za-z0-9_]+)"\s*(#.*)?$', line)
        if m and m.group(1) in keep:
            continue
        m = re.match(r'(\s*file\s*=\s*)"([^"\\]+)"(.*)$', line)
        if m:
            line = f"{m.group(1)}{json.dumps(str((src.parent / m.group(2)).resolve()))}{m.group(3)}"
        out.append(line)
    dest.write_text("\n".join(out) + "\n")
    return dest


def _bootstrap(stack: "Stack", file: Path) -> tuple:
    """Decides the bootstrap passwords and the file to apply.

    A password variable that is set wins. An unset one is generated on the first start (no
    store yet) and printed once; on later starts the user keeps the password it has.
    Returns (env for apply, file to apply, {var: "generated" | "env" | "kept"})."""
    fresh = not (stack.data_dir / "mlgate.db").exists()
    env: Dict[str, str] = {}
    origin: Dict[str, str] = {}
    keep: List[str] = []
    for name in (ADMIN_PASSWORD_ENV, DEMO_PASSWORD_ENV):
        if os.environ.get(name):
            env[name], origin[name] = os.environ[name], "env"
        elif fresh:
            env[name], origin[name] = generate_password(), "generated"
        else:
            keep.append(name)
            origin[name] = "kept"
    if keep:
        stack.data_dir.mkdir(parents=True, exist_ok=True)
        file = plan_keeping_passwords(file, keep, stack.data_dir / "apply-keep-passwords.toml")
    return env, file, origin


def _print_ready(stack: Stack, env: Dict[str, str], origin: Dict[str, str]) -> None:
    def shown(var: str) -> str:
        how = origin[var]
        if how == "generated":
            return f"{env[var]}   (generated now, shown only here; ${var} sets your own)"
        if how == "env":
            return f"{env[var]}   (from ${var})"
        return f"unchanged since the first start   (${var} sets a new one)"

    demo_pw = env.get(DEMO_PASSWORD_ENV, "<demo password>")
    rel = os.path.relpath(stack.data_dir)
    data_dir = rel if not rel.startswith("..") else str(stack.data_dir)
    binary = os.path.relpath(stack.binary) if str(stack.binary).startswith(str(ROOT)) \
        else str(stack.binary)
    lines = [
        f"mlgate: ready at {stack.url}",
        "",
        f"  Web UI:      {stack.url}/  (sign in as one of the users below)",
        f"  Admin:       {ADMIN_USER} / {shown(ADMIN_PASSWORD_ENV)}",
        f"  Demo users:  {', '.join(DEMO_USERS)} / {shown(DEMO_PASSWORD_ENV)}",
        "               in groups admins, readers, model-approvers (policies/*.json)",
        "",
        "  Point the MLflow client at it:",
        f"    export MLFLOW_TRACKING_URI={stack.url}",
        "    export MLFLOW_TRACKING_USERNAME=mlflow-reader",
        f"    export MLFLOW_TRACKING_PASSWORD='{demo_pw}'",
        "  or use an API token instead of a username and password:",
        f"    export MLFLOW_TRACKING_TOKEN=$({binary} token create --user mlflow-reader"
        f" --data-dir {data_dir})",
        "",
        f"  Audit log:   {stack.audit_log}",
        f"  Logs:        {stack.mlgate_log}, {stack.mlflow_log}",
        f"  MLflow:      {stack.mlflow_url} (private; only mlgate talks to it)",
        "  Stop with Ctrl-C (stops MLflow too).",
    ]
    print("\n".join(lines), flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    data_dir = Path(os.environ.get("MLGATE_DATA_DIR") or ROOT / ".mlgate")
    port = _int_env("MLGATE_PORT", 5000)
    mlflow_port = _int_env("MLGATE_MLFLOW_PORT", None)
    host = os.environ.get("MLGATE_HOST", "127.0.0.1")
    assert port is not None
    if port_in_use(port):
        log(f"port {port} is already in use: stop what runs there, or set MLGATE_PORT")
        return 1

    try:
        binary = build_mlgate() if not args.no_build else mlgate_binary()
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        log(f"cannot build mlgate: {e}")
        return 1
    if not binary.exists():
        raise SystemExit(f"mlgate: {binary} does not exist (build it or set MLGATE_BIN)")

    stack = Stack(data_dir, port=port, mlflow_port=mlflow_port, host=host, binary=binary)
    env, plan, origin = _bootstrap(stack, Path(args.file).resolve())

    def on_signal(_signum: int, _frame) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    shown = False
    try:
        log(f"data dir {stack.data_dir}; MLflow on {stack.mlflow_url} (private)")
        stack.up(plan, env)
        _print_ready(stack, env, origin)
        shown = True
        while True:
            dead = stack.first_dead()
            if dead is not None:
                log(
                    f"{dead.name} exited with status {dead.proc.returncode}; stopping."
                    f" Last lines of {dead.log_path}:\n{tail(dead.log_path)}"
                )
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        log("stopping mlgate and MLflow")
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as e:
        log(str(e))
        return 1
    finally:
        # Ignore further signals while the children stop.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        stack.down()
        generated = [v for v, how in origin.items() if how == "generated"]
        if not shown and generated and (stack.data_dir / "mlgate.db").exists():
            # The store may hold passwords nobody has seen yet: show them rather than lock
            # the user out of the next start (which keeps them).
            for var in generated:
                log(f"{var} was set to {env[var]} (the next start keeps it)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="mlgate_stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="the quick start: bootstrap, start MLflow and mlgate, wait")
    up.add_argument("-f", "--file", default=str(DEMO_FILE), help="declarative file to apply")
    up.add_argument("--no-build", action="store_true", help="do not run cargo build")
    up.set_defaults(func=cmd_up)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
