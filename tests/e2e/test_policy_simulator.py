"""`mlgate policy simulate` (docs/policy-reference.md, "Why was it denied"): the decision the
server makes, with the statement that decided, the statements that almost applied and why. The
simulator decides with the server's own code: for requests the real server decided (read back
from its audit log), it gives the same answers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from support import Identity, acting_as, denied
from test_metrics import observed  # noqa: F401 (a gateway with an admin listener)

TEAM_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Searches", "Effect": "Allow", "Action": "mlflow:SearchExperiments",
         "Resource": "arn:mlflow:*:*:server"},
        {"Sid": "TeamExperiments", "Effect": "Allow", "Action": "mlflow:*",
         "Resource": ["arn:mlflow:*:*:server", "arn:mlflow:*:*:experiment/*"],
         "Condition": {"StringLike": {"mlflow:ExperimentName": "sim-team/*"}}},
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "mlflow:DeleteExperiment", "Resource": "*"},
    ],
}


@pytest.fixture(scope="module")
def member(stack, tmp_path_factory) -> Identity:
    name = f"sim-{uuid.uuid4().hex[:6]}"
    password = uuid.uuid4().hex
    stack.mlgate("user", "create", name, "--password-env", "PW", env={"PW": password})
    path = Path(tmp_path_factory.mktemp("simulator"), "team.json")
    path.write_text(json.dumps(TEAM_POLICY))
    stack.mlgate("policy", "put", f"sim-team-{name}", "-f", str(path))
    stack.mlgate("policy", "attach", f"sim-team-{name}", "--user", name)
    return Identity(name, password)


def simulate(stack, who: Identity, action: str, resource: str, name: str) -> dict:
    out = stack.mlgate("policy", "simulate", "--user", who.name, "--action", action,
                       "--resource", resource, "--context", f"mlflow:ExperimentName={name}", "--json")
    return json.loads(out.stdout)


def test_the_simulator_answers_as_the_server_did(stack, member, admin, audit):
    tag = uuid.uuid4().hex[:6]
    with acting_as(admin) as client:
        ours = client.create_experiment(f"sim-team/{tag}")
        theirs = client.create_experiment(f"other-team/{tag}")
    mark = audit.mark()
    with acting_as(member) as client:
        client.get_experiment(ours)
        denied(lambda: client.get_experiment(theirs))
        denied(lambda: client.delete_experiment(ours))
    records = [r for r in audit.wait_for(mark, 3) if r.get("principal", "").endswith(f"user/{member.name}")]
    names = {ours: f"sim-team/{tag}", theirs: f"other-team/{tag}"}
    assert len(records) == 3, records
    for record in records:
        # (the record carries both vocabularies: the execute-api question and MLflow's)
        (action,) = [a for a in record["actions"] if a.startswith("mlflow:")]
        (resource,) = [r for r in record["resources"] if r.startswith("arn:mlflow:")]
        name = names[resource.rsplit("/", 1)[1]]
        simulated = simulate(stack, member, action, resource, name)
        server = {"allow": "Allow", "explicit_deny": "ExplicitDeny", "implicit_deny": "ImplicitDeny"}
        assert simulated["decision"] == server[record["decision"]], (record, simulated)
        assert (simulated["policy"], simulated["statement"]) == (record.get("policy"), record.get("statement"))


def test_a_denial_is_explained_by_the_condition_that_failed(stack, member):
    resource = "arn:mlflow:us-east-1:123456789012:experiment/42"
    out = simulate(stack, member, "mlflow:GetExperiment", resource, "other-team/x")
    assert out["decision"] == "ImplicitDeny" and out["policy"] is None
    (near,) = [s for s in out["statements"] if s["statement"] == "TeamExperiments"]
    assert near["misses"] == [{
        "miss": "condition",
        "condition": 'StringLike mlflow:ExperimentName ["sim-team/*"]',
        "request_values": ["other-team/x"],
    }]
    assert ["aws:username", [member.name]] in out["context"]
    # The same request for a team experiment: allowed by that statement, which now applies.
    out = simulate(stack, member, "mlflow:GetExperiment", resource, "sim-team/x")
    assert (out["decision"], out["statement"]) == ("Allow", "TeamExperiments")
    # An explicit deny wins, and says so.
    out = simulate(stack, member, "mlflow:DeleteExperiment", resource, "sim-team/x")
    assert (out["decision"], out["statement"]) == ("ExplicitDeny", "NoDeletes")
    # The text form names the failed condition and the values compared.
    text = stack.mlgate("policy", "simulate", "--user", member.name, "--action", "mlflow:GetExperiment",
                        "--resource", resource, "--context", "mlflow:ExperimentName=other-team/x").stdout
    assert "decision: ImplicitDeny" in text
    assert 'StringLike mlflow:ExperimentName ["sim-team/*"] does not hold for [other-team/x]' in text
    # An unknown user is a clear error.
    r = stack.mlgate("policy", "simulate", "--user", "nobody-here", "--action", "mlflow:GetExperiment",
                     "--resource", resource, check=False)
    assert r.returncode != 0 and "nobody-here" in r.stderr


def test_audit_explain_decides_a_recorded_request_again(stack, member, admin, audit, tmp_path):
    tag = uuid.uuid4().hex[:6]
    name = f"other-team/explain-{tag}"
    with acting_as(admin) as client:
        theirs = client.create_experiment(name)
    mark = audit.mark()
    with acting_as(member) as client:
        denied(lambda: client.get_experiment(theirs))
    (record,) = [r for r in audit.wait_for(mark, 1) if r.get("principal", "").endswith(f"user/{member.name}")]

    def explain() -> dict:
        out = stack.mlgate("audit", "explain", record["request_id"], "--context", f"mlflow:ExperimentName={name}",
                           "--json", *[a for log in stack.audit_logs for a in ("--audit-log", str(log))])
        return json.loads(out.stdout)

    first = explain()
    assert first["then"] == {"decision": "ImplicitDeny", "policy": None, "statement": None}
    assert (first["now"]["decision"], first["changed"]) == ("ImplicitDeny", False)
    assert any(s["statement"] == "TeamExperiments" and s["misses"] for s in first["now"]["statements"])
    # A policy attached since: the same request is now allowed, and explain says by what.
    grant = tmp_path / "grant.json"
    grant.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "ReadTheirs", "Effect": "Allow", "Action": "mlflow:GetExperiment",
        "Resource": f"arn:mlflow:*:*:experiment/{theirs}"}]}))
    stack.mlgate("policy", "put", f"sim-grant-{tag}", "-f", str(grant))
    stack.mlgate("policy", "attach", f"sim-grant-{tag}", "--user", member.name)
    second = explain()
    assert (second["now"]["decision"], second["now"]["policy"], second["now"]["statement"]) == (
        "Allow", f"sim-grant-{tag}", "ReadTheirs")
    assert second["changed"] is True
    # A request id that is in no record: a clear error.
    r = stack.mlgate("audit", "explain", "no-such-request", "--audit-log", str(stack.audit_logs[0]), check=False)
    assert r.returncode != 0 and "no audit record of request no-such-request" in r.stderr


def test_an_ad_hoc_principal_of_groups_and_policy_files(stack, tmp_path):
    # No user needed: what a policy document would allow, before it is put or attached.
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps(TEAM_POLICY))
    resource = "arn:mlflow:us-east-1:123456789012:experiment/42"

    def ad_hoc(*args: str, name: str) -> dict:
        out = stack.mlgate("policy", "simulate", *args, "--action", "mlflow:GetExperiment", "--resource",
                           resource, "--context", f"mlflow:ExperimentName={name}", "--json")
        return json.loads(out.stdout)

    out = ad_hoc("--policy", str(draft), name="sim-team/x")
    assert (out["decision"], out["policy"], out["statement"]) == ("Allow", str(draft), "TeamExperiments")
    assert ad_hoc("--policy", str(draft), name="other/x")["decision"] == "ImplicitDeny"
    # A member of the demo's readers group (deploy/demo.toml) reads, and may not delete.
    out = ad_hoc("--group", "readers", name="any/x")
    assert (out["decision"], out["policy"]) == ("Allow", "readers"), out
    assert ["aws:username", ["simulated"]] in out["context"]
    # A group with no policy gives nothing; a user and an ad-hoc principal at once is refused.
    assert ad_hoc("--group", "no-such-group", name="sim-team/x")["decision"] == "ImplicitDeny"
    r = stack.mlgate("policy", "simulate", "--user", "someone", "--policy", str(draft), "--action",
                     "mlflow:GetExperiment", "--resource", resource, check=False)
    assert r.returncode != 0 and "cannot be used with" in r.stderr


def simulate_http(stack, who: Identity, method: str, path: str, body=None, upstream=True) -> dict:
    argv = ["policy", "simulate", "--user", who.name, "--method", method, "--path", path, "--json"]
    if body is not None:
        argv += ["--body", json.dumps(body)]
    if upstream:
        argv += ["--upstream", stack.mlflow_url]
    return json.loads(stack.mlgate(*argv).stdout)


def test_the_http_form_decides_real_requests_as_the_server_did(stack, member, admin, audit):
    """A corpus of requests the real server decided (read back from its audit log) simulated as
    HTTP requests: the simulator runs the server's stages, resolving ids against MLflow
    (`--upstream`), and gives the same decision, statement, and resources."""
    tag = uuid.uuid4().hex[:6]
    with acting_as(admin) as client:
        ours = client.create_experiment(f"sim-team/{tag}")
        theirs = client.create_experiment(f"other-team/{tag}")
        their_run = client.create_run(theirs).info.run_id
        our_run = client.create_run(ours).info.run_id
    corpus = [
        ("GET", f"/api/2.0/mlflow/experiments/get?experiment_id={ours}", None),
        ("GET", f"/api/2.0/mlflow/experiments/get?experiment_id={theirs}", None),
        ("POST", "/api/2.0/mlflow/experiments/delete", {"experiment_id": ours}),
        # Run ids: their experiment is only known by asking MLflow.
        ("GET", f"/api/2.0/mlflow/runs/get?run_id={our_run}", None),
        ("POST", "/api/2.0/mlflow/runs/log-metric",
         {"run_id": their_run, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}),
    ]
    import requests
    server = {"allow": "Allow", "explicit_deny": "ExplicitDeny", "implicit_deny": "ImplicitDeny"}
    for method, path, body in corpus:
        mark = audit.mark()
        resp = requests.request(method, stack.url + path, json=body, auth=member.requests_auth(),
                                timeout=30)
        (record,) = [r for r in audit.wait_for(mark, 1) if r["path"] == path.split("?")[0]]
        simulated = simulate_http(stack, member, method, path, body)
        assert simulated["decision"] == server[record["decision"]], (path, record, simulated)
        last = simulated["decisions"][-1]
        assert (last["policy"], last["statement"]) == (record.get("policy"), record.get("statement"))
        arns = {r for r in record["resources"] if r.startswith("arn:mlflow:")}
        assert arns <= {d["resource"] for d in simulated["decisions"]}, (arns, simulated)
        if resp.status_code != 200:
            assert simulated["refusal"]["status"] == resp.status_code
            assert simulated["refusal"]["error_code"] == resp.json()["error_code"]


def test_the_http_form_refuses_as_the_server_would(stack, member):
    unknown = simulate_http(stack, member, "GET", "/api/2.0/mlflow/no-such-route")
    assert unknown["decision"] == "Refused" and unknown["operation"] is None
    assert unknown["refusal"]["status"] == 404 and unknown["decisions"] == []
    # A run's experiment needs MLflow: without --upstream the simulator says so.
    blind = simulate_http(stack, member, "GET", f"/api/2.0/mlflow/runs/get?run_id={uuid.uuid4().hex}",
                          upstream=False)
    assert blind["decision"] == "Refused" and "--upstream" in blind["refusal"]["message"]
    # Text: each decision explained, then the result.
    out = stack.mlgate("policy", "simulate", "--user", member.name, "--method", "POST",
                       "--path", "/api/2.0/mlflow/experiments/delete",
                       "--body", json.dumps({"experiment_id": "0"}),
                       "--upstream", stack.mlflow_url).stdout
    assert "DeleteExperiment" in out and "--- result: ExplicitDeny" in out
    assert "answered 403 PERMISSION_DENIED" in out


def test_the_admin_endpoint_simulates_for_admins_only(observed, member, admin, reader):
    """`POST /simulate` on the admin listener answers the CLI's JSON for a caller allowed
    mlflow:SimulatePolicy (the admins), refuses the others in MLflow's error shape, and audits
    each call."""
    import requests
    gateway, url = observed
    asked = {"user": member.name, "method": "POST", "path": "/api/2.0/mlflow/experiments/delete",
             "body": json.dumps({"experiment_id": "0"})}
    nobody = requests.post(f"{url}/simulate", json=asked, timeout=30)
    assert nobody.status_code == 401 and nobody.json()["error_code"] == "UNAUTHENTICATED"
    refused = requests.post(f"{url}/simulate", json=asked, auth=reader.requests_auth(), timeout=30)
    assert refused.status_code == 403 and refused.json()["error_code"] == "PERMISSION_DENIED"
    answered = requests.post(f"{url}/simulate", json=asked, auth=admin.requests_auth(), timeout=60)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["decision"] == "ExplicitDeny" and body["operation"] == "DeleteExperiment"
    assert body["decisions"][-1]["statement"] == "NoDeletes"
    # The action form, for an ad-hoc principal with a draft policy.
    draft = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Draft", "Effect": "Allow", "Action": "mlflow:GetExperiment", "Resource": "*"}]}
    adhoc = requests.post(f"{url}/simulate", auth=admin.requests_auth(), timeout=30, json={
        "policies": [{"name": "draft", "document": draft}],
        "action": "mlflow:GetExperiment",
        "resource": "arn:mlflow:us-east-1:111111111111:experiment/7"})
    assert adhoc.status_code == 200, adhoc.text
    assert (adhoc.json()["decision"], adhoc.json()["statement"]) == ("Allow", "Draft")
    bad = requests.post(f"{url}/simulate", auth=admin.requests_auth(), json={"bogus": 1}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    # Audited like a request, in the gateway's log.
    import time
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in gateway.audit_log.read_text().splitlines()
                 if line.strip()]
        calls = [r for r in lines if r.get("path") == "/simulate"]
        if len(calls) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    decisions = [r["decision"] for r in calls]
    assert decisions[:3] == ["unauthenticated", "implicit_deny", "allow"], calls
    assert "mlflow:SimulatePolicy" in calls[2]["actions"]
