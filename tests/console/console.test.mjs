// The operator console in a real browser: Debian's Chromium (/usr/bin/chromium) driven by
// playwright-core, never a downloaded browser. Staff sign in through the real OpenID provider
// of the staff-identity tests (tests/oidc/provider.mjs, panva's oidc-provider) and work a
// journey through its approval; every page is checked with axe-core (WCAG 2 A and AA).
//
//   node tests/console/console.test.mjs
//
// Environment: OMNIRAIL_BIN (default: the newer of target/release/omnirail and
// target/debug/omnirail);
// CONSOLE_SCREENSHOTS=dir keeps a screenshot of each page there (docs/img/console is made so);
// CHROMIUM (default /usr/bin/chromium). It starts its own server on a fresh SQLite file and its
// own provider, each on a port of its own, and stops both at the end.
//
// Nothing here waits on time: each step waits for a page or an element to be there, with
// Playwright's bound (generous: these machines are shared).

import { readFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { api, cleanup, launch, signIn, startProvider, startServer } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const AXE = readFileSync(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
const shots = process.env.CONSOLE_SCREENSHOTS;

const at = (ms) => new Date(Date.now() + ms).toISOString();
const DAY = 86_400_000;

async function seed(call, issuer) {
  await call('PUT', '/omni/identity-provider', {
    issuer, audience: 'api://omnirail', consoleClientId: 'omnirail-test', consoleScope: 'openid staff',
  });
  const users = {
    usr_rm_001: ['Omar Rahman', ['relationship_manager']],
    usr_credit_001: ['Sara Al-Harbi', ['credit_analyst']],
    usr_manager_001: ['Khalid Nasser', ['manager']],
    usr_deputy_002: ['Lina Haddad', ['deputy_manager']],
    usr_admin: ['Noura Saleh', ['admin']],
  };
  for (const [id, [name, roles]] of Object.entries(users)) {
    await call('PUT', `/omni/users/${id}`, { name, roles, teams: id === 'usr_rm_001' ? ['team_sme'] : [] });
  }
  await call('PUT', '/customers/ent_customer_456', {
    profile: { name: 'Al-Noor Trading <script>alert(1)</script>', email: 'finance@alnoor.example' },
  });
  await call('POST', '/omni/templates', {
    id: 'tmpl_onboarding_sme', name: 'SME Onboarding', category: 'onboarding', slaHours: 120,
    steps: [
      { id: 'step_kyc', name: 'KYC Verification', type: 'kyc_check', order: 1, required: true },
      { id: 'step_docs', name: 'Document Collection', type: 'document_upload', order: 2, required: true },
      { id: 'step_credit', name: 'Credit Assessment', type: 'approval', order: 3, required: true, approvalRoleRequired: 'credit_analyst' },
    ],
  });
  const journey = (await call('POST', '/omni/journeys', {
    templateId: 'tmpl_onboarding_sme', customerId: 'ent_customer_456', channel: 'branch',
    context: { productType: 'murabaha', requestedAmount: { amount: 2000000, currency: 'SAR' } },
    assigneeId: 'usr_rm_001', priority: 'high', dueAt: at(2 * DAY),
  })).data;
  // Two more for the queue: one of the team's, overdue, and one without a due date.
  await call('POST', '/omni/journeys', {
    templateId: 'tmpl_onboarding_sme', customerId: 'ent_customer_789', channel: 'web',
    assigneeId: 'usr_rm_001', dueAt: at(-DAY),
  });
  await call('POST', '/omni/journeys', {
    templateId: 'tmpl_onboarding_sme', customerId: 'ent_customer_790', channel: 'mobile_ios',
    assigneeId: 'usr_rm_001',
  });
  const delegation = (await call('POST', '/omni/delegations', {
    delegatorId: 'usr_manager_001', delegateeId: 'usr_deputy_002', scope: ['approvals'],
    maxApprovalAmount: { amount: 500000, currency: 'SAR' },
    validFrom: at(-DAY), validTo: at(6 * DAY), reason: 'Annual leave coverage',
  })).data;
  const overLimit = (await call('POST', '/omni/approvals', {
    entityType: 'contract', entityId: 'ctr_2024_118', approvalType: 'limit_increase',
    requestedBy: 'usr_rm_001', approvers: [{ userId: 'usr_manager_001', required: true }],
    amount: { amount: 2000000, currency: 'SAR' }, expiresAt: at(3 * DAY),
  })).data;
  await call('POST', '/omni/webhooks/endpoints', {
    url: 'http://127.0.0.1:9/omnirail', description: 'Core banking events', eventTypes: ['omni.journey.*'],
  });
  return { journey, delegation, overLimit };
}

async function check(page, name) {
  // axe-core runs in the page through the debugging protocol, which the page's
  // Content-Security-Policy does not govern; the page itself allows no script but its own.
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  const found = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(', ')})`);
  assert.deepEqual(found, [], `accessibility of ${name}`);
  if (shots) {
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  }
}

async function main() {
  const server = await startServer();
  const issuer = await startProvider(server.base, {});
  const call = api(server);
  const seeded = await seed(call, issuer);
  const browser = await launch();
  try {
    // 1. The relationship manager's queue: overdue first, then by due date.
    const rm = await signIn(browser, server, 'usr_rm_001');
    assert.equal(await rm.getByTestId('work-total').textContent(), '3');
    assert.equal(await rm.getByTestId('work-overdue').textContent(), '1');
    const rows = rm.locator('tbody tr');
    assert.match(await rows.nth(0).textContent(), /ent_customer_789[\s\S]*overdue/);
    assert.match(await rows.nth(1).textContent(), /ent_customer_456/);
    // Keyboard: the first Tab reaches the skip link.
    await rm.keyboard.press('Tab');
    assert.equal(await rm.evaluate(() => document.activeElement.textContent), 'Skip to content');
    await check(rm, 'my-work');
    // Live: work assigned to them while the page is open is announced on it (the tenant's
    // default rule notifies an assignee in-app, and their stream carries the notification).
    const handed = (await call('POST', '/omni/journeys', {
      templateId: 'tmpl_onboarding_sme', customerId: 'ent_customer_791', channel: 'web', assigneeId: 'usr_credit_001',
    })).data;
    await call('POST', `/omni/journeys/${handed.id}/assign`, { assigneeId: 'usr_rm_001', reason: 'Back from leave' });
    await rm.locator('#live').waitFor({ state: 'visible' });
    assert.match(await rm.locator('#live').textContent(), /Refresh/);
    await rm.reload();
    assert.equal(await rm.getByTestId('work-total').textContent(), '4');
    // A tablet: the page fits its width.
    await rm.setViewportSize({ width: 768, height: 1024 });
    assert.ok(await rm.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'fits a tablet');
    if (shots) await rm.screenshot({ path: join(shots, 'my-work-tablet.png'), fullPage: true });
    await rm.setViewportSize({ width: 1280, height: 800 });

    // 2. ... advances the journey to its approval step.
    await rm.locator(`a[href="/console/journeys/${seeded.journey.id}"]`).click();
    await rm.waitForURL(`**/console/journeys/${seeded.journey.id}`);
    for (const step of ['KYC Verification', 'Document Collection']) {
      assert.match(await rm.getByTestId('journey-step').textContent(), new RegExp(step));
      await rm.getByLabel('Step data (JSON, optional)').fill('{"checkedBy": "branch"}');
      await rm.getByRole('button', { name: 'Advance' }).click();
      await rm.waitForLoadState();
    }
    assert.match(await rm.getByTestId('journey-step').textContent(), /Credit Assessment/);
    assert.equal(await rm.getByTestId('approval-status').textContent(), 'requested');
    await check(rm, 'journey');

    // 3. The credit analyst sees it among their approvals, and approves with a comment.
    const analyst = await signIn(browser, server, 'usr_credit_001');
    await analyst.goto(`${server.base}/console/approvals`);
    assert.equal(await analyst.getByTestId('approvals-total').textContent(), '1');
    await check(analyst, 'approvals');
    await analyst.getByTestId('approval-card').getByRole('link', { name: 'Decide' }).click();
    await analyst.getByLabel('Comment').fill('Within risk appetite');
    await check(analyst, 'approval');
    await analyst.getByRole('button', { name: 'Approve' }).click();
    await analyst.waitForLoadState();
    assert.equal(await analyst.getByTestId('approval-status').textContent(), 'approved');
    assert.match(await analyst.getByTestId('decisions').textContent(), /Sara Al-Harbi[\s\S]*verified[\s\S]*approve[\s\S]*Within risk appetite/);

    // 4. The manager's deputy sees a request over their limit, and is refused with the reason.
    const deputy = await signIn(browser, server, 'usr_deputy_002');
    await deputy.goto(`${server.base}/console/approvals`);
    const onBehalf = await deputy.getByTestId('on-behalf').first().textContent();
    assert.match(onBehalf, new RegExp(`On behalf of Khalid Nasser, delegation ${seeded.delegation.id}, limit 500000 SAR`));
    await deputy.getByTestId('approval-card').getByRole('link').first().click();
    await deputy.getByRole('button', { name: 'Approve' }).click();
    await deputy.waitForLoadState();
    assert.equal(await deputy.getByTestId('problem-code').textContent(), 'delegation_limit_exceeded');
    assert.match(await deputy.getByTestId('problem-detail').textContent(), /500000|limit/i);
    await check(deputy, 'refused');

    // 5. The journey moved on, and its timeline shows each action with the verified actor.
    await rm.reload();
    assert.match(await rm.getByTestId('journey-step').textContent(), /All steps done/);
    const timeline = await rm.getByTestId('timeline').textContent();
    for (const [event, who] of [['journey.advanced', 'Omar Rahman'], ['journey.created', '']]) {
      assert.ok(timeline.includes(event), `${event} on the timeline`);
      if (who) assert.match(timeline, new RegExp(`${event}[\\s\\S]*?${who}\\s*verified`));
    }
    const decided = rm.getByTestId('timeline').locator('tr', { hasText: 'Sara Al-Harbi' });
    assert.ok(await decided.count() >= 1, `the approval decision on the journey timeline: ${timeline}`);
    assert.match(await decided.first().textContent(), /verified/);

    // 6. The customer: a name that looks like script is shown as text; the chain verifies.
    await rm.goto(`${server.base}/console/customers/ent_customer_456`);
    assert.equal(await rm.getByTestId('customer-name').textContent(), 'Al-Noor Trading <script>alert(1)</script>');
    assert.match(await rm.getByTestId('chain').textContent(), /chain verified/);
    await check(rm, 'customer');

    // 7. Delegations, as the manager who granted one; Administration, as an administrator.
    const manager = await signIn(browser, server, 'usr_manager_001');
    await manager.goto(`${server.base}/console/delegations`);
    assert.match(await manager.locator('table').first().textContent(), /Lina Haddad[\s\S]*approvals[\s\S]*500000 SAR/);
    await check(manager, 'delegations');
    const admin = await signIn(browser, server, 'usr_admin');
    await admin.goto(`${server.base}/console/admin`);
    assert.match(await admin.locator('main').textContent(), /Core banking events[\s\S]*Identity provider/);
    await check(admin, 'administration');
    await admin.getByRole('link', { name: 'http://127.0.0.1:9/omnirail' }).click();
    await check(admin, 'webhook-endpoint');
    await admin.locator('a[href^="/console/admin/messages/"]').first().click();
    await admin.getByRole('heading', { name: 'Attempts' }).waitFor();
    await check(admin, 'webhook-message');

    // 8. Signing out ends the session: the next page asks to sign in again.
    await rm.getByRole('button', { name: 'Sign out' }).click();
    await rm.waitForURL('**/console/sign-in');
    await rm.goto(`${server.base}/console/work`);
    assert.match(rm.url(), /\/console\/sign-in\?next=/);

    for (const page of [rm, analyst, deputy, manager, admin]) {
      assert.deepEqual(page.errors, [], 'no script error, no CSP violation, nothing missing');
    }
    console.log('console browser tests: passed');
  } finally {
    await browser.close();
  }
}

main()
  .then(() => { cleanup(); process.exit(0); })
  .catch((e) => { console.error(e); cleanup(); process.exit(1); });

