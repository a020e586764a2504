/**
 * The CPU-bound work of bench/pool.ts, in plain JavaScript so that BullMQ's sandbox (which
 * imports its processor file itself, without a TypeScript loader) runs the very same code as
 * celeriac's task module and the bench's calibration: `rounds` SHA-256 updates over one fixed
 * 16 KiB block, then the hex digest.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** The fixed block every round hashes (the same bytes in every thread). */
const BLOCK = new Uint8Array(16 * 1024).map((_, i) => (i * 31 + 7) & 255);

/** `rounds` updates of one SHA-256 over the fixed block; returns the hex digest. */
export function sha256Rounds(rounds) {
  const hash = createHash("sha256");
  for (let i = 0; i < rounds; i++) hash.update(BLOCK);
  return hash.digest("hex");
}
