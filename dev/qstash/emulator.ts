/**
 * A loopback server that speaks the QStash v2 HTTP API, for tests and local development.
 *
 * Point the real `@upstash/qstash` `Client` at {@linkcode QStashEmulator.url} and it publishes,
 * batches, cancels and lists the dead-letter queue as it would against QStash. The emulator then
 * pushes each message to its destination with a real `Upstash-Signature` JWT (the real `Receiver`
 * verifies it), retries with backoff, honours `Retry-After` and non-retryable errors, and
 * dead-letters exhausted messages. Time comes from an injectable clock, so tests move the clock
 * (or call `flush()`) instead of sleeping, and `idle()` waits until nothing is due or in flight.
 *
 * Node-only tooling: it uses `node:http`, which Node, Deno and Bun all provide.
 *
 * @module
 */
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const encoder = new TextEncoder();
const DAY_MS = 86_400_000;
const MAX_TIMER_MS = 2_147_483_647;
const WAITING: ReadonlySet<EmulatorMessageState> = new Set(["CREATED", "RETRY"]);
const PENDING: ReadonlySet<EmulatorMessageState> = new Set(["CREATED", "RETRY", "ACTIVE"]);
const METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH"]);

/** Options for {@linkcode startQStashEmulator}. */
export interface QStashEmulatorOptions {
  /** Bearer token every API request must carry (`Authorization: Bearer <token>`). */
  token: string;
  /** Key that signs every delivery, as QStash signs with the current key. */
  currentSigningKey: string;
  /** The next signing key; kept so tests can build a `Receiver` from the emulator. */
  nextSigningKey: string;
  /** Port on 127.0.0.1 to listen on. @default 0 (a free port) */
  port?: number;
  /**
   * Milliseconds to wait before the next attempt, given how many times the message has already
   * been retried (0 after the first attempt failed). A `Retry-After` response header or an
   * `Upstash-Retry-Delay` expression on the message takes precedence.
   * @default QStash's `(retried) => min(86400, e ** (2.5 * retried))` seconds, in milliseconds
   */
  backoff?: (retried: number) => number;
  /**
   * Clock for delays, `notBefore`, retries and timestamps, in epoch milliseconds. Inject one to
   * move time by hand, then call `idle()`. Signatures always use the wall clock, because the
   * receiver checks them against it.
   * @default Date.now
   */
  now?: () => number;
  /** How long a deduplication id is remembered. @default 600_000 (QStash's 10 minutes) */
  deduplicationWindowMs?: number;
}

/** Lifecycle of a message, named after QStash's states. */
export type EmulatorMessageState = "CREATED" | "ACTIVE" | "RETRY" | "DELIVERED" | "FAILED" | "CANCELLED";

/** One HTTP request the emulator made to a destination. */
export interface EmulatorAttempt {
  /** Value of the `Upstash-Retried` header sent with this attempt. */
  readonly retried: number;
  /** Emulator-clock time the attempt started. */
  readonly startedAt: number;
  /** Emulator-clock time the attempt finished. */
  readonly finishedAt: number;
  /** Response status; absent after a network error or timeout. */
  readonly status?: number;
  /** Why no response arrived (network error, timeout). */
  readonly error?: string;
  /** Response body text. */
  readonly responseBody: string;
  /** Response headers, lower-case names. */
  readonly responseHeaders: Readonly<Record<string, string>>;
}

/** A published message and its delivery history; a live view, updated as delivery goes on. */
export interface EmulatorMessage {
  readonly messageId: string;
  /** Destination URL, exactly as published (also the signature's `sub`). */
  readonly url: string;
  readonly method: string;
  /** Headers sent to the destination besides QStash's own (`Upstash-Forward-` prefix stripped). */
  readonly headers: Readonly<Record<string, string>>;
  /** Body as UTF-8 text. */
  readonly body: string;
  readonly bodyBytes: Uint8Array;
  /** `Upstash-Retries`: retries after the first attempt before dead-lettering. */
  readonly maxRetries: number;
  readonly createdAt: number;
  /** Emulator-clock time of the first attempt (`Upstash-Delay` / `Upstash-Not-Before`). */
  readonly notBefore: number;
  readonly timeoutMs?: number;
  readonly deduplicationId?: string;
  readonly callback?: string;
  readonly failureCallback?: string;
  readonly retryDelay?: string;
  readonly state: EmulatorMessageState;
  /** When the next attempt is due, while the message waits. */
  readonly nextAttemptAt: number | undefined;
  readonly attempts: readonly EmulatorAttempt[];
  /** Set once the message is dead-lettered. */
  readonly dlqId: string | undefined;
}

