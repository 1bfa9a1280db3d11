// What the console's browser tests (console.test.mjs) and its page benchmark
// (bench/console.mjs) share: the server and the OpenID provider they start, API calls with the
// bootstrap key, Chromium, and signing a member of staff in through the provider's pages.

import { spawn } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
/// Playwright's bound on each wait: generous, these machines are shared.
export const WAIT = 60_000;
const children = [];
export const work = mkdtempSync(join(tmpdir(), 'omnirail-console-'));

/// OMNIRAIL_BIN, else the newer of target/release/omnirail and target/debug/omnirail (never a
/// stale release build left beside a fresh debug one).
export function binary() {
  if (process.env.OMNIRAIL_BIN) return process.env.OMNIRAIL_BIN;
  const built = ['release', 'debug']
    .map((b) => join(root, 'target', b, 'omnirail'))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!built.length) throw new Error('no omnirail binary: cargo build first');
  return built[0];
}

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
    srv.on('error', fail);
  });
}

/// Runs `cmd`, and resolves with what `ready` finds in its output once it finds it.
function start(cmd, args, env, ready) {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const look = (chunk) => {
      out += chunk;
      const found = ready(out);
      if (found) ok(found);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => fail(new Error(`${cmd} exited with ${code}:\n${out}`)));
  });
}

/// `omnirail serve` on `databaseUrl` (default: a fresh SQLite file), on a port of its own;
/// resolves with its tenant, bootstrap key and address.
export async function startServer(databaseUrl = `sqlite://${work}/console.db`) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  Object.assign(env, {
    OMNIRAIL_DOCUMENT_STORE: join(work, 'documents'),
    OMNIRAIL_LOG_FORMAT: 'json',
    OMNIRAIL_IDENTITY__ALLOW_HTTP: 'true',
    OMNIRAIL_IDENTITY__ALLOW_PRIVATE_PROVIDERS: 'true',
    OMNIRAIL_WEBHOOKS__ALLOW_HTTP: 'true',
    OMNIRAIL_WEBHOOKS__ALLOW_PRIVATE_TARGETS: 'true',
  });
  return start(
    binary(),
    ['serve', '--listen', '127.0.0.1:0', '--database-url', databaseUrl],
    env,
    (out) => {
      const tenant = out.match(/Created tenant (\S+) /)?.[1];
      const key = out.match(/^(omk_\S+)$/m)?.[1];
      const addr = out.match(/"addr":"([^"]+)"/)?.[1];
      return tenant && key && addr ? { tenant, key, base: `http://${addr}` } : null;
    },
  );
}

/// The test OpenID provider, sending staff back to `base`'s console; resolves with its issuer.
export async function startProvider(base, roles = {}) {
  const port = await freePort();
  const script = process.env.OMNIRAIL_TEST_OIDC_PROVIDER ?? join(root, 'tests/oidc/provider.mjs');
  await start(
    'node',
    [script, '--port', String(port), '--keys-dir', join(work, 'keys'),
      '--redirect-uris', `${base}/console/callback`, '--roles', JSON.stringify(roles)],
    process.env,
    (out) => out.includes('listening'),
  );
  return `http://127.0.0.1:${port}`;
}

/// `call(method, path, body)` under `/api/v1` with the bootstrap key; throws on a refusal.
export function api(server) {
  return async (method, path, body) => {
    const res = await fetch(`${server.base}/api/v1${path}`, {
      method,
      headers: { 'x-api-key': server.key, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

/// Debian's Chromium, as the machine's probe starts it (no background networking: the
/// machine's network is closed).
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/// Signs `login` in to the console in a new browser context (1280 x 800), through the
/// organisation's id and the provider's sign-in and consent pages; resolves with the page, on
/// My work. `page.errors` collects the console pages' script and resource errors.
export async function signIn(browser, server, login) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = [];
  // The console's own pages only (the provider's sign-in pages are its business), and not a
  // refusal's own status (a refused decision's page is 403 on purpose).
  page.on('console', (m) => {
    const own = m.location().url === page.url();
    if (m.type() === 'error' && page.url().startsWith(`${server.base}/console`) && !own) {
      errors.push(`${page.url()}: ${m.text()} (${m.location().url})`);
    }
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.errors = errors;
  await page.goto(`${server.base}/console/work`);
  // Sent to sign in; the organisation's id, then the provider's own pages.
  await page.getByLabel('Organisation id').fill(server.tenant);
  await page.getByRole('button', { name: 'Continue to sign-in' }).click();
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  await page.locator('button[type="submit"]').click(); // the consent page
  await page.waitForURL(`${server.base}/console/work`);
  assert.equal(await page.getByTestId('me').textContent(), login);
  return page;
}

/// Stops the server and the provider, and removes their files.
export function cleanup() {
  for (const child of children) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
