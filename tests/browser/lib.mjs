// What every headless Chromium test here shares: a fresh browser, screenshots, exact URL tests.
// The browser is Debian's `chromium` (CHROMIUM), driven by playwright-core; screenshots go to
// SCREENSHOT_DIR (gitignored test output).

import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const SHOTS = process.env.SCREENSHOT_DIR || new URL('./screenshots', import.meta.url).pathname;
mkdirSync(SHOTS, { recursive: true });

/** A URL test for `waitForURL` and assertions: exactly this origin and this path (a string, or a
 *  RegExp the whole path must match), never a string prefix: with free ports, one server's URL
 *  can be a prefix of another's (http://127.0.0.1:3456 and http://127.0.0.1:34567). Takes a URL
 *  or a string. */
export function at(origin, path) {
  return (u) => {
    const url = typeof u === 'string' ? new URL(u) : u;
    if (url.origin !== origin) return false;
    return typeof path === 'string' ? url.pathname === path : path.test(url.pathname);
  };
}

export function assertAt(page, origin, path, message) {
  assert.ok(at(origin, path)(page.url()), `${message} (the browser is at ${page.url()})`);
}

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A fresh browser profile (own --user-data-dir), closed and removed by the caller. */
export async function browser() {
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

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}
