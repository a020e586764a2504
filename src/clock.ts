/**
 * Clocks. The system clock by default; a manual clock for tests that must not wait.
 *
 * @module
 */
import type { Clock } from "./contracts.ts";

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to. */
export interface ManualClock extends Clock {
  /** Moves the clock forward by `ms`. */
  advance(ms: number): void;
  /** Sets the clock to `ms` since the epoch. */
  set(ms: number): void;
}

/**
 * A clock for tests: time stands still until `advance` or `set`.
 *
 * @example
 * ```ts
 * import { manualClock } from "celeriac";
 * const clock = manualClock(Date.UTC(2030, 0, 1));
 * clock.advance(60_000);
 * ```
 */
export function manualClock(start = 0): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`ms must be a non-negative number, got ${ms}`);
      now += ms;
    },
    set(ms: number) {
      now = ms;
    },
  };
}
