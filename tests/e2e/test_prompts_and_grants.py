"""Prompts as their own resource type (`prompt/<name>[/version/<n>]`), model tags as condition
keys outside searches, creator records that follow renames, and `[[grants]]` in the declarative
file: with the real MLflow client (`mlflow.genai.register_prompt`, `load_prompt`,
`search_prompts`)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import mlflow
import pytest
import requests

from support import CHANGE_SEEN_SECONDS, Identity, acting_as, denied, users_with_policy


def _load(name_or_uri: str, version=None):
    """`mlflow.genai.load_prompt` without the client's cache (these tests switch identities)."""
    return mlflow.genai.load_prompt(name_or_uri, version=version, cache_ttl_seconds=0)


def _rest(stack, who: Identity, method: str, path: str, body: dict) -> requests.Response:
    """A registry call the MLflow client refuses to make on a prompt (it hides prompts from
    its model methods), sent as the REST API receives it."""
    return requests.request(method, f"{stack.url}/api/2.0/mlflow/registered-models/{path}",
                            json=body, auth=who.requests_auth(), timeout=30)


def _refused(resp: requests.Response) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json()["error_code"] == "PERMISSION_DENIED", resp.text


def _apply(stack, path: Path, text: str, env: dict) -> str:
    path.write_text(text)
    return stack.mlgate("apply", "-f", str(path), env=env).stdout


def _grants_file(tag: str, prompt_grant: bool) -> str:
    """Team A's prompt writer gets EDIT on prompts `pa-<tag>-*` through a `[[grants]]` entry on
    its group; the model writer EDIT on models of the same prefix."""
    text = f"""
[[users]]
name = "pa-{tag}"
password_env = "PA_PW"

[[users]]
name = "ma-{tag}"
password_env = "MA_PW"

[[users]]
name = "pb-{tag}"
password_env = "PB_PW"

[[groups]]
name = "prompts-a-{tag}"
members = ["pa-{tag}"]
policies = []

[[grants]]
user = "ma-{tag}"
level = "EDIT"
models = "pa-{tag}-*"

[[grants]]
user = "pb-{tag}"
level = "EDIT"
prompts = "pb-{tag}-*"
"""
    if prompt_grant:
        text += f"""
[[grants]]
group = "prompts-a-{tag}"
level = "EDIT"
prompts = "pa-{tag}-*"
"""
    return text


@pytest.fixture(scope="module")
def people(stack, tmp_path_factory):
    tag = uuid.uuid4().hex[:8]
    env = {"PA_PW": uuid.uuid4().hex, "MA_PW": uuid.uuid4().hex, "PB_PW": uuid.uuid4().hex}
    path = tmp_path_factory.mktemp("grants") / "grants.toml"
    first = _apply(stack, path, _grants_file(tag, True), env)
    assert "grant.edit.prompts.pa-" in first, first
    # Applying the same file again changes nothing.
    again = _apply(stack, path, _grants_file(tag, True), env)
    assert " 0 created, 0 updated" in f" {again.strip().splitlines()[-1]}", again
    return {
        "tag": tag,
        "file": path,
        "env": env,
        "prompt_a": Identity(f"pa-{tag}", env["PA_PW"]),
        "model_a": Identity(f"ma-{tag}", env["MA_PW"]),
        "prompt_b": Identity(f"pb-{tag}", env["PB_PW"]),
    }


@pytest.fixture(scope="module")
def prompt(people):
    name = f"pa-{people['tag']}-greet"
    with acting_as(people["prompt_a"]):
        version = mlflow.genai.register_prompt(name=name, template="Hello {{name}}!",
                                               tags={"team": "a"})
    assert version.version == 1
    return name


def test_team_a_registers_and_loads_its_prompt(people, prompt):
    with acting_as(people["prompt_a"]):
        loaded = _load(f"prompts:/{prompt}/1")
        assert loaded.template == "Hello {{name}}!"
        assert loaded.format(name="x") == "Hello x!"
        # A second version, and an alias stays a MANAGE right.
        mlflow.genai.register_prompt(name=prompt, template="Hi {{name}}!")
        assert _load(prompt, version=2).template == "Hi {{name}}!"
        denied(lambda: mlflow.genai.set_prompt_alias(prompt, alias="production", version=2))


