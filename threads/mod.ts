/**
 * `celeriac/threads`: a pool of threads for CPU-bound tasks (Celery's prefork pool), the same on
 * Node (`node:worker_threads`), Deno and Bun (Web Workers). A task defined with `module` runs in
 * a thread of its worker's pool: the event loop stays free for other tasks, lease renewals and
 * heartbeats; at `timeoutMs` the thread is terminated, not just signalled; a thread that exits,
 * crashes or runs out of memory fails its attempt (retried per the task's policy) and is
 * replaced.
 *
 * @example
 * ```ts
 * // hash.task.ts
 * export function run(input: { rounds: number }) { … return digest; }
 *
 * // worker.ts
 * import { createApp } from "celeriac";
 * import { threadModule, threads } from "celeriac/threads";
 * const app = createApp({ broker, store });
 * app.task({
 *   name: "hash",
 *   module: threadModule<typeof import("./hash.task.ts")>(new URL("./hash.task.ts", import.meta.url)),
 *   timeoutMs: 10_000,
 * });
 * app.worker({ concurrency: 8, pool: threads({ max: 4, maxTasksPerChild: 1000 }) }).start();
 * ```
 *
 * @module
 */
import type { TaskPool } from "../src/pool.ts";

export { ThreadError } from "../src/errors.ts";
export { threadModule } from "../src/pool.ts";
import { checkPoolOptions, ThreadPool } from "./_pool.ts";

/** Options of {@link threads}. */
export interface ThreadPoolOptions {
  /** Threads kept even when idle. @default 0 */
  min?: number;
  /** Threads at most (it grows while attempts wait for one). @default the available cores */
  max?: number;
  /** An idle thread above `min` stops after this long. @default 10_000 */
  idleMs?: number;
  /** Replace a thread after it ran this many tasks (Celery's `--max-tasks-per-child`). @default none */
  maxTasksPerChild?: number;
  /**
   * Replace a thread whose heap grew past this many MB (Celery's `--max-memory-per-child`): on
   * Node a hard limit (V8's `resourceLimits`: a task over it fails, out of memory), elsewhere
   * measured after each task. @default none
   */
  maxMemoryPerChildMb?: number;
  /**
   * After an attempt is aborted (cancelled, or its worker stopping), how long its task may take
   * to return before the thread is terminated. A timeout terminates at once. @default 1_000
   */
  abortGraceMs?: number;
}

/**
 * A thread pool for a worker's `pool` option (or the CLI's `--pool threads`).
 *
 * @example
 * ```ts
 * app.worker({ pool: threads({ min: 1, max: 4, maxMemoryPerChildMb: 512 }) }).start();
 * ```
 */
export function threads(options: ThreadPoolOptions = {}): TaskPool {
  return new ThreadPool(checkPoolOptions(options));
}
