// Browser single sign-on through a real OpenID provider, in headless Chromium (Debian's
// `chromium`, driven by playwright-core). Started by tests/e2e/test_oidc.py, which brings up
// MLflow, mlgate (with the OIDC configuration) and the provider (tests/idp/server.mjs), and sets:
//
//   MLGATE_URL      mlgate's URL                 IDP_URL         the provider's issuer URL
//   OIDC_PROVIDER   mlgate's name for it          CHROMIUM        the browser (/usr/bin/chromium)
//   SCREENSHOT_DIR  where the screenshots of each step go (gitignored test output)
//
// Users of the provider: alice (ml-writers → admins), bob (ml-readers → readers),
// carol (marketing → no mlgate group). Password: "<name>-password".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAt, at, browser, shot } from './lib.mjs';

const MLGATE = (process.env.MLGATE_URL || 'http://127.0.0.1:5000').replace(/\/$/, '');
const IDP = (process.env.IDP_URL || 'http://127.0.0.1:9400').replace(/\/$/, '');
const PROVIDER = process.env.OIDC_PROVIDER || 'local';
// An experiment the signed-in user may read, recent enough to be on the list's first page.
const EXPERIMENT = process.env.EXPERIMENT_NAME || 'Default';

// Where the browser is, by exact origin (scheme, host and port) and path (`at`).
const MLGATE_ORIGIN = new URL(MLGATE).origin;
const IDP_ORIGIN = new URL(IDP).origin;
assert.notEqual(MLGATE_ORIGIN, IDP_ORIGIN, 'mlgate and the provider need distinct origins');
const LOGIN_PATH = '/_mlgate/login';
const CALLBACK_PATH = `/_mlgate/oidc/${PROVIDER}/callback`;
// The provider's sign-in page (the interaction URL of tests/idp/server.mjs).
const IDP_LOGIN_PATH = /^\/interaction\/[^/]+$/;
// The provider's sign-out page: its end-session endpoint, from its discovery document.
const IDP_LOGOUT_PATH = await (async () => {
  const r = await fetch(`${IDP}/.well-known/openid-configuration`);
  assert.equal(r.status, 200, 'the provider publishes its discovery document');
  const end = new URL((await r.json()).end_session_endpoint);
  assert.equal(end.origin, IDP_ORIGIN, 'the end-session endpoint is on the provider');
  return end.pathname;
})();

/**
 * From mlgate's sign-in page through the provider's login form and back to mlgate.
 * `status` is what mlgate's callback must answer: 303 (signed in, on to the UI) or the status of
 * its error page. Returns once the page the callback leads to has loaded.
 */
async function signIn(page, user, step, status = 303) {
  await page.goto(`${MLGATE}/`);
  assertAt(page, MLGATE_ORIGIN, LOGIN_PATH, 'an unauthenticated browser is sent to the sign-in page');
  await shot(page, `${step}-1-mlgate-login`);
  await toProvider(page);
  await page.fill('#login', user);
  await page.fill('#password', `${user}-password`);
  await shot(page, `${step}-2-provider-login`);
  return await backFromProvider(page, '#submit', status);
}

/** Clicks the sign-in button on mlgate's sign-in page; returns on the provider's login form. */
async function toProvider(page) {
  await Promise.all([page.waitForURL(at(IDP_ORIGIN, IDP_LOGIN_PATH)), page.click(`#sso-${PROVIDER}`)]);
  await page.waitForSelector('#login');
}

/**
 * Clicks `button` on the provider's page and follows the browser back to mlgate: waits for the
 * answer of mlgate's callback (the request that sets the session cookie), checks its status, then
 * waits until the page it leads to has loaded: the UI at `/` (where the sign-in started) after a
 * sign-in, the callback's own error page otherwise. A callback that fails is reported with its
 * page, instead of surfacing later as a 401.
 */
async function backFromProvider(page, button, status) {
  const [callback] = await Promise.all([
    page.waitForResponse((r) => at(MLGATE_ORIGIN, CALLBACK_PATH)(r.url())),
    page.click(button),
  ]);
  // Where the callback leads: its redirect target after a sign-in, else its own error page.
  const landing = callback.status() === 303 ? new URL(callback.headers().location, MLGATE).pathname : CALLBACK_PATH;
  if (callback.status() !== status) {
    await page.waitForURL(at(MLGATE_ORIGIN, landing), { timeout: 10000 }).catch(() => {});
    const body = await page.innerText('body').catch((e) => `(no page: ${e.message})`);
    assert.fail(`mlgate's callback answered ${callback.status()}, expected ${status}; the browser is at ${page.url()}: ${body}`);
  }
  if (status === 303) {
    assert.equal(landing, '/', 'the callback sends the browser back where the sign-in started');
    const cookies = await callback.headerValues('set-cookie');
    assert.ok(cookies.some((c) => c.startsWith('mlgate_session=')), `the callback sets the session cookie: ${cookies}`);
  }
  // `waitForURL` also waits for the page's load event.
  await page.waitForURL(at(MLGATE_ORIGIN, landing));
  return callback;
}

