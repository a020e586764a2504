/**
 * Internal: when a schedule ticks. A cron pattern (croner, in a time zone) or a fixed interval
 * (`every`) anchored at `startAt` (epoch 0 by default), so every replica computes the same tick
 * times without talking to the others: tick n is at `startAt + n * every`.
 *
 * @module
 */
import { Cron } from "croner";

/** The tick times of a schedule, in epoch ms. */
export interface Timing {
  /** The latest tick at or before `at`, or null. */
  latest(at: number): number | null;
  /** The first tick strictly after `after`, or null. */
  next(after: number): number | null;
}

/** The shortest interval `every` accepts. */
export const MIN_EVERY_MS = 1_000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;

/**
 * Reads an interval: a duration string of whole numbers with units (`"30s"`, `"5m"`, `"1h30m"`,
 * `"1d"`, `"1500ms"`) or a number of milliseconds; at least {@link MIN_EVERY_MS}.
 *
 * @example
 * ```ts
 * parseEvery("1h30m", "schedule \"x\""); // 5_400_000
 * ```
 */
export function parseEvery(value: unknown, where: string): number {
  let ms: number;
  if (typeof value === "number") {
    ms = value;
  } else if (typeof value === "string" && DURATION.test(value)) {
    ms = 0;
    for (const [, n, unit] of value.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(n) * UNIT_MS[unit!]!;
  } else {
    throw new TypeError(
      `${where}: every must be a duration such as "30s", "5m" or "1h30m", or a number of milliseconds, got ${JSON.stringify(value)}`,
    );
  }
  if (!Number.isSafeInteger(ms) || ms < MIN_EVERY_MS) {
    throw new RangeError(
      `${where}: every must be a whole number of milliseconds of at least ${MIN_EVERY_MS}, got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

/**
 * Ticks every `intervalMs` from `startAt` (epoch 0 when null, inclusive) to `stopAt` (exclusive).
 *
 * @example
 * ```ts
 * everyTiming(60_000, null, null).next(90_000); // 120_000
 * ```
 */
export function everyTiming(intervalMs: number, startAt: Date | null, stopAt: Date | null): Timing {
  const anchor = startAt?.getTime() ?? 0;
  const stop = stopAt?.getTime() ?? Infinity;
  // The index of the last tick before stopAt (Infinity: no end).
  const lastIndex = Number.isFinite(stop) ? Math.ceil((stop - anchor) / intervalMs) - 1 : Infinity;
  const at = (n: number): number | null => (n < 0 || n > lastIndex ? null : anchor + n * intervalMs);
  return {
    latest: (t) => (t < anchor ? null : at(Math.min(Math.floor((t - anchor) / intervalMs), lastIndex))),
    next: (t) => (t < anchor ? at(0) : at(Math.floor((t - anchor) / intervalMs) + 1)),
  };
}

/**
 * Parses a cron pattern with croner; throws a TypeError for a bad pattern and a RangeError for an
 * unknown time zone, naming the schedule. The Cron instance only computes (it is never armed).
 *
 * @example
 * ```ts
 * cronTiming('schedule "x"', "0 2 * * *", "Europe/Berlin", null, null).next(Date.now());
 * ```
 */
export function cronTiming(
  where: string,
  cron: unknown,
  timezone: string | null,
  startAt: Date | null,
  stopAt: Date | null,
): Timing {
  if (typeof cron !== "string") {
    throw new TypeError(`${where}: cron must be a cron pattern string, got ${JSON.stringify(cron)}`);
  }
  let pattern: Cron;
  try {
    pattern = new Cron(cron, {
      ...(timezone === null ? {} : { timezone }),
      ...(startAt === null ? {} : { startAt }),
      ...(stopAt === null ? {} : { stopAt }),
    });
  } catch (cause) {
    throw new TypeError(`${where}: invalid cron pattern "${cron}": ${(cause as Error).message}`, { cause });
  }
  // A string with a colon is a one-off ISO date to croner, not a pattern.
  if (pattern.getPattern() === undefined) {
    throw new TypeError(`${where}: invalid cron pattern "${cron}": a date is not a cron pattern`);
  }
  try {
    pattern.nextRun(new Date(0)); // croner checks the time zone only when it computes
  } catch (cause) {
    throw new RangeError(`${where}: invalid timezone "${timezone}": ${(cause as Error).message}`, { cause });
  }
  return {
    // croner: previous runs before the reference, a run earlier in the same second included.
    latest: (t) => pattern.previousRuns(1, new Date(t + 1))[0]?.getTime() ?? null,
    next: (t) => pattern.nextRun(new Date(t))?.getTime() ?? null,
  };
}

/** The next `count` ticks strictly after `after`. */
export function nextTicks(timing: Timing, count: number, after: number): Date[] {
  const out: Date[] = [];
  for (let t = timing.next(after); t !== null && out.length < count; t = timing.next(t))
    out.push(new Date(t));
  return out;
}
