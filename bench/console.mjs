// The console's pages at scale: with 10,000 journeys in the tenant (and their customers,
// approvals, delegations and webhook messages), each page is fetched over and over by a
// signed-in member of staff, one request at a time, and its p50 and p99 reported against the
// target of 100 ms (issue 24). Run by bench/console.sh, once per database:
//
//   node bench/console.mjs [--database-url URL] [--journeys 10000] [--requests 200]
//                          [--only Approvals]   # the pages whose name contains it
//
// The server is the newest omnirail binary (bench/console.sh builds release); staff sign in
// through the test OpenID provider in Debian's Chromium, whose session cookie the requests
// then carry. Figures go to standard output as a table and to target/bench/console-<db>.json.

import { parseArgs } from 'node:util';
import { createServer } from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, cleanup, launch, root, signIn, startProvider, startServer } from '../tests/console/lib.mjs';

const { values: args } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    journeys: { type: 'string', default: '10000' },
    requests: { type: 'string', default: '200' },
    only: { type: 'string' },
  },
});
const JOURNEYS = Number(args.journeys);
const REQUESTS = Number(args.requests);
const DAY = 86_400_000;
const at = (ms) => new Date(Date.now() + ms).toISOString();

/// Runs `task(i)` for i in 0..n, `width` at a time.
async function pool(n, width, task) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await task(next++);
  }));
}

/// A webhook receiver that takes every message at once (204), so that the endpoint's messages
/// are delivered while the tenant is seeded and no delivery runs while pages are timed.
function receiver() {
  return new Promise((ok) => {
    const srv = createServer((req, res) => { req.resume(); req.on('end', () => { res.statusCode = 204; res.end(); }); });
    srv.listen(0, '127.0.0.1', () => ok({ url: `http://127.0.0.1:${srv.address().port}/omnirail`, srv }));
  });
}

async function seed(call, issuer, hook) {
  await call('PUT', '/omni/identity-provider', {
    issuer, audience: 'api://omnirail', consoleClientId: 'omnirail-test', consoleScope: 'openid staff',
  });
  await call('PUT', '/omni/users/usr_rm_001', { name: 'Omar Rahman', roles: ['relationship_manager'], teams: ['team_sme'] });
  await call('PUT', '/omni/users/usr_credit_001', { name: 'Sara Al-Harbi', roles: ['credit_analyst'] });
  await call('PUT', '/omni/users/usr_admin', { name: 'Noura Saleh', roles: ['admin'] });
  for (let i = 0; i < 20; i++) {
    await call('PUT', `/omni/users/usr_rm_${100 + i}`, { name: `RM ${i}`, roles: ['relationship_manager'], teams: ['team_sme'] });
  }
  // A webhook endpoint subscribed to every journey event: its messages grow with the journeys.
  const endpoint = (await call('POST', '/omni/webhooks/endpoints', {
    url: hook, description: 'Core banking events', eventTypes: ['omni.journey.*'],
  })).data;
  await call('POST', '/omni/templates', {
    id: 'tmpl_onboarding_sme', name: 'SME Onboarding', category: 'onboarding',
    steps: [
      { id: 'step_kyc', name: 'KYC Verification', type: 'kyc_check', order: 1, required: true },
      { id: 'step_docs', name: 'Document Collection', type: 'document_upload', order: 2, required: true },
    ],
  });
  // 10,000 journeys over 2,000 customers: a quarter the person's own, a quarter their team's,
  // the rest their colleagues'; due dates from ten days ago to ten days ahead, some undated.
  let mine;
  await pool(JOURNEYS, 16, async (i) => {
    const assignee = i % 4 === 0 ? 'usr_rm_001' : i % 4 === 1 ? 'usr_rm_100' : `usr_rm_${101 + (i % 19)}`;
    const j = (await call('POST', '/omni/journeys', {
      templateId: 'tmpl_onboarding_sme', customerId: `ent_bench_${i % 2000}`, channel: 'web', assigneeId: assignee,
      ...(i % 10 === 9 ? {} : { dueAt: at(((i % 21) - 10) * DAY) }),
    })).data;
    if (i % 4 === 1) {
      await call('POST', `/omni/journeys/${j.id}/assign`, { assigneeId: 'team_sme', assigneeType: 'team', reason: 'queue' });
    }
    if (i === 0) mine = j;
  });
  // 2,000 approval requests, a fifth of them for the credit analyst; delegations to them.
  let approval;
  await pool(2000, 16, async (i) => {
    const a = (await call('POST', '/omni/approvals', {
      entityType: 'contract', entityId: `ctr_${i}`, approvalType: 'limit_increase', requestedBy: 'usr_rm_001',
      approvers: [{ userId: i % 5 === 0 ? 'usr_credit_001' : `usr_rm_${100 + (i % 20)}`, required: true }],
      amount: { amount: 1000 + i, currency: 'SAR' }, expiresAt: at(5 * DAY),
    })).data;
    if (i === 0) approval = a;
  });
  for (let i = 0; i < 20; i++) {
    await call('POST', '/omni/delegations', {
      delegatorId: `usr_rm_${100 + i}`, delegateeId: 'usr_credit_001', scope: ['approvals'],
      maxApprovalAmount: { amount: 500000, currency: 'SAR' }, validFrom: at(-DAY), validTo: at(6 * DAY),
    });
  }
  const messages = (await call('GET', `/omni/webhooks/endpoints/${endpoint.id}/messages?perPage=1`));
  return { mine, approval, endpoint, message: messages.data[0] };
}

