// MLflow's own admin and account pages (#/admin, #/admin/roles/<id>, #/account) behind mlgate, in
// headless Chromium: an admin creates a user and a role with the UI's controls, grants the role
// READ on one experiment and assigns the user; that user then sees exactly that experiment, their
// account page, and changes their password there. Started by tests/e2e/test_basic_auth_ui.py, which
// sets:
//
//   MLGATE_URL                    mlgate's URL
//   ADMIN_USER, ADMIN_PASSWORD    a member of the group admins
//   NEW_USER, NEW_PASSWORD        the user to create (does not exist yet)
//   ROLE                          the role to create
//   GRANTED_EXPERIMENT, GRANTED_ID  the experiment the role may read (name, id)
//   OTHER_EXPERIMENT              an experiment nobody grants the user (must not be listed)
//   CHROMIUM, SCREENSHOT_DIR as in lib.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAt, at, browser, shot } from './lib.mjs';

const MLGATE = process.env.MLGATE_URL.replace(/\/$/, '');
const ORIGIN = new URL(MLGATE).origin;
const { ADMIN_USER, ADMIN_PASSWORD, NEW_USER, NEW_PASSWORD, ROLE } = process.env;
const { GRANTED_EXPERIMENT, GRANTED_ID, OTHER_EXPERIMENT } = process.env;
const CHANGED_PASSWORD = `${NEW_PASSWORD}-changed`;

const byId = (page, id) => page.locator(`[data-component-id="${id}"]`);

async function signIn(page, user, password) {
  await page.goto(`${MLGATE}/`);
  assertAt(page, ORIGIN, '/_mlgate/login', 'an unauthenticated browser is sent to the sign-in page');
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(at(ORIGIN, '/')), page.click('button[type=submit]')]);
}

/** Every answer mlgate gives to the pages' calls of MLflow's auth API (users, roles,
 *  permissions), printed on failure: each must be a success. */
function recordAuthApi(page) {
  const answers = [];
  page.on('response', async (r) => {
    const url = new URL(r.url());
    if (url.origin === ORIGIN && /^\/ajax-api\/[23]\.0\/mlflow\/(users|roles)\//.test(url.pathname)) {
      let body = '';
      try {
        body = await r.text();
      } catch {
        // A body the page never read (navigation): the status is what counts.
      }
      answers.push({ method: r.request().method(), path: url.pathname + url.search, status: r.status(), body });
    }
  });
  return answers;
}

function assertAllSucceeded(answers) {
  const failed = answers.filter((a) => a.status !== 200);
  assert.deepEqual(failed, [], 'every auth API call of the pages succeeded');
}

/** The first response to `method path` after `action`, which must be a success. Its body is
 *  read only when asked for: after some answers (a password change) the page navigates, and a
 *  body nobody read is gone. */
async function answered(page, method, path, action) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && new URL(r.url()).pathname === path),
    action(),
  ]);
  if (response.status() !== 200) {
    const body = await response.text().catch(() => '(body gone)');
    assert.fail(`${method} ${path}: ${response.status()} ${body}`);
  }
  return response;
}

let roleId;

test('an admin creates a user and a role reading one experiment with the admin pages', async () => {
  const b = await browser();
  const answers = recordAuthApi(b.page);
  const page = b.page;
  try {
    await signIn(page, ADMIN_USER, ADMIN_PASSWORD);
    await page.goto(`${MLGATE}/#/admin`);
    await byId(page, 'admin.users.create_button').waitFor({ state: 'visible', timeout: 60000 })
      .finally(() => shot(page, 'admin-pages-1-admin-1-users'));

    await byId(page, 'admin.users.create_button').click();
    await page.getByPlaceholder('Enter username').fill(NEW_USER);
    await page.getByPlaceholder('Enter password').fill(NEW_PASSWORD);
    await shot(page, 'admin-pages-1-admin-2-create-user');
    const created = await answered(page, 'POST', '/ajax-api/2.0/mlflow/users/create',
      () => byId(page, 'admin.create_user_modal.submit').click());
    assert.equal((await created.json()).user.username, NEW_USER);
    await page.getByRole('link', { name: NEW_USER, exact: true }).waitFor({ state: 'visible' });

    await page.getByRole('tab', { name: 'Roles' }).click();
    await page.getByRole('button', { name: 'Create Role', exact: true }).click();
    await page.getByPlaceholder('Enter role name').fill(ROLE);
    await page.getByRole('button', { name: 'Permissions' }).click();
    await page.getByLabel('Specific experiment').check();
    await byId(page, 'admin.role_permission_form.resource_id').click();
    await page.getByRole('option', { name: `${GRANTED_EXPERIMENT} (${GRANTED_ID})` }).click();
    // The level stays the form's default, READ.
    await assert.doesNotReject(byId(page, 'admin.role_permission_form.permission_level')
      .getByText('READ', { exact: true }).waitFor({ state: 'visible' }));
    await byId(page, 'admin.role_permissions.add').click();
    await page.getByRole('button', { name: 'Assign users' }).click();
    await byId(page, 'admin.role_users.users').click();
    await page.getByRole('option', { name: NEW_USER, exact: true }).click();
    await page.keyboard.press('Escape');
    await shot(page, 'admin-pages-1-admin-3-create-role');
    const [role] = await Promise.all([
      answered(page, 'POST', '/ajax-api/3.0/mlflow/roles/create', async () => {}),
      page.waitForResponse((r) => new URL(r.url()).pathname === '/ajax-api/3.0/mlflow/roles/assign'),
      byId(page, 'admin.create_role_modal.submit').click(),
    ]);
    roleId = (await role.json()).role.id;
    // The dialog closes when every follow-up (permission, assignment) succeeded.
    await byId(page, 'admin.create_role_modal.submit').waitFor({ state: 'hidden' });
    await page.getByRole('link', { name: ROLE, exact: true }).waitFor({ state: 'visible' });
    await shot(page, 'admin-pages-1-admin-4-roles');

    // The role's page reads back what was granted, and to whom.
    await page.goto(`${MLGATE}/#/admin/roles/${roleId}`);
    const permissions = page.getByRole('row').filter({ hasText: 'experiment' });
    await permissions.first().waitFor({ state: 'visible' });
    assert.match(await permissions.first().innerText(), new RegExp(`experiment\\s+${GRANTED_ID}\\s+READ`));
    await shot(page, 'admin-pages-1-admin-5-role-detail');
    await page.goto(`${MLGATE}/#/admin/users/${NEW_USER}`);
    await page.getByText(ROLE, { exact: true }).first().waitFor({ state: 'visible' });
    await shot(page, 'admin-pages-1-admin-6-user-detail');
    assertAllSucceeded(answers);
  } finally {
    console.log('auth API answers (admin):', JSON.stringify(answers.map(({ body, ...a }) => a)));
    await b.close();
  }
});

