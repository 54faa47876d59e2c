"""Every policy example in README.md and docs/ does what its text says, against the real MLflow
and the real MLflow client: each is stored with `mlgate policy put` and attached to a fresh user.

`documented_policies` finds every example (a ```json block that is a policy or a statement, and
every `document` of a TOML `[[policies]]` entry); `SCENARIOS` names the test that runs each one,
so a new example without a test fails `test_every_documented_policy_has_a_scenario`."""

import importlib
import json
import uuid

import pytest
import requests

from support import (
    Identity,
    acting_as,
    denied,
    documented_policies,
    documented_policy,
    mlgate_stack,
    run_browser_test,
)

# Each documented policy → the test (module::function) that runs the scenario its text claims.
SCENARIOS = {
    "README.md#execute-api:Invoke": "test_docs_policies::test_article_admin_policy_pasted_verbatim_allows_everything",
    "README.md#ReadEverything": "test_docs_policies::test_reader_example_reads_but_never_writes",
    "README.md#NoProductionPromotions": "test_docs_policies::test_no_production_promotions_example",
    "README.md#OwnExperiments": "test_docs_policies::test_own_experiments_example",  # and ..._in_the_ui
    "docs/policy-reference.md#ReadOwnExperiments": "test_docs_policies::test_policy_reference_opening_example",
    "docs/policy-reference.md#LinkRegisteredVersionsToLoggedModels": "test_docs_policies::test_tag_keys_example",
    "docs/policy-reference.md#TeamAWorkspace": "test_workspaces::test_a_user_confined_to_a_workspace_gets_nothing_of_another",
    "docs/administration.md#NoProductionDeletes": "test_docs_policies::test_apply_example_deny_production_deletes",
    "docs/administration.md#OwnTeamExperiments": "test_docs_policies::test_apply_example_team_experiments",
    "docs/oidc.md#sts:AssumeRoleWithWebIdentity": "test_oidc::test_trust_policy_example_of_the_docs",
    "docs/sigv4.md#sts:AssumeRole": "test_sts::test_session_tags_and_source_identity",
}  # fmt: skip


def test_every_documented_policy_has_a_scenario():
    assert set(documented_policies()) == set(SCENARIOS)
    for target in SCENARIOS.values():
        module, function = target.split("::")
        assert callable(getattr(importlib.import_module(module), function, None)), target


def fill_article_placeholders(text: str) -> str:
    """The values mlgate uses by default for the ids in execute-api ARNs (docs/configuration.md)."""
    return (
        text.replace("<REGION>", "us-east-1")
        .replace("<ACCOUNT_ID>", "111111111111")
        .replace("<MLFLOW_API_ID>", "mlgate")
        .replace("<STAGE>", "prod")
    )


@pytest.fixture
def new_user(stack, tmp_path):
    """Creates a user with a password, the given policies (name → JSON text), groups and tags."""

    def make(name_prefix: str, policies: dict, groups=(), tags=()) -> Identity:
        name = f"{name_prefix}-{uuid.uuid4().hex[:6]}"
        password = mlgate_stack.generate_password()
        tag_args = [arg for tag in tags for arg in ("--tag", tag)]
        stack.mlgate("user", "create", name, "--password-env", "E2E_PW", *tag_args, env={"E2E_PW": password})
        for policy_name, text in policies.items():
            path = tmp_path / f"{policy_name}.json"
            path.write_text(text)
            stack.mlgate("policy", "put", policy_name, "-f", str(path))
            stack.mlgate("policy", "attach", policy_name, "--user", name)
        for group in groups:
            stack.mlgate("group", "add-member", group, name)
        return Identity(name, password)

    return make


def test_article_admin_policy_pasted_verbatim_allows_everything(new_user, fresh_name):
    text = fill_article_placeholders(documented_policy("README.md#execute-api:Invoke"))
    who = new_user("article-admin", {"readme-article-admin": text})
    with acting_as(who) as client:
        exp = client.create_experiment(fresh_name("article-admin"))
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "m", 1.0)


