/**
 * Tasks that run in a pool of threads: what the core knows of them. A task defined with
 * `module` (a module URL exporting `run`) is handed to the {@link TaskPool} its worker has (a
 * runner capability; `threads()` from `celeriac/threads` makes one for Node, Deno and Bun). With
 * no pool, the module is imported and run on the event loop, so the same task works in eager
 * tests and on runtimes without threads.
 *
 * @module
 */
import type { StandardSchemaV1 } from "./schema.ts";
import type { TaskOptions } from "./task.ts";

/**
 * What a task's `run` gets inside its thread: the run's identity, its attempt, an abort signal
 * (aborted when the run is cancelled or its worker stops; on a timeout the thread is terminated)
 * and progress reports, forwarded to the run's record.
 */
export interface ThreadContext {
  readonly id: string;
  readonly task: string;
  readonly attempt: number;
  /** Stable across the run's attempts: pass it to downstream APIs as their idempotency key. */
  readonly idempotencyKey: string;
  readonly signal: AbortSignal;
  /** The pool's number for the thread running this attempt (1, 2, …; 0 when run without a pool). */
  readonly threadId: number;
  /** Records the run's progress (any JSON value); the last report wins. */
  progress(value: unknown): void;
}

/**
 * A task module's URL, typed by the module (`threadModule` from `celeriac/threads`): the
 * task's result type follows its `run`.
 *
 * @example
 * ```ts
 * const resize = app.task({
 *   name: "image.resize",
 *   module: threadModule<typeof import("./resize.task.ts")>(new URL("./resize.task.ts", import.meta.url)),
 * });
 * ```
 */
export interface ThreadModule<R> {
  readonly url: string;
  /** Type only: the result of the module's `run`. */
  readonly __result?: R;
}

/** A module whose `run` a thread calls. */
export type TaskModuleShape = { run: (input: never, ctx: ThreadContext) => unknown };

/**
 * Types a task module's URL by the module (a type-only import: nothing is loaded here).
 *
 * @example
 * ```ts
 * threadModule<typeof import("./hash.task.ts")>(new URL("./hash.task.ts", import.meta.url));
 * ```
 */
export function threadModule<M extends TaskModuleShape>(
  url: URL | string,
): ThreadModule<Awaited<ReturnType<M["run"]>>> {
  return { url: moduleUrl(url) };
}

/** A module reference as a URL string; throws TypeError for anything else. */
export function moduleUrl(value: unknown): string {
  if (value instanceof URL) return value.href;
  if (typeof value === "string" && URL.canParse(value)) return new URL(value).href;
  if (typeof value === "object" && value !== null && typeof (value as { url?: unknown }).url === "string") {
    return moduleUrl((value as { url: string }).url);
  }
  throw new TypeError(`module must be a URL (new URL("./x.task.ts", import.meta.url)), got ${String(value)}`);
}

/**
 * A task whose work runs in a thread of its worker's pool (`app.worker({ pool: threads() })`):
 * `module` is the URL of a module exporting `run(input, ctx)` (a {@link ThreadContext}); with
 * {@link threadModule} the result type follows the module's. Without a pool (eager tests, push
 * handlers) the module runs on the event loop.
 *
 * @example
 * ```ts
 * app.task({
 *   name: "report.render",
 *   input: v.object({ month: v.string() }),
 *   pool: "threads",
 *   module: threadModule<typeof import("./render.task.ts")>(new URL("./render.task.ts", import.meta.url)),
 *   timeoutMs: 60_000,
 * });
 * ```
 */
export interface ThreadTaskDefinition<S extends StandardSchemaV1, R> extends TaskOptions<S> {
  /** Says where it runs (the only pool kind). @default "threads" */
  pool?: "threads";
  module: URL | string | ThreadModule<R>;
  run?: undefined;
}

/**
 * Checks a definition's work — `run`, or `module` (with `pool: "threads"` optional) — and
 * returns the module's URL for a pool task; TypeError naming the task otherwise.
 */
