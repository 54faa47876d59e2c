"""OpenID Connect against a real provider: node-oidc-provider (tests/idp/server.mjs) on loopback,
the real MLflow server behind mlgate, the real MLflow Python client with
`MLFLOW_TRACKING_TOKEN=<provider-issued JWT>`, and headless Chromium signing in through the
provider (tests/browser/oidc.test.mjs).

The module restarts the session's mlgate with `MLGATE_OIDC_CONFIG` pointing at a configuration
for the local provider, and restarts it without OIDC at the end. Needs Node and
`scripts/lib/browser-deps.sh` (npm ci in tests/idp and tests/browser, Debian's chromium), which
scripts/test runs first; the tests fail with that hint when they are missing, never skip.

Mapping (the provider's `groups` claim → mlgate groups of deploy/demo.toml):
  alice: ml-writers → admins;  bob: ml-readers → readers;  carol: marketing → nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from botocore.exceptions import ClientError
from sigv4_support import MLFLOW_ACCOUNT, AwsKey, signing_as, sts_client
from support import Identity, acting_as, documented_policy, mlflow, mlgate_stack, run_browser_test

ROOT = Path(__file__).resolve().parents[2]
IDP_DIR = ROOT / "tests" / "idp"
CLI_REDIRECT = "http://127.0.0.1/cli-callback"
PROVIDER = "local"
CLIENT_SECRET = "mlgate-test-secret-" + secrets.token_hex(8)


def same_endpoint(url: str, endpoint: str) -> bool:
    """Whether `url` is at exactly `endpoint` (scheme, host, port and path; the query aside),
    never a string-prefix match: with free ports, one server's URL can be a prefix of another's."""
    u, e = urlsplit(url), urlsplit(endpoint)
    return (u.scheme, u.hostname, u.port, u.path) == (e.scheme, e.hostname, e.port, e.path)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def jwt_parts(token: str):
    h, p, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(h))),
        json.loads(base64.urlsafe_b64decode(pad(p))),
        s,
    )


class Idp:
    def __init__(self, port: int, mlgate_url: str, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        env = {
            **os.environ,
            "IDP_PORT": str(port),
            "MLGATE_URL": mlgate_url,
            "IDP_PROVIDER_NAME": PROVIDER,
            "IDP_CLIENT_SECRET": CLIENT_SECRET,
        }
        self.child = mlgate_stack.Child("idp", ["node", str(IDP_DIR / "server.mjs")], log, env=env, cwd=IDP_DIR)
        mlgate_stack.wait_http(f"{self.url}/.well-known/openid-configuration", 30, self.child)

    def stop(self) -> None:
        self.child.stop()

    def tokens(self, user: str, password: str | None = None) -> dict:
        """The authorization code flow with PKCE for the public client `mlflow-cli`, driven over
        HTTP like a browser: returns the token response (id_token, access_token)."""
        s = requests.Session()
        verifier = b64url(secrets.token_bytes(32))
        params = {
            "response_type": "code",
            "client_id": "mlflow-cli",
            "redirect_uri": CLI_REDIRECT,
            "scope": "openid profile email groups",
            "state": secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
        r = s.get(f"{self.url}/auth", params=params, timeout=10)
        m = re.search(r'action="([^"]+/login)"', r.text)
        assert m, f"no login form at the provider:\n{r.text[:1000]}"
        r = s.post(
            urljoin(r.url, m.group(1)),
            data={"login": user, "password": password or f"{user}-password"},
            allow_redirects=False,
            timeout=10,
        )
        for _ in range(10):
            assert r.status_code in (302, 303), f"{r.status_code}: {r.text[:500]}"
            loc = urljoin(self.url, r.headers["location"])
            if same_endpoint(loc, CLI_REDIRECT):
                break
            r = s.get(loc, allow_redirects=False, timeout=10)
        query = parse_qs(urlsplit(loc).query)
        assert "code" in query, loc
        t = requests.post(
            f"{self.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": CLI_REDIRECT,
                "client_id": "mlflow-cli",
                "code_verifier": verifier,
            },
            timeout=10,
        )
        assert t.status_code == 200, t.text
        return t.json()

    def jwks(self) -> dict:
        return requests.get(f"{self.url}/jwks", timeout=10).json()


def oidc_config(idp: Idp) -> str:
    return f"""
builtin_login = true

[[issuer]]
name = "{PROVIDER}"
issuer = "{idp.url}"
audiences = ["mlgate", "mlflow-cli"]
token_types = ["id"]
username_claim = "preferred_username"
groups_claim = "groups"
leeway_seconds = 30

[issuer.group_map]
ml-writers = "admins"
ml-readers = "readers"

