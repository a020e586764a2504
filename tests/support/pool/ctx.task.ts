/** Reports what a task sees of its context inside a pool thread. */
import type { ThreadContext } from "../../../mod.ts";

export async function run(input: { steps: number }, ctx: ThreadContext) {
  for (let i = 1; i <= input.steps; i++) ctx.progress({ step: i, of: input.steps });
  await new Promise((resolve) => setTimeout(resolve, 1));
  return {
    id: ctx.id,
    task: ctx.task,
    attempt: ctx.attempt,
    threadId: ctx.threadId,
    aborted: ctx.signal.aborted,
    idempotencyKey: ctx.idempotencyKey,
  };
}
