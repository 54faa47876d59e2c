"""The STS-compatible endpoint (issue 3) with boto3's own STS client (only endpoint_url added):
the article's multi-account snippet end to end, GetCallerIdentity, both sides of a cross-account
AssumeRole, durations, session policies, expiry of temporary credentials, session tags (which need
sts:TagSession), attribution of role sessions to their ARN, and trust policies seeing the same
connection keys as the API."""

from __future__ import annotations

import json
import os
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from support import MlflowClient, assert_mlflow_error, denied, documented_policy, mlflow
from sigv4_support import (
    DS_ACCOUNT,
    MLFLOW_ACCOUNT,
    AwsKey,
    aws_env,
    botocore_request,
    create_key,
    signing_as,
    sts_client,
)

ADMINS_ROLE = f"arn:aws:iam::{MLFLOW_ACCOUNT}:role/mlflow-admins"
READERS_ROLE = f"arn:aws:iam::{MLFLOW_ACCOUNT}:role/mlflow-readers"


@pytest.fixture(scope="module")
def scientist_key(stack):
    """The data-science account's user of deploy/demo.toml (may assume roles/mlflow-*)."""
    return create_key(stack, user="data-scientist", account="data-science")


@pytest.fixture(scope="module")
def intern_key(stack):
    """A data-science user without sts:AssumeRole in its policies."""
    return create_key(stack, user="ds-intern", account="data-science")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def test_the_articles_multi_account_snippet(stack, scientist_key, audit):
    experiment_name = unique("multi-account")
    tracking_uri = stack.url
    with aws_env(scientist_key.env()):
        # ---- the article's code, with only endpoint_url added ----
        import boto3  # Session using the (data-science account) credentials of the environment

        session = boto3.Session()
        sts = session.client("sts", endpoint_url=f"{tracking_uri}/_mlgate/sts")
        response = sts.assume_role(
            RoleArn=ADMINS_ROLE, RoleSessionName="AssumedMLflowAdmin"
        )
        credentials = response["Credentials"]
        os.environ["AWS_ACCESS_KEY_ID"] = credentials["AccessKeyId"]
        os.environ["AWS_SECRET_ACCESS_KEY"] = credentials["SecretAccessKey"]
        os.environ["AWS_SESSION_TOKEN"] = credentials["SessionToken"]
        os.environ["MLFLOW_TRACKING_AWS_SIGV4"] = "true"
        mlflow.set_tracking_uri(tracking_uri)
        experiment = mlflow.set_experiment(experiment_name)
        mark = audit.mark()
        with mlflow.start_run() as run:
            mlflow.log_param("alpha", "0.5")
            mlflow.log_metric("rmse", 0.25)
        # ----
        assert credentials["AccessKeyId"].startswith("ASIA")
        assert response["AssumedRoleUser"]["Arn"] == (
            f"arn:aws:sts::{MLFLOW_ACCOUNT}:assumed-role/mlflow-admins/AssumedMLflowAdmin"
        )
        got = MlflowClient().get_run(run.info.run_id)
    session_arn = response["AssumedRoleUser"]["Arn"]
    assert got.info.experiment_id == experiment.experiment_id
    # Attributed to the session, not to the name its caller chose for it.
    assert got.info.user_id == session_arn
    assert got.data.tags["mlflow.user"] == session_arn
    assert got.data.params == {"alpha": "0.5"} and got.data.metrics == {"rmse": 0.25}
    records = audit.records_since(mark)
    assert records and all(
        r["principal"] == response["AssumedRoleUser"]["Arn"] and r["auth_method"] == "sigv4"
        for r in records
    )