def test_team_b_can_neither_load_nor_find_team_a_prompts(people, prompt):
    with acting_as(people["prompt_b"]):
        denied(lambda: _load(f"prompts:/{prompt}/1"))
        found = mlflow.genai.search_prompts(filter_string=f"name LIKE 'pa-{people['tag']}%'")
        assert [p.name for p in found] == []
        # Nor register a version of it, nor take its prefix.
        denied(lambda: mlflow.genai.register_prompt(name=prompt, template="pwned"))
        denied(lambda: mlflow.genai.register_prompt(name=f"pa-{people['tag']}-x", template="x"))
        own = f"pb-{people['tag']}-own"
        mlflow.genai.register_prompt(name=own, template="b")
        assert _load(own, version=1).template == "b"


def test_team_a_finds_its_own_prompts(people, prompt):
    with acting_as(people["prompt_a"]):
        found = mlflow.genai.search_prompts(filter_string=f"name LIKE 'pa-{people['tag']}%'")
        assert [p.name for p in found] == [prompt]


def test_model_rights_give_no_prompt_and_prompt_rights_no_model(stack, people, prompt):
    tag = people["tag"]
    model = f"pa-{tag}-model"
    with acting_as(people["model_a"]) as client:
        client.create_registered_model(model)
        client.set_registered_model_tag(model, "note", "x")
        # The prompt has the same prefix, but is a prompt.
        denied(lambda: _load(f"prompts:/{prompt}/1"))
        denied(lambda: client.get_registered_model(prompt))
        denied(lambda: client.set_registered_model_tag(prompt, "team", "m"))
        denied(lambda: mlflow.genai.register_prompt(name=f"pa-{tag}-p2", template="x"))
        # Nor can a model writer turn a prompt into a model, or its model into a prompt.
        untag = {"name": prompt, "key": "mlflow.prompt.is_prompt"}
        _refused(_rest(stack, people["model_a"], "DELETE", "delete-tag", untag))
        denied(lambda: client.set_registered_model_tag(model, "mlflow.prompt.is_prompt", "true"))
    with acting_as(people["prompt_a"]) as client:
        denied(lambda: client.get_registered_model(model))
        denied(lambda: client.create_registered_model(f"pa-{tag}-model2"))
        _refused(_rest(stack, people["prompt_a"], "DELETE", "delete-tag", untag))
        mlflow.genai.set_prompt_tag(prompt, "owner", "a")


def test_model_tags_are_condition_keys_of_model_requests(stack, admin, tmp_path):
    tag = uuid.uuid4().hex[:8]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TeamModels", "Effect": "Allow",
            "Action": ["mlflow:GetRegisteredModel", "mlflow:GetModelVersion",
                       "mlflow:UpdateRegisteredModel"],
            "Resource": "arn:mlflow:*:*:registered-model/*",
            "Condition": {"StringEquals": {"mlflow:ModelTag/team": "a"}},
        }],
    }
    [user] = users_with_policy(stack, f"tagged-{tag}", policy, tmp_path, 1)
    with acting_as(admin) as client:
        client.create_registered_model(f"tagged-{tag}-a", tags={"team": "a"})
        client.create_registered_model(f"tagged-{tag}-b", tags={"team": "b"})
    with acting_as(user) as client:
        assert client.get_registered_model(f"tagged-{tag}-a").tags["team"] == "a"
        client.update_registered_model(f"tagged-{tag}-a", description="mine")
        denied(lambda: client.get_registered_model(f"tagged-{tag}-b"))
        denied(lambda: client.update_registered_model(f"tagged-{tag}-b", description="x"))
    # A tag change through mlgate takes effect at once (the cached tags are dropped).
    with acting_as(admin) as client:
        client.set_registered_model_tag(f"tagged-{tag}-b", "team", "a")
    with acting_as(user) as client:
        assert client.get_registered_model(f"tagged-{tag}-b").tags["team"] == "a"