/** Counters since start (or the last `reset()`). */
export interface EmulatorStats {
  /** Messages accepted (not counting deduplicated publishes). */
  readonly published: number;
  /** Publishes answered with an existing message id. */
  readonly deduplicated: number;
  /** HTTP requests made to destinations, every attempt counted. */
  readonly deliveries: number;
  /** Messages that got a 2xx. */
  readonly delivered: number;
  /** Messages moved to the dead-letter queue. */
  readonly deadLettered: number;
  readonly cancelled: number;
}

/** A running emulator; see {@linkcode startQStashEmulator}. */
export interface QStashEmulator {
  /** Base URL for `new Client({ baseUrl: url, token })`. */
  readonly url: string;
  readonly port: number;
  /** The signing keys it was started with. */
  readonly signingKeys: { readonly current: string; readonly next: string };
  /** Every message in publish order, including callback messages. */
  messages(): EmulatorMessage[];
  /** One message by id. */
  message(messageId: string): EmulatorMessage | undefined;
  /** Messages currently in the dead-letter queue. */
  dlq(): EmulatorMessage[];
  /** Counters snapshot. */
  readonly stats: EmulatorStats;
  /** Resolves once no attempt is in flight and none is due on the emulator clock. */
  idle(): Promise<void>;
  /** Makes every waiting message (delayed or backing off) due now, then waits for `idle()`. */
  flush(): Promise<void>;
  /** Forgets all messages, the dead-letter queue, deduplication ids and counters. */
  reset(): void;
  /** Stops timers, aborts attempts in flight and closes the server. */
  close(): Promise<void>;
}

/** Arguments of {@linkcode signQStashDelivery}. */
export interface SignQStashDeliveryArgs {
  signingKey: string;
  /** Destination URL (`sub` claim). */
  url: string;
  /** Raw body as sent; its SHA-256 goes in the `body` claim. */
  body: string | Uint8Array;
  /** Wall-clock epoch milliseconds used for `iat`, `nbf` and `exp`. @default Date.now() */
  now?: number;
  /** `exp` claim, epoch seconds. @default now + 300 */
  exp?: number;
  /** `nbf` claim, epoch seconds. @default now */
  nbf?: number;
  /** `iss` claim. @default "Upstash" */
  iss?: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Entry = Mutable<EmulatorMessage> & {
  attempts: EmulatorAttempt[];
  bodyBytes: Uint8Array<ArrayBuffer>;
  delayFn?: (retried: number) => number;
  isCallback: boolean;
};
type Reply = { status: number; body: unknown };

/**
 * Signs a delivery the way QStash does: an HS256 JWT with `iss` "Upstash", `sub` the destination
 * URL, `iat`/`nbf`/`exp` (5 minutes), a unique `jti` and `body` = base64url(SHA-256(body)).
 * Override `exp`, `nbf` or `iss` to build expired or otherwise invalid tokens.
 *
 * @example
 * ```ts
 * const signature = await signQStashDelivery({ signingKey: "sig_current", url, body: "{}" });
 * await new Receiver({ currentSigningKey: "sig_current", nextSigningKey: "sig_next" })
 *   .verify({ signature, body: "{}", url });
 * ```
 */
export async function signQStashDelivery(args: SignQStashDeliveryArgs): Promise<string> {
  const seconds = Math.floor((args.now ?? Date.now()) / 1000);
  const bytes = typeof args.body === "string" ? encoder.encode(args.body) : new Uint8Array(args.body);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const claims = {
    iss: args.iss ?? "Upstash",
    sub: args.url,
    exp: args.exp ?? seconds + 300,
    nbf: args.nbf ?? seconds,
    iat: seconds,
    jti: `jwt_${randomId(24)}`,
    body: base64(digest, true),
  };
  const input = `${base64Json({ alg: "HS256", typ: "JWT" })}.${base64Json(claims)}`;
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(args.signingKey),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(input)));
  return `${input}.${base64(mac, true).replace(/=+$/, "")}`;
}

