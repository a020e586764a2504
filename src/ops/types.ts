/**
 * What operators see and steer, as the app offers it: `app.inspect()` and `app.control`.
 *
 * @module
 */
import type { QueueCounts, WorkerInfo } from "../contracts.ts";
import type { BreakerInfo } from "../flow/breaker.ts";

export type { BreakerInfo, BreakerState } from "../flow/breaker.ts";

/** One run being worked on now, by the worker that runs it. */
export interface ActiveRun {
  id: string;
  queue: string;
  /** The task's name, when its record is still there. */
  task: string | null;
  /** The worker running it. */
  worker: string;
  /** When it started, epoch ms. */
  since: number;
  /** The attempt (1-based), when known. */
  attempt: number | null;
  /** The last progress it reported. */
  progress?: unknown;
}

/** A queue as operators see it. */
export interface QueueInfo extends QueueCounts {
  deadLetters: number;
  /** How long the oldest ready message has waited (ms), or null when none waits. */
  oldestWaitingAgeMs: number | null;
  /** Live workers that take from this queue. */
  workers: number;
}

/** Percentiles of a histogram (ms); null when nothing was counted. */
export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  /** The mean (ms), null when nothing was counted. */
  mean: number | null;
}

/** One task on one queue over the stats window. */
export interface TaskStats {
  task: string;
  queue: string;
  succeeded: number;
  failed: number;
  retried: number;
  /** Deliveries that could not be run (undecodable, unknown task). */
  rejected: number;
  /** Runs that expired before an attempt started (not run). */
  expired: number;
  /** How long attempts ran. */
  runtime: Percentiles;
  /** How long runs waited from when they were due until they started. */
  wait: Percentiles;
}

/** A schedule as the scheduler sees it. */
export interface ScheduleInfo {
  id: string;
  /** "code": defined with `app.schedule`; "stored": added with `app.schedules.add`. */
  source: "code" | "stored";
  task: string;
  /** The cron pattern, or null for an interval schedule. */
  cron: string | null;
  /** The interval (ms), or null for a cron schedule. */
  everyMs: number | null;
  paused: boolean;
  /** The next tick, epoch ms (null when paused or there is none). */
  next: number | null;
  /** The last tick claimed by any replica, epoch ms, when known. */
  last: number | null;
}

/**
 * Read-only views of the app's workers, queues, task statistics and schedules (`app.inspect()`).
 *
 * @example
 * ```ts
 * const inspect = app.inspect();
 * for (const w of await inspect.workers()) console.log(w.id, w.queues, w.counters.processed);
 * for (const q of await inspect.queues()) console.log(q.queue, q.waiting, q.workers);
 * for (const b of await inspect.breakers()) console.log(b.name, b.state, b.failures, b.until);
 * ```
 */
export interface Inspector {
  /** Live workers (and push instances that served deliveries within their report interval). */
  workers(): Promise<WorkerInfo[]>;
  /** Runs now running, per worker. */
  active(): Promise<ActiveRun[]>;
  /** Per queue: counts, dead letters, oldest wait, live workers. Every queue the broker knows. */
  queues(): Promise<QueueInfo[]>;
  /** Per task: outcome counts and runtime percentiles over the last `windowMs` (default 15 min). */
  stats(options?: { windowMs?: number }): Promise<TaskStats[]>;
  /** Every schedule, in code and stored, with its next and last tick. */
  schedules(): Promise<ScheduleInfo[]>;
  /**
   * The circuit breakers of the app's tasks, by name: state, failures, cooldown end, probes. One
   * store read per breaker (two while half-open).
   */
  breakers(): Promise<BreakerInfo[]>;
}

/** Progress of a bulk operation: how many are done, and of how many when known. */
export type BulkProgress = (progress: { done: number; total: number | null }) => void;

/**
 * Steering the app's queues, runs and workers (`app.control`).
 *
 * @example
 * ```ts
 * await app.control.pause("emails");
 * const removed = await app.control.purge("emails");
 * const replayed = await app.control.replay({ task: "email.send" });
 * await app.control.shutdown(workerId);
 * ```
 */
export interface Control {
  /** Stops workers taking from the queue (enqueue still works; running runs finish). */
  pause(queue: string): Promise<void>;
  /** Lets workers take from the queue again. */
  resume(queue: string): Promise<void>;
  /** Removes the queue's waiting and delayed messages (their runs end cancelled); how many. */
  purge(queue: string): Promise<number>;
  /** Cancels the queued runs of a queue (optionally only of one task); how many. */
  cancel(options: { queue: string; task?: string; onProgress?: BulkProgress }): Promise<number>;
  /**
   * Replays dead letters: of one task, with a reason starting with `reason`, or `all: true`;
   * how many were sent again.
   */
  replay(options: {
    task?: string;
    reason?: string;
    all?: boolean;
    queue?: string;
    onProgress?: BulkProgress;
  }): Promise<number>;
  /** Changes a live worker's concurrency (picked up with its next heartbeat); false: no such worker. */
  concurrency(workerId: string, concurrency: number): Promise<boolean>;
  /** Asks a live worker to stop gracefully (with its next heartbeat); false: no such worker. */
  shutdown(workerId: string): Promise<boolean>;
}