def test_reader_example_reads_but_never_writes(new_user, world):
    who = new_user("readme-reader", {"readme-reader": documented_policy("README.md#ReadEverything")})
    with acting_as(who) as client:
        assert client.get_run(world.run_id).info.run_id == world.run_id
        assert client.search_experiments(filter_string=f"name = '{world.experiment_name}'")
        assert client.get_latest_versions(world.model_name, stages=["Staging"])
        denied(lambda: client.create_experiment("readme-reader-no"))
        denied(lambda: client.set_tag(world.run_id, "k", "v"))


def test_no_production_promotions_example(new_user, admin, world, fresh_name):
    who = new_user(
        "staging-only",
        {"readme-no-production": documented_policy("README.md#NoProductionPromotions")},
        groups=["model-approvers"],
    )
    name = fresh_name("e2e-no-prod")
    with acting_as(who) as client:
        client.create_registered_model(name)
        mv = client.create_model_version(
            name, source=world.model_uri, run_id=world.run_id, model_id=world.model_id
        )
        client.transition_model_version_stage(name, mv.version, "Staging")
        e = denied(lambda: client.transition_model_version_stage(name, mv.version, "Production"))
        assert "TransitionModelVersionStage" in e.message
        denied(lambda: client.transition_model_version_stage(name, mv.version, "production"))
        assert client.get_model_version(name, mv.version).current_stage == "Staging"
    # The deny is about this user's policy only: an admin may still promote.
    with acting_as(admin) as client:
        client.transition_model_version_stage(name, mv.version, "Production")


def listed_experiments(client) -> set:
    """Every experiment id the search shows, active and deleted, across all pages."""
    ids, token = set(), None
    while True:
        page = client.search_experiments(view_type=3, max_results=100, page_token=token)
        ids |= {e.experiment_id for e in page}
        token = page.token
        if not token:
            return ids


def test_own_experiments_example(new_user, admin):
    # "Everyone may create and fully manage the experiments named after themselves, and only
    # those": with the MLflow client, as the experiments page of MLflow's UI does.
    who = new_user("owner", {"readme-own-experiments": documented_policy("README.md#OwnExperiments")})
    with acting_as(admin) as client:
        theirs = client.create_experiment(f"someone-else/churn-{uuid.uuid4().hex[:6]}")
        client.create_run(theirs)
    with acting_as(who) as client:
        mine = client.create_experiment(f"{who.name}/churn")
        client.set_experiment_tag(mine, "stage", "dev")
        run = client.create_run(mine)
        client.log_metric(run.info.run_id, "auc", 0.9)
        client.set_terminated(run.info.run_id)
        client.rename_experiment(mine, f"{who.name}/churn-v2")
        assert listed_experiments(client) == {mine}
        assert client.search_runs([mine])[0].info.run_id == run.info.run_id
        client.delete_experiment(mine)
        client.restore_experiment(mine)
        # ... and only those.
        denied(lambda: client.get_experiment(theirs))
        assert not client.search_runs([theirs])  # narrowed to readable experiments: none
        denied(lambda: client.rename_experiment(mine, f"someone-else/taken-{uuid.uuid4().hex[:6]}"))
        denied(lambda: client.create_experiment(f"someone-else/churn-{uuid.uuid4().hex[:6]}"))
        denied(lambda: client.create_experiment(f"{who.name}-but-no-slash"))


def test_own_experiments_example_in_the_ui(stack, new_user, admin):
    # The same user in MLflow's UI (headless Chromium): the experiments list shows theirs, not
    # another user's experiment updated after it.
    who = new_user("ui-owner", {"readme-own-experiments": documented_policy("README.md#OwnExperiments")})
    own = f"{who.name}/ui"
    with acting_as(who) as client:
        run = client.create_run(client.create_experiment(own))
        client.set_terminated(run.info.run_id)
    other = f"someone-else/ui-{uuid.uuid4().hex[:6]}"
    with acting_as(admin) as client:
        client.create_experiment(other)
    r = run_browser_test("ui.test.mjs", {
        "MLGATE_URL": stack.url,
        "MLGATE_USER": who.name,
        "MLGATE_PASSWORD": who.password,
        "OWN_EXPERIMENT": own,
        "OTHER_EXPERIMENT": other,
    })  # fmt: skip
    assert r.returncode == 0, f"{r.stdout[-6000:]}\n{r.stderr[-3000:]}"


