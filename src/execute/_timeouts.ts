/**
 * Internal: the timeouts of attempts — one shared timer for every pending deadline (see
 * `_deadlines.ts`), and the error an attempt past its timeout fails with.
 *
 * @module
 */
import type { ResolvedTask } from "../task.ts";
import { TimeoutError } from "../errors.ts";
import type { AttemptContext } from "./_context.ts";
import { Deadlines } from "./_deadlines.ts";

/** The timeouts of one executor's attempts. */
export class AttemptTimeouts {
  readonly #deadlines = new Deadlines();

  /** The error of an attempt past its timeout; aborts `ctx.signal` with it. */
  error(task: ResolvedTask, attempt: number, ctx: AttemptContext): TimeoutError {
    const error = new TimeoutError(
      `task "${task.name}" timed out after ${task.timeoutMs} ms (attempt ${attempt})`,
    );
    ctx.abort(error);
    return error;
  }

  /** Settles with the task's promise, or rejects with TimeoutError at timeoutMs (aborting ctx.signal). */
  race(
    running: PromiseLike<unknown>,
    task: ResolvedTask,
    attempt: number,
    ctx: AttemptContext,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const deadline = this.#deadlines.add(task.timeoutMs, () => reject(this.error(task, attempt, ctx)));
      running.then(
        (value) => {
          this.#deadlines.cancel(deadline);
          resolve(value);
        },
        (error: unknown) => {
          this.#deadlines.cancel(deadline);
          reject(error);
        },
      );
    });
  }
}

/** True for a promise or any object with a `then` method. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
