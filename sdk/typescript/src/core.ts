// The hand-written runtime of the SDK: configuration, one HTTP call with its retries, typed
// errors, idempotency keys, pages. The resources in resources.ts (generated from the OpenAPI
// document by sdk/codegen) call `Core.call` and nothing else.

/** What a client is made with; each option falls back to the environment, then a default. */
export interface ClientOptions {
  /** The tenant's API key; else `OMNIRAIL_API_KEY`, else `IOF_API_KEY`. */
  apiKey?: string;
  /** Else `OMNIRAIL_BASE_URL`, else `http://127.0.0.1:8080`. */
  baseUrl?: string;
  /** Milliseconds one attempt may take; default 30 000. */
  timeout?: number;
  /** Retries after the first attempt, for connection errors, 429 and 5xx; default 2. */
  maxRetries?: number;
  /** A person's access token from the tenant's identity provider, sent beside the key. */
  actorToken?: string;
  /** Headers sent with every call. */
  headers?: Record<string, string>;
  /** The `fetch` to use; default the global one (Node.js 18+, browsers). */
  fetch?: typeof fetch;
}

/** Per call: override the client's settings, or give the call's own key. */
export interface RequestOptions {
  timeout?: number;
  maxRetries?: number;
  /** The call's `Idempotency-Key`; default one generated per call, kept across its retries. */
  idempotencyKey?: string;
  actorToken?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** RFC 9457 problem details, as every error of the API is answered. */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code: string;
  errors?: { field: string; message: string }[];
  [member: string]: unknown;
}

/** An error answer of the API: `status`, its stable `code`, and the whole problem. */
export class APIError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problem: Problem;
  readonly headers: Headers | undefined;

  constructor(problem: Problem, headers?: Headers) {
    super(`${problem.status} ${problem.code}: ${problem.detail ?? problem.title ?? ""}`);
    this.name = new.target.name;
    this.status = problem.status;
    this.code = problem.code;
    this.problem = problem;
    this.headers = headers;
  }
}
export class BadRequestError extends APIError {}
export class AuthenticationError extends APIError {}
export class PermissionDeniedError extends APIError {}
export class NotFoundError extends APIError {}
export class ConflictError extends APIError {}
export class GoneError extends APIError {}
export class UnprocessableEntityError extends APIError {}
export class RateLimitError extends APIError {}
export class InternalServerError extends APIError {}
export class ServiceUnavailableError extends APIError {}

/** The call never got an answer: the connection failed, or it timed out. */
export class APIConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "APIConnectionError";
  }
}

function errorFor(problem: Problem, headers: Headers): APIError {
  const kinds: Record<number, typeof APIError> = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
  };
  const Kind = kinds[problem.status] ?? APIError;
  return new Kind(problem, headers);
}

/** Whether a failed attempt may be tried again: the server did nothing it would not redo. */
export function retryable(status: number, code: string | undefined): boolean {
  if (status === 409) return code === "concurrent_update";
  return status === 408 || status === 429 || status >= 500;
}

/** The wait before retry `attempt` (1, 2, ...): `Retry-After` when given, else exponential
 * backoff from half a second with full jitter, at most 8 s. */
export function backoff(attempt: number, retryAfter: string | null): number {
  const seconds = retryAfter === null ? NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 60) * 1000;
  const cap = Math.min(8000, 500 * 2 ** (attempt - 1));
  return Math.random() * cap;
}

function env(name: string): string | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  return g.process?.env?.[name];
}

/** One operation, as the generated resources describe it. */
export interface Call {
  method: string;
  /** With `{name}` placeholders, filled from `pathParams`. */
  path: string;
  pathParams?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
  /** Whether the operation takes an `Idempotency-Key`. */
  idempotent?: boolean;
  /** How the answer is read: `data` unwraps `{"data": ...}`, `raw` keeps it, `text` is text. */
  answer: "data" | "raw" | "text" | "none";
  /** Replaces the API key (the session token of the customer-facing `/omni/*` calls). */
  bearer?: string;
  /** `none`: the operation takes no credential (resuming an onboarding with a handoff token). */
  auth?: "none";
  /** Headers the operation needs (`api-version`). */
  headers?: Record<string, string>;
}

