/**
 * Internal: the operators' store of the memory backend — the worker registry with its control
 * messages, and task statistics in per-minute buckets plus running totals.
 *
 * @module
 */
import type { Clock, ControlCommand, OpsStore, StatsRow, WorkerInfo } from "../contracts.ts";

interface Bucket {
  expiresAt: number;
  rows: Map<string, StatsRow>;
}

/** See {@link OpsStore}. */
export class MemoryOps implements OpsStore {
  readonly #clock: Clock;
  readonly #deadLetters: (queue: string) => number;
  readonly #workers = new Map<string, { info: WorkerInfo; expiresAt: number }>();
  readonly #control = new Map<string, ControlCommand[]>();
  readonly #minutes = new Map<number, Bucket>();
  readonly #totals = new Map<string, StatsRow>();

  constructor(clock: Clock, deadLetters: (queue: string) => number) {
    this.#clock = clock;
    this.#deadLetters = deadLetters;
  }

  report(report: {
    worker?: WorkerInfo | undefined;
    ttlMs: number;
    stats?: readonly StatsRow[] | undefined;
    statsTtlMs: number;
  }): Promise<ControlCommand[]> {
    const now = this.#clock.now();
    for (const row of report.stats ?? []) {
      let bucket = this.#minutes.get(row.minute);
      if (bucket === undefined) {
        bucket = { expiresAt: 0, rows: new Map() };
        this.#minutes.set(row.minute, bucket);
      }
      bucket.expiresAt = now + report.statsTtlMs;
      add(bucket.rows, row, row.minute);
      add(this.#totals, row, 0);
    }
    for (const [minute, bucket] of this.#minutes) if (bucket.expiresAt <= now) this.#minutes.delete(minute);
    const worker = report.worker;
    if (worker === undefined) return Promise.resolve([]);
    this.#workers.set(worker.id, { info: structuredClone(worker), expiresAt: now + report.ttlMs });
    const commands = this.#control.get(worker.id) ?? [];
    this.#control.delete(worker.id);
    return Promise.resolve(commands);
  }

  forget(workerId: string): Promise<void> {
    this.#workers.delete(workerId);
    this.#control.delete(workerId);
    return Promise.resolve();
  }

  workers(): Promise<WorkerInfo[]> {
    const now = this.#clock.now();
    const out: WorkerInfo[] = [];
    for (const [id, item] of this.#workers) {
      if (item.expiresAt <= now) {
        this.#workers.delete(id);
        this.#control.delete(id);
      } else out.push(structuredClone(item.info));
    }
    return Promise.resolve(out);
  }

  async control(workerId: string, command: ControlCommand): Promise<boolean> {
    if (!(await this.workers()).some((w) => w.id === workerId)) return false;
    const list = this.#control.get(workerId) ?? [];
    list.push(structuredClone(command));
    this.#control.set(workerId, list);
    return true;
  }

  stats(sinceMinute: number): Promise<{ minutes: StatsRow[]; totals: StatsRow[] }> {
    const now = this.#clock.now();
    const minutes: StatsRow[] = [];
    for (const [minute, bucket] of this.#minutes) {
      if (minute < sinceMinute || bucket.expiresAt <= now) continue;
      for (const row of bucket.rows.values()) minutes.push(structuredClone(row));
    }
    return Promise.resolve({ minutes, totals: [...this.#totals.values()].map((r) => structuredClone(r)) });
  }

  deadLetterCounts(queues: readonly string[]): Promise<number[]> {
    return Promise.resolve(queues.map((q) => this.#deadLetters(q)));
  }
}

function add(rows: Map<string, StatsRow>, row: StatsRow, minute: number): void {
  const key = JSON.stringify([row.task, row.queue]);
  let into = rows.get(key);
  if (into === undefined) {
    into = { minute, task: row.task, queue: row.queue, values: {} };
    rows.set(key, into);
  }
  for (const [field, n] of Object.entries(row.values)) into.values[field] = (into.values[field] ?? 0) + n;
}
