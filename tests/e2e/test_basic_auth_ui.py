"""MLflow 3.17's own admin and account pages behind mlgate, in headless Chromium
(tests/browser/admin.test.mjs): an admin creates a user and a role with the UI's controls and
grants the role READ on one experiment; the user then sees exactly that experiment and manages
their own account. What the pages did is ordinary mlgate state, journaled with the admin's name."""

from conftest import unique
from support import acting_as, run_browser_test
from test_audit_admin_changes import wait_for_change


def test_the_admin_pages_create_a_user_who_sees_exactly_the_granted_experiment(stack, admin):
    user, role = unique("ui-admin-made"), unique("ui-readers")
    with acting_as(admin) as client:
        granted_name, other = unique("ui-granted"), unique("ui-not-granted")
        granted = client.create_experiment(granted_name)
        client.create_experiment(other)
    r = run_browser_test("admin.test.mjs", {
        "MLGATE_URL": stack.url,
        "ADMIN_USER": admin.name,
        "ADMIN_PASSWORD": admin.password,
        "NEW_USER": user,
        "NEW_PASSWORD": unique("pw"),
        "ROLE": role,
        "GRANTED_EXPERIMENT": granted_name,
        "GRANTED_ID": granted,
        "OTHER_EXPERIMENT": other,
    })  # fmt: skip
    assert r.returncode == 0, f"{r.stdout[-6000:]}\n{r.stderr[-3000:]}"

    # The role is the group mlflow-role.default.<role>, the permission the generated grant policy,
    # the user an ordinary mlgate user in that group: all visible to the CLI.
    group = f"mlflow-role.default.{role}"
    assert user in stack.mlgate("user", "list").stdout
    effective = stack.mlgate("policy", "effective", "--user", user).stdout
    assert f"grant.read.experiment-id.{granted}" in effective and group in effective, effective
    admin_arn = f"arn:aws:iam::111111111111:user/{admin.name}"
    for action in ("CreateUser", "CreateGroup", "AddUserToGroup"):
        change = wait_for_change(stack.audit_log, action=action)
        assert change["actor"]["arn"] == admin_arn, change