export function checkWork(
  def: { run?: unknown; module?: unknown; pool?: unknown },
  where: string,
): string | undefined {
  const module = def.module === undefined ? undefined : moduleUrl(def.module);
  if (def.pool !== undefined && def.pool !== "threads") {
    throw new TypeError(`${where}: pool must be "threads", got ${JSON.stringify(def.pool)}`);
  }
  if (module !== undefined && def.run !== undefined) {
    throw new TypeError(`${where}: give run or module, not both`);
  }
  if (module === undefined && typeof def.run !== "function") {
    throw new TypeError(
      `${where}: run must be a function${def.pool === undefined ? "" : " (or give module)"}`,
    );
  }
  return module;
}

/** One attempt handed to a pool. */
export interface PoolCall {
  /** The task module's URL. */
  module: string;
  task: string;
  id: string;
  attempt: number;
  idempotencyKey: string;
  /** The validated input (crosses by structured clone). */
  input: unknown;
  /**
   * The attempt's time limit, the pool's to enforce: counted from when its thread starts the
   * task (loading the module in a fresh thread has a limit of its own, the same length), so time
   * spent waiting for a free thread does not count. Past it the thread is terminated.
   */
  timeoutMs: number;
}

/** What the pool may do back to the attempt while it runs. */
export interface PoolIo {
  /** Aborted when the attempt is over: with a `TimeoutError` the thread is terminated at once. */
  signal: AbortSignal;
  progress(value: unknown): void;
}

/** Why threads were replaced, counted by the pool. */
export interface PoolRecycled {
  /** `maxTasksPerChild` reached. */
  tasks: number;
  /** Over `maxMemoryPerChildMb` (or out of memory). */
  memory: number;
  /** Terminated at a timeout. */
  timeout: number;
  /** Terminated after an abort (a cancel or a worker stopping) its task did not heed in time. */
  aborted: number;
  /** The thread exited or crashed while running a task. */
  crashed: number;
}

/** A pool's state, as `app.inspect().workers()` shows it per worker. */
export interface PoolStats {
  kind: string;
  min: number;
  max: number;
  /** Threads alive. */
  size: number;
  /** Threads running a task. */
  busy: number;
  /** Attempts waiting for a thread. */
  waiting: number;
  /** Attempts the pool finished (either way). */
  completed: number;
  /** Threads stopped after an idle period (autoscale). */
  shrunk: number;
  recycled: PoolRecycled;
}

/**
 * The runner capability a worker uses for tasks defined with `module`.
 *
 * @example
 * ```ts
 * import { threads } from "celeriac/threads";
 * app.worker({ pool: threads({ max: 4, maxTasksPerChild: 1000 }) }).start();
 * ```
 */
export interface TaskPool {
  /** Runs one attempt: resolves to `run`'s result, rejects with its error (or the thread's end). */
  run(call: PoolCall, io: PoolIo): Promise<unknown>;
  stats(): PoolStats;
  /** Terminates every thread; attempts still running reject. */
  close(): Promise<void>;
}

/** Task modules' `run` functions on this thread, imported once each (a failed import is tried again). */
const loaded = new Map<string, Promise<TaskModuleShape["run"]>>();

/**
 * The `run` a task module exports (or its default export's), imported once per URL on this
 * thread; `load` imports it (a pool thread passes its own, which can register a loader).
 */
export function moduleRun(
  url: string,
  load: (url: string) => Promise<unknown> = (u) => import(u),
): Promise<TaskModuleShape["run"]> {
  let run = loaded.get(url);
  if (run === undefined) {
    run = load(url).then((m) => {
      const mod = m as Partial<TaskModuleShape> & { default?: Partial<TaskModuleShape> };
      const fn = mod.run ?? mod.default?.run;
      if (typeof fn !== "function") throw new TypeError(`task module ${url} exports no run function`);
      return fn;
    });
    loaded.set(url, run);
    run.catch(() => loaded.delete(url));
  }
  return run;
}

/** Runs a task module on the calling thread (no pool). */
export async function runInline(call: PoolCall, io: PoolIo): Promise<unknown> {
  const run = await moduleRun(call.module);
  const ctx: ThreadContext = {
    id: call.id,
    task: call.task,
    attempt: call.attempt,
    idempotencyKey: call.idempotencyKey,
    signal: io.signal,
    threadId: 0,
    progress: (value) => io.progress(value),
  };
  return run(call.input as never, ctx);
}