def test_get_caller_identity(stack, scientist_key):
    me = sts_client(stack, scientist_key).get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{DS_ACCOUNT}:user/data-scientist"
    assert me["Account"] == DS_ACCOUNT
    r = sts_client(stack, scientist_key).assume_role(RoleArn=READERS_ROLE, RoleSessionName="whoami")
    c = r["Credentials"]
    temp = AwsKey(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    me = sts_client(stack, temp).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{MLFLOW_ACCOUNT}:assumed-role/mlflow-readers/whoami"
    assert me["Account"] == MLFLOW_ACCOUNT


def test_an_assumed_reader_role_reads_but_cannot_write(stack, scientist_key, world):
    r = sts_client(stack, scientist_key).assume_role(RoleArn=READERS_ROLE, RoleSessionName="reader-job")
    c = r["Credentials"]
    with signing_as(AwsKey(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])) as client:
        assert client.get_experiment(world.experiment_id).name == world.experiment_name
        denied(lambda: client.create_experiment(unique("assumed-reader")))


def test_a_role_session_is_answered_who_it_is(stack, scientist_key):
    # The UI's users/current for a principal without a `users` row: its name, no id.
    r = sts_client(stack, scientist_key).assume_role(RoleArn=READERS_ROLE, RoleSessionName="ui-who")
    c = r["Credentials"]
    temp = AwsKey(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    resp = botocore_request(temp, "GET", f"{stack.url}/ajax-api/2.0/mlflow/users/current")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "user": {"id": None, "username": r["AssumedRoleUser"]["Arn"], "is_admin": False},
        "is_basic_auth": True,
    }
    # And what the UI greys out by: its roles' permissions (it is in no role), not an error.
    resp = botocore_request(temp, "GET", f"{stack.url}/ajax-api/3.0/mlflow/users/current/permissions")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"is_admin": False, "permissions": []}


def sts_reason(audit, mark) -> str:
    """The audit reason of the one STS request made since `mark`."""
    records = [r for r in audit.wait_for(mark, 1) if r.get("path") == "/_mlgate/sts"]
    assert len(records) == 1, records
    return records[0]["reason"]


def test_denied_by_the_identity_side(stack, intern_key, audit):
    mark = audit.mark()
    with pytest.raises(ClientError) as e:
        sts_client(stack, intern_key).assume_role(RoleArn=ADMINS_ROLE, RoleSessionName="intern")
    assert error_code(e.value) == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # Why goes to the audit record, not to the caller.
    assert "identity polic" not in e.value.response["Error"]["Message"]
    assert "identity polic" in sts_reason(audit, mark)


def test_denied_by_the_trust_side(stack, scientist_key, tmp_path, audit):
    # The scientist's policy allows sts:AssumeRole on roles/mlflow-*, but this role trusts
    # another account only.
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
                       "Action": "sts:AssumeRole"}],
    }))
    name = unique("mlflow-untrusting")
    stack.mlgate("role", "create", name, "--trust-policy", str(trust))
    stack.mlgate("role", "attach", name, "admins")
    refused_arn = f"arn:aws:iam::{MLFLOW_ACCOUNT}:role/{name}"
    mark = audit.mark()
    with pytest.raises(ClientError) as refused:
        sts_client(stack, scientist_key).assume_role(RoleArn=refused_arn, RoleSessionName="nope")
    assert "trust policy" in sts_reason(audit, mark)
    # An unknown role (of the same name length) answers exactly the same way: no enumeration.
    missing_arn = f"arn:aws:iam::{MLFLOW_ACCOUNT}:role/{unique('mlflow-untrusting')}"
    with pytest.raises(ClientError) as missing:
        sts_client(stack, scientist_key).assume_role(RoleArn=missing_arn, RoleSessionName="nope")
    for e in (refused, missing):
        assert error_code(e.value) == "AccessDenied"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Message"].replace(refused_arn, "<role>") == (
        missing.value.response["Error"]["Message"].replace(missing_arn, "<role>")
    )


