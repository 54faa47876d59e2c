"""Audit you can prove: the hash chain and signed checkpoints that `mlgate audit verify` checks,
rotation (size, SIGHUP, logrotate), standard output, and the overload modes.

Each test runs a gateway of its own (own audit log, own flags) in front of the session's MLflow,
on the session's store, sends real requests and looks at the log it wrote."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import requests

from support import ROOT, mlgate_stack

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"


@contextlib.contextmanager
def gateway(stack, workdir: Path, audit_log: Path, *flags: str) -> Iterator[mlgate_stack.Stack]:
    """A second mlgate on the session's store and MLflow, writing `audit_log`; its own output
    goes to `workdir`/mlgate.log."""
    gw = mlgate_stack.Stack(stack.data_dir, port=mlgate_stack.free_port(),
                            mlflow_port=stack.mlflow_port, binary=stack.binary,
                            audit_log=audit_log, mlgate_log=workdir / "mlgate.log")
    gw.start_gateway(extra_args=flags)
    try:
        yield gw
    finally:
        gw.stop_gateway()


def send(gw, reader, count: int) -> None:
    for i in range(count):
        auth = reader.requests_auth() if i % 2 else None  # allowed and unauthenticated
        requests.get(f"{gw.url}{SEARCH}", auth=auth, timeout=30)


def verify(stack, *files: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return stack.mlgate("audit", "verify", *map(str, files), env=env, check=False)


def assert_names(result: subprocess.CompletedProcess, file: Path, line: int) -> None:
    assert result.returncode != 0, result.stdout
    assert f"{file}:{line}: " in result.stderr, result.stderr


def lines_of(path: Path) -> List[bytes]:
    return path.read_bytes().splitlines()


def write_lines(path: Path, lines: List[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def is_checkpoint(line: bytes) -> bool:
    return json.loads(line).get("event") == "audit_checkpoint"


def rechain(lines: List[bytes], start: int) -> List[bytes]:
    """What someone without the master key can do: recompute every hash from `start` on, as
    docs/administration.md describes them."""
    out = list(lines[:start])
    head = bytes.fromhex(json.loads(out[-1])["hash"]) if out else bytes(32)
    for line in lines[start:]:
        body = line[: line.rindex(b',"hash":"')]
        head = hashlib.sha256(head + body).digest()
        out.append(body + b',"hash":"' + head.hex().encode() + b'"}')
    return out


@pytest.fixture(scope="module")
def closed_log(stack, reader, tmp_path_factory) -> Path:
    """A log written by a gateway that ran, served requests and stopped."""
    workdir = tmp_path_factory.mktemp("closed")
    log = workdir / "audit.log"
    with gateway(stack, workdir, log, "--audit-checkpoint-records", "5") as gw:
        send(gw, reader, 14)
    return log


def test_an_untouched_log_verifies(stack, closed_log):
    result = verify(stack, closed_log)
    assert result.returncode == 0, result.stderr
    assert "audit log verified" in result.stdout
    last = json.loads(lines_of(closed_log)[-1])
    assert last["event"] == "audit_checkpoint" and last["reason"] == "shutdown", last


def test_each_tampering_is_named(stack, closed_log, tmp_path):
    lines = lines_of(closed_log)
    records = [i for i, line in enumerate(lines) if not is_checkpoint(line)]
    assert len(records) >= 10 and len(lines) > len(records) + 2

    removed = lines[: records[2]] + lines[records[2] + 1:]
    assert_names(verify(stack, write_lines(tmp_path / "removed", removed)),
                 tmp_path / "removed", records[2] + 1)

    altered = list(lines)
    altered[records[3]] = re.sub(rb'"status":\d+', b'"status":299', altered[records[3]], count=1)
    assert altered[records[3]] != lines[records[3]]
    assert_names(verify(stack, write_lines(tmp_path / "altered", altered)),
                 tmp_path / "altered", records[3] + 1)

    inserted = list(lines)
    inserted.insert(records[5], lines[records[1]])
    assert_names(verify(stack, write_lines(tmp_path / "inserted", inserted)),
                 tmp_path / "inserted", records[5] + 1)

    reordered = list(lines)
    a, b = records[6], records[6] + 1
    reordered[a], reordered[b] = reordered[b], reordered[a]
    assert_names(verify(stack, write_lines(tmp_path / "reordered", reordered)),
                 tmp_path / "reordered", a + 1)

    # The tail cut: everything after a record that follows a periodic checkpoint.
    last_periodic = max(i for i, line in enumerate(lines[:-1])
                        if is_checkpoint(line) and not is_checkpoint(lines[i + 1]))
    cut = lines[: last_periodic + 2]
    assert_names(verify(stack, write_lines(tmp_path / "cut", cut)), tmp_path / "cut",
                 last_periodic + 2)
    # Cut right after a periodic checkpoint: the shutdown checkpoint is missing.
    cut_at_checkpoint = lines[: last_periodic + 1]
    result = verify(stack, write_lines(tmp_path / "cut2", cut_at_checkpoint))
    assert_names(result, tmp_path / "cut2", last_periodic + 1)
    assert "shutdown" in result.stderr
    # `--open` accepts a log still being written.
    assert stack.mlgate("audit", "verify", "--open", str(tmp_path / "cut"), check=False).returncode == 0


def test_a_recomputed_chain_fails_at_the_next_checkpoint(stack, closed_log, tmp_path):
    lines = lines_of(closed_log)
    target = next(i for i, line in enumerate(lines) if not is_checkpoint(line) and i > 0)
    forged = list(lines)
    forged[target] = forged[target].replace(b'"method":"GET"', b'"method":"PUT"', 1)
    assert forged[target] != lines[target]
    forged = rechain(forged, target)
    next_checkpoint = next(i for i in range(target, len(lines)) if is_checkpoint(lines[i]))
    result = verify(stack, write_lines(tmp_path / "forged", forged))
    assert_names(result, tmp_path / "forged", next_checkpoint + 1)
    assert "signature" in result.stderr
    # The untouched log with another master key: the first checkpoint fails.
    other_key = base64.b64encode(os.urandom(32)).decode()
    result = verify(stack, closed_log, env={"MLGATE_MASTER_KEY": other_key})
    first_checkpoint = next(i for i, line in enumerate(lines) if is_checkpoint(line))
    assert_names(result, closed_log, first_checkpoint + 1)


def test_size_rotation_and_sighup_continue_the_chain(stack, reader, tmp_path):
    log = tmp_path / "audit.log"
    with gateway(stack, tmp_path, log, "--audit-max-bytes", "4KiB") as gw:
        send(gw, reader, 30)
        time.sleep(0.5)
        size_rotated = sorted(tmp_path.glob("audit.log.2*"))
        assert len(size_rotated) >= 2, list(tmp_path.iterdir())
        # logrotate's way: rename the file, then SIGHUP.
        renamed = tmp_path / "renamed.log"
        log.rename(renamed)
        os.kill(gw.gateway.pid, signal.SIGHUP)
        time.sleep(0.5)
        send(gw, reader, 3)
    files = [*size_rotated, renamed, log]
    result = verify(stack, *files)
    assert result.returncode == 0, result.stderr
    assert json.loads(lines_of(renamed)[-1])["reason"] == "rotate"
    assert json.loads(lines_of(log)[0])["prev"] == json.loads(lines_of(renamed)[-1])["hash"]
    # A file missing, or the files out of order.
    assert_names(verify(stack, *files[:1], *files[2:]), files[2], 1)
    assert_names(verify(stack, files[1], files[0], *files[2:]), files[0], 1)


def logrotate_example() -> str:
    text = (ROOT / "docs" / "administration.md").read_text()
    match = re.search(r"```text\n(/var/lib/mlgate/audit\.log \{\n.*?\n\})\n```", text, re.S)
    assert match, "the logrotate example of docs/administration.md"
    return match.group(1)


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_the_documented_logrotate_example(stack, reader, tmp_path):
    log = tmp_path / "audit.log"
    with gateway(stack, tmp_path, log) as gw:
        send(gw, reader, 4)
        config = logrotate_example()
        assert "systemctl kill --signal=HUP mlgate" in config
        config = config.replace("/var/lib/mlgate/audit.log", str(log))
        config = config.replace("systemctl kill --signal=HUP mlgate", f"kill -HUP {gw.gateway.pid}")
        conf = tmp_path / "logrotate.conf"
        conf.write_text(config + "\n")
        run = subprocess.run(["logrotate", "--force", "--state", str(tmp_path / "state"), str(conf)],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        time.sleep(0.5)
        send(gw, reader, 4)
    rotated = sorted(tmp_path.glob("audit.log-*"))
    assert len(rotated) == 1, list(tmp_path.iterdir())
    result = verify(stack, *rotated, log)
    assert result.returncode == 0, result.stderr
    assert len([line for line in lines_of(log) if not is_checkpoint(line)]) == 4


def test_audit_to_standard_output(stack, reader, tmp_path):
    out = tmp_path / "mlgate.log"
    with gateway(stack, tmp_path, Path("-"), "--audit-checkpoint-records", "3") as gw:
        send(gw, reader, 5)
    # stdout and stderr share the file: the chained lines are the ones starting with {"seq".
    chained = [line for line in lines_of(out) if line.startswith(b'{"seq":')]
    assert sum(1 for line in chained if b'"path":"/api/2.0/mlflow/experiments/search"' in line) == 5
    result = verify(stack, write_lines(tmp_path / "collected.log", chained))
    assert result.returncode == 0, result.stderr


class Flood:
    """Sends `count` unauthenticated requests one after the other on a thread."""

    def __init__(self, url: str, count: int) -> None:
        self.done = 0
        self.statuses: List[int] = []
        self.thread = threading.Thread(target=self._run, args=(url, count), daemon=True)
        self.thread.start()

    def _run(self, url: str, count: int) -> None:
        with requests.Session() as session:
            for _ in range(count):
                self.statuses.append(session.get(f"{url}{SEARCH}", timeout=120).status_code)
                self.done += 1


class Drain:
    """Reads a FIFO to its end on a thread."""

    def __init__(self, fifo: Path) -> None:
        self.data = bytearray()
        self.thread = threading.Thread(target=self._run, args=(fifo,), daemon=True)
        self.thread.start()

    def _run(self, fifo: Path) -> None:
        with open(fifo, "rb") as f:
            while chunk := f.read(65536):
                self.data += chunk


def stalled(flood: Flood, quiet: float = 2.0, timeout: float = 60.0) -> bool:
    """Whether the flood stopped progressing before finishing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and flood.thread.is_alive():
        before = flood.done
        time.sleep(quiet)
        if flood.done == before and flood.thread.is_alive():
            return True
    return False


