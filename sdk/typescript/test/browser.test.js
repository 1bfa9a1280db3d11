// The SDK in a real browser: Debian's Chromium, driven by playwright-core, loads test/browser.html
// from an origin the API allows (.ci/sdk-tests serves the page and sets cors_allowed_origins).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";

const CHROMIUM = "/usr/bin/chromium";
const page = process.env.SDK_TEST_PAGE_ORIGIN;

test("the SDK runs in a browser, calling the API on another origin", { skip: skipWhy() }, async () => {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  try {
    const tab = await browser.newPage();
    const errors = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    const hash = new URLSearchParams({ key: process.env.IOF_API_KEY, api: process.env.OMNIRAIL_BASE_URL });
    await tab.goto(`${page}/test/browser.html#${hash}`);
    await tab.waitForFunction(() => window.result !== undefined, null, { timeout: 60_000 });
    const result = await tab.evaluate(() => window.result);
    assert.deepEqual(errors, []);
    assert.equal(result.error, undefined, result.error);
    assert.match(result.id, /^jrn_/);
    assert.equal(result.same, true);
    assert.deepEqual(result.ids, [result.id]);
    assert.equal(result.notFound, "not_found");
    assert.equal(result.verified, "WebhookVerificationError");
  } finally {
    await browser.close();
  }
});

function skipWhy() {
  if (!page) return "no page origin: .ci/sdk-tests serves the page";
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
    return `${CHROMIUM} is missing (apt-get install chromium)`;
  }
  return false;
}
