/**
 * Options of a pull worker, validated up front (a wrong one throws, naming it).
 *
 * @module
 */
import { checkKeys, keysOf } from "../_options.ts";
import type { TaskPool } from "../pool.ts";

/**
 * Options of `app.worker()`.
 *
 * @example
 * ```ts
 * app.worker({ queues: ["io"], concurrency: 50 }).start();
 * ```
 */
export interface WorkerOptions {
  /** Queues to serve, in order: earlier queues are served first. @default every queue the app's tasks use */
  queues?: readonly string[];
  /** Tasks run at once. @default 10 */
  concurrency?: number;
  /**
   * Tasks leased ahead of the running ones, so the next task starts the moment one ends instead
   * of after its outcome has been recorded (like Celery's prefetch). Each stays leased (renewed)
   * while it waits, and backends that start runs as they lease them show it active from then; on
   * stop, waiting ones go back to their queue at once. Use 0 for long tasks, so an idle worker
   * elsewhere takes them instead. @default the concurrency
   */
  prefetch?: number;
  /** How long a received task stays invisible to other workers; renewed every third of it. @default 30_000 */
  leaseMs?: number;
  /** On stop, how long in-flight tasks may finish before their leases are released. @default 10_000 */
  shutdownGraceMs?: number;
  /** Longest single wait for new work before the worker asks again. @default 5_000 */
  pollMs?: number;
  /**
   * How often the worker reports to the registry (`app.inspect().workers()`) and picks up control
   * commands; it is forgotten after three missed beats. @default 5_000
   */
  heartbeatMs?: number;
  /** The host name the registry shows (the CLI passes the machine's). @default null */
  hostname?: string;
  /**
   * Runs the tasks defined with `module` (`threads()` from `celeriac/threads`); the worker closes
   * it when it stops. Without one, such tasks run on the event loop. @default none
   */
  pool?: TaskPool;
}

const WORKER_KEYS = keysOf<WorkerOptions>({
  queues: true,
  concurrency: true,
  prefetch: true,
  leaseMs: true,
  shutdownGraceMs: true,
  pollMs: true,
  heartbeatMs: true,
  hostname: true,
  pool: true,
});

function checkPositive(name: string, value: number, integer: boolean): number {
  if (
    typeof value !== "number" ||
    !(value > 0) ||
    (integer ? !Number.isSafeInteger(value) : !Number.isFinite(value))
  ) {
    throw new RangeError(
      `${name} must be a positive ${integer ? "integer" : "number"}, got ${String(value)}`,
    );
  }
  return value;
}

/** The options with defaults filled in. */
export interface ResolvedWorkerOptions {
  queues: readonly string[] | undefined;
  concurrency: number;
  prefetch: number;
  leaseMs: number;
  shutdownGraceMs: number;
  pollMs: number;
  heartbeatMs: number;
  hostname: string | null;
  pool: TaskPool | undefined;
}

/** Validates a worker's options and fills in defaults. */
export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  checkKeys(options, WORKER_KEYS, "worker");
  let queues: string[] | undefined;
  if (options.queues !== undefined) {
    if (
      !Array.isArray(options.queues) ||
      options.queues.length === 0 ||
      options.queues.some((q) => typeof q !== "string" || q === "")
    ) {
      throw new TypeError(
        `queues must be a non-empty array of queue names, got ${JSON.stringify(options.queues)}`,
      );
    }
    queues = [...options.queues];
  }
  const concurrency = checkPositive("concurrency", options.concurrency ?? 10, true);
  const prefetch = options.prefetch ?? concurrency;
  if (!Number.isSafeInteger(prefetch) || prefetch < 0) {
    throw new RangeError(`prefetch must be a non-negative integer, got ${String(prefetch)}`);
  }
  const leaseMs = checkPositive("leaseMs", options.leaseMs ?? 30_000, false);
  const shutdownGraceMs = options.shutdownGraceMs ?? 10_000;
  if (!(shutdownGraceMs >= 0))
    throw new RangeError(`shutdownGraceMs must be >= 0, got ${String(shutdownGraceMs)}`);
  const pollMs = checkPositive("pollMs", options.pollMs ?? 5_000, false);
  const heartbeatMs = checkPositive("heartbeatMs", options.heartbeatMs ?? 5_000, false);
  if (options.hostname !== undefined && (typeof options.hostname !== "string" || options.hostname === "")) {
    throw new TypeError(`hostname must be a non-empty string, got ${JSON.stringify(options.hostname)}`);
  }
  const hostname = options.hostname ?? null;
  const pool = options.pool;
  if (pool !== undefined && (typeof pool !== "object" || pool === null || typeof pool.run !== "function")) {
    throw new TypeError("pool must be a task pool (threads() from celeriac/threads)");
  }
  return { queues, concurrency, prefetch, leaseMs, shutdownGraceMs, pollMs, heartbeatMs, hostname, pool };
}

/** Checks a concurrency (a positive integer); throws RangeError naming it. */
export function checkConcurrency(value: number): number {
  return checkPositive("concurrency", value, true);
}