REQUESTS = 1500


def overloaded(stack, tmp_path, mode: str, *flags: str):
    """A gateway whose audit log is a FIFO nobody reads (a stuck disk), with a tiny queue."""
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo, 0o600)
    return fifo, gateway(stack, tmp_path, fifo, "--audit-overload", mode,
                         "--audit-queue-capacity", "2", *flags)


def search_records_and_drops(data: bytes) -> tuple:
    lines = [json.loads(line) for line in data.splitlines()]
    records = sum(1 for r in lines if r.get("path") == "/api/2.0/mlflow/experiments/search")
    dropped = sum(r["count"] for r in lines if r.get("event") == "audit_records_dropped")
    return records, dropped


def test_overload_drop_answers_and_counts_the_dropped(stack, tmp_path):
    fifo, gw_context = overloaded(stack, tmp_path, "drop")
    with gw_context as gw:
        flood = Flood(gw.url, REQUESTS)
        flood.thread.join(timeout=120)
        assert flood.done == REQUESTS, "requests must not wait for a stuck audit writer"
        drain = Drain(fifo)
    drain.thread.join(timeout=30)
    records, dropped = search_records_and_drops(bytes(drain.data))
    assert dropped > 0
    assert records + dropped == REQUESTS
    collected = write_lines(tmp_path / "collected.log", bytes(drain.data).splitlines())
    assert verify(stack, collected).returncode == 0


