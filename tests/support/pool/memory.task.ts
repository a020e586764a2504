/** Keeps `mb` of memory alive in its thread (module state outlives the task) on the attempts listed. */
import type { ThreadContext } from "../../../mod.ts";

const kept: unknown[] = [];

export function run(input: { mb: number; on: number[] }, ctx: ThreadContext) {
  if (input.on.includes(ctx.attempt)) {
    // Arrays of small objects: heap the runtime counts, about 1 MB per 16,000 of them.
    for (let m = 0; m < input.mb; m++) kept.push(Array.from({ length: 16_000 }, (_, i) => ({ i, m })));
  }
  return { threadId: ctx.threadId, attempt: ctx.attempt };
}