/**
 * Starts a QStash-compatible server on 127.0.0.1. It serves `POST /v2/publish/<url>`,
 * `POST /v2/batch`, `GET|DELETE /v2/messages[/:id]`, `GET|DELETE /v2/dlq[/:dlqId]` and
 * `POST /v2/dlq/retry`, and honours `Upstash-Delay`, `-Not-Before`, `-Deduplication-Id`,
 * `-Content-Based-Deduplication`, `-Retries`, `-Retry-Delay`, `-Method`, `-Timeout`,
 * `-Callback`, `-Failure-Callback` and `Upstash-Forward-*`. URL groups, queues, schedules and
 * flow control are not emulated (400 / 404).
 *
 * @example
 * ```ts
 * let clock = Date.now();
 * const emulator = await startQStashEmulator({
 *   token: "t", currentSigningKey: "sig_a", nextSigningKey: "sig_b", now: () => clock,
 * });
 * const client = new Client({ baseUrl: emulator.url, token: "t", devMode: false });
 * await client.publishJSON({ url: "http://127.0.0.1:3000/task", body: { n: 1 }, delay: 60 });
 * clock += 60_000;
 * await emulator.idle(); // delivered and signed
 * await emulator.close();
 * ```
 */
export async function startQStashEmulator(options: QStashEmulatorOptions): Promise<QStashEmulator> {
  const { token, currentSigningKey, nextSigningKey } = options;
  for (const [name, value] of Object.entries({ token, currentSigningKey, nextSigningKey })) {
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`${name} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
  }
  const dedupWindow = options.deduplicationWindowMs ?? 600_000;
  if (!(dedupWindow >= 0)) {
    throw new RangeError(`deduplicationWindowMs must be >= 0, got ${dedupWindow}`);
  }
  const now = options.now ?? Date.now;
  const backoff = options.backoff ?? ((retried) => Math.min(86_400, Math.exp(2.5 * retried)) * 1000);

  const entries = new Map<string, Entry>();
  const deadLetters = new Map<string, Entry>();
  const dedup = new Map<string, { messageId: string; expiresAt: number }>();
  const inflight = new Set<Promise<void>>();
  const controllers = new Set<AbortController>();
  const zero: Mutable<EmulatorStats> = {
    published: 0,
    deduplicated: 0,
    deliveries: 0,
    delivered: 0,
    deadLettered: 0,
    cancelled: 0,
  };
  let stats = { ...zero };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  function pump(): void {
    if (closed) return;
    const t = now();
    for (const entry of entries.values()) {
      if (WAITING.has(entry.state) && (entry.nextAttemptAt ?? 0) <= t) start(entry);
    }
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    let next = Number.POSITIVE_INFINITY;
    for (const entry of entries.values()) {
      if (WAITING.has(entry.state)) next = Math.min(next, entry.nextAttemptAt ?? 0);
    }
    if (next !== Number.POSITIVE_INFINITY) {
      timer = setTimeout(pump, Math.min(Math.max(next - now(), 0), MAX_TIMER_MS));
    }
  }

  function start(entry: Entry): void {
    entry.state = "ACTIVE";
    entry.nextAttemptAt = undefined;
    const run: Promise<void> = attempt(entry)
      .catch((error: unknown) => console.error("qstash emulator: delivery crashed", error))
      .finally(() => {
        inflight.delete(run);
        pump();
      });
    inflight.add(run);
  }

  async function attempt(entry: Entry): Promise<void> {
    const retried = entry.attempts.length;
    const startedAt = now();
    const controller = new AbortController();
    controllers.add(controller);
    const limit =
      entry.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => controller.abort(new Error(`timed out after ${entry.timeoutMs}ms`)),
            entry.timeoutMs,
          );
    const hasBody = entry.method !== "GET";
    const headers = new Headers(entry.headers);
    headers.set("Upstash-Message-Id", entry.messageId);
    headers.set("Upstash-Retried", String(retried));
    headers.set("User-Agent", "Upstash-QStash");
    headers.set(
      "Upstash-Signature",
      await signQStashDelivery({
        signingKey: currentSigningKey,
        url: entry.url,
        body: hasBody ? entry.bodyBytes : new Uint8Array(0),
      }),
    );
    stats.deliveries += 1;
    let result: Mutable<EmulatorAttempt> = {
      retried,
      startedAt,
      finishedAt: startedAt,
      responseBody: "",
      responseHeaders: {},
    };
    try {
      const response = await fetch(entry.url, {
        method: entry.method,
        headers,
        body: hasBody ? entry.bodyBytes : null,
        signal: controller.signal,
        redirect: "manual",
      });
      result = {
        ...result,
        status: response.status,
        responseBody: await response.text(),
        responseHeaders: Object.fromEntries(response.headers),
      };
    } catch (error) {
      const reason = controller.signal.aborted ? controller.signal.reason : error;
      result.error = reason instanceof Error ? reason.message : String(reason);
    } finally {
      if (limit !== undefined) clearTimeout(limit);
      controllers.delete(controller);
    }
    result.finishedAt = now();
    entry.attempts.push(result);
    if (closed || entry.state !== "ACTIVE") return;
    const status = result.status ?? 0;
    if (status >= 200 && status < 300) {
      entry.state = "DELIVERED";
      stats.delivered += 1;
      if (entry.callback !== undefined) sendCallback(entry, entry.callback, result);
      return;
    }
    const nonRetryable =
      status === 489 && result.responseHeaders["upstash-nonretryable-error"]?.toLowerCase() === "true";
    if (nonRetryable || retried >= entry.maxRetries) {
      entry.state = "FAILED";
      entry.dlqId = `${Date.now()}-${randomId(16)}`;
      deadLetters.set(entry.dlqId, entry);
      stats.deadLettered += 1;
      if (entry.failureCallback !== undefined) sendCallback(entry, entry.failureCallback, result);
      return;
    }
    const delay = retryAfterMs(result.responseHeaders, now()) ?? (entry.delayFn ?? backoff)(retried);
    entry.state = "RETRY";
    entry.nextAttemptAt = now() + Math.max(0, delay);
  }

  function sendCallback(entry: Entry, url: string, last: EmulatorAttempt): void {
    if (entry.isCallback) return;
    const payload = {
      status: last.status ?? 0,
      header: multi(last.responseHeaders),
      body: base64(encoder.encode(last.responseBody)),
      retried: last.retried,
      maxRetries: entry.maxRetries,
      sourceMessageId: entry.messageId,
      url: entry.url,
      method: entry.method,
      sourceHeader: multi(entry.headers),
      sourceBody: base64(entry.bodyBytes),
      notBefore: entry.notBefore,
      createdAt: entry.createdAt,
      callerIP: "127.0.0.1",
      ...(entry.dlqId === undefined ? {} : { dlqId: entry.dlqId }),
    };
    enqueue({
      url,
      method: "POST",
      headers: { "content-type": "application/json" },
      bodyBytes: encoder.encode(JSON.stringify(payload)),
      maxRetries: entry.maxRetries,
      notBefore: now(),
      isCallback: true,
    });
  }

  function enqueue(
    init: Pick<
      Entry,
      "url" | "method" | "headers" | "bodyBytes" | "maxRetries" | "notBefore" | "isCallback"
    > &
      Partial<
        Pick<
          Entry,
          "timeoutMs" | "deduplicationId" | "callback" | "failureCallback" | "retryDelay" | "delayFn"
        >
      >,
  ): Entry {
    const entry: Entry = {
      ...init,
      messageId: `msg_${randomId(26)}`,
      body: new TextDecoder().decode(init.bodyBytes),
      createdAt: now(),
      state: "CREATED",
      nextAttemptAt: init.notBefore,
      attempts: [],
      dlqId: undefined,
    };
    entries.set(entry.messageId, entry);
    stats.published += 1;
    pump();
    return entry;
  }

  async function publish(
    destination: string,
    headerMap: Map<string, string>,
    body: Uint8Array<ArrayBuffer>,
  ): Promise<Reply> {
    const url = destination.replace(/^(https?):\/(?!\/)/i, "$1://");
    if (!/^https?:\/\//i.test(url) || !URL.canParse(url)) {
      return fail(400, `invalid destination "${destination}": only http(s) URLs are emulated`);
    }
    const method = (headerMap.get("upstash-method") ?? "POST").toUpperCase();
    if (!METHODS.has(method)) return fail(400, `invalid Upstash-Method "${method}"`);
    const retriesText = headerMap.get("upstash-retries") ?? "3";
    const maxRetries = Number(retriesText);
    if (!/^\d+$/.test(retriesText.trim())) {
      return fail(400, `invalid Upstash-Retries "${retriesText}"`);
    }
    let notBefore = now();
    const notBeforeText = headerMap.get("upstash-not-before");
    const delayText = headerMap.get("upstash-delay");
    if (notBeforeText !== undefined) {
      if (!/^\d+$/.test(notBeforeText.trim())) {
        return fail(400, `invalid Upstash-Not-Before "${notBeforeText}"`);
      }
      notBefore = Number(notBeforeText) * 1000;
    } else if (delayText !== undefined) {
      const delay = parseDuration(delayText);
      if (delay === undefined) return fail(400, `invalid Upstash-Delay "${delayText}"`);
      notBefore += delay;
    }
    const timeoutText = headerMap.get("upstash-timeout");
    const timeoutMs = timeoutText === undefined ? undefined : parseDuration(timeoutText);
    if (timeoutText !== undefined && !timeoutMs) {
      return fail(400, `invalid Upstash-Timeout "${timeoutText}"`);
    }
    const retryDelay = headerMap.get("upstash-retry-delay");
    let delayFn: ((retried: number) => number) | undefined;
    try {
      delayFn = retryDelay === undefined ? undefined : compileRetryDelay(retryDelay);
    } catch (error) {
      return fail(400, (error as Error).message);
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of headerMap) {
      if (name.startsWith("upstash-forward-")) headers[name.slice(16)] = value;
      else if (name === "content-type") headers[name] = value;
    }
    let dedupKey = headerMap.get("upstash-deduplication-id");
    if (dedupKey === undefined && headerMap.get("upstash-content-based-deduplication") === "true") {
      const parts = [
        url,
        ...Object.entries(headers)
          .sort()
          .map(([k, v]) => `${k}:${v}`),
        "",
      ].join("\n");
      const digest = await crypto.subtle.digest("SHA-256", concat([encoder.encode(parts), body]));
      dedupKey = `content:${base64(new Uint8Array(digest))}`;
    }
    const t = now();
    for (const [key, seen] of dedup) if (seen.expiresAt <= t) dedup.delete(key);
    const seen = dedupKey === undefined ? undefined : dedup.get(dedupKey);
    if (seen !== undefined) {
      stats.deduplicated += 1;
      return { status: 202, body: { messageId: seen.messageId, url, deduplicated: true } };
    }
    const optional = {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(dedupKey === undefined ? {} : { deduplicationId: dedupKey }),
      ...(headerMap.has("upstash-callback") ? { callback: headerMap.get("upstash-callback") as string } : {}),
      ...(headerMap.has("upstash-failure-callback")
        ? { failureCallback: headerMap.get("upstash-failure-callback") as string }
        : {}),
      ...(retryDelay === undefined || delayFn === undefined ? {} : { retryDelay, delayFn }),
    };
    const entry = enqueue({
      url,
      method,
      headers,
      bodyBytes: body,
      maxRetries,
      notBefore,
      isCallback: false,
      ...optional,
    });
    if (dedupKey !== undefined) {
      dedup.set(dedupKey, { messageId: entry.messageId, expiresAt: t + dedupWindow });
    }
    return { status: 201, body: { messageId: entry.messageId, url } };
  }

  async function route(
    method: string,
    path: string,
    query: URLSearchParams,
    rawPath: string,
    headers: Map<string, string>,
    body: Uint8Array<ArrayBuffer>,
  ): Promise<Reply> {
    const [, version, resource, id, extra] = path.split("/").map((part) => decodeURIComponent(part));
    if (version !== "v2") return fail(404, `unknown route ${method} ${path}`);
    if (method === "POST" && resource === "publish") {
      return await publish(rawPath.slice("/v2/publish/".length), headers, body);
    }
    if (method === "POST" && resource === "batch" && id === undefined) return await batch(body);
    if (resource === "messages") {
      const entry = id === undefined ? undefined : entries.get(id);
      if (method === "GET" && id !== undefined) {
        return entry !== undefined && PENDING.has(entry.state)
          ? { status: 200, body: toPayload(entry) }
          : fail(404, `message ${id} not found`);
      }
      if (method === "DELETE" && id !== undefined) {
        if (entry === undefined || !PENDING.has(entry.state)) {
          return fail(404, `message ${id} not found`);
        }
        cancel(entry);
        return { status: 200, body: { cancelled: 1 } };
      }
      if (method === "DELETE") {
        const picked = select(
          [...entries.values()].filter((e) => PENDING.has(e.state)),
          query,
          "messageIds",
        );
        for (const e of picked) cancel(e);
        return { status: 200, body: { cancelled: picked.length } };
      }
    }
    if (resource === "dlq") {
      if (method === "POST" && id === "retry" && extra === undefined) {
        const picked = select([...deadLetters.values()], query, "dlqIds");
        const responses = picked.map((e) => {
          deadLetters.delete(e.dlqId as string);
          const {
            url,
            method: m,
            headers: h,
            bodyBytes,
            maxRetries,
            timeoutMs,
            callback,
            failureCallback,
            retryDelay,
            delayFn,
          } = e;
          const copy = {
            url,
            method: m,
            headers: h,
            bodyBytes,
            maxRetries,
            notBefore: now(),
            isCallback: e.isCallback,
          };
          const optional = { timeoutMs, callback, failureCallback, retryDelay, delayFn };
          for (const [k, v] of Object.entries(optional)) {
            if (v !== undefined) Object.assign(copy, { [k]: v });
          }
          return { messageId: enqueue(copy).messageId };
        });
        return { status: 200, body: { responses } };
      }
      const entry = id === undefined ? undefined : deadLetters.get(id);
      if (method === "GET" && id === undefined) return listDlq(query);
      if (method === "GET") {
        return entry ? { status: 200, body: toPayload(entry) } : fail(404, `dlq message ${id} not found`);
      }
      if (method === "DELETE" && id !== undefined) {
        return deadLetters.delete(id) ? { status: 200, body: {} } : fail(404, `dlq message ${id} not found`);
      }
      if (method === "DELETE") {
        const picked = select([...deadLetters.values()], query, "dlqIds");
        for (const e of picked) deadLetters.delete(e.dlqId as string);
        return { status: 200, body: { deleted: picked.length } };
      }
    }
    return fail(404, `unknown route ${method} ${path}`);
  }

  async function batch(body: Uint8Array<ArrayBuffer>): Promise<Reply> {
    let items: unknown;
    try {
      items = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return fail(400, "batch body must be a JSON array");
    }
    if (!Array.isArray(items)) return fail(400, "batch body must be a JSON array");
    const results: unknown[] = [];
    for (const item of items as Array<{
      destination?: unknown;
      headers?: unknown;
      body?: unknown;
      queue?: unknown;
    }>) {
      if (typeof item?.destination !== "string") {
        return fail(400, "every batch entry needs a destination");
      }
      if (item.queue !== undefined) return fail(400, "queues are not emulated");
      const headerMap = new Map<string, string>();
      for (const [k, v] of Object.entries((item.headers ?? {}) as Record<string, unknown>)) {
        headerMap.set(k.toLowerCase(), String(v));
      }
      const bytes = encoder.encode(typeof item.body === "string" ? item.body : "");
      const reply = await publish(item.destination, headerMap, bytes);
      results.push(reply.body);
    }
    return { status: 201, body: results };
  }

  function cancel(entry: Entry): void {
    entry.state = "CANCELLED";
    entry.nextAttemptAt = undefined;
    stats.cancelled += 1;
  }

  function listDlq(query: URLSearchParams): Reply {
    const all = select([...deadLetters.values()], query, "dlqIds", true);
    const count = Math.min(Number(query.get("count") ?? 100) || 100, 100);
    const offset = Number(query.get("cursor") ?? 0) || 0;
    const messages = all.slice(offset, offset + count).map(toPayload);
    const cursor = offset + count < all.length ? String(offset + count) : undefined;
    return { status: 200, body: { messages, cursor } };
  }

  async function idle(): Promise<void> {
    for (;;) {
      pump();
      if (inflight.size === 0) return;
      await Promise.allSettled([...inflight]);
    }
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      const body = await readBody(req);
      if (req.headers.authorization !== `Bearer ${token}`) {
        reply = fail(401, "Unauthorized: missing or invalid bearer token");
      } else {
        const rawPath = req.url ?? "/";
        const cut = rawPath.indexOf("?");
        const path = cut === -1 ? rawPath : rawPath.slice(0, cut);
        const query = new URLSearchParams(cut === -1 ? "" : rawPath.slice(cut + 1));
        const headers = new Map<string, string>();
        for (const [k, v] of Object.entries(req.headers)) {
          if (v !== undefined) headers.set(k.toLowerCase(), Array.isArray(v) ? v.join(", ") : v);
        }
        reply = await route(req.method ?? "GET", path, query, rawPath, headers, body);
      }
    } catch (error) {
      reply = fail(500, error instanceof Error ? error.message : String(error));
    }
    res.writeHead(reply.status, { "content-type": "application/json" });
    res.end(JSON.stringify(reply.body));
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const boundPort = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${boundPort}`,
    port: boundPort,
    signingKeys: { current: currentSigningKey, next: nextSigningKey },
    messages: () => [...entries.values()],
    message: (messageId) => entries.get(messageId),
    dlq: () => [...deadLetters.values()],
    get stats() {
      return { ...stats };
    },
    idle,
    async flush() {
      const t = now();
      for (const entry of entries.values()) if (WAITING.has(entry.state)) entry.nextAttemptAt = t;
      await idle();
    },
    reset() {
      for (const entry of entries.values()) if (PENDING.has(entry.state)) entry.state = "CANCELLED";
      for (const controller of controllers) controller.abort(new Error("emulator reset"));
      entries.clear();
      deadLetters.clear();
      dedup.clear();
      stats = { ...zero };
      pump();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      for (const controller of controllers) controller.abort(new Error("emulator closed"));
      await Promise.allSettled([...inflight]);
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await done;
    },
  };
}

