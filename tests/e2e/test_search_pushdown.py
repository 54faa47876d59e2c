"""A filtered experiment search asks MLflow only for names the caller's policies can allow.

When every statement that could let a user read experiments requires the name to start with
one text (`mlgate grant --experiments 'team-a/*'`), mlgate ANDs `name LIKE 'team-a/%'` to the
caller's filter upstream (docs/filtering.md, "Narrowing the upstream search"), and still decides
every item. These tests compare, page by page with the real MLflow client, what such a user gets
with what the admin sees of the same experiments, and read from the audit log that MLflow was
asked the narrowed question (and returned nothing mlgate had to drop)."""

from __future__ import annotations

import uuid

import pytest

from support import Identity, acting_as

PAGE = 4


def _all(client, flt=None):
    """Every experiment of the search, page by page; and how many pages it took."""
    items, token, pages = [], None, 0
    while True:
        page = client.search_experiments(filter_string=flt, max_results=PAGE, page_token=token)
        pages += 1
        items.extend(page)
        token = page.token
        if not token:
            return items, pages


@pytest.fixture(scope="module")
def estate(stack, admin):
    """Two prefixes of experiments, every third one tagged; a user granted READ on one prefix."""
    tag = uuid.uuid4().hex[:8]
    prefixes = {side: f"pd-{tag}-{side}/" for side in ("a", "b")}
    with acting_as(admin) as client:
        for i in range(9):
            for side, prefix in prefixes.items():
                exp = client.create_experiment(f"{prefix}{i}")
                if i % 3 == 0:
                    client.set_experiment_tag(exp, "stage", "prod")
    user = f"pd-{tag}"
    password = uuid.uuid4().hex
    stack.mlgate("user", "create", user, "--password-env", "PD_PW", env={"PD_PW": password})
    stack.mlgate("grant", "--user", user, "--level", "READ", "--experiments", f"{prefixes['a']}*")
    return {"prefixes": prefixes, "granted": Identity(user, password)}


def _expected(admin, prefix: str, flt=None):
    """What the admin sees of the experiments named `prefix...`, in MLflow's order."""
    with acting_as(admin) as client:
        everything, _ = _all(client, flt)
    return [e.experiment_id for e in everything if e.name.startswith(prefix)]


def _search_reasons(records, user):
    return [
        r.get("reason") or ""
        for r in records
        if (r.get("principal") or "").endswith(f":user/{user}") and "mlflow:SearchExperiments" in r["actions"]
    ]


@pytest.mark.parametrize("flt", [None, "tags.stage = 'prod'"])
def test_a_granted_prefix_narrows_the_upstream_search_and_the_pages_stay_the_same(
    stack, admin, audit, estate, flt
):
    prefix = estate["prefixes"]["a"]
    expected = _expected(admin, prefix, flt)
    assert expected, "the estate has experiments of the granted prefix"
    mark = audit.mark()
    with acting_as(estate["granted"]) as client:
        seen, pages = _all(client, flt)
    assert [e.experiment_id for e in seen] == expected
    assert pages == -(-len(expected) // PAGE), "pages are full while more readable items exist"

    reasons = _search_reasons(audit.wait_for(mark, pages), estate["granted"].name)
    assert len(reasons) == pages, reasons
    clause = f"name LIKE '{prefix}%'"
    narrowed = clause if flt is None else f"{flt} AND {clause}"
    for reason in reasons:
        assert f'MLflow searched with filter "{narrowed}"' in reason, reason
        listed, of = reason.split("search filtered: ")[1].split(" item(s)")[0].split(" of ")
        assert listed == of, f"MLflow returned items mlgate dropped: {reason}"


def test_a_policy_that_reads_any_name_is_not_narrowed(stack, reader, audit, estate):
    mark = audit.mark()
    with acting_as(reader) as client:
        seen = client.search_experiments(filter_string="name LIKE 'pd-%'", max_results=PAGE)
    assert len(seen) == PAGE
    reasons = _search_reasons(audit.wait_for(mark, 1), reader.name)
    assert reasons and all("MLflow searched with filter" not in r for r in reasons), reasons