test('the new user sees exactly the granted experiment, and not the admin pages', async () => {
  assert.ok(roleId, 'the admin test created the role');
  const b = await browser();
  const page = b.page;
  const answers = [];
  page.on('response', (r) => {
    const url = new URL(r.url());
    if (url.origin === ORIGIN && /^\/(ajax-api|graphql)/.test(url.pathname)) {
      answers.push({ path: url.pathname, status: r.status() });
    }
  });
  try {
    await signIn(page, NEW_USER, NEW_PASSWORD);
    await page.goto(`${MLGATE}/#/experiments`);
    await page.getByText(GRANTED_EXPERIMENT, { exact: true }).first().waitFor({ state: 'visible', timeout: 60000 })
      .finally(() => shot(page, 'admin-pages-2-user-1-experiments'));
    assert.equal(await page.getByText(OTHER_EXPERIMENT, { exact: true }).count(), 0,
      'an experiment the role does not grant is not listed');
    await page.getByText(GRANTED_EXPERIMENT, { exact: true }).first().click();
    await page.waitForURL((u) => new URL(u).hash.startsWith(`#/experiments/${GRANTED_ID}`));
    await shot(page, 'admin-pages-2-user-2-experiment');
    // Nothing the experiment pages ask is refused but the optional assistant panel's settings.
    const refused = answers.filter((a) => a.status === 403 && !a.path.includes('/mlflow/assistant/'));
    assert.deepEqual(refused, [], 'the experiment pages work for the reader');

    // The admin pages are for admins: mlgate refuses their calls to this user.
    const list = await page.evaluate(async () => {
      const r = await fetch('/ajax-api/2.0/mlflow/users/list');
      return { status: r.status, body: await r.json() };
    });
    assert.equal(list.status, 403);
    assert.equal(list.body.error_code, 'PERMISSION_DENIED');
  } finally {
    await b.close();
  }
});

test('the new user reads their account page and changes their password there', async () => {
  const b = await browser();
  const page = b.page;
  const answers = recordAuthApi(page);
  try {
    await signIn(page, NEW_USER, NEW_PASSWORD);
    await page.goto(`${MLGATE}/#/account`);
    await page.getByText(`Logged in as ${NEW_USER}`).waitFor({ state: 'visible', timeout: 60000 })
      .finally(() => shot(page, 'admin-pages-3-account-1-roles'));
    await page.getByText(ROLE, { exact: true }).first().waitFor({ state: 'visible' });
    await page.getByRole('tab', { name: 'Permissions' }).click();
    await page.getByRole('row').filter({ hasText: GRANTED_ID }).first().waitFor({ state: 'visible' });
    await shot(page, 'admin-pages-3-account-2-permissions');

    await byId(page, 'account.change_password_button').click();
    await byId(page, 'account.current_password').fill(NEW_PASSWORD);
    await byId(page, 'account.new_password').fill(CHANGED_PASSWORD);
    await byId(page, 'account.confirm_password').fill(CHANGED_PASSWORD);
    await shot(page, 'admin-pages-3-account-3-change-password');
    const dialog = page.getByRole('dialog');
    await answered(page, 'PATCH', '/ajax-api/2.0/mlflow/users/update-password',
      () => dialog.getByRole('button', { name: 'Update password' }).click());
    assertAllSucceeded(answers);
  } finally {
    console.log('auth API answers (account):', JSON.stringify(answers.map(({ body, ...a }) => a)));
    await b.close();
  }
  // The new password signs in; the old one no longer does.
  const again = await browser();
  try {
    await signIn(again.page, NEW_USER, CHANGED_PASSWORD);
    await again.page.goto(`${MLGATE}/#/account`);
    await again.page.getByText(`Logged in as ${NEW_USER}`).waitFor({ state: 'visible', timeout: 60000 });
    await shot(again.page, 'admin-pages-3-account-4-new-password');
  } finally {
    await again.close();
  }
  const old = await fetch(`${MLGATE}/api/2.0/mlflow/experiments/get?experiment_id=${GRANTED_ID}`, {
    headers: { Authorization: `Basic ${Buffer.from(`${NEW_USER}:${NEW_PASSWORD}`).toString('base64')}` },
  });
  assert.equal(old.status, 401, 'the old password is refused');
});
