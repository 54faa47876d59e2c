"""Session fixtures: one real MLflow server behind one real mlgate, on free ports, in a
temporary data dir, bootstrapped with the quick start's own deploy/demo.toml; torn down at the
end of the session (scripts/lib/mlgate_stack.py does the starting, waiting and stopping).

`--store postgres` runs the session's mlgate on a throwaway PostgreSQL server instead of the
embedded SQLite (the `postgres` fixture); `--replicas N` with it runs N mlgate replicas on that
store behind a round-robin balancer, so the same tests spread their requests over all of them."""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import support
from support import (
    ADMIN,
    APPROVER,
    BOOTSTRAP_ADMIN,
    READER,
    AuditLog,
    EchoModel,
    Identity,
    MlflowAccessLog,
    acting_as,
    mlflow,
    mlgate_stack,
)


def pytest_addoption(parser):
    parser.addoption("--store", choices=("sqlite", "postgres"), default="sqlite",
                     help="mlgate's store for the session stack")
    parser.addoption("--replicas", type=int, default=1,
                     help="mlgate replicas behind a round-robin balancer (needs --store postgres)")


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the session (scripts/lib/postgres.sh)."""
    server = mlgate_stack.Postgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def store_url(request):
    """The session stack's store: None for SQLite, else a new database on `postgres`."""
    if request.config.getoption("--store") == "sqlite":
        return None
    return request.getfixturevalue("postgres").url("e2e_session")


@pytest.fixture(scope="session")
def stack(request, tmp_path_factory, store_url):
    replicas = request.config.getoption("--replicas")
    if replicas > 1 and store_url is None:
        raise pytest.UsageError("--replicas needs --store postgres")
    binary = mlgate_stack.build_mlgate()
    data_dir = tmp_path_factory.mktemp("mlgate-data")
    st = mlgate_stack.Stack(data_dir, port=mlgate_stack.free_port(), binary=binary,
                            store_url=store_url)
    passwords = {
        mlgate_stack.ADMIN_PASSWORD_ENV: mlgate_stack.generate_password(),
        mlgate_stack.DEMO_PASSWORD_ENV: mlgate_stack.generate_password(),
    }
    st.up(mlgate_stack.DEMO_FILE, passwords)
    st.passwords = passwords
    if replicas > 1:
        try:
            st = support.Replicated(st, replicas)
        except BaseException:
            st.down()
            raise
    os.environ["MLFLOW_TRACKING_URI"] = st.url
    mlflow.set_tracking_uri(st.url)
    try:
        yield st
    finally:
        st.down()
        if os.environ.get("MLGATE_E2E_KEEP_LOGS"):
            print(f"\ne2e data dir kept at {data_dir}")


@pytest.fixture(scope="session")
def users(stack):
    """The bootstrap admin and the three demo users of deploy/demo.toml, by name."""
    demo = stack.passwords[mlgate_stack.DEMO_PASSWORD_ENV]
    return {
        BOOTSTRAP_ADMIN: Identity(BOOTSTRAP_ADMIN, stack.passwords[mlgate_stack.ADMIN_PASSWORD_ENV]),
        ADMIN: Identity(ADMIN, demo),
        READER: Identity(READER, demo),
        APPROVER: Identity(APPROVER, demo),
    }


@pytest.fixture(scope="session")
def admin(users):
    return users[ADMIN]


@pytest.fixture(scope="session")
def reader(users):
    return users[READER]


@pytest.fixture(scope="session")
def approver(users):
    return users[APPROVER]


@pytest.fixture(scope="session")
def mlflow_log(stack):
    return MlflowAccessLog(stack.mlflow_log)


@pytest.fixture(scope="session")
def audit(stack):
    return AuditLog(*stack.audit_logs)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class World:
    """What the admin created once for the read-side tests."""

    experiment_id: str
    experiment_name: str
    run_id: str
    artifact_text: str
    model_name: str
    model_uri: str  # models:/m-<id> (the logged model)
    model_id: str
    version: str


@pytest.fixture(scope="session")
def world(stack, admin) -> World:
    """As mlflow-admin: an experiment, a run with params/metrics/tags and an artifact, a
    logged pyfunc model registered as version 1 with alias `champion` in stage Staging."""
    with acting_as(admin) as client:
        name = unique("e2e-world")
        exp_id = client.create_experiment(name, tags={"team": "e2e"})
        with mlflow.start_run(experiment_id=exp_id) as run:
            mlflow.log_params({"alpha": "0.5", "l1_ratio": "0.1"})
            for step, value in enumerate([0.5, 0.3, 0.25]):
                mlflow.log_metric("rmse", value, step=step)
            mlflow.set_tags({"team": "e2e", "stage": "world"})
            text = f"hello from {name}\n"
            with tempfile.TemporaryDirectory() as d:
                p = Path(d, "hello.txt")
                p.write_text(text)
                mlflow.log_artifact(str(p), artifact_path="notes")
            info = mlflow.pyfunc.log_model(
                name="model", python_model=EchoModel(), pip_requirements=["mlflow"]
            )
        model_name = unique("e2e-world-model")
        client.create_registered_model(model_name, tags={"team": "e2e"})
        mv = client.create_model_version(
            model_name, source=info.model_uri, run_id=run.info.run_id, model_id=info.model_id
        )
        client.set_registered_model_alias(model_name, "champion", mv.version)
        client.transition_model_version_stage(model_name, mv.version, "Staging")
    return World(
        experiment_id=exp_id,
        experiment_name=name,
        run_id=run.info.run_id,
        artifact_text=text,
        model_name=model_name,
        model_uri=info.model_uri,
        model_id=info.model_id,
        version=str(mv.version),
    )


@pytest.fixture(scope="session")
def scratch_experiment(admin) -> str:
    """An experiment for tests that create runs, so the world's experiment keeps one run."""
    with acting_as(admin) as client:
        return client.create_experiment(unique("e2e-scratch"))


@pytest.fixture(scope="session")
def create_token(stack):
    """`mlgate token create --user NAME`: returns (token, token id or None)."""

    def create(user: str):
        result = stack.mlgate("token", "create", "--user", user)
        return support.parse_token_output(result.stdout)

    return create


@pytest.fixture
def fresh_name():
    return unique


@pytest.fixture(autouse=True)
def _no_ambient_credentials():
    """Every test starts as nobody; tests say who they are with `acting_as`."""
    for k in support.CRED_VARS:
        os.environ.pop(k, None)
    yield