def test_duration_above_the_roles_maximum(stack, scientist_key):
    sts = sts_client(stack, scientist_key)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=ADMINS_ROLE, RoleSessionName="long", DurationSeconds=7200)
    assert error_code(e.value) == "ValidationError"
    assert "MaxSessionDuration" in e.value.response["Error"]["Message"]
    ok = sts.assume_role(RoleArn=ADMINS_ROLE, RoleSessionName="short", DurationSeconds=900)
    assert ok["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_a_session_policy_only_narrows(stack, scientist_key, world):
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["mlflow:Get*", "mlflow:Search*"], "Resource": "*"},
                      # A session policy cannot widen: this adds nothing the role lacks.
                      {"Effect": "Allow", "Action": "sts:*", "Resource": "*"}],
    })
    r = sts_client(stack, scientist_key).assume_role(
        RoleArn=ADMINS_ROLE, RoleSessionName="narrowed", Policy=policy
    )
    c = r["Credentials"]
    with signing_as(AwsKey(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])) as client:
        assert client.get_experiment(world.experiment_id).name == world.experiment_name
        denied(lambda: client.create_experiment(unique("narrowed")))
    # The simulator takes the same session (`--role-session`): the role's policies narrowed by
    # the session policy, decided the same way, and says which side refused.
    def simulated(action: str) -> dict:
        out = stack.mlgate("policy", "simulate", "--role-session", c["AccessKeyId"], "--action",
                           action, "--resource", f"arn:mlflow:us-east-1:{MLFLOW_ACCOUNT}:server",
                           "--json")
        return json.loads(out.stdout)
    allowed, refused = simulated("mlflow:GetExperiment"), simulated("mlflow:CreateExperiment")
    assert allowed["principal"].endswith(":assumed-role/mlflow-admins/narrowed")
    assert allowed["decision"] == "Allow" and refused["decision"] == "ImplicitDeny"
    assert any(s["policy"] == "session-policy" and s["misses"] == []
               for s in allowed["statements"]), allowed["statements"]


def test_service_names_are_per_endpoint(stack, scientist_key, world):
    # An STS call signed for execute-api is refused (AWS XML error) ...
    r = botocore_request(scientist_key, "POST", f"{stack.url}/_mlgate/sts",
                         data=b"Action=GetCallerIdentity&Version=2011-06-15",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text and "<Type>Sender</Type>" in r.text


def test_expired_temporary_credentials(stack, scientist_key, world):
    r = sts_client(stack, scientist_key).assume_role(RoleArn=READERS_ROLE, RoleSessionName="expiring")
    c = r["Credentials"]
    temp = AwsKey(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    url = f"{stack.url}/api/2.0/mlflow/experiments/get?experiment_id={world.experiment_id}"
    assert botocore_request(temp, "GET", url).status_code == 200
    # Jump to the end of the session (the shortest session is 15 minutes): expire it in the store.
    stack.store_execute("UPDATE sts_sessions SET expires_at = ? WHERE access_key_id = ?",
                        (int(time.time()) - 1, temp.access_key_id))
    time.sleep(2.5)  # behind mlgate's back: no change is recorded, the key cache's TTL is 2 s
    body = assert_mlflow_error(botocore_request(temp, "GET", url), 403, "PERMISSION_DENIED")
    assert "temporary credentials in the request expired" in body["message"], body
    with pytest.raises(ClientError) as e:
        sts_client(stack, temp).get_caller_identity()
    assert error_code(e.value) == "ExpiredToken"


def make_role(stack, tmp_path, statements: list, policy: str = "readers") -> str:
    """A role named mlflow-… (the scientist may assume those) with these trust statements."""
    name = unique("mlflow-role")
    trust = tmp_path / f"{name}.json"
    trust.write_text(json.dumps({"Version": "2012-10-17", "Statement": statements}))
    stack.mlgate("role", "create", name, "--trust-policy", str(trust))
    stack.mlgate("role", "attach", name, policy)
    return f"arn:aws:iam::{MLFLOW_ACCOUNT}:role/{name}"


DS_ROOT = {"AWS": f"arn:aws:iam::{DS_ACCOUNT}:root"}


def whoami(stack, credentials) -> dict:
    temp = AwsKey(credentials["AccessKeyId"], credentials["SecretAccessKey"],
                  credentials["SessionToken"])
    who = botocore_request(temp, "GET", f"{stack.url}/_mlgate/whoami")
    assert who.status_code == 200, who.text
    return who.json()


def test_session_tags_need_tag_session_in_the_trust_policy(stack, scientist_key):
    # The demo roles' trust policies allow sts:AssumeRole only: no tags.
    sts = sts_client(stack, scientist_key)
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=READERS_ROLE, RoleSessionName="tagged",
                        Tags=[{"Key": "team", "Value": "forecasting"}])
    assert error_code(e.value) == "AccessDenied"
    assert "sts:TagSession" in e.value.response["Error"]["Message"]
    # Without tags the same role is assumed.
    assert sts.assume_role(RoleArn=READERS_ROLE, RoleSessionName="untagged")["Credentials"]


def test_session_tags_and_source_identity(stack, scientist_key, tmp_path):
    # docs/sigv4.md: "a trust policy that lets the data-science account tag sessions with its
    # team only".
    trust = json.loads(documented_policy("docs/sigv4.md#sts:AssumeRole"))
    assert all(s["Principal"] == DS_ROOT for s in trust["Statement"])
    role = make_role(stack, tmp_path, trust["Statement"])
    sts = sts_client(stack, scientist_key)
    r = sts.assume_role(
        RoleArn=role,
        RoleSessionName="tagged",
        Tags=[{"Key": "team", "Value": "forecasting"}],
        SourceIdentity="data-scientist",
    )
    assert r["SourceIdentity"] == "data-scientist"
    me = whoami(stack, r["Credentials"])
    assert me["arn"] == f"arn:aws:sts::{MLFLOW_ACCOUNT}:assumed-role/{role.split('/')[-1]}/tagged"
    assert me["tags"] == {"team": "forecasting"}
    assert me["kind"]["type"] == "assumed-role" and me["kind"]["session"] == "tagged"
    # Tags the trust policy's conditions do not allow: another value, another key.
    for tags in ([{"Key": "team", "Value": "fraud"}],
                 [{"Key": "team", "Value": "forecasting"}, {"Key": "clearance", "Value": "all"}]):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=role, RoleSessionName="tagged", Tags=tags)
        assert error_code(e.value) == "AccessDenied", tags
    # `Team` next to `team` would make one multi-valued aws:PrincipalTag/team.
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=role, RoleSessionName="tagged",
                        Tags=[{"Key": "team", "Value": "forecasting"},
                              {"Key": "Team", "Value": "fraud"}])
    assert error_code(e.value) == "ValidationError"


