/** Fails its first attempts in the way asked, then returns its thread's number. */
import { NonRetryableError, type ThreadContext } from "../../../mod.ts";

type How = "throw" | "exit" | "crash" | "fatal" | "unclonable";

const g = globalThis as { Deno?: { exit(code: number): never }; process?: { exit(code: number): never } };

interface Result {
  threadId: number;
  attempt: number;
}

export function run(input: { how: How; failing: number }, ctx: ThreadContext): Result | Promise<Result> {
  if (ctx.attempt <= input.failing) {
    if (input.how === "throw") throw new Error(`failed on attempt ${ctx.attempt}`);
    if (input.how === "fatal") throw new NonRetryableError("never again");
    if (input.how === "exit") {
      if (g.Deno !== undefined) g.Deno.exit(7);
      g.process?.exit(7);
    }
    if (input.how === "crash") {
      setTimeout(() => {
        throw new Error("uncaught in the thread");
      }, 0);
      return new Promise<Result>(() => {});
    }
    // A function does not survive the structured clone back to the pool.
    if (input.how === "unclonable") return { threadId: 0, attempt: 0, fn: () => 1 } as Result;
  }
  return { threadId: ctx.threadId, attempt: ctx.attempt };
}