/** Filters by ids (`idKey` query values) or by `url`, `messageId`, `responseStatus`; `all=true` takes all. */
function select(list: Entry[], query: URLSearchParams, idKey: string, listAll = false): Entry[] {
  const ids = query.getAll(idKey);
  if (ids.length > 0) {
    return list.filter((e) => ids.includes(idKey === "dlqIds" ? (e.dlqId ?? "") : e.messageId));
  }
  const filters: Array<[string, (e: Entry) => string]> = [
    ["url", (e) => e.url],
    ["messageId", (e) => e.messageId],
    ["responseStatus", (e) => String(e.attempts.at(-1)?.status ?? "")],
  ];
  const active = filters.filter(([key]) => query.has(key));
  if (active.length === 0 && !listAll && query.get("all") !== "true") return [];
  return list.filter((e) => active.every(([key, get]) => get(e) === query.get(key)));
}

/** The message as QStash's API describes it (`Message` / `DlqMessage`). */
function toPayload(entry: Entry): Record<string, unknown> {
  const last = entry.attempts.at(-1);
  let utf8 = true;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(entry.bodyBytes);
  } catch {
    utf8 = false;
  }
  return {
    messageId: entry.messageId,
    url: entry.url,
    method: entry.method,
    header: multi(entry.headers),
    ...(utf8 ? { body: entry.body } : { bodyBase64: base64(entry.bodyBytes) }),
    maxRetries: entry.maxRetries,
    notBefore: entry.notBefore,
    createdAt: entry.createdAt,
    callback: entry.callback,
    failureCallback: entry.failureCallback,
    retryDelayExpression: entry.retryDelay,
    callerIP: "127.0.0.1",
    ...(entry.dlqId === undefined
      ? {}
      : {
          dlqId: entry.dlqId,
          responseStatus: last?.status,
          responseHeader: multi(last?.responseHeaders ?? {}),
          responseBody: last?.responseBody,
        }),
  };
}

