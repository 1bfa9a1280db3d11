// Verifying a webhook message as Omnirail signs it: Standard Webhooks (webhook-id,
// webhook-timestamp, webhook-signature: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, with
// the endpoint's `whsec_` secret). A receiver needs nothing else.

/** A message that does not verify: wrong secret, changed body, missing headers, or too old. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

function header(headers: Headers | Record<string, string | string[] | undefined>, name: string): string {
  const value = headers instanceof Headers ? headers.get(name) : headers[name] ?? headers[name.toLowerCase()];
  const one = Array.isArray(value) ? value[0] : value;
  if (!one) throw new WebhookVerificationError(`missing ${name} header`);
  return one;
}

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToBase64(bytes: ArrayBuffer): string {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Checks `payload` (the raw body, as received) against its headers and the endpoint's secret,
 * and answers the parsed message. `toleranceSeconds` (default 300) bounds the timestamp's
 * distance from now, against replays. Throws `WebhookVerificationError`. */
export async function verify(
  payload: string,
  headers: Headers | Record<string, string | string[] | undefined>,
  secret: string,
  toleranceSeconds = 300,
): Promise<unknown> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  const sent = Number(timestamp);
  if (!Number.isInteger(sent) || Math.abs(Date.now() / 1000 - sent) > toleranceSeconds) {
    throw new WebhookVerificationError("timestamp outside the tolerance");
  }
  const key = await crypto.subtle.importKey(
    "raw",
    base64ToBytes(secret.replace(/^whsec_/, "")),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${payload}`));
  const expected = bytesToBase64(mac);
  const matches = signatures
    .split(" ")
    .map((s) => s.split(","))
    .some(([version, signature]) => version === "v1" && signature !== undefined && constantTimeEqual(signature, expected));
  if (!matches) throw new WebhookVerificationError("no signature matches");
  return JSON.parse(payload);
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
