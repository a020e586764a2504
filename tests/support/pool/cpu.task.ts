/** A CPU-bound task for the pool tests: spins for `ms`, or for ever on the attempts listed in `hangOn`. */
import type { ThreadContext } from "../../../mod.ts";

export function run(input: { ms: number; hangOn?: number[] }, ctx: ThreadContext) {
  const hang = input.hangOn?.includes(ctx.attempt) === true;
  const until = performance.now() + input.ms;
  let spins = 0;
  while (hang || performance.now() < until) spins++;
  return { threadId: ctx.threadId, attempt: ctx.attempt, spun: spins > 0 };
}
