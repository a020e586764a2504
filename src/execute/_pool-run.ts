/**
 * Internal: one attempt of a task defined with `module`, on the worker's pool (a thread) or, with
 * none, on the event loop. The thread's progress reports go to the run's record; the attempt's
 * signal tells the pool when the attempt is over (on a timeout the pool terminates the thread).
 *
 * @module
 */
import { type PoolCall, type PoolIo, runInline, type TaskPool } from "../pool.ts";
import type { ResolvedTask } from "../task.ts";
import type { AttemptContext } from "./_context.ts";

/** A pool task's attempt: on the worker's pool, else on the event loop. */
export function runModule(
  task: ResolvedTask,
  module: string,
  input: unknown,
  ctx: AttemptContext,
  pool: TaskPool | undefined,
): Promise<unknown> {
  const call: PoolCall = {
    module,
    task: task.name,
    id: ctx.id,
    attempt: ctx.attempt,
    idempotencyKey: ctx.idempotencyKey,
    input,
    timeoutMs: task.timeoutMs,
  };
  const io: PoolIo = {
    signal: ctx.signal,
    progress: (value) => {
      ctx.progress(value).catch(() => {});
    },
  };
  return pool === undefined ? runInline(call, io) : pool.run(call, io);
}