def test_a_session_name_is_not_a_username(stack, scientist_key, tmp_path, admin):
    # "Everyone manages the experiments named after themselves" (README), given to a role: its
    # sessions have no aws:username, so a session named after a user gets nothing of theirs.
    policy = tmp_path / "own-experiments.json"
    name = unique("own-experiments")
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "mlflow:*", "Resource": "*",
        "Condition": {"StringLike": {"mlflow:ExperimentName": "${aws:username}/*"}}}]}))
    stack.mlgate("policy", "put", name, "-f", str(policy))
    role = make_role(stack, tmp_path, [
        {"Effect": "Allow", "Principal": DS_ROOT, "Action": "sts:AssumeRole"}], policy=name)
    r = sts_client(stack, scientist_key).assume_role(RoleArn=role, RoleSessionName=admin.name)
    c = r["Credentials"]
    with signing_as(AwsKey(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])) as client:
        denied(lambda: client.create_experiment(f"{admin.name}/{unique('impersonated')}"))
    me = whoami(stack, c)
    assert me["name"] == r["AssumedRoleUser"]["Arn"]


def test_trust_policies_see_the_connection_keys_the_api_sees(stack, scientist_key, tmp_path):
    # This suite talks plain HTTP: aws:SecureTransport is "false", for the API and for STS.
    plain_only = make_role(stack, tmp_path, [
        {"Effect": "Allow", "Principal": DS_ROOT, "Action": "sts:AssumeRole",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}])
    tls_only = make_role(stack, tmp_path, [
        {"Effect": "Allow", "Principal": DS_ROOT, "Action": "sts:AssumeRole",
         "Condition": {"Bool": {"aws:SecureTransport": "true"}}}])
    sts = sts_client(stack, scientist_key)
    assert sts.assume_role(RoleArn=plain_only, RoleSessionName="plain")["Credentials"]
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=tls_only, RoleSessionName="tls")
    assert error_code(e.value) == "AccessDenied"