/** `/_mlgate/whoami` with the browser's cookies (mlgate's own pages allow no script fetches). */
async function whoami(page) {
  const r = await page.context().request.get(`${MLGATE}/_mlgate/whoami`);
  return { status: r.status(), body: await r.json() };
}

async function expectExperimentsList(page, step) {
  await page.goto(`${MLGATE}/#/experiments`);
  await page.getByText(EXPERIMENT, { exact: true }).first().waitFor({ state: 'visible', timeout: 60000 });
  await shot(page, step);
}

test('a writer signs in through the provider and sees the experiments list', async () => {
  const b = await browser();
  try {
    await signIn(b.page, 'alice', 'alice');
    const who = await whoami(b.page);
    assert.equal(who.status, 200, JSON.stringify(who.body));
    assert.equal(who.body.name, 'alice');
    assert.deepEqual(who.body.groups, ['admins']);
    assert.equal(who.body.auth_method, 'session');
    assert.match(who.body.arn, new RegExp(`:user/${PROVIDER}/alice$`));
    await expectExperimentsList(b.page, 'alice-3-experiments');
    // A writer may create an experiment from the page (the UI's own ajax-api call).
    const created = await b.page.evaluate(async (name) => {
      const r = await fetch('/ajax-api/2.0/mlflow/experiments/create', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }),
      });
      return { status: r.status, body: await r.json() };
    }, `browser-alice-${Date.now()}`);
    assert.equal(created.status, 200, JSON.stringify(created.body));
  } finally {
    await b.close();
  }
});

test('a reader sees the experiments list, is refused edits, and sign-out ends the session', async () => {
  const b = await browser();
  try {
    await signIn(b.page, 'bob', 'bob');
    await expectExperimentsList(b.page, 'bob-3-experiments');
    const refused = await b.page.evaluate(async (name) => {
      const r = await fetch('/ajax-api/2.0/mlflow/experiments/create', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }),
      });
      return { status: r.status, body: await r.json() };
    }, `browser-bob-${Date.now()}`);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.error_code, 'PERMISSION_DENIED');
    assert.match(refused.body.message, /user\/local\/bob is not authorized to perform mlflow:CreateExperiment/);
    // Show the refusal in the page for the screenshot.
    await b.page.evaluate((msg) => {
      const d = document.createElement('pre');
      d.id = 'refusal';
      d.style.cssText = 'position:fixed;bottom:0;left:0;right:0;background:#fee;padding:8px;z-index:99999';
      d.textContent = `POST /ajax-api/2.0/mlflow/experiments/create → ${msg}`;
      document.body.appendChild(d);
    }, `${refused.status} ${JSON.stringify(refused.body)}`);
    await shot(b.page, 'bob-4-edit-refused');

    // Sign out: mlgate ends the session, then the provider's end-session endpoint.
    await b.page.goto(`${MLGATE}/_mlgate/logout`);
    await shot(b.page, 'bob-5-signout');
    // mlgate's signed-out page forwards the browser to the provider (meta refresh).
    await Promise.all([
      b.page.waitForURL(at(IDP_ORIGIN, IDP_LOGOUT_PATH)),
      b.page.click('button[type=submit]'),
    ]);
    await b.page.waitForSelector('#idp-logout');
    await shot(b.page, 'bob-6-provider-signout');
    await Promise.all([
      b.page.waitForURL(at(MLGATE_ORIGIN, LOGIN_PATH)),
      b.page.click('#idp-logout'),
    ]);
    await shot(b.page, 'bob-7-signed-out');
    const who = await whoami(b.page);
    assert.equal(who.status, 401, `the session has ended: ${JSON.stringify(who.body)}`);
    await b.page.goto(`${MLGATE}/`);
    assertAt(b.page, MLGATE_ORIGIN, LOGIN_PATH, 'the UI asks for sign-in again');
    // The provider's session ended too: signing in asks for the password again.
    await toProvider(b.page);
    await shot(b.page, 'bob-8-provider-asks-again');
  } finally {
    await b.close();
  }
});

test('a user with no mapped group gets a clear page and no session', async () => {
  const b = await browser();
  try {
    await signIn(b.page, 'carol', 'carol', 403);
    assert.match(await b.page.textContent('h1'), /No access to MLflow/);
    assert.match(await b.page.textContent('body'), /none of your groups/);
    await shot(b.page, 'carol-3-no-mapped-group');
    assert.equal((await whoami(b.page)).status, 401);
  } finally {
    await b.close();
  }
});

test('a sign-in the provider refuses gets a clear page', async () => {
  const b = await browser();
  try {
    await b.page.goto(`${MLGATE}/_mlgate/login`);
    await toProvider(b.page);
    await backFromProvider(b.page, '#abort', 401);
    assert.match(await b.page.textContent('h1'), /Sign-in refused/);
    assert.match(await b.page.textContent('body'), /access_denied/);
    await shot(b.page, 'refused-1-provider-refused');
    assert.equal((await whoami(b.page)).status, 401);
  } finally {
    await b.close();
  }
});
