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
import { createRoutes, fail, type Reply } from "./_api.ts";
import { concat } from "./_encoding.ts";
import { createStore } from "./_store.ts";
import type { EmulatorMessage, EmulatorStats } from "./types.ts";

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
  /**
   * Makes every waiting message (delayed or backing off) due now, then waits for `idle()`; flow
   * control still holds messages over their key's limits.
   */
  flush(): Promise<void>;
  /** Forgets all messages, the dead-letter queue, deduplication ids and counters. */
  reset(): void;
  /** Stops timers, aborts attempts in flight and closes the server. */
  close(): Promise<void>;
}

/**
 * Starts a QStash-compatible server on 127.0.0.1. It serves `POST /v2/publish/<url>`,
 * `POST /v2/batch`, `GET|DELETE /v2/messages[/:id]`, `GET|DELETE /v2/dlq[/:dlqId]` and
 * `POST /v2/dlq/retry`, and honours `Upstash-Delay`, `-Not-Before`, `-Deduplication-Id`,
 * `-Content-Based-Deduplication`, `-Retries`, `-Retry-Delay`, `-Method`, `-Timeout`,
 * `-Callback`, `-Failure-Callback`, `-Flow-Control-Key` with `-Flow-Control-Value` (per key,
 * `parallelism` calls in flight and `rate` calls started per `period`; a message over a limit
 * waits, in publish order) and `Upstash-Forward-*`. URL groups, queues, schedules and the flow
 * control API (reading, pausing, pinning a key) are not emulated (400 / 404).
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
  const store = createStore({ signingKey: currentSigningKey, now, backoff });
  const route = createRoutes(store, dedupWindow);
  let closed = false;

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
    messages: () => [...store.entries.values()],
    message: (messageId) => store.entries.get(messageId),
    dlq: () => [...store.deadLetters.values()],
    get stats() {
      return { ...store.stats };
    },
    idle: () => store.idle(),
    flush: () => store.flush(),
    reset: () => store.reset(),
    async close() {
      if (closed) return;
      closed = true;
      await store.close();
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await done;
    },
  };
}

function readBody(req: IncomingMessage): Promise<Uint8Array<ArrayBuffer>> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => resolve(concat(chunks)));
    req.on("error", reject);
  });
}