/** Delay from `Retry-After` (seconds, HTTP date or `6m5s`) or the rate-limit reset headers; none above a day. */
function retryAfterMs(headers: Readonly<Record<string, string>>, now: number): number | undefined {
  const names = [
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
  ];
  for (const name of names) {
    const value = headers[name]?.trim();
    if (value === undefined || value === "") continue;
    let ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : parseDuration(value);
    if (ms === undefined && !Number.isNaN(Date.parse(value))) ms = Date.parse(value) - now;
    if (ms !== undefined && ms <= DAY_MS) return Math.max(0, ms);
  }
  return undefined;
}

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: DAY_MS,
};

/** Parses `10s`, `5m`, `1h30m`, `500ms`; a bare integer means seconds. */
function parseDuration(text: string): number | undefined {
  const value = text.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== value) return undefined;
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * (UNITS[unit as string] ?? 0), 0);
}

const FUNCTIONS: Record<string, (...args: number[]) => number> = {
  pow: Math.pow,
  sqrt: Math.sqrt,
  abs: Math.abs,
  exp: Math.exp,
  floor: Math.floor,
  ceil: Math.ceil,
  round: Math.round,
  min: Math.min,
  max: Math.max,
};

/** Compiles an `Upstash-Retry-Delay` expression (milliseconds, variable `retried`). */
function compileRetryDelay(source: string): (retried: number) => number {
  type Node = (retried: number) => number;
  const tokens = source.match(/\d+(?:\.\d+)?|[A-Za-z_]\w*|\S/g) ?? [];
  let at = 0;
  const take = (expected?: string): string => {
    const token = tokens[at++];
    if (token === undefined || (expected !== undefined && token !== expected)) {
      throw new SyntaxError(`invalid Upstash-Retry-Delay "${source}": expected ${expected ?? "a value"}`);
    }
    return token;
  };
  const binary = (next: () => Node, ops: string[]): Node => {
    let left = next();
    while (ops.includes(tokens[at] ?? "")) {
      const op = take();
      const [l, r] = [left, next()];
      left = (x) =>
        op === "+" ? l(x) + r(x) : op === "-" ? l(x) - r(x) : op === "*" ? l(x) * r(x) : l(x) / r(x);
    }
    return left;
  };
  const expression = (): Node => binary(term, ["+", "-"]);
  const term = (): Node => binary(unary, ["*", "/"]);
  const unary = (): Node => {
    if (tokens[at] === "-") {
      take();
      const inner = unary();
      return (x) => -inner(x);
    }
    return primary();
  };
  const primary = (): Node => {
    const token = take();
    if (/^\d/.test(token)) return () => Number(token);
    if (token === "retried") return (x) => x;
    if (token === "(") {
      const inner = expression();
      take(")");
      return inner;
    }
    const fn = FUNCTIONS[token];
    if (fn === undefined) {
      throw new SyntaxError(`invalid Upstash-Retry-Delay "${source}": unknown "${token}"`);
    }
    take("(");
    const args: Node[] = [expression()];
    while (tokens[at] === ",") {
      take(",");
      args.push(expression());
    }
    take(")");
    return (x) => fn(...args.map((arg) => arg(x)));
  };
  const root = expression();
  if (at !== tokens.length) take("end of expression");
  return root;
}

function fail(status: number, error: string): Reply {
  return { status, body: { error } };
}

function multi(headers: Readonly<Record<string, string>>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
}

function readBody(req: IncomingMessage): Promise<Uint8Array<ArrayBuffer>> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => resolve(concat(chunks)));
    req.on("error", reject);
  });
}

function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Base64 (or base64url with padding, as QStash's `body` claim). */
function base64(bytes: Uint8Array, url = false): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const text = btoa(binary);
  return url ? text.replaceAll("+", "-").replaceAll("/", "_") : text;
}

function base64Json(value: unknown): string {
  return base64(encoder.encode(JSON.stringify(value)), true).replace(/=+$/, "");
}

function randomId(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(length)), (b) => alphabet[b % 62]).join("");
}