def test_renamed_prompts_and_models_keep_their_creator(stack, tmp_path):
    """The `${aws:username}` creator policy keeps working after a rename: the record moves."""
    tag = uuid.uuid4().hex[:8]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Create", "Effect": "Allow", "Action": "mlflow:CreateRegisteredModel",
             "Resource": [f"arn:mlflow:*:*:prompt/own-{tag}-*",
                          f"arn:mlflow:*:*:registered-model/own-{tag}-*"]},
            {"Sid": "ManageOwn", "Effect": "Allow", "Action": "mlflow:*",
             "Resource": ["arn:mlflow:*:*:prompt/*", "arn:mlflow:*:*:registered-model/*"],
             "Condition": {"StringEquals": {"mlflow:ResourceCreator": "${aws:username}"}}},
        ],
    }
    name = f"own-{tag}"
    first, second = users_with_policy(stack, name, policy, tmp_path, 2)
    with acting_as(first) as client:
        mlflow.genai.register_prompt(name=f"{name}-p", template="v1")
        rename = {"name": f"{name}-p", "new_name": f"{name}-p2"}
        resp = _rest(stack, first, "POST", "rename", rename)
        assert resp.ok, resp.text
        # Still the creator under the new name: a new version, a tag, a load.
        mlflow.genai.register_prompt(name=f"{name}-p2", template="v2")
        assert _load(f"{name}-p2", version=2).template == "v2"
        client.create_registered_model(f"{name}-m")
        client.rename_registered_model(f"{name}-m", f"{name}-m2")
        client.set_registered_model_tag(f"{name}-m2", "k", "v")
    with acting_as(second) as client:
        denied(lambda: _load(f"{name}-p2", version=1))
        denied(lambda: client.get_registered_model(f"{name}-m2"))
        # The old names are free, and not anyone's any more.
        client.create_registered_model(f"{name}-m")
        client.set_registered_model_tag(f"{name}-m", "k", "mine")
    with acting_as(first) as client:
        denied(lambda: client.get_registered_model(f"{name}-m"))


def test_removing_a_grant_from_the_file_revokes_it(stack, people, prompt):
    out = _apply(stack, people["file"], _grants_file(people["tag"], False), people["env"])
    assert "(detached)" in out, out
    time.sleep(CHANGE_SEEN_SECONDS)
    with acting_as(people["prompt_a"]):
        denied(lambda: _load(f"prompts:/{prompt}/1"))
    # Back again: the file is the truth.
    _apply(stack, people["file"], _grants_file(people["tag"], True), people["env"])
    time.sleep(CHANGE_SEEN_SECONDS)
    with acting_as(people["prompt_a"]):
        assert _load(f"prompts:/{prompt}/1").template == "Hello {{name}}!"


def _optimizer_policy(tag: str, writable: str) -> dict:
    """Runs optimization jobs on team b's prompts; may add versions to `writable` only."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "mlflow:CreatePromptOptimizationJob",
        "Resource": ["arn:mlflow:*:*:experiment/*", f"arn:mlflow:*:*:prompt/pb-{tag}-*"],
    }, {
        "Effect": "Allow", "Action": "mlflow:CreateModelVersion",
        "Resource": f"arn:mlflow:*:*:prompt/{writable}",
    }]}


def _create_optimization_job(stack, who, uri: str) -> requests.Response:
    return requests.post(f"{stack.url}/api/3.0/mlflow/prompt-optimization/jobs",
                         json={"experiment_id": "0", "source_prompt_uri": uri, "config": {}},
                         auth=who.requests_auth(), timeout=30)


def test_prompt_optimization_jobs_are_decided_on_their_source_prompt(stack, people, prompt, tmp_path):
    """A job reads its source prompt and adds versions to it: the right to run jobs in an
    experiment does not reach another team's prompt through `source_prompt_uri`."""
    tag = people["tag"]
    own = f"pb-{tag}-opt"
    with acting_as(people["prompt_b"]):
        mlflow.genai.register_prompt(name=own, template="Hi {{name}}")
    (optimizer,) = users_with_policy(stack, f"promptopt-{tag}", _optimizer_policy(tag, own),
                                     tmp_path, 1)

    def create(uri: str) -> requests.Response:
        return _create_optimization_job(stack, optimizer, uri)

    for uri in (f"prompts:/{prompt}/1", f"prompts:/{prompt}@champion"):
        resp = create(uri)
        _refused(resp)
        assert f"prompt/{prompt}" in resp.json()["message"], resp.text
    # Spellings MLflow would read past (an authority, `;params`) are refused outright.
    for uri in (f"prompts://host/{prompt}/1", f"prompts:/{prompt}/1;x"):
        assert create(uri).status_code == 400
    # Its own prompt passes mlgate (MLflow then judges the empty config).
    resp = create(f"prompts:/{own}/1")
    assert resp.status_code != 403, resp.text


