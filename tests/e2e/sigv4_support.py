"""SigV4 helpers for the end-to-end suite (issue 3): access keys from the admin CLI, the MLflow
client with MLFLOW_TRACKING_AWS_SIGV4=true, boto3's STS client against mlgate, and botocore's own
SigV4Auth signer used directly with `requests`."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Dict, Iterator, Optional

import boto3
import botocore.session
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from support import CRED_VARS, MlflowClient

REGION = "us-east-1"
MLFLOW_ACCOUNT = "111111111111"
DS_ACCOUNT = "222222222222"

# Ambient AWS settings that must never leak into (or out of) a test.
AWS_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_DISABLED",
)


@dataclass
class AwsKey:
    access_key_id: str
    secret_access_key: str
    session_token: Optional[str] = None

    def env(self) -> Dict[str, str]:
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    def credentials(self) -> Credentials:
        return Credentials(self.access_key_id, self.secret_access_key, self.session_token)


def create_key(stack, *, user: Optional[str] = None, role: Optional[str] = None,
               account: Optional[str] = None) -> AwsKey:
    """`mlgate access-key create` (credential_process format); the secret is shown once."""
    args = ["access-key", "create", "--format", "credential-process"]
    args += ["--user", user] if user else ["--role", role]
    if account:
        args += ["--account", account]
    out = json.loads(stack.mlgate(*args).stdout)
    assert out["Version"] == 1
    return AwsKey(out["AccessKeyId"], out["SecretAccessKey"])


@contextlib.contextmanager
def aws_env(env: Dict[str, str]) -> Iterator[None]:
    """Within the block, the process environment has exactly these AWS/MLflow credentials."""
    keys = CRED_VARS + AWS_VARS
    saved = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ.pop(k, None)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def signing_as(key: AwsKey) -> Iterator[MlflowClient]:
    """The MLflow client signs every request with SigV4 using `key` from env vars."""
    with aws_env({"MLFLOW_TRACKING_AWS_SIGV4": "true", **key.env()}):
        yield MlflowClient()


def sts_client(stack, key: Optional[AwsKey] = None):
    """boto3's STS client against mlgate: only endpoint_url is added."""
    kwargs = {}
    if key is not None:
        kwargs = dict(
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            aws_session_token=key.session_token,
        )
    session = boto3.Session(region_name=REGION, **kwargs)
    return session.client("sts", endpoint_url=f"{stack.url}/_mlgate/sts")


def botocore_request(key: AwsKey, method: str, url: str, *, data: bytes = b"",
                     headers: Optional[Dict[str, str]] = None, service: str = "execute-api",
                     region: str = REGION, declare_hash: bool = True,
                     mutate=None) -> requests.Response:
    """Signs with botocore's SigV4Auth (what the sagemaker-mlflow plugin uses) and sends the
    request with `requests`. `mutate(prepared)` may tamper with the request after signing."""
    hdrs = dict(headers or {})
    req = AWSRequest(method=method, url=url, data=data, headers=hdrs)
    if declare_hash:
        import hashlib

        req.headers["X-Amz-Content-SHA256"] = hashlib.sha256(data).hexdigest()
    SigV4Auth(key.credentials(), service, region).add_auth(req)
    prepared = requests.Request(method, url, data=data, headers=dict(req.headers.items())).prepare()
    if mutate is not None:
        mutate(prepared)
    with requests.Session() as s:
        return s.send(prepared, timeout=60)


def botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()
