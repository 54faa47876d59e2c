"""The policy examples in README.md do what the README says, against the real MLflow: each is
stored with `mlgate policy put` and attached to a fresh user."""

import json
import re
import uuid

import pytest

from support import ROOT, Identity, acting_as, denied, mlgate_stack

README = ROOT / "README.md"


def readme_policies() -> dict:
    """The ```json blocks of the README, by their first statement's Sid (or `article-admin`)."""
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), flags=re.S)
    out = {}
    for text in blocks:
        doc = json.loads(text)
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        out[statements[0].get("Sid", "article-admin")] = text
    return out


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
    """Creates a user with a password and the given README policies (and groups)."""

    def make(name_prefix: str, policies: dict, groups=()) -> Identity:
        name = f"{name_prefix}-{uuid.uuid4().hex[:6]}"
        password = mlgate_stack.generate_password()
        stack.mlgate("user", "create", name, "--password-env", "E2E_PW", env={"E2E_PW": password})
        for policy_name, text in policies.items():
            path = tmp_path / f"{policy_name}.json"
            path.write_text(text)
            stack.mlgate("policy", "put", policy_name, "-f", str(path))
            stack.mlgate("policy", "attach", policy_name, "--user", name)
        for group in groups:
            stack.mlgate("group", "add-member", group, name)
        return Identity(name, password)

    return make


def test_readme_has_the_four_examples():
    assert set(readme_policies()) == {
        "article-admin", "ReadEverything", "NoProductionPromotions", "OwnExperiments",
    }  # fmt: skip


def test_article_admin_policy_pasted_verbatim_allows_everything(new_user, fresh_name):
    text = fill_article_placeholders(readme_policies()["article-admin"])
    who = new_user("article-admin", {"readme-article-admin": text})
    with acting_as(who) as client:
        exp = client.create_experiment(fresh_name("article-admin"))
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "m", 1.0)


def test_reader_example_reads_but_never_writes(new_user, world):
    who = new_user("readme-reader", {"readme-reader": readme_policies()["ReadEverything"]})
    with acting_as(who) as client:
        assert client.get_run(world.run_id).info.run_id == world.run_id
        assert client.search_experiments(filter_string=f"name = '{world.experiment_name}'")
        assert client.get_latest_versions(world.model_name, stages=["Staging"])
        denied(lambda: client.create_experiment("readme-reader-no"))
        denied(lambda: client.set_tag(world.run_id, "k", "v"))


def test_no_production_promotions_example(new_user, admin, world, fresh_name):
    who = new_user(
        "staging-only",
        {"readme-no-production": readme_policies()["NoProductionPromotions"]},
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


def test_own_experiments_example_uses_the_username(new_user):
    who = new_user("owner", {"readme-own-experiments": readme_policies()["OwnExperiments"]})
    with acting_as(who) as client:
        client.create_experiment(f"{who.name}/churn")
        denied(lambda: client.create_experiment(f"someone-else/churn-{uuid.uuid4().hex[:6]}"))
        denied(lambda: client.create_experiment(f"{who.name}-but-no-slash"))