def test_a_prompt_optimization_job_needs_the_right_to_add_a_version_to_its_prompt(
        stack, people, tmp_path):
    """The job registers its result as a new version of the source prompt: that write is
    decided (mlflow:CreateModelVersion on the prompt), not only the job's own action."""
    tag = people["tag"]
    writable, read_only = f"pb-{tag}-w", f"pb-{tag}-ro"
    with acting_as(people["prompt_b"]):
        for name in (writable, read_only):
            mlflow.genai.register_prompt(name=name, template="Hi {{name}}")
    (optimizer,) = users_with_policy(stack, f"promptver-{tag}",
                                     _optimizer_policy(tag, writable), tmp_path, 1)
    resp = _create_optimization_job(stack, optimizer, f"prompts:/{read_only}/1")
    _refused(resp)
    assert "mlflow:CreateModelVersion" in resp.json()["message"], resp.text
    assert f"prompt/{read_only}" in resp.json()["message"], resp.text
    resp = _create_optimization_job(stack, optimizer, f"prompts:/{writable}/1")
    assert resp.status_code != 403, resp.text


def test_the_prompt_a_job_adds_a_version_to_is_decided_with_its_tags(stack, people, tmp_path):
    """The prompt a job writes to carries its condition keys (`mlflow:PromptTag/<k>`), as a
    request naming that prompt does: a tag-conditioned grant is met, or refused, by its tags."""
    tag = people["tag"]
    tagged, untagged = f"pb-{tag}-tagged", f"pb-{tag}-untagged"
    with acting_as(people["prompt_b"]):
        for name in (tagged, untagged):
            mlflow.genai.register_prompt(name=name, template="Hi {{name}}")
        mlflow.genai.set_prompt_tag(tagged, "optimizable", "yes")
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "mlflow:CreatePromptOptimizationJob",
        "Resource": ["arn:mlflow:*:*:experiment/*", f"arn:mlflow:*:*:prompt/pb-{tag}-*"],
    }, {
        "Effect": "Allow", "Action": "mlflow:CreateModelVersion",
        "Resource": f"arn:mlflow:*:*:prompt/pb-{tag}-*",
        "Condition": {"StringEquals": {"mlflow:PromptTag/optimizable": "yes"}},
    }]}
    (optimizer,) = users_with_policy(stack, f"prompttag-{tag}", policy, tmp_path, 1)
    resp = _create_optimization_job(stack, optimizer, f"prompts:/{tagged}/1")
    assert resp.status_code != 403, resp.text
    resp = _create_optimization_job(stack, optimizer, f"prompts:/{untagged}/1")
    _refused(resp)
    assert f"prompt/{untagged}" in resp.json()["message"], resp.text


def test_a_deny_grant_vetoes_what_another_grant_allows(stack, admin):
    # docs/permission-levels.md: `mlgate grant --user dave --level DENY --experiments 'finance/*'`
    # wins over every allow, here a MANAGE on everything of the team.
    tag = uuid.uuid4().hex[:6]
    dave = Identity(f"dave-{tag}", uuid.uuid4().hex)
    stack.mlgate("user", "create", dave.name, "--password-env", "PW", env={"PW": dave.password})
    team, finance = f"team-{tag}/*", f"team-{tag}/finance*"
    stack.mlgate("grant", "--user", dave.name, "--level", "MANAGE", "--experiments", team)
    stack.mlgate("grant", "--user", dave.name, "--level", "DENY", "--experiments", finance)
    with acting_as(admin) as client:
        vetoed = client.create_experiment(f"team-{tag}/finance-q4")
    with acting_as(dave) as client:
        mine = client.create_experiment(f"team-{tag}/churn")
        client.set_experiment_tag(mine, "k", "v")
        denied(lambda: client.get_experiment(vetoed))
        denied(lambda: client.set_experiment_tag(vetoed, "k", "v"))
        denied(lambda: client.create_experiment(f"team-{tag}/finance-q5"))
        listed = {e.experiment_id for e in client.search_experiments(max_results=1000)}
        assert mine in listed and vetoed not in listed
    # Revoking the DENY (detaching its policy) gives the team's MANAGE back.
    stack.mlgate("policy", "detach", f"grant.deny.experiments.team-{tag}_finance@", "--user", dave.name)
    time.sleep(CHANGE_SEEN_SECONDS)
    with acting_as(dave) as client:
        assert client.get_experiment(vetoed).experiment_id == vetoed
