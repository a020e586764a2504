/**
 * The QStash push broker: each task is published to Upstash QStash with the real
 * `@upstash/qstash` `Client`, and QStash pushes it to your `createHandler` endpoint over HTTPS,
 * signed. No long-lived process anywhere; pair it with a store that outlives a request (the
 * Redis store over REST) when you read results, use idempotency keys or workflows.
 *
 * Web APIs only: runs on Cloudflare Workers, Vercel Edge, Deno Deploy, Bun and Node.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { qstash } from "celeriac/adapters/qstash";
 * import { createHandler } from "celeriac/hono";
 *
 * const app = createApp({
 *   broker: qstash({
 *     token: env.QSTASH_TOKEN,
 *     url: "https://tasks.example.com/qstash",
 *     currentSigningKey: env.QSTASH_CURRENT_SIGNING_KEY,
 *     nextSigningKey: env.QSTASH_NEXT_SIGNING_KEY,
 *   }),
 * });
 * export default createHandler(app);
 * ```
 *
 * @module
 */
import { Client, type FlowControl, type PublishRequest } from "@upstash/qstash";
import {
  BackendError,
  type Broker,
  type Message,
  type PushReceiver,
  type Store,
  sendKey,
} from "../../backend.ts";
import { flowOfLimits } from "./_flow.ts";
import { qstashReceiver } from "./_receiver.ts";
import type { SigningKeys } from "./_verify.ts";

export type { FlowControl } from "@upstash/qstash";
export { type QStashReceiverOptions, qstashReceiver } from "./_receiver.ts";
export {
  qstashVerifier,
  type SignedDelivery,
  type SigningKeys,
  type Verifier,
  type VerifierOptions,
} from "./_verify.ts";

/**
 * Options of {@link qstash}.
 *
 * @example
 * ```ts
 * qstash({ token, url: "https://tasks.example.com/qstash", retries: 5, flowControl: { key: "emails", parallelism: 10 } });
 * ```
 */
export interface QStashOptions {
  /** The QStash token (`QSTASH_TOKEN`). Required unless `client` is given. */
  token?: string;
  /**
   * The public URL of the handler's delivery route (`POST <mount>/qstash`). QStash pushes every
   * message there, and the signature's `sub` claim names it; `createHandler` checks it.
   */
  url: string;
  /** The QStash API (`QSTASH_URL`). @default "https://qstash.upstash.io" */
  baseUrl?: string;
  /**
   * Signing keys (`QSTASH_CURRENT_SIGNING_KEY`, `QSTASH_NEXT_SIGNING_KEY`). Not used to send;
   * `createHandler(app)` picks them up from the broker so they are configured once.
   */
  currentSigningKey?: string;
  /** See `currentSigningKey`. */
  nextSigningKey?: string;
  /**
   * `Upstash-Retries`: how often QStash re-delivers a message the handler answered with a 5xx or
   * not at all. celeriac's own retry policy runs through re-publishing, so this is only the safety
   * net for a process that failed before it recorded the outcome. @default 3
   */
  retries?: number;
  /**
   * QStash flow control (parallelism / rate per key), for every message or chosen per message;
   * one you set replaces the translation of a task's limits (a rate limit whose key differs from
   * its concurrency limit's is still enforced by the handler).
   * @default a task's `rateLimit` and `concurrency`, as QStash's rate, period (whole seconds) and
   * parallelism; when their keys differ, only the concurrency limit (QStash takes one key per
   * message) and the handler enforces the rate limit from the store
   */
  flowControl?: FlowControl | ((message: Message) => FlowControl | undefined);
  /** Messages per call of the batch endpoint when many are sent at once. @default 100 */
  batchSize?: number;
  /** A ready `@upstash/qstash` `Client` to send with, instead of one built from `token`/`baseUrl`. */
  client?: Client;
  /**
   * Where runs are recorded (states, results, idempotency, workflows): QStash only carries
   * messages. `createApp({ broker })` uses it when it is given no store of its own; every
   * instance of the handler needs the same one, so use a shared store such as `redis()`.
   * @default none: the app's own default (in-memory, per process)
   */
  store?: Store;
}

/**
 * The broker of {@link qstash}: a push broker, so it only sends. `createHandler(app)` reads its
 * `url` and `signingKeys` to verify deliveries.
 *
 * @example
 * ```ts
 * const broker = qstash({ token, url: "https://tasks.example.com/qstash" });
 * broker instanceof QStashBroker; // true
 * await broker.ping(); // QStash answers
 * ```
 */
