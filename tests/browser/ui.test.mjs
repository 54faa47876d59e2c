// The MLflow UI behind mlgate for a user signed in with mlgate's own form, in headless Chromium.
// Started by tests/e2e/test_docs_policies.py, which creates the user with the README's "policy
// variables" example and two experiments, and sets:
//
//   MLGATE_URL       mlgate's URL               MLGATE_USER, MLGATE_PASSWORD  the user
//   OWN_EXPERIMENT   an experiment named after the user (must be listed)
//   OTHER_EXPERIMENT another user's experiment, updated later (must not be listed)
//   CHROMIUM, SCREENSHOT_DIR as in lib.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAt, at, browser, shot } from './lib.mjs';

const MLGATE = process.env.MLGATE_URL.replace(/\/$/, '');
const ORIGIN = new URL(MLGATE).origin;
const { MLGATE_USER, MLGATE_PASSWORD, OWN_EXPERIMENT, OTHER_EXPERIMENT } = process.env;

async function signIn(page) {
  await page.goto(`${MLGATE}/`);
  assertAt(page, ORIGIN, '/_mlgate/login', 'an unauthenticated browser is sent to the sign-in page');
  await page.fill('#username', MLGATE_USER);
  await page.fill('#password', MLGATE_PASSWORD);
  await Promise.all([page.waitForURL(at(ORIGIN, '/')), page.click('button[type=submit]')]);
}

test('the UI shows who is signed in, and its Logout ends the mlgate session', async () => {
  const b = await browser();
  try {
    await signIn(b.page);
    const [session] = (await b.page.context().cookies(MLGATE)).filter((c) => c.name.includes('mlgate_session'));
    assert.ok(session, 'the sign-in set the session cookie');
    await b.page.goto(`${MLGATE}/#/experiments`);
    // MLflow's sidebar asks users/current and shows the account menu with the user's name.
    const account = b.page.getByRole('button', { name: `Account menu for ${MLGATE_USER}` });
    await account.waitFor({ state: 'visible', timeout: 60000 }).finally(() => shot(b.page, 'account-1-signed-in'));
    await account.click();
    const logout = b.page.getByRole('menuitem', { name: 'Logout' });
    await logout.waitFor({ state: 'visible' });
    await shot(b.page, 'account-2-menu');
    const asked = [];
    b.page.on('response', async (r) => {
      if (r.url().includes('/users/current')) {
        asked.push({ status: r.status(), authorization: (await r.request().allHeaders()).authorization });
      }
    });
    await Promise.all([b.page.waitForURL(at(ORIGIN, '/_mlgate/login'), { timeout: 60000 }), logout.click()])
      .finally(() => console.log('users/current during the sign-out:', JSON.stringify(asked)));
    await shot(b.page, 'account-3-signed-out');
    // The session is gone on the server, not only from this browser.
    const replayed = await fetch(`${MLGATE}/ajax-api/2.0/mlflow/users/current`, {
      headers: { Cookie: `${session.name}=${session.value}`, Accept: 'application/json' },
    });
    assert.equal(replayed.status, 401, 'the old session cookie no longer signs anyone in');
  } finally {
    await b.close();
  }
});

test('the README policy-variables user sees exactly their own experiments in the UI list', async () => {
  const b = await browser();
  // Every answer mlgate gives the UI's own calls, to show refusals in the report.
  const answers = [];
  b.page.on('response', (r) => {
    const url = new URL(r.url());
    if (url.origin === ORIGIN && /^\/(ajax-api|graphql)/.test(url.pathname)) {
      answers.push({ path: url.pathname, status: r.status() });
    }
  });
  try {
    await signIn(b.page);
    await b.page.goto(`${MLGATE}/#/experiments`);
    const listed = b.page.getByText(OWN_EXPERIMENT, { exact: true }).first();
    await listed.waitFor({ state: 'visible', timeout: 60000 }).finally(async () => {
      await shot(b.page, 'own-experiments-1-list');
      console.log('answers to the UI:', JSON.stringify(answers));
    });
    assert.equal(await b.page.getByText(OTHER_EXPERIMENT, { exact: true }).count(), 0,
      'another user\'s experiment is not listed');
    // The UI works: nothing it asks is refused but the optional assistant panel's settings.
    const refused = answers.filter((a) => a.status === 403 && !a.path.includes('/mlflow/assistant/'));
    assert.deepEqual(refused, [], 'the UI\'s calls are allowed');
    const searches = answers.filter((a) => a.path.endsWith('/mlflow/experiments/search'));
    assert.ok(searches.length > 0 && searches.every((a) => a.status === 200),
      `the list's searches are answered: ${JSON.stringify(searches)}`);
    // Their experiment's page: the UI's calls for it (its runs, traces, GraphQL) are allowed too.
    answers.length = 0;
    const answered = (path) => b.page.waitForResponse((r) => at(ORIGIN, path)(r.url()));
    await Promise.all([
      answered('/ajax-api/2.0/mlflow/runs/search'),
      answered('/graphql'),
      answered('/ajax-api/3.0/mlflow/traces/metrics'),
      listed.click(),
    ]);
    await shot(b.page, 'own-experiments-2-experiment');
    console.log('answers to the experiment page:', JSON.stringify(answers));
    assert.ok(answers.some((a) => a.path.endsWith('/mlflow/runs/search') && a.status === 200));
    assert.deepEqual(answers.filter((a) => a.status === 403 && !a.path.includes('/mlflow/assistant/')), [],
      'the experiment page\'s calls are allowed');
  } finally {
    await b.close();
  }
});
