"""Regenerates tests/data/real_clients.json: requests signed by real SigV4 clients, as sent.

Run with the project venv (it has mlflow, requests-auth-aws-sigv4, boto3/botocore):

    .venv/bin/python crates/sigv4/tests/gen_real_client_vectors.py

A capture server on 127.0.0.1 records each request exactly as it arrives (method, target,
headers, body) and answers `{}`; the clients' later failures to parse that answer do not matter.
Clients:

* the MLflow client with MLFLOW_TRACKING_AWS_SIGV4=true, which signs through
  requests-auth-aws-sigv4 (service execute-api);
* botocore's SigV4Auth wrapped the way the sagemaker-mlflow plugin wraps it (service
  sagemaker-mlflow: `+` rewritten as `%20` for GET/DELETE, `Connection` not signed);
* botocore's SigV4Auth used directly from requests, without that rewrite.
"""

import binascii
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

AKID = "AKIAMLGATEVECTORS01"
SECRET = "mlgate/real+client/vectors/secret0000000"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/session+token=="
REGION = "eu-west-1"

captured = []
# Enough of a run for log_artifact to find where to upload.
RUN = json.dumps({"run": {"info": {
    "run_id": "0123456789abcdef", "experiment_id": "1", "status": "RUNNING",
    "lifecycle_stage": "active", "artifact_uri": "mlflow-artifacts:/1/0123456789abcdef/artifacts",
}, "data": {}}}).encode()


def serve(sock):
    while True:
        conn, _ = sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = []
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.append([name, value.strip(" \t")])
            length = int(next((v for n, v in headers if n.lower() == "content-length"), "0"))
            while len(body) < length:
                body += conn.recv(65536)
            method, target, _ = lines[0].split(" ")
            captured.append({"method": method, "target": target, "headers": headers, "body": body})
            answer = RUN if target.startswith("/api/2.0/mlflow/runs/get") else b"{}"
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
                + answer
            )


def start_server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    threading.Thread(target=serve, args=(sock,), daemon=True).start()
    return sock.getsockname()[1]


vectors = []


def record(name, client, service, expect, description, call, token=None):
    """Runs `call`, which must send exactly one request, and stores it as a vector."""
    before = len(captured)
    try:
        call()
    except Exception as e:  # the canned `{}` answer usually fails to parse
        if len(captured) == before:
            raise RuntimeError(f"{name}: the client sent nothing: {e!r}") from e
    if len(captured) != before + 1:
        raise RuntimeError(f"{name}: expected one request, got {len(captured) - before}")
    req = captured[-1]
    path, _, query = req["target"].partition("?")
    vectors.append(
        {
            "name": name,
            "client": client,
            "description": description,
            "expect": expect,
            "access_key_id": AKID,
            "secret": SECRET,
            "session_token": token,
            "region": REGION,
            "service": service,
            "now_unix": int(time.time()),
            "method": req["method"],
            "path": path,
            "query": query,
            "headers": req["headers"],
            "body_hex": binascii.hexlify(req["body"]).decode(),
        }
    )


