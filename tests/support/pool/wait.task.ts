/** Waits for its signal: returns when it fires (heed), or spins on regardless (ignore). */
import type { ThreadContext } from "../../../mod.ts";

export async function run(input: { mode: "heed" | "ignore" }, ctx: ThreadContext) {
  ctx.progress("started");
  if (input.mode === "ignore") for (;;);
  await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
  return { stopped: String(ctx.signal.reason) };
}