export class QStashBroker implements Broker {
  /** The public URL of the delivery route (the signature's `sub` claim). */
  readonly url: string;
  /** The signing keys, when configured (used by `createHandler`). */
  readonly signingKeys: SigningKeys | undefined;
  /** The `@upstash/qstash` client that publishes. */
  readonly client: Client;
  /** The store runs are recorded in, when one was given (`createApp` then needs none). */
  readonly store: Store | undefined;
  readonly #retries: number;
  readonly #flowControl: QStashOptions["flowControl"];
  readonly #batchSize: number;

  constructor(options: QStashOptions) {
    if (typeof options !== "object" || options === null)
      throw new TypeError("qstash options must be an object");
    const { url } = options;
    if (typeof url !== "string" || !URL.canParse(url) || !/^https?:/i.test(url)) {
      throw new TypeError(`url must be an absolute http(s) URL, got ${JSON.stringify(url)}`);
    }
    this.url = url;
    const store = options.store;
    if (
      store !== undefined &&
      (typeof store?.getRun !== "function" || typeof store.updateRun !== "function")
    ) {
      throw new TypeError("store must be a celeriac store, such as redis({ client })");
    }
    this.store = store;
    const retries = options.retries ?? 3;
    if (!Number.isSafeInteger(retries) || retries < 0) {
      throw new RangeError(`retries must be a non-negative integer, got ${String(retries)}`);
    }
    this.#retries = retries;
    const batchSize = options.batchSize ?? 100;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${String(batchSize)}`);
    }
    this.#batchSize = batchSize;
    this.#flowControl = options.flowControl;
    const { currentSigningKey: current, nextSigningKey: next } = options;
    if ((current === undefined) !== (next === undefined)) {
      throw new TypeError("currentSigningKey and nextSigningKey must be given together");
    }
    this.signingKeys =
      current === undefined || next === undefined
        ? undefined
        : { currentSigningKey: current, nextSigningKey: next };
    if (options.client !== undefined) {
      this.client = options.client;
    } else {
      if (typeof options.token !== "string" || options.token.length === 0) {
        throw new TypeError(`token must be a non-empty string, got ${JSON.stringify(options.token)}`);
      }
      if (options.baseUrl !== undefined && !URL.canParse(options.baseUrl)) {
        throw new TypeError(`baseUrl must be an absolute URL, got ${JSON.stringify(options.baseUrl)}`);
      }
      // devMode: false — never start or redirect to the QStash dev server because of an env var.
      this.client = new Client({
        token: options.token,
        ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
        devMode: false,
        enableTelemetry: false,
      });
    }
  }

  /** Publishes each message (the batch endpoint when there are several). */
  async send(messages: readonly Message[]): Promise<void> {
    if (messages.length === 0) return;
    const requests = messages.map((m) => this.#request(m));
    try {
      if (requests.length === 1) {
        await this.client.publish(requests[0]!);
        return;
      }
      for (let i = 0; i < requests.length; i += this.#batchSize) {
        const results: unknown[] = await this.client.batch(requests.slice(i, i + this.#batchSize));
        const failed = results.find((r) => typeof (r as { error?: unknown } | null)?.error === "string");
        if (failed !== undefined) throw new Error((failed as { error: string }).error);
      }
    } catch (cause) {
      throw new BackendError(`QStash publish failed: ${(cause as Error)?.message ?? String(cause)}`, {
        cause,
      });
    }
  }

  /**
   * The receiver `createHandler(app)` serves on `POST /qstash`, from this broker's signing keys
   * and url. Throws when the broker has no signing keys (pass `push` to the handler instead, or
   * `push: false` to turn push delivery off).
   */
  pushReceiver(): PushReceiver {
    if (this.signingKeys === undefined) {
      throw new TypeError(
        "QStash delivery needs both signing keys: set currentSigningKey and nextSigningKey on qstash(), " +
          "or pass push: qstashReceiver({ ... }) to createHandler, or push: false to turn the route off",
      );
    }
    return qstashReceiver({ ...this.signingKeys, url: this.url });
  }

  /** Checks QStash answers (a one-item read of its dead-letter queue). */
  async ping(): Promise<void> {
    try {
      await this.client.dlq.listMessages({ count: 1 });
    } catch (cause) {
      throw new BackendError(`QStash is not reachable: ${(cause as Error)?.message ?? String(cause)}`, {
        cause,
      });
    }
  }

  #request(message: Message): PublishRequest & { url: string } {
    const request: PublishRequest & { url: string } = {
      url: this.url,
      body: message.body,
      headers: { "Content-Type": "application/json" },
      deduplicationId: deduplicationId(message),
      retries: this.#retries,
    };
    // QStash takes whole seconds: round up so a message is never delivered early (a time in the
    // past is delivered at once).
    if (message.notBefore !== undefined) {
      request.notBefore = Math.ceil(message.notBefore / 1000);
    }
    const flow =
      (typeof this.#flowControl === "function" ? this.#flowControl(message) : this.#flowControl) ??
      flowOfLimits(message);
    if (flow !== undefined) request.flowControl = flow;
    return request;
  }
}

/**
 * `Upstash-Deduplication-Id` of a message: its `key` (`runId:attempt`, with a suffix for a
 * deliberate re-send such as a replay or a deferral), so publishing the same attempt twice (a
 * handler that re-published a retry, then failed to answer) is never delivered twice. A message
 * built by hand without a key gets the same, read from its envelope.
 *
 * @example
 * ```ts
 * deduplicationId({ id: "r1", queue: "default", priority: 0, body: "…", key: "r1:2" }); // "r1:2"
 * ```
 */
export function deduplicationId(message: Message): string {
  if (message.key !== undefined) return message.key;
  let envelope: { attempt?: unknown; meta?: Record<string, unknown> } | null;
  try {
    envelope = JSON.parse(message.body) as typeof envelope;
  } catch (cause) {
    throw new TypeError(`message ${message.id} does not carry a JSON envelope`, { cause });
  }
  const attempt = envelope?.attempt;
  if (typeof attempt !== "number" || !Number.isSafeInteger(attempt) || attempt < 1) {
    throw new TypeError(`message ${message.id} carries no valid attempt number, got ${String(attempt)}`);
  }
  const meta = envelope?.meta;
  return sendKey(meta === undefined ? { id: message.id, attempt } : { id: message.id, attempt, meta });
}

/**
 * Creates the QStash push broker. Delays become `Upstash-Not-Before`, every message carries
 * `Upstash-Deduplication-Id` = `runId:attempt` and `Upstash-Retries`, several messages go through
 * the batch endpoint, and `flowControl` (or a task's rate and concurrency limits) becomes QStash
 * flow control.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { qstash } from "celeriac/adapters/qstash";
 * const app = createApp({ broker: qstash({ token: "…", url: "https://tasks.example.com/qstash" }) });
 * ```
 */
export function qstash(options: QStashOptions): QStashBroker {
  return new QStashBroker(options);
}

/** The variables {@link fromEnv} reads, as Workers' `env`, `process.env` or `Deno.env.toObject()` hold them. */
export interface QStashEnv {
  readonly QSTASH_TOKEN?: unknown;
  readonly QSTASH_URL?: unknown;
  readonly QSTASH_CURRENT_SIGNING_KEY?: unknown;
  readonly QSTASH_NEXT_SIGNING_KEY?: unknown;
  readonly CELERIAC_DELIVERY_URL?: unknown;
}

/**
 * Creates the QStash broker from the standard variables, read explicitly from `env` (works with
 * Workers' `env`): `QSTASH_TOKEN`, `QSTASH_URL` (the API, optional), `QSTASH_CURRENT_SIGNING_KEY`
 * and `QSTASH_NEXT_SIGNING_KEY`. The public delivery URL comes from `overrides.url` or
 * `CELERIAC_DELIVERY_URL`. `overrides` win over the environment.
 *
 * @example
 * ```ts
 * import { fromEnv } from "celeriac/adapters/qstash";
 * export default {
 *   fetch(request: Request, env: Record<string, string>) {
 *     const broker = fromEnv(env, { url: "https://tasks.example.com/qstash" });
 *     // …
 *   },
 * };
 * ```
 */
export function fromEnv(env: QStashEnv, overrides: Partial<QStashOptions> = {}): QStashBroker {
  const read = (name: keyof QStashEnv): string | undefined => {
    const value = env[name];
    if (value === undefined || value === "") return undefined;
    if (typeof value !== "string") throw new TypeError(`${name} must be a string, got ${typeof value}`);
    return value;
  };
  const url = overrides.url ?? read("CELERIAC_DELIVERY_URL");
  if (url === undefined) {
    throw new TypeError(
      "the delivery URL is missing: pass fromEnv(env, { url }) or set CELERIAC_DELIVERY_URL",
    );
  }
  const token = overrides.token ?? read("QSTASH_TOKEN");
  if (token === undefined && overrides.client === undefined) {
    throw new TypeError("QSTASH_TOKEN is missing from the environment");
  }
  const options: QStashOptions = { ...overrides, url };
  if (token !== undefined) options.token = token;
  const baseUrl = overrides.baseUrl ?? read("QSTASH_URL");
  if (baseUrl !== undefined) options.baseUrl = baseUrl;
  const current = overrides.currentSigningKey ?? read("QSTASH_CURRENT_SIGNING_KEY");
  const next = overrides.nextSigningKey ?? read("QSTASH_NEXT_SIGNING_KEY");
  if (current !== undefined) options.currentSigningKey = current;
  if (next !== undefined) options.nextSigningKey = next;
  return new QStashBroker(options);
}
