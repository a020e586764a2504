/**
 * The operators' contracts: what a pull broker offers of its queues (`Broker.queueOps`), and what
 * a store keeps for operators (`Store.ops`: the worker registry, control messages, statistics;
 * `Store.schedules`: schedules added at runtime). All optional capabilities; `contracts.ts`
 * re-exports them.
 *
 * @module
 */

import type { PoolStats } from "./pool.ts";

/**
 * One queue as a broker counts it. `scheduled` and `retrying` are messages waiting for their
 * time (sent with a delay, or the next attempt of a failed one); `limited` are held back by a
 * rate or concurrency limit (waiting for their key's turn or a free slot); `active` are leased.
 */
export interface QueueCounts {
  queue: string;
  /** Ready to be taken now. */
  waiting: number;
  scheduled: number;
  retrying: number;
  limited: number;
  active: number;
  paused: boolean;
  /** Since when the oldest ready message has waited (epoch ms), or null when none waits. */
  oldestWaitingAt: number | null;
}

/** A message of a queue as {@link QueueOps.list} reports it. */
export interface QueuedRun {
  id: string;
  /** The task's name, when the broker knows it. */
  task: string | null;
  state: "waiting" | "scheduled" | "retrying" | "limited" | "active";
  /**
   * For scheduled and retrying: when it is due; for active: when its lease expires (epoch ms);
   * for limited: when its rate-limit turn comes, or null while it waits for a concurrency slot.
   */
  at: number | null;
}

/** What operators see and steer of a pull broker's queues (see {@link Broker.queueOps}). */
export interface QueueOps {
  /** Every queue the broker has seen. */
  known(): Promise<string[]>;
  /** Counts of each queue, in order. */
  counts(queues: readonly string[]): Promise<QueueCounts[]>;
  /** Stops handing out messages of the queue (sending still works; leased ones finish). */
  pause(queue: string): Promise<void>;
  /** Hands out messages of the queue again, waking waiting consumers. */
  resume(queue: string): Promise<void>;
  /**
   * Removes the queue's waiting and delayed messages that were sent before the call began
   * (messages sent while it runs stay), and marks their runs cancelled where this backend keeps
   * the records. Leased messages are not touched. Resolves to how many it removed.
   */
  purge(queue: string): Promise<number>;
  /**
   * Pages through the queue's messages (waiting, delayed, held back by a limit and leased), `limit` at a time; a page
   * may hold fewer. `cursor` null: the end. Messages that stay put are listed at least once.
   */
  list(queue: string, options: { cursor?: string | null; limit: number }): Promise<QueuedRunPage>;
}

/** A page of {@link QueueOps.list}. */
export interface QueuedRunPage {
  runs: QueuedRun[];
  /** Where the next page starts, or null after the last page. */
  cursor: string | null;
}

/** A worker (or a push handler instance) as the registry keeps it. */
export interface WorkerInfo {
  /** Unique per worker process and start. */
  id: string;
  /** "worker": a pull worker; "push": a handler instance that served push deliveries. */
  kind: "worker" | "push";
  hostname: string | null;
  /** Such as "Node.js/20", "Deno/2.1", "Bun/1.2", "Cloudflare-Workers". */
  runtime: string;
  pid: number | null;
  /** The queues it takes from (push: the queues it served). */
  queues: string[];
  concurrency: number;
  prefetch: number;
  /** Epoch ms. */
  startedAt: number;
  /** The celeriac version it runs. */
  version: string;
  /** When it last reported, epoch ms. */
  beatAt: number;
  /** How often it reports; the registry forgets it after three missed beats. */
  heartbeatMs: number;
  state: "running" | "stopping";
  counters: { processed: number; succeeded: number; failed: number; retried: number };
  /** Runs it had started and not finished at its last beat. */
  active: { id: string; queue: string; since: number }[];
  /** Its thread pool (tasks defined with `module`), when it has one. */
  pool?: PoolStats;
}

/** A command for one worker, picked up with its next heartbeat. */
export type ControlCommand = { type: "concurrency"; concurrency: number } | { type: "shutdown" };

/**
 * Counts of one task on one queue over one minute (or in total): outcome counts and histogram
 * bucket counts under names the core chooses (adapters only add numbers; see `ops/stats.ts`).
 */
export interface StatsRow {
  /** The minute (epoch ms / 60 000, floored); ignored in totals. */
  minute: number;
  task: string;
  queue: string;
  values: Record<string, number>;
}

/** See {@link Store.ops}. */
export interface OpsStore {
  /**
   * Registers or refreshes a worker for `ttlMs` and adds statistics (to their minutes, kept
   * `statsTtlMs`, and to the running totals). Resolves to the commands waiting for that worker
   * (taken: each is handed out once).
   */
  report(report: {
    worker?: WorkerInfo | undefined;
    ttlMs: number;
    stats?: readonly StatsRow[] | undefined;
    statsTtlMs: number;
  }): Promise<ControlCommand[]>;
  /** Removes a worker from the registry (it stopped). */
  forget(workerId: string): Promise<void>;
  /** Live workers: those whose last report is within its TTL. */
  workers(): Promise<WorkerInfo[]>;
  /** Queues a command for a live worker; false when there is no such worker. */
  control(workerId: string, command: ControlCommand): Promise<boolean>;
  /** Statistics of every minute from `sinceMinute` on, and the running totals. */
  stats(sinceMinute: number): Promise<{ minutes: StatsRow[]; totals: StatsRow[] }>;
  /** Dead letters per queue, in order. */
  deadLetterCounts(queues: readonly string[]): Promise<number[]>;
}

/**
 * See {@link Store.schedules}: each schedule is kept as JSON text under its id. Every scheduler
 * replica looks at it on each wake, so `revision` (when there is one) should be one cheap read.
 */
export interface ScheduleStore {
  /** Adds or replaces a schedule. */
  put(id: string, json: string): Promise<void>;
  /** Removes a schedule; false when there was none. */
  remove(id: string): Promise<boolean>;
  /** Every stored schedule. */
  list(): Promise<{ id: string; json: string }[]>;
  /**
   * A value that changes with every `put` and every `remove` that removed something (null before
   * the first), so a reader that saw it unchanged skips `list()`. Without it, readers list each time.
   */
  revision?(): Promise<string | null>;
}