/// `REQUESTS` sequential fetches of `path` with the session's cookie (after 10 to warm up):
/// p50, p99 and max in ms.
async function measure(base, cookie, path) {
  const times = [];
  for (let i = 0; i < REQUESTS + 10; i++) {
    const t0 = performance.now();
    const res = await fetch(`${base}${path}`, { headers: { cookie }, redirect: 'manual' });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
    if (i >= 10) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)];
  return { p50: q(0.5), p99: q(0.99), max: times[times.length - 1] };
}

async function cookieOf(page) {
  const cookies = await page.context().cookies();
  const c = cookies.find((k) => k.name === 'omnirail_console');
  return `${c.name}=${c.value}`;
}

async function main() {
  const server = await startServer(args['database-url']);
  const issuer = await startProvider(server.base);
  const call = api(server);
  const t0 = performance.now();
  const hook = await receiver();
  const s = await seed(call, issuer, hook.url);
  // Ten thousand journeys seeded in a minute are timed as they would stand after the weeks such
  // a tenant takes to build: PostgreSQL's autovacuum would have gathered statistics by then
  // (without them its plans are for empty tables); VACUUM ANALYZE does it at once, as
  // bench/harness.sh does. SQLite needs nothing.
  if (args['database-url']?.startsWith('postgres')) {
    execFileSync('psql', [args['database-url'], '-qc', 'VACUUM ANALYZE']);
  }
  // Every webhook message and notification the seeding caused is delivered before the pages
  // are timed: the workers would otherwise be timed with them (the seeding's journeys and
  // approvals notify their assignees and approvers, some 50,000 deliveries).
  for (const path of [
    `/omni/webhooks/endpoints/${s.endpoint.id}/messages?status=pending&perPage=1`,
    '/omni/notifications?status=pending&perPage=1',
  ]) {
    for (;;) {
      if ((await call('GET', path)).pagination.total === 0) break;
      await new Promise((r) => setTimeout(r, 1000)); // Not synchronisation: polling for a state.
    }
  }
  console.log(`seeded ${JOURNEYS} journeys, 2,000 approvals in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const browser = await launch();
  const rm = await cookieOf(await signIn(browser, server, 'usr_rm_001'));
  const analyst = await cookieOf(await signIn(browser, server, 'usr_credit_001'));
  const admin = await cookieOf(await signIn(browser, server, 'usr_admin'));
  await browser.close();
  hook.srv.close();
  const pages = [
    ['My work (first page)', rm, '/console/work'],
    ['My work (overdue only)', rm, '/console/work?overdue=true'],
    ['My work (page 100)', rm, '/console/work?page=100'],
    ['Journey', rm, `/console/journeys/${s.mine.id}`],
    ['Approvals', analyst, '/console/approvals'],
    ['Approval request', analyst, `/console/approvals/${s.approval.id}`],
    ['Customer', rm, `/console/customers/${s.mine.customerId}`],
    ['Delegations', analyst, '/console/delegations'],
    ['Administration', admin, '/console/admin'],
    ['Webhook endpoint', admin, `/console/admin/endpoints/${s.endpoint.id}`],
    ['Webhook message', admin, `/console/admin/messages/${s.message.id}`],
  ];
  const results = [];
  console.log(`\n| page | p50 ms | p99 ms | max ms | p99 under 100 ms |\n|---|---|---|---|---|`);
  for (const [name, cookie, path] of pages.filter(([n]) => !args.only || n.includes(args.only))) {
    const r = await measure(server.base, cookie, path);
    results.push({ name, path, ...r });
    console.log(`| ${name} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} | ${r.p99 < 100 ? 'yes' : 'NO'} |`);
  }
  const db = (args['database-url'] ?? 'sqlite').startsWith('postgres') ? 'postgres' : 'sqlite';
  mkdirSync(join(root, 'target/bench'), { recursive: true });
  writeFileSync(join(root, `target/bench/console-${db}.json`), JSON.stringify({ journeys: JOURNEYS, requests: REQUESTS, results }, null, 2));
}

main()
  .then(() => { cleanup(); process.exit(0); })
  .catch((e) => { console.error(e); cleanup(); process.exit(1); });
