/**
 * Task statistics: each process counts outcomes and runtime and wait histograms per task and
 * queue in memory (a few map lookups per attempt, no I/O), and hands the counts to the store
 * with its next report (a worker's heartbeat, a push instance's report). The store adds them to
 * per-minute buckets and running totals; `app.inspect().stats()` and `app.metrics()` read those.
 *
 * @module
 */
import type { StatsRow } from "../contracts.ts";

/**
 * Upper bounds (ms) of the runtime and wait histograms: fine below a millisecond, where most
 * tasks of a fast queue land, up to five minutes (the default timeout).
 */
export const BOUNDS_MS: readonly number[] = [
  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

/** The outcomes counted per task. */
export type CountedOutcome = "succeeded" | "failed" | "retried" | "rejected" | "expired";

/** Field names in a {@link StatsRow}: outcome counts, histogram buckets and sums. */
const FIELD: Record<CountedOutcome, string> = {
  succeeded: "s",
  failed: "f",
  retried: "r",
  rejected: "x",
  expired: "e",
};
const RUNTIME = "rt";
const WAIT = "wt";
/** Sums are kept in microseconds, so every field stays an integer. */
const SUM = "sum";

interface Counts {
  task: string;
  queue: string;
  minute: number;
  s: number;
  f: number;
  r: number;
  x: number;
  e: number;
  runtime: number[];
  runtimeSumUs: number;
  wait: number[];
  waitSumUs: number;
}

function bucketOf(ms: number): number {
  // Linear over 19 bounds beats a binary search at this size.
  let i = 0;
  while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
  return i;
}

/** Rows kept at most until a report takes them (a task and queue per minute each). */
const MAX_ROWS = 10_000;

/** Counts attempts in memory until they are taken for a report. One per app. */
export class StatsCollector {
  #rows = new Map<string, Counts>();
  /** The last row touched, so consecutive attempts of one task skip the map. */
  #last: Counts | undefined;

  #row(task: string, queue: string, at: number): Counts {
    const minute = Math.floor(at / 60_000);
    const last = this.#last;
    if (last !== undefined && last.task === task && last.queue === queue && last.minute === minute)
      return last;
    const key = `${minute}\u0000${queue}\u0000${task}`;
    let row = this.#rows.get(key);
    if (row === undefined) {
      row = {
        task,
        queue,
        minute,
        s: 0,
        f: 0,
        r: 0,
        x: 0,
        e: 0,
        runtime: new Array<number>(BOUNDS_MS.length + 1).fill(0),
        runtimeSumUs: 0,
        wait: new Array<number>(BOUNDS_MS.length + 1).fill(0),
        waitSumUs: 0,
      };
      // Nothing reports them (no worker in this process): the oldest go, memory stays bounded.
      if (this.#rows.size >= MAX_ROWS) this.#rows.delete(this.#rows.keys().next().value as string);
      this.#rows.set(key, row);
    }
    this.#last = row;
    return row;
  }

  /** An attempt's code ran for `runtimeMs`, `waitMs` after it was due. */
  ran(task: string, queue: string, at: number, runtimeMs: number, waitMs: number): void {
    const row = this.#row(task, queue, at);
    const runtime = Math.max(0, runtimeMs);
    const wait = Math.max(0, waitMs);
    row.runtime[bucketOf(runtime)]!++;
    row.runtimeSumUs += Math.round(runtime * 1000);
    row.wait[bucketOf(wait)]!++;
    row.waitSumUs += Math.round(wait * 1000);
  }

  /**
   * An attempt (or a delivery that could not run, for `rejected`; a run whose expiry passed before
   * the attempt started, for `expired`) ended so.
   */
  ended(task: string, queue: string, at: number, outcome: CountedOutcome): void {
    const row = this.#row(task, queue, at);
    row[FIELD[outcome] as "s"]++;
  }

  /** True when there is nothing to report. */
  get empty(): boolean {
    return this.#rows.size === 0;
  }

  /** Takes everything counted so far as store rows (only fields that are not zero). */
  take(): StatsRow[] {
    const rows = [...this.#rows.values()];
    this.#rows = new Map();
    this.#last = undefined;
    return rows.map((c) => {
      const values: Record<string, number> = {};
      for (const field of Object.values(FIELD)) {
        const n = c[field as "s"];
        if (n > 0) values[field] = n;
      }
      histogramFields(values, RUNTIME, c.runtime, c.runtimeSumUs);
      histogramFields(values, WAIT, c.wait, c.waitSumUs);
      return { minute: c.minute, task: c.task, queue: c.queue, values };
    });
  }

  /** Puts rows back (their report failed): they go out with the next one. */
  restore(rows: readonly StatsRow[]): void {
    for (const row of rows) {
      const c = this.#row(row.task, row.queue, row.minute * 60_000);
      const v = row.values;
      for (const field of Object.values(FIELD)) c[field as "s"] += v[field] ?? 0;
      for (let i = 0; i <= BOUNDS_MS.length; i++) {
        c.runtime[i]! += v[`${RUNTIME}${i}`] ?? 0;
        c.wait[i]! += v[`${WAIT}${i}`] ?? 0;
      }
      c.runtimeSumUs += v[`${RUNTIME}${SUM}`] ?? 0;
      c.waitSumUs += v[`${WAIT}${SUM}`] ?? 0;
    }
    this.#last = undefined;
  }
}

function histogramFields(values: Record<string, number>, name: string, counts: number[], sumUs: number) {
  let any = false;
  counts.forEach((n, i) => {
    if (n > 0) {
      values[`${name}${i}`] = n;
      any = true;
    }
  });
  if (any) values[`${name}${SUM}`] = sumUs;
}

/** A task's counts and histograms read back from store rows (summed over minutes). */
export interface TaskCounts {
  task: string;
  queue: string;
  succeeded: number;
  failed: number;
  retried: number;
  rejected: number;
  /** Runs that expired before an attempt started (not run). */
  expired: number;
  /** Per bucket of {@link BOUNDS_MS} (not cumulative), the last above every bound. */
  runtime: number[];
  runtimeSumMs: number;
  wait: number[];
  waitSumMs: number;
}

/** Sums rows per task and queue. */
export function sumRows(rows: readonly StatsRow[]): TaskCounts[] {
  const out = new Map<string, TaskCounts>();
  for (const row of rows) {
    const key = `${row.queue}\u0000${row.task}`;
    let t = out.get(key);
    if (t === undefined) {
      t = {
        task: row.task,
        queue: row.queue,
        succeeded: 0,
        failed: 0,
        retried: 0,
        rejected: 0,
        expired: 0,
        runtime: new Array<number>(BOUNDS_MS.length + 1).fill(0),
        runtimeSumMs: 0,
        wait: new Array<number>(BOUNDS_MS.length + 1).fill(0),
        waitSumMs: 0,
      };
      out.set(key, t);
    }
    const v = row.values;
    t.succeeded += v[FIELD.succeeded] ?? 0;
    t.failed += v[FIELD.failed] ?? 0;
    t.retried += v[FIELD.retried] ?? 0;
    t.rejected += v[FIELD.rejected] ?? 0;
    t.expired += v[FIELD.expired] ?? 0;
    for (let i = 0; i <= BOUNDS_MS.length; i++) {
      t.runtime[i]! += v[`${RUNTIME}${i}`] ?? 0;
      t.wait[i]! += v[`${WAIT}${i}`] ?? 0;
    }
    t.runtimeSumMs += (v[`${RUNTIME}${SUM}`] ?? 0) / 1000;
    t.waitSumMs += (v[`${WAIT}${SUM}`] ?? 0) / 1000;
  }
  return [...out.values()].sort((a, b) =>
    a.queue === b.queue ? (a.task < b.task ? -1 : 1) : a.queue < b.queue ? -1 : 1,
  );
}

/**
 * The `q`-quantile (0–1) of a histogram, interpolated linearly inside its bucket (the bucket
 * above every bound answers its lower bound); null when it is empty.
 */
export function quantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!;
    if (n === 0) continue;
    if (seen + n >= rank) {
      const lower = i === 0 ? 0 : BOUNDS_MS[i - 1]!;
      if (i === BOUNDS_MS.length) return lower;
      const upper = BOUNDS_MS[i]!;
      return lower + (upper - lower) * Math.min(1, Math.max(0, (rank - seen) / n));
    }
    seen += n;
  }
  return BOUNDS_MS[BOUNDS_MS.length - 1]!;
}