def test_policy_reference_opening_example(new_user, admin):
    # "Its holder may read and search the experiments they created through mlgate (a search lists
    # only those), and no one holding it may delete in the experiment named production."
    may_create = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["mlflow:CreateExperiment", "mlflow:DeleteExperiment"],
        "Resource": "*"}]})  # fmt: skip
    who = new_user("creator", {
        "doc-read-own": documented_policy("docs/policy-reference.md#ReadOwnExperiments"),
        "test-may-create-and-delete": may_create,
    })  # fmt: skip
    with acting_as(admin) as client:
        production = production_experiment(client)
        not_theirs = client.create_experiment(f"doc-not-theirs-{uuid.uuid4().hex[:6]}")
    with acting_as(who) as client:
        mine = client.create_experiment(f"doc-mine-{uuid.uuid4().hex[:6]}")
        assert client.get_experiment(mine).experiment_id == mine
        assert listed_experiments(client) == {mine}
        denied(lambda: client.get_experiment(not_theirs))
        e = denied(lambda: client.delete_experiment(production))
        assert "NoProductionDeletes" in e.message or "explicit deny" in e.message.lower()
        client.delete_experiment(mine)


def production_experiment(client) -> str:
    """The experiment named `production` (created once per MLflow server)."""
    found = client.get_experiment_by_name("production")
    return found.experiment_id if found else client.create_experiment("production")


def test_tag_keys_example(stack, new_user, world):
    # "... may record the version link on the logged model (mlflow.modelVersions) and nothing
    # else", and the Null clause refuses a request that names no tag key.
    who = new_user("tag-keys", {"doc-tag-keys": documented_policy("docs/policy-reference.md#LinkRegisteredVersionsToLoggedModels")})
    url = f"{stack.url}/api/2.0/mlflow/logged-models/{world.model_id}/tags"

    def set_tags(tags):
        return requests.patch(url, json={"model_id": world.model_id, "tags": tags}, auth=who.requests_auth(), timeout=10)

    ok = set_tags([{"key": "mlflow.modelVersions", "value": "[]"}])
    assert ok.status_code == 200, ok.text
    for tags in ([{"key": "team", "value": "x"}], [{"key": "mlflow.modelVersions", "value": "[]"}, {"key": "team", "value": "x"}], []):
        r = set_tags(tags)
        assert r.status_code == 403, (tags, r.text)


def test_apply_example_deny_production_deletes(new_user, admin):
    # The administration page attaches it to readers and model-approvers: even with every
    # other right (here the admins group), nothing in `production` is deleted.
    who = new_user("no-prod-deletes", {
        "doc-deny-production-deletes": documented_policy("docs/administration.md#NoProductionDeletes")
    }, groups=["admins"])  # fmt: skip
    with acting_as(admin) as client:
        production = production_experiment(client)
        run = client.create_run(production)
    with acting_as(who) as client:
        denied(lambda: client.delete_run(run.info.run_id))
        denied(lambda: client.delete_experiment(production))
        client.set_tag(run.info.run_id, "checked-by", who.name)  # other writes stay allowed
        other = client.create_experiment(f"not-production-{uuid.uuid4().hex[:6]}")
        client.delete_experiment(other)


def test_apply_example_team_experiments(new_user, admin):
    # The TOML-table policy of the apply example: a user tagged team=<t> may do everything to the
    # experiments tagged team=<t>, and nothing to other teams'.
    who = new_user("team-member", {
        "doc-team-experiments": documented_policy("docs/administration.md#OwnTeamExperiments")
    }, tags=["team=research"])  # fmt: skip
    with acting_as(admin) as client:
        ours = client.create_experiment(f"doc-team-{uuid.uuid4().hex[:6]}", tags={"team": "research"})
        theirs = client.create_experiment(f"doc-team-{uuid.uuid4().hex[:6]}", tags={"team": "marketing"})
    with acting_as(who) as client:
        run = client.create_run(ours)
        client.log_param(run.info.run_id, "p", "1")
        client.set_experiment_tag(ours, "note", "ok")
        assert client.get_experiment(ours).tags["team"] == "research"
        denied(lambda: client.get_experiment(theirs))
        denied(lambda: client.create_run(theirs))
        denied(lambda: client.set_experiment_tag(theirs, "team", "research"))