def main():
    port = start_server()
    base = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": AKID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": REGION,
            "MLFLOW_TRACKING_AWS_SIGV4": "true",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        }
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)

    import mlflow
    import requests
    import requests_auth_aws_sigv4
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=base, registry_uri=base)
    ra = f"requests-auth-aws-sigv4 {requests_auth_aws_sigv4.__version__} via mlflow {mlflow.__version__}"

    record("mlflow-get-experiment", ra, "execute-api", "aws",
           "GET with a plain query: both canonical forms agree",
           lambda: client.get_experiment("1"))
    record("mlflow-log-metric", ra, "execute-api", "aws",
           "POST with a JSON body declared in x-amz-content-sha256",
           lambda: client.log_metric("0123456789abcdef", "loss", 0.5, timestamp=1, step=2))
    record("mlflow-search-model-versions-filter", ra, "execute-api", "raw-uri",
           "GET whose filter has spaces: requests writes '+', the client signs '+' as sent",
           lambda: client.search_model_versions("name = 'my model'", max_results=5))
    record("mlflow-download-artifact-space", ra, "execute-api", "raw-uri",
           "GET of an artifact whose name has a space: the client signs %20 single-encoded",
           lambda: requests.get(f"{base}/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/my%20file.txt",
                                auth=requests_auth_aws_sigv4.AWSSigV4("execute-api")))
    record("mlflow-search-registered-models-repeated-order-by", ra, "execute-api", "reject",
           "GET with a repeated query name: the client signs only the last value, so it cannot be verified",
           lambda: client.search_registered_models(order_by=["name ASC", "last_updated_timestamp DESC"]))

    os.environ["AWS_SESSION_TOKEN"] = TOKEN
    record("mlflow-get-run-session-token", ra, "execute-api", "aws",
           "temporary credentials: x-amz-security-token is signed",
           lambda: client.get_run("0123456789abcdef"), token=TOKEN)
    os.environ.pop("AWS_SESSION_TOKEN")

    # An artifact upload sends an open file, which requests-auth-aws-sigv4 cannot hash: after
    # the run lookup, nothing more reaches the server.
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("artifact body\n")
    before = len(captured)
    try:
        client.log_artifact("0123456789abcdef", f.name)
        upload_outcome = "no error"
    except Exception as e:
        upload_outcome = f"{type(e).__name__}: {e}"
    sent = [f"{r['method']} {r['target']}" for r in captured[before:]]
    if any(r["method"] == "PUT" for r in captured[before:]):
        raise RuntimeError(f"requests-auth-aws-sigv4 now uploads artifacts ({sent}); update docs/sigv4.md")
    print(f"mlflow log_artifact with SigV4: sent {sent}, then {upload_outcome}", file=sys.stderr)

    creds = Credentials(AKID, SECRET)
    temp_creds = Credentials(AKID, SECRET, TOKEN)

    class SageMakerStyleAuth(requests.auth.AuthBase):
        """What sagemaker-mlflow's AuthBoto does: x-amz-content-sha256 from the body (files
        included), `+` -> `%20` in GET/DELETE URLs, `Connection` left out of the signature."""

        def __init__(self, credentials):
            self.signer = SigV4Auth(credentials, "sagemaker-mlflow", REGION)

        def __call__(self, r):
            import functools
            import hashlib

            body = r.body
            if hasattr(body, "seek"):
                pos = body.tell()
                digest = hashlib.sha256()
                for chunk in iter(functools.partial(body.read, 1 << 20), b""):
                    digest.update(chunk)
                body.seek(pos)
                r.headers["X-Amz-Content-SHA256"] = digest.hexdigest()
            else:
                r.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body or b"").hexdigest()
            connection = r.headers.pop("Connection", None)
            url = r.url.replace("+", "%20") if r.method in ("GET", "DELETE") else r.url
            aws = AWSRequest(method=r.method, url=url, data=body, headers=dict(r.headers))
            self.signer.add_auth(aws)
            r.prepare_url(url, None)
            r.headers.update(aws.headers.items())
            if connection is not None:
                r.headers["Connection"] = connection
            return r

    sm = f"botocore {__import__('botocore').__version__} SigV4Auth, sagemaker-mlflow style"
    record("sagemaker-style-search-filter", sm, "sagemaker-mlflow", "aws",
           "GET with spaces in the query, rewritten to %20 before signing",
           lambda: requests.get(f"{base}/api/2.0/mlflow/model-versions/search",
                                params={"filter": "name = 'my model'", "max_results": 5},
                                auth=SageMakerStyleAuth(creds)))
    record("sagemaker-style-create-run", sm, "sagemaker-mlflow", "aws",
           "POST JSON; botocore signs every header but Connection (user-agent, accept, content-length...)",
           lambda: requests.post(f"{base}/api/2.0/mlflow/runs/create",
                                 json={"experiment_id": "1", "run_name": "r"},
                                 auth=SageMakerStyleAuth(creds)))
    with open(f.name, "rb") as fh:
        record("sagemaker-style-artifact-upload", sm, "sagemaker-mlflow", "aws",
               "PUT of an open file: hashed into x-amz-content-sha256, then streamed",
               lambda: requests.put(f"{base}/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model%20card.txt",
                                    data=fh, auth=SageMakerStyleAuth(creds)))
    record("sagemaker-style-repeated-keys", sm, "sagemaker-mlflow", "aws",
           "GET with a repeated query name: botocore keeps every value, sorted",
           lambda: requests.get(f"{base}/api/2.0/mlflow/traces",
                                params=[("experiment_ids", "2"), ("experiment_ids", "1")],
                                auth=SageMakerStyleAuth(temp_creds)), token=TOKEN)

    class PlainSigV4Auth(requests.auth.AuthBase):
        """botocore's SigV4Auth on the URL as requests built it (no `+` rewrite)."""

        def __init__(self, credentials, service):
            self.signer = SigV4Auth(credentials, service, REGION)

        def __call__(self, r):
            aws = AWSRequest(method=r.method, url=r.url, data=r.body, headers=dict(r.headers))
            self.signer.add_auth(aws)
            r.headers.update(aws.headers.items())
            return r

    bc = f"botocore {__import__('botocore').__version__} SigV4Auth, used directly"
    record("botocore-plus-in-query", bc, "execute-api", "raw-uri",
           "GET with '+' for spaces signed as sent: the raw-URI form matches",
           lambda: requests.get(f"{base}/api/2.0/mlflow/registered-models/search",
                                params={"filter": "name LIKE '%a b%'"},
                                auth=PlainSigV4Auth(creds, "execute-api")))
    record("botocore-undeclared-body", bc, "execute-api", "aws",
           "POST without x-amz-content-sha256: the verifier needs the body's hash",
           lambda: requests.post(f"{base}/api/2.0/mlflow/runs/search",
                                 json={"experiment_ids": ["1"]},
                                 auth=PlainSigV4Auth(creds, "execute-api")))

    out = Path(__file__).parent / "data" / "real_clients.json"
    out.write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
