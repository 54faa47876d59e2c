"""Release management with `mlgate grant`: an approver (STAGING_MANAGER on `rel-<tag>-*`) may move
versions to Staging and set the `challenger` alias but is refused Production and `champion`; a
release manager (PRODUCTION_MANAGER) may do both; the audit log shows who did what."""

from __future__ import annotations

import json
import uuid

import pytest

from support import Identity, acting_as, denied

TRANSITION = "/api/2.0/mlflow/model-versions/transition-stage"
ALIAS = "/api/2.0/mlflow/registered-models/alias"


@pytest.fixture(scope="module")
def release(stack, admin, world):
    tag = uuid.uuid4().hex[:8]
    pattern = f"rel-{tag}-*"
    people = {}
    for role, level in (("approver", "STAGING_MANAGER"), ("manager", "PRODUCTION_MANAGER")):
        user = f"rel-{role}-{tag}"
        password = uuid.uuid4().hex
        stack.mlgate("user", "create", user, "--password-env", "REL_PW", env={"REL_PW": password})
        stack.mlgate("grant", "--user", user, "--level", level, "--models", pattern)
        people[role] = Identity(user, password)
    model = f"rel-{tag}-churn"
    with acting_as(admin) as client:
        client.create_registered_model(model)
        mv = client.create_model_version(
            model, source=world.model_uri, run_id=world.run_id, model_id=world.model_id
        )
    return people, model, str(mv.version)


def test_grant_prints_the_documented_statements(stack):
    out = stack.mlgate("grant", "--user", "nobody", "--level", "STAGING_MANAGER",
                       "--models", "x-*", "--print").stdout
    doc = json.loads(out)
    sids = [s["Sid"] for s in doc["Statement"]]
    assert sids == ["Server", "ReadModels", "StagingTransitions", "StagingAliases"]
    refused = stack.mlgate("grant", "--user", "nobody", "--level", "STAGING_MANAGER",
                           "--experiments", "x/*", check=False)
    assert refused.returncode != 0


def test_approver_stages_and_challenger_only(release, audit):
    people, model, version = release
    mark = audit.mark()
    with acting_as(people["approver"]) as client:
        assert client.get_registered_model(model).name == model
        mv = client.transition_model_version_stage(model, version, "Staging")
        assert mv.current_stage == "Staging"
        client.set_registered_model_alias(model, "challenger", version)
        denied(lambda: client.transition_model_version_stage(model, version, "Production"))
        denied(lambda: client.set_registered_model_alias(model, "champion", version))
        # Nor any other team's model.
        denied(lambda: client.get_registered_model(f"other-{model}"), code="PERMISSION_DENIED")
    records = audit.wait_for(mark, 5)
    user = people["approver"].name
    mine = [r for r in records if (r.get("principal") or "").endswith(f":user/{user}")]
    transitions = [(r["decision"], r["status"]) for r in mine if r["path"] == TRANSITION]
    assert transitions[0] == ("allow", 200), mine
    assert transitions[-1][0] in ("implicit_deny", "explicit_deny") and transitions[-1][1] == 403
    aliases = [(r["decision"], r["status"]) for r in mine if r["path"] == ALIAS]
    assert aliases[0] == ("allow", 200) and aliases[-1][1] == 403, aliases


def test_release_manager_does_both(release, audit):
    people, model, version = release
    mark = audit.mark()
    with acting_as(people["manager"]) as client:
        mv = client.transition_model_version_stage(model, version, "Production")
        assert mv.current_stage == "Production"
        client.set_registered_model_alias(model, "champion", version)
        assert client.get_model_version_by_alias(model, "champion").version == version
        denied(lambda: client.delete_model_version(model, version))
    records = audit.wait_for(mark, 3)
    user = people["manager"].name
    assert any(
        r["path"] == TRANSITION and r["decision"] == "allow"
        and (r.get("principal") or "").endswith(f":user/{user}")
        for r in records
    ), records
    with acting_as(release[0]["approver"]) as client:
        # The approver sees what the manager did, and who: the version is in Production.
        assert client.get_model_version(model, version).current_stage == "Production"
