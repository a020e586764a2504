/** bench/pool.ts's CPU-bound task module: `rounds` SHA-256 updates (about 20 ms as calibrated). */
import type { ThreadContext } from "../mod.ts";
import { sha256Rounds } from "./_pool-hash.mjs";

export function run(input: { rounds: number }, _ctx: ThreadContext): string {
  return sha256Rounds(input.rounds);
}
