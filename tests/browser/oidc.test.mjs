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
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const MLGATE = (process.env.MLGATE_URL || 'http://127.0.0.1:5000').replace(/\/$/, '');
const IDP = (process.env.IDP_URL || 'http://127.0.0.1:9400').replace(/\/$/, '');
const PROVIDER = process.env.OIDC_PROVIDER || 'local';
// An experiment the signed-in user may read, recent enough to be on the list's first page.
const EXPERIMENT = process.env.EXPERIMENT_NAME || 'Default';
const SHOTS = process.env.SCREENSHOT_DIR || new URL('./screenshots', import.meta.url).pathname;
mkdirSync(SHOTS, { recursive: true });

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A fresh browser profile (own --user-data-dir), closed and removed by the caller. */
async function browser() {
  const dir = mkdtempSync(join(tmpdir(), 'mlgate-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 860 },
  });
  context.setDefaultTimeout(30000);
  const page = context.pages()[0] || (await context.newPage());
  return {
    page,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** From mlgate's sign-in page through the provider's login form; returns after the redirect back. */
async function signIn(page, user, step) {
  await page.goto(`${MLGATE}/`);
  assert.match(page.url(), /\/_mlgate\/login/, 'an unauthenticated browser is sent to the sign-in page');
  await shot(page, `${step}-1-mlgate-login`);
  await page.click(`#sso-${PROVIDER}`);
  await page.waitForURL((u) => u.href.startsWith(IDP));
  await page.fill('#login', user);
  await page.fill('#password', `${user}-password`);
  await shot(page, `${step}-2-provider-login`);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(MLGATE)),
    page.click('#submit'),
  ]);
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
    assert.equal(who.status, 200);
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
    await Promise.all([
      b.page.waitForURL((u) => u.href.startsWith(IDP)),
      b.page.click('button[type=submit]'),
    ]);
    await shot(b.page, 'bob-6-provider-signout');
    await Promise.all([
      b.page.waitForURL((u) => u.href.startsWith(`${MLGATE}/_mlgate/login`)),
      b.page.click('#idp-logout'),
    ]);
    await shot(b.page, 'bob-7-signed-out');
    const who = await whoami(b.page);
    assert.equal(who.status, 401, 'the session has ended');
    await b.page.goto(`${MLGATE}/`);
    assert.match(b.page.url(), /\/_mlgate\/login/, 'the UI asks for sign-in again');
    // The provider's session ended too: signing in asks for the password again.
    await b.page.click(`#sso-${PROVIDER}`);
    await b.page.waitForSelector('#login');
    await shot(b.page, 'bob-8-provider-asks-again');
  } finally {
    await b.close();
  }
});

test('a user with no mapped group gets a clear page and no session', async () => {
  const b = await browser();
  try {
    await signIn(b.page, 'carol', 'carol');
    await b.page.waitForSelector('h1');
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
    await b.page.click(`#sso-${PROVIDER}`);
    await b.page.waitForURL((u) => u.href.startsWith(IDP));
    await Promise.all([
      b.page.waitForURL((u) => u.href.startsWith(MLGATE)),
      b.page.click('#abort'),
    ]);
    assert.match(await b.page.textContent('h1'), /Sign-in refused/);
    assert.match(await b.page.textContent('body'), /access_denied/);
    await shot(b.page, 'refused-1-provider-refused');
    assert.equal((await whoami(b.page)).status, 401);
  } finally {
    await b.close();
  }
});
