/**
 * Options of `createHandler`, validated once into what the routes use.
 *
 * @module
 */
import type { App } from "../app.ts";
import type { PushReceiver } from "../contracts.ts";
import type { EnqueueOptions, Run } from "../task.ts";
import { bearerChecker } from "./_http.ts";

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
   * Push delivery: the receivers of providers that push tasks over HTTP, each on its own route
   * (`qstashReceiver(...)` serves `POST /qstash`). `false` turns push delivery off.
   * @default the app's broker's own receiver (a `qstash()` broker with its signing keys), else none
   */
  push?: PushReceiver | readonly PushReceiver[] | false;
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
  /** How long `GET /health` waits for each backend's ping before it counts it as down. @default 2_000 */
  healthTimeoutMs?: number;
  /**
   * `GET /health` answers 503 when a queue with waiting work (not paused) has no live worker.
   * @default true when the broker is pulled from and the store keeps a worker registry
   */
  requireWorkers?: boolean;
  /**
   * Serve `GET /metrics` (Prometheus text), authorized by `token` or `metricsToken`; it answers
   * 404 without either. @default true
   */
  metrics?: boolean;
  /** Another bearer token accepted on `/metrics` only (a Prometheus scrape config's). */
  metricsToken?: string | undefined;
  /**
   * How often a push handler instance reports itself to the worker registry (after deliveries;
   * it drops out three intervals after its last). @default 5_000
   */
  reportMs?: number;
}

/** Enqueues one run of a task; the handle says what flow control did (see `Run`). */
export type Enqueue = (
  input: unknown,
  options: EnqueueOptions,
) => Promise<Pick<Run<unknown>, "id" | "debounced" | "throttled">>;

/** The validated configuration of a handler. */
export interface Config {
  maxBodyBytes: number;
  healthTimeoutMs: number;
  requireWorkers: boolean;
  /** Checks a bearer token on `/metrics`; undefined when metrics are off. */
  metrics: ((authorization: string | null) => Promise<boolean>) | undefined;
  reportMs: number;
  /** Push receivers by route. */
  push: ReadonlyMap<string, PushReceiver>;
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
  const healthTimeoutMs = options.healthTimeoutMs ?? 2_000;
  if (typeof healthTimeoutMs !== "number" || !(healthTimeoutMs > 0) || !Number.isFinite(healthTimeoutMs)) {
    throw new RangeError(`healthTimeoutMs must be a positive number, got ${String(healthTimeoutMs)}`);
  }
  const reportMs = options.reportMs ?? 5_000;
  if (typeof reportMs !== "number" || !(reportMs > 0) || !Number.isFinite(reportMs)) {
    throw new RangeError(`reportMs must be a positive number, got ${String(reportMs)}`);
  }
  for (const name of ["requireWorkers", "metrics"] as const) {
    const value = options[name];
    if (value !== undefined && typeof value !== "boolean") {
      throw new TypeError(`${name} must be a boolean, got ${JSON.stringify(value)}`);
    }
  }
  for (const name of ["token", "cronSecret", "metricsToken"] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== "string" || value.length === 0)) {
      throw new TypeError(`${name} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
  }
  const producer = options.token === undefined ? undefined : bearerChecker(options.token);
  const secret = options.cronSecret === undefined ? undefined : bearerChecker(options.cronSecret);
  const scrape = options.metricsToken === undefined ? undefined : bearerChecker(options.metricsToken);
  const metrics =
    options.metrics === false || (producer === undefined && scrape === undefined)
      ? undefined
      : async (authorization: string | null) =>
          (await producer?.(authorization)) === true || (await scrape?.(authorization)) === true;
  const pulled = app.broker.receive !== undefined && app.broker.queueOps !== undefined;
  const requireWorkers = options.requireWorkers ?? (pulled && app.store.ops !== undefined);
  const cron =
    producer === undefined && secret === undefined
      ? undefined
      : async (authorization: string | null) =>
          (await producer?.(authorization)) === true || (await secret?.(authorization)) === true;
  return {
    maxBodyBytes,
    healthTimeoutMs,
    requireWorkers,
    metrics,
    reportMs,
    push: resolvePush(app, options.push),
    producer,
    cron,
    enqueuer: options.token === undefined ? () => undefined : resolveEnqueue(app, options.tasks),
  };
}

/** Routes of the handler that a push receiver cannot take. */
const RESERVED: ReadonlySet<string> = new Set(["/runs", "/dead-letters", "/health", "/cron", "/metrics"]);

function resolvePush(app: App, option: HandlerOptions["push"]): Map<string, PushReceiver> {
  const receivers =
    option === false
      ? []
      : option === undefined
        ? [app.broker.pushReceiver?.()].filter((r) => r !== undefined)
        : Array.isArray(option)
          ? option
          : [option as PushReceiver];
  const byPath = new Map<string, PushReceiver>();
  for (const receiver of receivers) {
    const path = (receiver as Partial<PushReceiver> | null)?.path;
    if (
      typeof path !== "string" ||
      !/^\/[A-Za-z0-9._~-]+$/.test(path) ||
      typeof receiver.verify !== "function" ||
      typeof receiver.delivery !== "function" ||
      typeof receiver.respond !== "function"
    ) {
      throw new TypeError(
        "push must be push receivers (such as qstashReceiver(...)), each with a path like /qstash",
      );
    }
    if (RESERVED.has(path)) throw new TypeError(`push: ${path} is a route of the handler itself`);
    if (byPath.has(path)) throw new TypeError(`push: two receivers on the same path ${path}`);
    byPath.set(path, receiver);
  }
  return byPath;
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
