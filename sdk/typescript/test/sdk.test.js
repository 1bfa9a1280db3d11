// The SDK against a real server (.ci/sdk-tests starts one and sets OMNIRAIL_BASE_URL and
// IOF_API_KEY). Run after `npm run build`: these tests use the package as published (dist/).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";

import { IOFClient, OmnirailClient, NotFoundError, PermissionDeniedError, UnprocessableEntityError, webhooks } from "../dist/index.js";

const inAWeek = new Date(Date.now() + 7 * 24 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, "Z");
const unique = (prefix) => `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

const seedTemplate = {
  id: "tmpl_onboarding_sme",
  name: "SME Onboarding",
  category: "onboarding",
  steps: [
    { id: "step_kyc", name: "KYC Verification", type: "kyc_check", order: 1, required: true, timeoutHours: 48 },
    { id: "step_docs", name: "Document Collection", type: "document_upload", order: 2, required: true, documentsRequired: ["trade_license"] },
    { id: "step_credit", name: "Credit Assessment", type: "approval", order: 3, required: true, approvalRoleRequired: "credit_analyst" },
  ],
  estimatedDurationDays: 5,
  slaHours: 120,
};

async function setUp(client) {
  try {
    await client.omni.templates.create(seedTemplate);
  } catch (e) {
    if (e.code !== "template_exists") throw e;
  }
  await client.omni.users.put("usr_rm_001", { name: "Ahmed Al-Rashidi", roles: ["relationship_manager"] });
  await client.omni.users.put("usr_credit_001", { name: "Sara Al-Harbi", roles: ["credit_analyst"] });
  await client.omni.users.put("usr_manager_001", { name: "Omar Haddad", roles: ["credit_analyst", "manager"] });
}

test("seed 001's example runs as written", async () => {
  const client = new IOFClient({ apiKey: process.env.IOF_API_KEY });
  await setUp(client);

  // Create an onboarding journey for a customer
  const journey = await client.omni.journeys.create({
    templateId: "tmpl_onboarding_sme",
    customerId: "ent_customer_456",
    channel: "web",
    context: {
      productType: "murabaha",
      requestedAmount: { amount: 2000000, currency: "SAR" },
    },
    assigneeId: "usr_rm_001",
  });

  // Advance through steps
  await client.omni.journeys.advance(journey.id, {
    completedStepId: "step_kyc",
    stepOutcome: "passed",
    stepData: { kycStatus: "verified" },
    advancedBy: "usr_rm_001",
  });

  // Create an approval request for the journey
  const approval = await client.omni.approvals.create({
    entityType: "journey",
    entityId: journey.id,
    approvalType: "credit_committee",
    requestedBy: "usr_rm_001",
    approvers: [{ userId: "usr_credit_001", role: "primary", required: true }],
    expiresAt: inAWeek,
  });

  // Get the full customer timeline
  const timeline = await client.omni.timeline.get({
    entityId: "ent_customer_456",
    entityType: "customer",
    perPage: 50,
  });

  assert.match(journey.id, /^jrn_/);
  assert.equal(journey.status, "created");
  assert.match(approval.id, /^apr_/);
  assert.equal(approval.status, "requested");
  assert.ok(timeline.data.some((e) => e.eventType === "journey.advanced"));
  assert.equal(timeline.pagination.perPage, 50);
  assert.equal(OmnirailClient, IOFClient);
});

test("a journey through its approval step, decided by a deputy under a delegation", async () => {
  const client = new IOFClient();
  await setUp(client);
  const customerId = unique("ent");
  const journey = await client.omni.journeys.create({
    templateId: "tmpl_onboarding_sme",
    customerId,
    context: { requestedAmount: { amount: 500000, currency: "SAR" } },
    assigneeId: "usr_rm_001",
  });
  await client.omni.journeys.advance(journey.id, { completedStepId: "step_kyc", advancedBy: "usr_rm_001" });
  const waiting = await client.omni.journeys.advance(journey.id, { completedStepId: "step_docs", advancedBy: "usr_rm_001" });
  assert.equal(waiting.currentStep.id, "step_credit");
  const approvalId = waiting.currentStep.approvalId;
  const approval = await client.omni.approvals.get(approvalId);
  const approver = approval.approvers[0].userId;

  const delegation = await client.omni.delegations.create({
    delegatorId: approver,
    delegateeId: "usr_deputy_002",
    scope: ["approvals"],
    maxApprovalAmount: { amount: 1000000, currency: "SAR" },
    validTo: inAWeek,
    reason: "Annual leave coverage",
  });
  assert.equal(delegation.status, "active");
  const decided = await client.omni.approvals.decisions.create(approvalId, {
    approverId: "usr_deputy_002",
    onBehalfOf: approver,
    decision: "approve",
    comment: "Within appetite",
  });
  assert.equal(decided.status, "approved");
  assert.equal(decided.decisions[0].delegationId, delegation.id);

  const passed = await client.omni.journeys.get(journey.id);
  assert.equal(passed.currentStep, null);
  const done = await client.omni.journeys.complete(journey.id, { completedBy: "usr_rm_001" });
  assert.equal(done.status, "completed");
  const revoked = await client.omni.delegations.revoke(delegation.id, { revokedBy: approver });
  assert.equal(revoked.status, "revoked");
});

test("errors are typed and carry the problem", async () => {
  const client = new IOFClient();
  await assert.rejects(client.omni.journeys.get("jrn_does_not_exist"), (e) => {
    assert.ok(e instanceof NotFoundError);
    assert.equal(e.status, 404);
    assert.equal(e.code, "not_found");
    assert.equal(e.problem.status, 404);
    return true;
  });
  await assert.rejects(
    client.omni.journeys.create({ templateId: "tmpl_onboarding_sme", customerId: "bad id!" }),
    (e) => {
      assert.ok(e instanceof UnprocessableEntityError);
      assert.equal(e.code, "validation_failed");
      assert.equal(e.problem.errors[0].field, "customerId");
      return true;
    },
  );
  const wrong = new IOFClient({ apiKey: "omk_wrong" });
  await assert.rejects(wrong.omni.journeys.list(), (e) => e.status === 401 && e.code === "invalid_api_key");
});

test("a key with scopes does what they name and is refused the rest", async () => {
  const client = new IOFClient();
  const created = await client.omni.apiKeys.create({ name: unique("kiosk"), scopes: ["onboarding:write", "journeys:read"] });
  assert.ok(created.key.startsWith("omk_"));
  assert.deepEqual(created.scopes, ["journeys:read", "onboarding:write"]);
  const kiosk = new IOFClient({ apiKey: created.key });
  await kiosk.omni.journeys.list();
  await assert.rejects(
    kiosk.omni.journeys.create({ templateId: "tmpl_onboarding_sme", customerId: "ent_customer_456" }),
    (e) => {
      assert.ok(e instanceof PermissionDeniedError);
      assert.equal(e.code, "insufficient_scope");
      assert.equal(e.problem.requiredScope, "journeys:write");
      return true;
    },
  );
  assert.equal((await client.omni.apiKeys.get(created.id)).key, undefined);
  assert.equal((await client.omni.apiKeys.revoke(created.id)).status, "revoked");
});

test("a retried call is applied once: one Idempotency-Key across its retries", async () => {
  const seen = [];
  let dropped = false;
  // A network that loses the first answer after the server has acted on the request.
  const lossy = async (url, init) => {
    const res = await fetch(url, init);
    seen.push(init.headers["idempotency-key"]);
    if (init.method === "POST" && !dropped) {
      dropped = true;
      throw new TypeError("fetch failed: connection reset");
    }
    return res;
  };
  const client = new IOFClient({ fetch: lossy });
  await setUp(new IOFClient());
  const customerId = unique("ent");
  const journey = await client.omni.journeys.create({ templateId: "tmpl_onboarding_sme", customerId });
  const posts = seen.filter(Boolean);
  assert.equal(posts.length, 2, "the create was sent twice");
  assert.equal(posts[0], posts[1], "with one key");
  const list = await client.omni.journeys.list({ customerId });
  assert.equal(list.pagination.total, 1, "and applied once");
  assert.equal(list.data[0].id, journey.id);
});

test("lists page, and iterate over every page", async () => {
  const client = new IOFClient();
  await setUp(client);
  const customerId = unique("ent");
  for (let i = 0; i < 23; i++) {
    await client.omni.journeys.create({ templateId: "tmpl_onboarding_sme", customerId });
  }
  const first = await client.omni.journeys.list({ customerId, perPage: 10 });
  assert.equal(first.data.length, 10);
  assert.equal(first.pagination.total, 23);
  assert.ok(first.hasNextPage());
  const ids = new Set();
  for await (const journey of first) ids.add(journey.id);
  assert.equal(ids.size, 23);
});

test("a webhook message verifies with the SDK, and a changed one does not", async () => {
  const received = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ body, headers: req.headers });
      res.end("ok");
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const client = new IOFClient();
  await setUp(client);
  try {
    const endpoint = await client.omni.webhooks.endpoints.create({
      url: `http://127.0.0.1:${receiver.address().port}/hooks`,
      eventTypes: ["omni.journey.created"],
    });
    const journey = await client.omni.journeys.create({ templateId: "tmpl_onboarding_sme", customerId: unique("ent") });
    const deadline = Date.now() + 60_000;
    while (!received.some((m) => m.body.includes(journey.id))) {
      assert.ok(Date.now() < deadline, "no webhook within a minute");
      await new Promise((r) => setTimeout(r, 50)); // polling for a state, not synchronisation
    }
    const message = received.find((m) => m.body.includes(journey.id));
    const event = await webhooks.verify(message.body, message.headers, endpoint.secret);
    assert.equal(event.type, "omni.journey.created");
    await assert.rejects(
      webhooks.verify(message.body.replace(journey.id, "jrn_forged"), message.headers, endpoint.secret),
      webhooks.WebhookVerificationError,
    );
    await client.omni.webhooks.endpoints.delete(endpoint.id);
  } finally {
    receiver.close();
  }
});