def test_overload_block_waits_and_drops_nothing(stack, tmp_path):
    fifo, gw_context = overloaded(stack, tmp_path, "block", "--audit-block-timeout", "5m")
    with gw_context as gw:
        flood = Flood(gw.url, REQUESTS)
        assert stalled(flood), "requests must wait while the audit writer is stuck"
        assert flood.done < REQUESTS
        drain = Drain(fifo)
        flood.thread.join(timeout=120)
        assert flood.done == REQUESTS
    drain.thread.join(timeout=30)
    assert set(flood.statuses) == {401}
    records, dropped = search_records_and_drops(bytes(drain.data))
    assert (records, dropped) == (REQUESTS, 0)
    collected = write_lines(tmp_path / "collected.log", bytes(drain.data).splitlines())
    assert verify(stack, collected).returncode == 0


def test_overload_block_refuses_after_its_timeout_without_forwarding(stack, reader, mlflow_log,
                                                                    tmp_path):
    """A request that gets no room for its record within --audit-block-timeout is refused with
    503 in MLflow's error shape and never reaches MLflow: nothing happens unaudited."""
    fifo, gw_context = overloaded(stack, tmp_path, "block", "--audit-block-timeout", "1s")
    with gw_context as gw:
        flood = Flood(gw.url, REQUESTS)
        deadline = time.monotonic() + 60
        while 503 not in flood.statuses:
            assert time.monotonic() < deadline, "the queue must fill while the audit writer is stuck"
            time.sleep(0.2)
        marker = f"refused-{os.getpid()}-{time.monotonic_ns()}"
        mark = mlflow_log.mark()
        started = time.monotonic()
        resp = requests.get(f"{gw.url}/api/2.0/mlflow/experiments/get-by-name",
                            params={"experiment_name": marker}, auth=reader.requests_auth(),
                            timeout=60)
        waited = time.monotonic() - started
        assert resp.status_code == 503, resp.text
        assert resp.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert 0.9 <= waited < 30, waited
        assert not mlflow_log.saw(mark, marker), "a refused request must not reach MLflow"
        drain = Drain(fifo)
        flood.thread.join(timeout=120)
    drain.thread.join(timeout=30)
    # The flood's waiting requests were refused too (503) or answered once there was room
    # (401): none was forwarded without its record.
    assert set(flood.statuses) <= {401, 503}
    collected = write_lines(tmp_path / "collected.log", bytes(drain.data).splitlines())
    assert verify(stack, collected).returncode == 0
