/**
 * Options of `createHandler`, validated once into what the routes use.
 *
 * @module
 */
import { QStashBroker } from "../adapters/qstash/mod.ts";
import { qstashVerifier, type Verifier } from "../adapters/qstash/_verify.ts";
import { bearerChecker } from "./_handler-http.ts";
import type { App } from "./app.ts";
import type { EnqueueOptions } from "./task.ts";

/** Options of QStash push delivery (`POST /qstash`). */
export interface QStashHandlerOptions {
  /** `QSTASH_CURRENT_SIGNING_KEY`. @default the signing keys of the app's `qstash()` broker */
  currentSigningKey?: string;
  /** `QSTASH_NEXT_SIGNING_KEY`. @default the signing keys of the app's `qstash()` broker */
  nextSigningKey?: string;
  /**
   * The public URL QStash delivers to; the signature's `sub` claim must equal it exactly. A
   * QStash schedule calling `/cron` is checked against the sibling URL ending in `/cron`.
   * @default the `url` of the app's `qstash()` broker, else the URL of the incoming request
   */
  url?: string;
  /** Seconds of clock skew tolerated on the token's `exp`/`nbf`. @default 0 */
  clockToleranceSec?: number;
}

/** A task handle as `app.task()` returns it (only what the handler needs). */
export interface EnqueueableTask {
  readonly name: string;
  enqueue(input: never, options?: EnqueueOptions): Promise<{ readonly id: string }>;
}

/**
 * Options of `createHandler`.
 *
 * @example
 * ```ts
 * createHandler(app, { token: env.CELERIAC_TOKEN, cronSecret: env.CRON_SECRET, maxBodyBytes: 262_144 });
 * ```
 */
export interface HandlerOptions {
  /**
   * QStash push delivery. `false` turns the route off.
   * @default on when the app's broker is `qstash()` (with its signing keys and url), else off
   */
  qstash?: QStashHandlerOptions | false;
  /**
   * Bearer token of the producer API (`POST /runs`, `GET /runs/:id`, `GET /dead-letters`), also
   * accepted on `/cron`. Without it the producer routes answer 404.
   */
  token?: string | undefined;
  /** Another bearer token accepted on `/cron` only, such as Vercel's `CRON_SECRET`. */
  cronSecret?: string | undefined;
  /**
   * The tasks producers may enqueue over HTTP.
   * @default every task registered on the app
   */
  tasks?: readonly EnqueueableTask[];
  /** Largest request body accepted on any route, in bytes; larger answers 413. @default 1_048_576 */
  maxBodyBytes?: number;
}

/** Enqueues one run of a task. */
export type Enqueue = (input: unknown, options: EnqueueOptions) => Promise<{ readonly id: string }>;

/** Push verification: the verifier and the URLs the signature must name (undefined: the request's). */
export interface Push {
  verify: Verifier;
  url: string | undefined;
  cronUrl: string | undefined;
}

/** The validated configuration of a handler. */
export interface Config {
  maxBodyBytes: number;
  push: Push | undefined;
  /** Checks the producer bearer token; undefined when the producer API is off. */
  producer: ((authorization: string | null) => Promise<boolean>) | undefined;
  /** Checks a bearer token on `/cron` (token or cronSecret); undefined when neither is set. */
  cron: ((authorization: string | null) => Promise<boolean>) | undefined;
  /** The enqueue function of a task producers may enqueue, by name. */
  enqueuer: (name: string) => Enqueue | undefined;
}

/** Validates options up front; throws `TypeError`/`RangeError` naming the option. */
export function resolveOptions(app: App, options: HandlerOptions): Config {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("handler options must be an object");
  }
  const maxBodyBytes = options.maxBodyBytes ?? 1_048_576;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new RangeError(`maxBodyBytes must be a positive integer, got ${String(maxBodyBytes)}`);
  }
  for (const name of ["token", "cronSecret"] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== "string" || value.length === 0)) {
      throw new TypeError(`${name} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
  }
  const producer = options.token === undefined ? undefined : bearerChecker(options.token);
  const secret = options.cronSecret === undefined ? undefined : bearerChecker(options.cronSecret);
  const cron =
    producer === undefined && secret === undefined
      ? undefined
      : async (authorization: string | null) =>
          (await producer?.(authorization)) === true || (await secret?.(authorization)) === true;
  return {
    maxBodyBytes,
    push: resolvePush(app, options.qstash),
    producer,
    cron,
    enqueuer: options.token === undefined ? () => undefined : resolveEnqueue(app, options.tasks),
  };
}

function resolvePush(app: App, option: QStashHandlerOptions | false | undefined): Push | undefined {
  if (option === false) return undefined;
  const broker = app.broker instanceof QStashBroker ? app.broker : undefined;
  if (option === undefined && broker === undefined) return undefined;
  const currentSigningKey = option?.currentSigningKey ?? broker?.signingKeys?.currentSigningKey;
  const nextSigningKey = option?.nextSigningKey ?? broker?.signingKeys?.nextSigningKey;
  if (currentSigningKey === undefined || nextSigningKey === undefined) {
    throw new TypeError(
      "QStash delivery needs both signing keys: pass qstash: { currentSigningKey, nextSigningKey } " +
        "(or set them on qstash()), or qstash: false to turn the route off",
    );
  }
  const url = option?.url ?? broker?.url;
  if (url !== undefined && !URL.canParse(url)) {
    throw new TypeError(`qstash.url must be an absolute URL, got ${JSON.stringify(url)}`);
  }
  const keys = { currentSigningKey, nextSigningKey };
  const tolerance = option?.clockToleranceSec;
  const verify = qstashVerifier(tolerance === undefined ? keys : { ...keys, clockToleranceSec: tolerance });
  return { verify, url, cronUrl: url === undefined ? undefined : new URL("cron", url).href };
}

function resolveEnqueue(
  app: App,
  tasks: readonly EnqueueableTask[] | undefined,
): (name: string) => Enqueue | undefined {
  if (tasks !== undefined) {
    if (!Array.isArray(tasks)) throw new TypeError("tasks must be an array of task handles from app.task()");
    const byName = new Map<string, Enqueue>();
    for (const task of tasks) {
      if (typeof task?.enqueue !== "function" || !app.tasks.has(task.name)) {
        throw new TypeError(`tasks: ${JSON.stringify(task?.name)} is not a task of this app`);
      }
      byName.set(task.name, (input, opts) => task.enqueue(input as never, opts));
    }
    return (name) => byName.get(name);
  }
  // Every task of the app, through the app's own enqueue-by-name.
  const enqueue = (app as { enqueue?: unknown }).enqueue;
  if (typeof enqueue !== "function") {
    throw new TypeError(
      "this App cannot enqueue a task by name: pass tasks: [...] (the handles from app.task())",
    );
  }
  const byName = enqueue as (
    name: string,
    input: unknown,
    options: EnqueueOptions,
  ) => Promise<{ id: string }>;
  return (name) => (app.tasks.has(name) ? (input, opts) => byName.call(app, name, input, opts) : undefined);
}