test("an event stream is an async iterator, resumed after the last event seen", async () => {
  const client = new IOFClient();
  await setUp(client);
  const customerId = unique("ent");
  const journey = await client.omni.journeys.create({ templateId: "tmpl_onboarding_sme", customerId });
  await client.omni.journeys.advance(journey.id, { completedStepId: "step_kyc" });
  const controller = new AbortController();
  const seen = [];
  for await (const event of client.customers.stream(customerId, "0", { signal: controller.signal })) {
    seen.push(event);
    if (seen.length === 2) break;
  }
  controller.abort();
  assert.deepEqual(seen.map((e) => e.data.eventType), ["journey.created", "journey.advanced"]);
  assert.equal(seen[0].id, "1");
  const after = [];
  for await (const event of client.customers.stream(customerId, "1")) {
    after.push(event);
    break;
  }
  assert.equal(after[0].data.eventType, "journey.advanced");
});

test("the customer's onboarding calls go through a session client", async () => {
  const client = new IOFClient();
  await setUp(client);
  const configurationId = unique("cfg");
  await client.omni.onboarding.configurations.create({
    id: configurationId,
    name: "SME onboarding",
    templateId: "tmpl_onboarding_sme",
    countries: ["ALL"],
  });
  const started = await client.onboarding.start({ countryCode: "SA", configurationId, externalCustomerId: unique("ent") });
  const session = client.onboardingSession(started.token);
  const before = await session.session.get();
  assert.equal(before.currentStep.id, "step_kyc");
  const after = await session.addData({
    stepId: "step_kyc",
    fields: { firstName: "Layla", lastName: "Al-Saud", dateOfBirth: "1990-02-14", nationality: "SA", idNumber: "1234567890" },
  });
  assert.notEqual(after.currentStep?.id, "step_kyc");
  // A document, as a browser's form would send it.
  const form = new FormData();
  form.set("stepId", "step_docs");
  form.set("documentType", "trade_license");
  form.set("file", new Blob(["%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"], { type: "application/pdf" }), "licence.pdf");
  const added = await session.addDocument(form);
  assert.equal(added.document.documentType, "trade_license");
  const bank = await client.omni.onboarding.get(started.interviewId);
  assert.equal(bank.id ?? bank.interviewId, started.interviewId);
});