export class Core {
  readonly apiKey: string | undefined;
  readonly baseUrl: string;
  readonly timeout: number;
  readonly maxRetries: number;
  readonly actorToken: string | undefined;
  readonly headers: Record<string, string>;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions = {}) {
    this.apiKey = options.apiKey ?? env("OMNIRAIL_API_KEY") ?? env("IOF_API_KEY");
    this.baseUrl = (options.baseUrl ?? env("OMNIRAIL_BASE_URL") ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
    this.timeout = options.timeout ?? 30_000;
    this.maxRetries = options.maxRetries ?? 2;
    this.actorToken = options.actorToken;
    this.headers = options.headers ?? {};
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new Error("no fetch: give ClientOptions.fetch");
    this.fetchImpl = f.bind(globalThis);
  }

  url(call: Call): string {
    const path = call.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = call.pathParams?.[name];
      if (value === undefined) throw new Error(`missing path parameter ${name}`);
      return encodeURIComponent(value);
    });
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(call.query ?? {})) {
      if (value === undefined || value === null) continue;
      url.searchParams.set(key, Array.isArray(value) ? value.join(",") : String(value));
    }
    return url.toString();
  }

  /** Sends `call`, retrying what may be retried, and reads its answer. */
  async call<T>(call: Call, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(call, options, "application/json");
    if (call.answer === "none" || res.status === 204) return undefined as T;
    if (call.answer === "text") return (await res.text()) as T;
    const json = (await res.json()) as { data?: unknown };
    return (call.answer === "data" ? json.data : json) as T;
  }

  /** Sends `call` and answers the successful response, unread (streams, exports). */
  async send(call: Call, options: RequestOptions = {}, accept = "application/json"): Promise<Response> {
    const headers: Record<string, string> = { accept, ...this.headers, ...call.headers, ...options.headers };
    if (call.bearer) {
      headers.authorization = `Bearer ${call.bearer}`;
    } else if (call.auth !== "none") {
      if (!this.apiKey) throw new Error("no API key: give apiKey, or set OMNIRAIL_API_KEY or IOF_API_KEY");
      headers["x-api-key"] = this.apiKey;
      const actor = options.actorToken ?? this.actorToken;
      if (actor) headers.authorization = `Bearer ${actor}`;
    }
    let body: string | FormData | undefined;
    if (call.body instanceof FormData) {
      body = call.body; // fetch writes the multipart boundary
    } else if (call.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(call.body);
    }
    if (call.idempotent) {
      // One key per call, the same on every retry: the server applies the call once.
      headers["idempotency-key"] = options.idempotencyKey ?? uuid();
    }
    const url = this.url(call);
    const maxRetries = options.maxRetries ?? this.maxRetries;
    const timeout = options.timeout ?? this.timeout;
    for (let attempt = 0; ; attempt++) {
      const signals = [AbortSignal.timeout(timeout)];
      if (options.signal) signals.push(options.signal);
      let res: Response;
      try {
        res = await this.fetchImpl(url, { method: call.method, headers, body, signal: AbortSignal.any(signals) });
      } catch (cause) {
        if (options.signal?.aborted) throw cause;
        if (attempt < maxRetries) {
          await sleep(backoff(attempt + 1, null));
          continue;
        }
        throw new APIConnectionError(`${call.method} ${url}: ${String(cause)}`, { cause });
      }
      if (res.ok) return res;
      const problem = await readProblem(res);
      if (attempt < maxRetries && retryable(res.status, problem.code)) {
        await sleep(backoff(attempt + 1, res.headers.get("retry-after")));
        continue;
      }
      throw errorFor(problem, res.headers);
    }
  }
}

async function readProblem(res: Response): Promise<Problem> {
  const text = await res.text();
  try {
    const parsed = JSON.parse(text) as Problem;
    if (parsed && typeof parsed.code === "string") return { ...parsed, status: res.status };
  } catch {
    // not problem details: described below
  }
  return { status: res.status, code: `http_${res.status}`, title: res.statusText, detail: text.slice(0, 500) };
}

/** A random UUID (v4): `crypto.randomUUID` where there is one (it needs a secure context in
 * browsers), else made from `crypto.getRandomValues`. */
function uuid(): string {
  if (typeof globalThis.crypto.randomUUID === "function") return globalThis.crypto.randomUUID();
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Where a page sits in the whole list. */
export interface Pagination {
  page: number;
  perPage: number;
  total: number;
}

/** One page of a list, with the way to the rest: `for await (const x of page)` walks every
 * item of every page from this one on. */
export class Page<T> implements AsyncIterable<T> {
  constructor(
    readonly data: T[],
    readonly pagination: Pagination,
    private readonly next: (page: number) => Promise<Page<T>>,
  ) {}

  hasNextPage(): boolean {
    return this.pagination.page * this.pagination.perPage < this.pagination.total && this.data.length > 0;
  }

  nextPage(): Promise<Page<T>> {
    return this.next(this.pagination.page + 1);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let page: Page<T> = this;
    for (;;) {
      yield* page.data;
      if (!page.hasNextPage()) return;
      page = await page.nextPage();
    }
  }
}

/** Fetches the page `query` names, as a `Page` that knows how to fetch the others. */
export async function paginate<T>(
  core: Core,
  call: Call,
  options: RequestOptions | undefined,
): Promise<Page<T>> {
  const raw = await core.call<{ data: T[]; pagination: Pagination }>({ ...call, answer: "raw" }, options);
  return new Page(raw.data, raw.pagination, (page) =>
    paginate<T>(core, { ...call, query: { ...call.query, page } }, options),
  );
}

/** One Server-Sent Event of a stream. */
export interface ServerSentEvent {
  /** The SSE `id`: give it back as `lastEventId` to resume after it. */
  id?: string;
  event?: string;
  /** The `data` field, parsed as JSON when it is JSON. */
  data: unknown;
}

/** The events of a stream, as they come; heartbeats (comments) are skipped. Ends when the
 * server ends the stream, or on `options.signal`. */
export async function* stream(
  core: Core,
  call: Call,
  lastEventId: string | undefined,
  options: RequestOptions = {},
): AsyncIterable<ServerSentEvent> {
  const headers = { ...options.headers, ...(lastEventId ? { "last-event-id": lastEventId } : {}) };
  // A stream lasts: no timeout of its own, and no retry once it has begun.
  const res = await core.send(call, { ...options, headers, timeout: 2 ** 31 - 1 }, "text/event-stream");
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buffer = "";
  let event: { id?: string; event?: string; data: string[] } = { data: [] };
  // A reader, not `for await` over the body: not every browser iterates a ReadableStream.
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r?\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer[nl] === "\r" ? 2 : 1));
        if (line === "") {
          if (event.data.length > 0) {
            const text = event.data.join("\n");
            let data: unknown = text;
            try {
              data = JSON.parse(text);
            } catch {
              // plain text data stays text
            }
            yield { id: event.id, event: event.event, data };
          }
          event = { data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data.push(text);
        else if (field === "id") event.id = text;
        else if (field === "event") event.event = text;
      }
    }
  } finally {
    // The consumer stopped (or the stream ended): let go of the connection.
    await reader.cancel().catch(() => undefined);
  }
}
