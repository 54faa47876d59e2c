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
    await b.page.goto(`${MLGATE}/`);
    assertAt(b.page, ORIGIN, '/_mlgate/login', 'an unauthenticated browser is sent to the sign-in page');
    await b.page.fill('#username', MLGATE_USER);
    await b.page.fill('#password', MLGATE_PASSWORD);
    await Promise.all([b.page.waitForURL(at(ORIGIN, '/')), b.page.click('button[type=submit]')]);
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
