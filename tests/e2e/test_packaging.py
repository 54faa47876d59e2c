"""The packaging in deploy/ (Dockerfile, compose file, Kubernetes manifests), checked offline:
no container runtime or cluster runs here. The manifests validate against the Kubernetes
schemas kubernetes-validate ships, the compose file against the compose-spec schema
check-jsonschema ships, and every flag and MLGATE_* variable they give mlgate exists in the
binary the suite runs."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from support import ROOT, mlgate_stack

DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
# The oldest Kubernetes release the manifests are meant for.
KUBERNETES_VERSION = "1.29"
# What the gateway answers on for the probes (docs/deployment.md).
READINESS, LIVENESS = "/_mlgate/readyz", "/_mlgate/healthz"


def _resources() -> list:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def _by_kind(kind: str) -> list:
    return [r for r in _resources() if r["kind"] == kind]


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _dockerfile_final_stage() -> dict:
    """The last stage's instructions, by keyword (the last of each)."""
    stages = re.split(r"(?m)^FROM ", DOCKERFILE.read_text())
    final = {}
    for line in ("FROM " + stages[-1]).splitlines():
        if line.strip() and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            final[keyword] = rest.strip()
    return final


def _mlgate_invocations() -> list:
    """Every argument list the packaging gives mlgate: Kubernetes containers, compose services
    and the image's default command."""
    lists = [c.get("args", []) for r in _resources() if r["kind"] in ("Deployment", "Job")
             for c in r["spec"]["template"]["spec"]["containers"]]
    lists += [s["command"] for name, s in _compose()["services"].items() if name.startswith("mlgate")]
    lists.append(json.loads(_dockerfile_final_stage()["CMD"]))
    return lists


def _help(subcommand: str) -> str:
    return subprocess.run([str(mlgate_stack.mlgate_binary()), subcommand, "--help"],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_the_kubernetes_manifests_validate_against_the_kubernetes_schemas(path):
    for resource in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_manifests_hold_what_a_replicated_deployment_needs():
    kinds = {r["kind"] for r in _resources()}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
            "NetworkPolicy", "Job", "Secret"} <= kinds
    (deployment,) = _by_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == READINESS
    assert container["livenessProbe"]["httpGet"]["path"] == LIVENESS
    env = {e["name"]: e for e in container["env"]}
    assert env["MLGATE_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mlgate"
    # Behind the ingress: its forwarding headers are believed, and only from its addresses.
    assert env["MLGATE_TRUSTED_PROXIES"]["value"]
    # Only mlgate's pods may reach MLflow's port.
    (policy,) = _by_kind("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "mlflow"}
    (rule,) = policy["spec"]["ingress"]
    assert [f["podSelector"]["matchLabels"] for f in rule["from"]] == [
        deployment["spec"]["selector"]["matchLabels"]]


def test_the_compose_file_validates_against_the_compose_spec():
    schema_text = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_text.read_text())
    jsonschema.validate(_compose(), schema)
    services = _compose()["services"]
    assert {"postgres", "minio", "mlflow", "mlgate-apply", "mlgate-a", "mlgate-b"} <= set(services)
    # MLflow is on the internal network only: not published, not on mlgate's public one.
    assert "ports" not in services["mlflow"] and services["mlflow"]["networks"] == ["backend"]
    assert _compose()["networks"]["backend"]["internal"] is True


def test_every_flag_the_packaging_passes_exists_in_the_binary():
    for argv in _mlgate_invocations():
        subcommand, *args = argv
        known = _help(subcommand)
        for flag in (a.split("=", 1)[0] for a in args if a.startswith("--")):
            assert re.search(rf"(^|\s){re.escape(flag)}[\s,=]", known), (
                f"`mlgate {subcommand}` has no {flag}")


def test_every_mlgate_variable_the_packaging_sets_is_read_by_the_binary():
    text = "\n".join(p.read_text() for p in [*MANIFESTS, COMPOSE, DOCKERFILE])
    named = set(re.findall(r"\bMLGATE_[A-Z_]+\b", text))
    assert named
    # The CLI's `[env: …]` lines, and the few variables read outside the CLI parser.
    known = _help("serve") + _help("apply")
    source = "\n".join(p.read_text() for p in (ROOT / "crates" / "gateway" / "src").rglob("*.rs"))
    declarative = (DEPLOY / "demo.toml").read_text()
    for name in sorted(named):
        assert f"{name}=" in known or f'"{name}"' in source or f'"{name}"' in declarative, name


def test_the_image_runs_the_built_binary_as_a_non_root_user():
    final = _dockerfile_final_stage()
    assert final["FROM"].startswith("gcr.io/distroless/cc-"), final["FROM"]
    user = final["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0
    # The Kubernetes pods run as the image's user.
    for r in _by_kind("Deployment") + _by_kind("Job"):
        assert r["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)
    # The entrypoint is the binary copied from where `cargo build --release -p mlgate` puts it.
    (entrypoint,) = json.loads(final["ENTRYPOINT"])
    text = DOCKERFILE.read_text()
    assert "cargo build --release --locked -p mlgate" in text
    assert f"target/release/mlgate /out{entrypoint}" in text
    assert f"COPY --from=build /out{entrypoint} {entrypoint}" in text
    assert (ROOT / "target" / "release" / "mlgate").is_file(), "the build puts mlgate elsewhere"
    # The build image is the toolchain the workspace asks for.
    rust = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    assert f"FROM rust:{rust}-" in text