[issuer.login]
client_id = "mlgate"
client_secret_env = "MLGATE_TEST_IDP_SECRET"
display_name = "Test IdP"
scopes = ["openid", "profile", "email", "groups"]
"""


@pytest.fixture(scope="module")
def idp(stack, tmp_path_factory):
    if shutil.which("node") is None or not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the local OpenID provider needs Node and `bash scripts/lib/browser-deps.sh`")
    tmp = tmp_path_factory.mktemp("oidc")
    provider = Idp(mlgate_stack.free_port(), stack.url, stack.data_dir / "logs" / "idp.log")
    cfg = tmp / "oidc.toml"
    cfg.write_text(oidc_config(provider))
    saved = {k: os.environ.get(k) for k in ("MLGATE_OIDC_CONFIG", "MLGATE_TEST_IDP_SECRET")}
    os.environ["MLGATE_OIDC_CONFIG"] = str(cfg)
    os.environ["MLGATE_TEST_IDP_SECRET"] = CLIENT_SECRET
    stack.stop_gateway()
    try:
        stack.start_gateway()
        yield provider
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stack.stop_gateway()
        stack.start_gateway()
        provider.stop()


def _bearer(stack, token: str, path: str = "/api/2.0/mlflow/experiments/search?max_results=5"):
    return requests.get(stack.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_mapped_writer_logs_a_run_with_a_provider_token(stack, idp, audit):
    token = idp.tokens("alice")["id_token"]
    header, claims, _ = jwt_parts(token)
    assert claims["groups"] == ["ml-writers"] and header["alg"] in ("RS256", "ES256")
    mark = audit.mark()
    name = f"oidc-writer-{uuid.uuid4().hex[:8]}"
    with acting_as(Identity(token=token)):
        exp_id = mlflow.create_experiment(name)
        with mlflow.start_run(experiment_id=exp_id) as run:
            mlflow.log_param("idp", "oidc-provider")
            mlflow.log_metric("auc", 0.91)
        got = mlflow.get_run(run.info.run_id)
    assert got.data.params["idp"] == "oidc-provider"
    # Attributed to the mapped name, not to whatever the client claimed.
    assert got.info.user_id == "alice"
    assert got.data.tags.get("mlflow.user") == "alice"
    records = audit.records_since(mark)
    mine = [r for r in records if (r.get("principal") or "").endswith(":user/local/alice")]
    assert mine, records[-5:]
    assert all(r["auth_method"] == "jwt" for r in mine)
    assert any(r["decision"] == "allow" and "mlflow:CreateRun" in r["actions"] for r in mine)


def test_mapped_reader_reads_and_is_refused_writes(stack, idp):
    token = idp.tokens("bob")["id_token"]
    with acting_as(Identity(token=token)) as client:
        assert isinstance(mlflow.search_experiments(max_results=5), list)
        with pytest.raises(mlflow.exceptions.MlflowException) as e:
            mlflow.create_experiment(f"oidc-reader-{uuid.uuid4().hex[:8]}")
        assert e.value.error_code == "PERMISSION_DENIED"
        assert "user/local/bob" in str(e.value)
        assert client.search_runs(experiment_ids=["0"], max_results=1) is not None


def test_user_without_mapped_group_has_no_access(stack, idp):
    token = idp.tokens("carol")["id_token"]
    r = _bearer(stack, token)
    assert r.status_code == 403, r.text
    assert r.json()["error_code"] == "PERMISSION_DENIED"


def test_token_attacks_against_the_real_provider(stack, idp, audit):
    tokens = idp.tokens("alice")
    id_token, access_token = tokens["id_token"], tokens["access_token"]
    header, claims, sig = jwt_parts(id_token)

    # Public key of the provider, used as an HMAC secret (RS256 → HS256 confusion).
    jwk = next(k for k in idp.jwks()["keys"] if k.get("kid") == header["kid"])
    signing_input = f"{b64url_json({**header, 'alg': 'HS256'})}.{b64url_json(claims)}"
    hs256 = signing_input + "." + b64url(
        hmac.new(json.dumps(jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
    )
    tampered = f"{id_token.split('.')[0]}.{b64url_json({**claims, 'groups': ['ml-writers'], 'preferred_username': 'root'})}.{sig}"
    cases = [
        ("alg none", f"{b64url_json({'alg': 'none'})}.{b64url_json(claims)}.", 'alg "none"'),
        ("HS256 with public key", hs256, "HMAC-signed tokens"),
        ("tampered claims", tampered, "signature does not verify"),
        ("unknown kid", f"{b64url_json({**header, 'kid': 'not-published'})}.{id_token.split('.', 1)[1]}", "no key not-published"),
        ("wrong issuer", f"{id_token.split('.')[0]}.{b64url_json({**claims, 'iss': 'https://evil.example'})}.{sig}", "not a configured OIDC issuer"),
        ("garbage", "abc.def.ghi", "not base64url-encoded JSON"),
        ("oversized", "a" * 20000 + ".b.c", "longer than 16384 bytes"),
    ]
    # The provider's access token (a JWT with typ at+jwt) where only ID tokens are accepted.
    if access_token.count(".") == 2:
        cases.append(("access token", access_token, "an access token is not accepted"))
    for what, token, why in cases:
        mark = audit.mark()
        r = _bearer(stack, token)
        assert r.status_code == 401, f"{what}: {r.status_code} {r.text}"
        body = r.json()
        assert body["error_code"] == "UNAUTHENTICATED", what
        assert why in body["message"], f"{what}: {body['message']}"
        time.sleep(0.05)
        recs = [x for x in audit.records_since(mark) if x.get("status") == 401]
        assert recs and why in (recs[-1].get("reason") or ""), f"{what}: {recs}"
        assert recs[-1]["auth_method"] == "jwt"
        assert token[:40] not in json.dumps(recs[-1]) or what == "garbage"

    # And the genuine token still works.
    assert _bearer(stack, id_token).status_code == 200


def test_trust_policy_example_of_the_docs(stack, idp, tmp_path):
    """docs/oidc.md's trust policy, with this provider, audience and subject filled in: alice's
    token assumes the role with boto3's AssumeRoleWithWebIdentity, bob's (another subject) does
    not, and the session acts with the role's policies."""
    alice = idp.tokens("alice")["id_token"]
    _, claims, _ = jwt_parts(alice)
    trust = (
        documented_policy("docs/oidc.md#sts:AssumeRoleWithWebIdentity")
        .replace("oidc.example.com/id/ABC", idp.url.removeprefix("http://"))
        .replace('"mlgate"', json.dumps(claims["aud"]))
        .replace("system:serviceaccount:ml:trainer", claims["sub"])
    )
    role = f"trainer-{uuid.uuid4().hex[:6]}"
    (tmp_path / "trust.json").write_text(trust)
    stack.mlgate("role", "create", role, "--trust-policy", str(tmp_path / "trust.json"))
    stack.mlgate("role", "attach", role, "readers")
    arn = f"arn:aws:iam::{MLFLOW_ACCOUNT}:role/{role}"
    sts = sts_client(stack)
    c = sts.assume_role_with_web_identity(RoleArn=arn, RoleSessionName="job-7", WebIdentityToken=alice)["Credentials"]
    with signing_as(AwsKey(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])) as client:
        assert isinstance(client.search_experiments(max_results=5), list)
        with pytest.raises(mlflow.exceptions.MlflowException) as e:
            client.create_experiment(f"oidc-role-{uuid.uuid4().hex[:8]}")
        assert e.value.error_code == "PERMISSION_DENIED"
    bob = idp.tokens("bob")["id_token"]
    with pytest.raises(ClientError) as refused:
        sts.assume_role_with_web_identity(RoleArn=arn, RoleSessionName="job-8", WebIdentityToken=bob)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_browser_sso_in_headless_chromium(stack, idp, admin, audit):
    # The UI lists experiments most recently updated first, a page at a time: the suite creates
    # many, so the browser looks for one made just now rather than for "Default".
    experiment = f"browser-sso-{uuid.uuid4().hex[:8]}"
    with acting_as(admin) as client:
        client.create_experiment(experiment)
    mark = audit.mark()
    r = run_browser_test("oidc.test.mjs", {
        "MLGATE_URL": stack.url,
        "IDP_URL": idp.url,
        "OIDC_PROVIDER": PROVIDER,
        "EXPERIMENT_NAME": experiment,
    })  # fmt: skip
    if r.returncode != 0:
        # What mlgate saw of the sign-ins (its pages and the UI's entry), and both servers' logs.
        audit.mark()  # the audit writer is asynchronous: let the last records land
        seen = "\n".join(
            f"{x.get('time')} {x.get('method')} {x.get('path')} -> {x.get('status')}"
            f" {x.get('principal') or '-'} {x.get('reason') or ''}"
            for x in audit.records_since(mark)
            if (x.get("path") or "").startswith("/_mlgate/") or x.get("path") == "/"
        )
        pytest.fail(
            f"browser tests failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}\n"
            f"--- mlgate's audit records of its pages:\n{seen}\n"
            f"--- mlgate log:\n{mlgate_stack.tail(stack.mlgate_log, 30)}\n"
            f"--- provider log:\n{mlgate_stack.tail(idp.log, 30)}"
        )
