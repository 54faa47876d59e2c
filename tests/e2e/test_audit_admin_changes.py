"""Administrative changes in the audit log (docs/administration.md, "Administrative changes"):
a change made with the admin CLI, or by an admin through MLflow's basic-auth API, is journaled
in the store with the change and sealed by the running server into its verifiable log as an
`admin_change` line: who (the OS user, or the principal and its request), what (a policy's
document before and after), when. Changes made while no server runs reach the log of the next
server that starts."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import List

import requests

from conftest import unique
from support import mlgate_stack


def admin_changes(path: Path, **match) -> List[dict]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == "admin_change"
            and all(line.get(k) == v for k, v in match.items())]


def wait_for_change(path: Path, timeout: float = 15.0, **match) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = admin_changes(path, **match)
        if found:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError(f"no admin_change {match} in {path}")


def policy(action: str) -> dict:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}


def test_a_cli_policy_change_is_in_the_log_with_before_and_after(stack, tmp_path):
    name = unique("journaled")
    first, second = policy("mlflow:GetExperiment"), policy("mlflow:SearchExperiments")
    file = tmp_path / "policy.json"
    file.write_text(json.dumps(first))
    stack.mlgate("policy", "put", name, "--file", str(file))
    created = wait_for_change(stack.audit_log, action="PutPolicy", target=f"policy/{name}")
    assert created["after"] == first and "before" not in created
    actor = created["actor"]
    assert actor["type"] == "os_user" and actor["uid"] == os.getuid(), actor

    file.write_text(json.dumps(second))
    stack.mlgate("policy", "put", name, "--file", str(file))
    deadline = time.monotonic() + 15
    while len(admin_changes(stack.audit_log, target=f"policy/{name}")) < 2:
        assert time.monotonic() < deadline, "the update was not journaled"
        time.sleep(0.2)
    updated = admin_changes(stack.audit_log, target=f"policy/{name}")[-1]
    assert updated["before"] == first and updated["after"] == second
    assert updated["change_id"] > created["change_id"]
    # Putting the same document again changes nothing, and records nothing.
    stack.mlgate("policy", "put", name, "--file", str(file))
    stack.mlgate("policy", "delete", name)
    deleted = wait_for_change(stack.audit_log, action="DeletePolicy", target=f"policy/{name}")
    assert deleted["before"] == second
    assert len(admin_changes(stack.audit_log, target=f"policy/{name}")) == 3

    verified = stack.mlgate("audit", "verify", "--open", str(stack.audit_log), check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_change_through_the_basic_auth_api_names_the_admin_and_its_request(stack, admin):
    name = unique("api-made")
    resp = requests.post(f"{stack.url}/api/2.0/mlflow/users/create",
                         json={"username": name, "password": uuid.uuid4().hex},
                         auth=admin.requests_auth(), timeout=30)
    assert resp.status_code == 200, resp.text
    change = wait_for_change(stack.audit_log, action="CreateUser",
                             target=f"user/111111111111/{name}")
    assert change["actor"] == {"type": "principal",
                               "arn": f"arn:aws:iam::111111111111:user/{admin.name}",
                               "request_id": resp.headers["x-request-id"]}
    assert change["after"]["password"] is True
    # Nothing secret is journaled.
    assert "password_hash" not in json.dumps(change) and "$argon2" not in json.dumps(change)


def test_changes_made_while_no_server_runs_reach_the_next_ones_log(tmp_path):
    data_dir = tmp_path / "data"
    offline = mlgate_stack.Stack(data_dir, port=mlgate_stack.free_port(),
                                 mlflow_port=mlgate_stack.free_port())
    offline.mlgate("user", "create", "carol")
    offline.mlgate("group", "create", "auditors")
    offline.mlgate("group", "add-member", "auditors", "carol")
    assert not offline.audit_log.exists()
    offline.start_gateway()
    try:
        for action, target in [("CreateUser", "user/111111111111/carol"),
                               ("CreateGroup", "group/111111111111/auditors"),
                               ("AddUserToGroup", "group/111111111111/auditors")]:
            wait_for_change(offline.audit_log, action=action, target=target)
        ids = [c["change_id"] for c in admin_changes(offline.audit_log)]
        assert ids == sorted(ids) and len(ids) == len(set(ids))
    finally:
        offline.stop_gateway()
    # Recorded once: a restart does not write them again.
    offline.start_gateway()
    try:
        time.sleep(2.5)
        assert len(admin_changes(offline.audit_log, target="user/111111111111/carol")) == 1
    finally:
        offline.stop_gateway()
    verified = offline.mlgate("audit", "verify", str(offline.audit_log), check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
