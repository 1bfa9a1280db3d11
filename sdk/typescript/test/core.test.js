// The runtime's own rules, with a fake fetch: no server needed.
import { test } from "node:test";
import assert from "node:assert/strict";

import { IOFClient, ConflictError, RateLimitError, ServiceUnavailableError, backoff, retryable } from "../dist/index.js";

const problem = (status, code, headers = {}) =>
  new Response(JSON.stringify({ status, code, title: "x", type: `urn:omnirail:problem:${code}` }), {
    status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
const ok = (body) => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });

function scripted(...answers) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const next = answers.shift();
    if (next instanceof Error) throw next;
    return next;
  };
  return { fetch, calls };
}

test("429 and 5xx are retried, honouring Retry-After, with the same Idempotency-Key", async () => {
  const { fetch, calls } = scripted(
    problem(429, "rate_limited", { "retry-after": "0" }),
    problem(503, "overloaded", { "retry-after": "0" }),
    ok({ data: { id: "jrn_1" } }),
  );
  const client = new IOFClient({ apiKey: "omk_test", fetch });
  const journey = await client.omni.journeys.create({ templateId: "t", customerId: "c" });
  assert.equal(journey.id, "jrn_1");
  assert.equal(calls.length, 3);
  const keys = new Set(calls.map((c) => c.init.headers["idempotency-key"]));
  assert.equal(keys.size, 1);
  assert.equal(calls[0].init.headers["x-api-key"], "omk_test");
});

test("409 is not retried, but for a concurrent update", async () => {
  const once = scripted(problem(409, "step_not_current"));
  const client = new IOFClient({ apiKey: "k", fetch: once.fetch });
  await assert.rejects(client.omni.journeys.advance("jrn_1", { completedStepId: "s" }), ConflictError);
  assert.equal(once.calls.length, 1);
  const twice = scripted(problem(409, "concurrent_update", { "retry-after": "0" }), ok({ data: { id: "jrn_1" } }));
  const again = new IOFClient({ apiKey: "k", fetch: twice.fetch });
  await again.omni.journeys.advance("jrn_1", { completedStepId: "s" });
  assert.equal(twice.calls.length, 2);
});

test("retries stop at maxRetries and the last error is typed", async () => {
  const { fetch, calls } = scripted(
    problem(503, "overloaded", { "retry-after": "0" }),
    problem(503, "overloaded", { "retry-after": "0" }),
  );
  const client = new IOFClient({ apiKey: "k", fetch, maxRetries: 1 });
  await assert.rejects(client.omni.journeys.get("jrn_1"), (e) => e instanceof ServiceUnavailableError && e.code === "overloaded");
  assert.equal(calls.length, 2);
  const limited = scripted(problem(429, "rate_limited", { "retry-after": "0" }));
  const none = new IOFClient({ apiKey: "k", fetch: limited.fetch, maxRetries: 0 });
  await assert.rejects(none.omni.journeys.get("jrn_1"), RateLimitError);
});

test("the rules: what is retried, and how long it waits", () => {
  assert.ok(retryable(429, "rate_limited") && retryable(500, "internal_error") && retryable(503, "overloaded"));
  assert.ok(!retryable(400, "malformed_json") && !retryable(404, "not_found") && !retryable(422, "validation_failed"));
  assert.ok(retryable(409, "concurrent_update") && !retryable(409, "already_decided"));
  assert.equal(backoff(1, "2"), 2000);
  for (let attempt = 1; attempt <= 6; attempt++) {
    const wait = backoff(attempt, null);
    assert.ok(wait >= 0 && wait <= Math.min(8000, 500 * 2 ** (attempt - 1)), `${attempt}: ${wait}`);
  }
});

test("configuration falls back to the environment, then a default", () => {
  const saved = { ...process.env };
  try {
    delete process.env.OMNIRAIL_API_KEY;
    delete process.env.OMNIRAIL_BASE_URL;
    process.env.IOF_API_KEY = "omk_iof";
    let client = new IOFClient();
    assert.equal(client.core.apiKey, "omk_iof");
    assert.equal(client.core.baseUrl, "http://127.0.0.1:8080");
    process.env.OMNIRAIL_API_KEY = "omk_omnirail";
    process.env.OMNIRAIL_BASE_URL = "https://omnirail.bank.example/";
    client = new IOFClient();
    assert.equal(client.core.apiKey, "omk_omnirail");
    assert.equal(client.core.baseUrl, "https://omnirail.bank.example");
    assert.equal(new IOFClient({ apiKey: "omk_given" }).core.apiKey, "omk_given");
  } finally {
    process.env = saved;
  }
});
