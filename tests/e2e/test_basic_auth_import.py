"""`mlgate import mlflow-basic-auth` (docs/basic-auth.md) on a basic_auth.db built by MLflow's REAL
basic-auth app (`mlflow server --app-name basic-auth`) through the real `AuthServiceClient`:
users keep their passwords (Werkzeug scrypt, re-hashed to argon2id at the first sign-in), admins
are admins, roles become groups with their members and grants; idempotent, `--dry-run`; bad
input is an error naming the item, and nothing is written."""

import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from mlflow.server.auth.client import AuthServiceClient

from conftest import unique
from support import Identity, acting_as, mlgate_stack

CURRENT = "/api/2.0/mlflow/users/current"


@dataclass
class BasicAuthStore:
    db: Path
    alice: Identity
    root: Identity
    role_group: str
    model: str


def write_basic_auth_store(root_dir: Path, database_uri: str, db: Path) -> BasicAuthStore:
    """A basic-auth store written by MLflow's own basic-auth app at `database_uri`: an admin, a
    user in a role with READ on every experiment, and a per-user EDIT grant on a registered
    model."""
    ini = root_dir / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {database_uri}\n"
        "admin_username = ba-bootstrap\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
    )
    bootstrap = Identity("ba-bootstrap", uuid.uuid4().hex)
    alice = Identity(unique("ba-alice"), uuid.uuid4().hex)
    root = Identity(unique("ba-root"), uuid.uuid4().hex)
    role, model = unique("readers"), unique("ba-model")
    real = mlgate_stack.Stack(root_dir / "real", port=mlgate_stack.free_port())
    real.start_mlflow(
        extra_args=["--app-name", "basic-auth"],
        extra_env={"MLFLOW_AUTH_CONFIG_PATH": str(ini),
                   "MLFLOW_AUTH_ADMIN_PASSWORD": bootstrap.password,
                   "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex},
    )
    try:
        with acting_as(bootstrap):
            client = AuthServiceClient(real.mlflow_url)
            client.create_user(alice.name, alice.password)
            client.create_user(root.name, root.password)
            client.update_user_admin(root.name, True)
            readers = client.create_role("default", role)
            client.add_role_permission(readers.id, "experiment", "*", "READ")
            client.assign_role(alice.name, readers.id)
            client.grant_user_permission(alice.name, "registered_model", model, "EDIT")
    finally:
        real.stop_mlflow()
    return BasicAuthStore(db, alice, root, f"mlflow-role.default.{role}", model)


@pytest.fixture(scope="module")
def basic_auth_store(tmp_path_factory) -> BasicAuthStore:
    root_dir = tmp_path_factory.mktemp("basic-auth")
    db = root_dir / "basic_auth.db"
    return write_basic_auth_store(root_dir, f"sqlite:///{db}", db)


def _import(stack, source, *args, check=True):
    return stack.mlgate("import", "mlflow-basic-auth", str(source), *args, check=check)


def _copy_renaming_alice(ba: BasicAuthStore, directory: Path, name: str) -> Path:
    """A copy of the store whose alice is `name`, a user the session's mlgate has not seen."""
    copy = directory / "basic_auth.db"
    shutil.copy(ba.db, copy)
    with sqlite3.connect(copy) as c:
        c.execute("UPDATE users SET username = ? WHERE username = ?", (name, ba.alice.name))
    return copy


def _users(stack) -> str:
    return stack.mlgate("user", "list").stdout


def test_import_dry_run_then_for_real_then_unchanged(stack, basic_auth_store):
    ba = basic_auth_store
    dry = _import(stack, ba.db, "--dry-run").stdout
    assert "dry run (nothing written)" in dry
    assert f"created   user    {ba.alice.name}" in dry
    assert ba.alice.name not in _users(stack)

    out = _import(stack, f"sqlite:///{ba.db}").stdout
    for line in (
        f"created   user    {ba.alice.name}",
        f"created   user    {ba.root.name}",
        f"created   group   {ba.role_group}",
        "updated   group   admins",
    ):
        assert line in out, out
    again = _import(stack, ba.db).stdout
    assert "\n0 created, 0 updated" in again, again

    # The membership and grants are ordinary mlgate objects.
    effective = stack.mlgate("policy", "effective", "--user", ba.alice.name).stdout
    assert "grant.read.experiments.@" in effective, effective
    assert f"grant.edit.models.{ba.model}" in effective, effective


def test_imported_users_sign_in_with_their_passwords_and_are_rehashed(
    stack, basic_auth_store
):
    ba = basic_auth_store
    if stack.store_url:
        pytest.skip("reads the stored hash from the SQLite store")
    _import(stack, ba.db)
    store = stack.data_dir / "mlgate.db"

    def stored_hash(name):
        with sqlite3.connect(store) as c:
            return c.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()[0]

    assert stored_hash(ba.root.name).startswith("scrypt:")
    wrong = requests.get(f"{stack.url}{CURRENT}", auth=(ba.root.name, "wrong"), timeout=30)
    assert wrong.status_code == 401
    assert stored_hash(ba.root.name).startswith("scrypt:")
    resp = requests.get(f"{stack.url}{CURRENT}", auth=ba.root.requests_auth(), timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["is_admin"] is True
    assert stored_hash(ba.root.name).startswith("$argon2id$")
    # Still the same password after the re-hash.
    resp = requests.get(f"{stack.url}{CURRENT}", auth=ba.root.requests_auth(), timeout=30)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "corrupt, error",
    [
        ("UPDATE users SET password_hash = 'md5$salt$00' WHERE username = ?",
         'user "{user}": password hash: method "md5"'),
        ("UPDATE role_permissions SET permission = 'OWNER'",
         '"OWNER" is not a permission MLflow defines'),
        ("DROP TABLE role_permissions", 'no table "role_permissions"'),
    ],
    ids=["unknown-hash-format", "unknown-permission", "not-a-basic-auth-store"],
)
def test_bad_input_names_the_item_and_writes_nothing(
    stack, basic_auth_store, tmp_path, corrupt, error
):
    ba = basic_auth_store
    renamed = unique("ba-new")
    copy = _copy_renaming_alice(ba, tmp_path, renamed)
    with sqlite3.connect(copy) as c:
        c.execute(corrupt, (renamed,) if "?" in corrupt else ())
    result = _import(stack, copy, check=False)
    assert result.returncode != 0
    assert error.format(user=renamed) in result.stderr, result.stderr
    assert renamed not in _users(stack)


def test_import_keeps_the_grants_a_user_already_has(stack, basic_auth_store, tmp_path):
    ba = basic_auth_store
    name = unique("ba-granted")
    copy = _copy_renaming_alice(ba, tmp_path, name)
    stack.mlgate("user", "create", name, "--password-env", "PW", env={"PW": uuid.uuid4().hex})
    stack.mlgate("grant", "--user", name, "--level", "READ", "--prompts", "kept-prompt")
    out = _import(stack, copy).stdout
    assert "(detached)" not in out, out
    effective = stack.mlgate("policy", "effective", "--user", name).stdout
    assert "grant.read.prompts.kept-prompt" in effective, effective
    assert f"grant.edit.models.{ba.model}" in effective, effective


def test_import_from_a_postgresql_store(stack, postgres, tmp_path):
    # MLflow's basic-auth on PostgreSQL; the import reads it by the SQLAlchemy URL MLflow uses.
    url = postgres.url(f"basic_auth_{uuid.uuid4().hex[:8]}")  # postgres://user:password@host/db
    sqlalchemy = url.replace("postgres://", "postgresql+psycopg2://", 1)
    ba = write_basic_auth_store(tmp_path, sqlalchemy, Path("unused"))
    out = _import(stack, sqlalchemy).stdout
    for line in (
        f"created   user    {ba.alice.name}",
        f"created   user    {ba.root.name}",
        f"created   group   {ba.role_group}",
    ):
        assert line in out, out
    assert "\n0 created, 0 updated" in _import(stack, sqlalchemy).stdout
    effective = stack.mlgate("policy", "effective", "--user", ba.alice.name).stdout
    assert f"grant.edit.models.{ba.model}" in effective, effective
    resp = requests.get(f"{stack.url}{CURRENT}", auth=ba.alice.requests_auth(), timeout=30)
    assert resp.status_code == 200, resp.text

    # A failure names the database, never its password.
    wrong = sqlalchemy.replace(":mlgate@", ":not-the-password@", 1)
    result = _import(stack, wrong, check=False)
    assert result.returncode != 0
    assert "***" in result.stderr and "not-the-password" not in result.stderr, result.stderr
