/**
 * The contracts a backend implements. A broker moves envelopes; a store keeps run state and the
 * small atomic primitives the core needs. Optional members are capabilities the core checks for,
 * so a new capability never breaks an existing adapter.
 *
 * @module
 */
import type { RunHistory } from "./history-contracts.ts";
import type { OpsStore, QueueOps, ScheduleStore } from "./ops-contracts.ts";
import type { MessageLimits } from "./flow/limits.ts";
import type { Ledger } from "./execute/ledger.ts";
import type { QueueKey } from "./keys.ts";
import type { StartResult } from "./run-state.ts";

/** The lifecycle states of a run (their rules live in `run-state.ts`). */
export type RunState =
  | "queued"
  | "scheduled"
  | "active"
  | "retrying"
  | "succeeded"
  | "failed"
  | "cancelled"
  | "expired";

/** A source of time, injectable for tests. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** An error as it is stored and carried on the wire. */
export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
}

/** One failed attempt, kept in the run's history. */
export interface AttemptError extends ErrorInfo {
  attempt: number;
  at: number;
}

/** What the store keeps for one run. Every field is a JSON value. */
export interface RunRecord {
  id: string;
  task: string;
  queue: string;
  state: RunState;
  /** The attempt now running, or the last one that ran (1-based). */
  attempt: number;
  maxAttempts: number;
  enqueuedAt: number;
  updatedAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** For `scheduled` and `retrying`: when the next attempt may start. */
  notBefore?: number;
  /** When the run expires (epoch ms): an attempt not started by then is not run (`expired`). */
  expiresAt?: number;
  idempotencyKey?: string;
  progress?: unknown;
  result?: unknown;
  error?: ErrorInfo;
  errors?: AttemptError[];
}

/** A message handed to a broker: an encoded envelope plus what the broker routes on. */
export interface Message {
  /** The run id (unique per run, stable across its attempts). */
  id: string;
  queue: string;
  /** 0–9, higher first. */
  priority: number;
  /** Epoch ms before which the message must not be delivered. */
  notBefore?: number;
  /** The encoded envelope (JSON text). */
  body: string;
  /**
   * The envelope's attempt (1-based), so a broker that starts runs as it leases them
   * (`ReceiveOptions.start`) need not decode the body. Brokers that do not may ignore it.
   */
  attempt?: number;
  /**
   * Identifies this send: the same text when the same attempt is sent again by accident (a
   * process that re-sent a retry and then crashed before answering), another one for a
   * deliberate re-send (a deferral, a replay). Brokers that deduplicate (QStash) use it.
   */
  key?: string;
  /**
   * The run's rate and concurrency limits (keys computed at enqueue). A broker that enforces them
   * (memory, Redis) does not hand out a message over a limit; a push broker hands them to its
   * provider (QStash's flow control), which may leave one to the handler (`Delivery.rateLimit`).
   */
  limits?: MessageLimits;
}

/** A message handed out by a pull broker, leased to one consumer. */
export interface Delivery {
  /** The run id as the broker knows it (the envelope inside is authoritative). */
  id: string;
  queue: string;
  /** The encoded envelope, exactly as sent. It may be corrupt: the executor decodes it. */
  body: string;
  /**
   * `body` already parsed from JSON, when the transport had to parse it (a push receiver reading
   * the run id to route it): the executor validates this value instead of parsing again.
   */
  parsed?: unknown;
  /** Identifies this lease; ack/renew/release with a stale receipt are ignored. */
  receipt: string;
  /**
   * How many times this message has been handed out, this time included (what counts toward a
   * task's `maxDeliveries`).
   */
  deliveries: number;
  /**
   * Pull brokers: the lease this delivery was handed out with. A delivery without one is a push
   * delivery: nothing keeps a second copy of it from arriving while it runs.
   */
  leaseMs?: number;
  /**
   * The run-time claim the executor holds for this delivery (an idempotency key, or the run of a
   * push delivery): renewed with the lease, released when the attempt ends.
   */
  claim?: { key: QueueKey; holder: string };
  /**
   * Set by brokers that know a process waits for this run's end (`run.result()` elsewhere): the
   * ledger announces the end, so that waiter wakes at once instead of polling.
   */
  watched?: boolean;
  /**
   * Set when the transport found the delivery unusable before it was decoded (a push body that
   * is not UTF-8): the executor dead-letters it with this reason and runs nothing.
   */
  malformed?: string;
  /**
   * Set by push receivers whose provider enforces only some of a run's limits (QStash takes one
   * flow-control key per message): a rate limit the provider did not take, which the executor
   * enforces before the run starts, from the store. A delivery over it goes back to wait for its
   * turn, with no attempt used. Pull brokers enforce every limit as they lease, and leave it unset.
   */
  rateLimit?: { key: string; limit: number; periodMs: number };
  /**
   * Set by brokers that started the run as they leased it (asked with `ReceiveOptions.start`):
   * applied when its record is now active, or the state that kept it from starting.
   */
  started?: StartResult;
}

/** Arguments of {@link Broker.receive}. */
export interface ReceiveOptions {
  /** Queues to take from, in order: earlier queues are served first. */
  queues: readonly string[];
  /** At most this many deliveries. */
  max: number;
  /** How long a delivery stays invisible to others unless renewed. */
  leaseMs: number;
  /** When nothing is due, wait up to this long for a message; 0 returns at once. */
  waitMs: number;
  /** Aborting ends a wait early with an empty result. */
  signal?: AbortSignal;
  /**
   * Brokers that can: mark each leased run active in the same step, with `startedAt` the time of
   * the lease on the backend's own clock (never earlier, such as when an idle worker began waiting).
   */
  start?: boolean;
}

/**
 * Moves envelopes from producers to the executor. Pull brokers implement `receive`/`ack`; push
 * brokers (which deliver over HTTP) only `send`.
 */
export interface Broker {
  /** Sends messages; resolves once they are durably accepted. */
  send(messages: readonly Message[]): Promise<void>;
  /** Pull brokers: leases up to `max` due messages. */
  receive?(options: ReceiveOptions): Promise<Delivery[]>;
  /** Pull brokers: removes delivered messages for good. */
  ack?(deliveries: readonly Delivery[]): Promise<void>;
  /**
   * Pull brokers: extends the leases of deliveries still being worked on, and the claims they
   * hold when the broker is also where the claims are kept. Resolves, when the broker can tell,
   * to each lease's state: `held`, `lost` (expired and perhaps taken again, or acked), or
   * `cancelled` (the run was cancelled while it ran).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: brokers written before lease states were reported resolve to nothing
  renew?(deliveries: readonly Delivery[], leaseMs: number): Promise<readonly LeaseState[] | undefined | void>;
  /** Pull brokers: gives deliveries back to their queue at once (graceful stop). */
  release?(deliveries: readonly Delivery[]): Promise<void>;
  /**
   * Removes a message that has not been delivered yet; true when it was removed. With `leased`,
   * also one being worked on: its lease goes, so its holder's renewals report it cancelled.
   */
  cancel?(id: string, queue: string, options?: { leased?: boolean }): Promise<boolean>;
  /** Eager mode: the app runs each enqueued task before `enqueue` resolves. */
  readonly eager?: boolean;
  /** Eager mode: delays and backoff are waited out instead of collapsed to 0. */
  readonly honorDelays?: boolean;
  /** Eager mode: a run that failed for good rejects `enqueue()` with its `TaskFailedError`. */
  readonly propagate?: boolean;
  /** Messages waiting (ready or delayed) and leased, where the broker can count them cheaply. */
  stats?(): { ready: number; delayed: number; leased: number };
  /**
   * Fuses the executor's compound steps into single round trips when `store` is this same
   * backend; returns undefined to use the composed default.
   */
  ledger?(store: Store): Ledger | undefined;
  /**
   * The store this broker's runs are recorded in, for brokers that carry none themselves (a push
   * broker such as QStash): `createApp({ broker })` uses it when given no store.
   */
  readonly store?: Store | undefined;
  /**
   * Push brokers: the receiver of the provider's HTTP deliveries, configured from the broker
   * (its signing keys and public URL). `createHandler(app)` serves it unless told otherwise.
   */
  pushReceiver?(): PushReceiver | undefined;
  /**
   * Pull brokers: what operators see and steer of the queues (counts, pause, purge, listing).
   * Every count is a cheap read (a counter or a set's size), never a scan.
   */
  readonly queueOps?: QueueOps | undefined;
  /** Checks the backend answers. */
  ping?(): Promise<void>;
  /** Releases connections and timers. */
  close?(): Promise<void>;
}

/** What happened to one delivery. A push receiver maps it to its provider's answer. */
export type Outcome =
  | {
      kind: "succeeded";
      id: string;
      result: unknown;
      /** Deliveries leased in the same step (asked for with `takeNext`): the caller runs them. */
      next?: Delivery[];
    }
  /** An attempt failed; the next one was sent with a delay. */
  | {
      kind: "retrying";
      id: string;
      delayMs: number;
      error: ErrorInfo;
      /** Deliveries leased in the same step (asked for with `takeNext`): the caller runs them. */
      next?: Delivery[];
    }
  /** The run failed for good and was dead-lettered. */
  | { kind: "failed"; id: string; error: ErrorInfo }
  /** The delivery could not be run at all (undecodable, unknown task) and was dead-lettered. */
  | { kind: "rejected"; id: string; reason: string }
  /** The run's expiry passed before this attempt started: nothing ran, the run ended `expired`. */
  | { kind: "expired"; id: string; expiresAt: number }
  /**
   * The run had already ended (or was cancelled): nothing ran, or what ran was not recorded.
   * `next`: deliveries leased in the same step all the same (the caller runs them).
   */
  | { kind: "duplicate"; id: string; state: string; next?: Delivery[] }
  /** Another delivery of the same idempotency key is running: this one comes back later. */
  | { kind: "deferred"; id: string; delayMs: number };

/** Which route of the handler a push request came to. */
export type PushRoute = "delivery" | "cron";

/**
 * A provider that pushes deliveries to the handler over HTTP (QStash; a queue's push consumer; a
 * signed webhook). The handler core knows only this: it reads the body once, asks the receiver to
 * verify it, runs the delivery through the executor and answers what the receiver says.
 *
 * @example
 * ```ts
 * import { qstashReceiver } from "celeriac/adapters/qstash";
 * createHandler(app, { push: qstashReceiver({ currentSigningKey, nextSigningKey, url }) });
 * ```
 */
export interface PushReceiver {
  /** The route below the handler's mount point that takes deliveries, such as "/qstash". */
  readonly path: string;
  /** True when the request carries this provider's credentials (the cron route asks). */
  signs(request: Request): boolean;
  /**
   * Checks that the request comes from the provider, over the raw body bytes exactly as
   * received; rejects with `SignatureError` when it does not. Nothing runs after a rejection.
   */
  verify(request: Request, body: Uint8Array, route: PushRoute): Promise<void>;
  /**
   * The verified request as a delivery for the executor (which decodes and checks the body);
   * `body` is its text (a body that is not UTF-8 is marked `malformed` by the handler).
   */
  delivery(request: Request, body: string): Delivery;
  /** The executor's outcome as the provider's answer. */
  respond(outcome: Outcome): Response;
  /** The answer when the process failed before the outcome was recorded (the provider retries). */
  failed(error: unknown): Response;
}

/** What a renewal found of a lease (see {@link Broker.renew}). */
export type LeaseState = "held" | "lost" | "cancelled";

/** A run that could not be completed, kept with the reason. */
export interface DeadLetter {
  /** The run id, or a generated id when the envelope could not be decoded. */
  id: string;
  task?: string;
  queue: string;
  /** Why it was dead-lettered. */
  reason: string;
  error: ErrorInfo;
  errors: AttemptError[];
  /** The envelope as received, so it can be inspected or replayed. */
  body: string;
  at: number;
}

/** Condition for {@link Store.updateRun}: apply only when the current state is listed. */
export type RunGuard = readonly (RunState | "missing")[];

/** Options of {@link Store.updateRun}. */
export interface UpdateRunOptions {
  /** Time to live of the record from now. */
  ttlMs: number;
  /** Apply only when the current state (or "missing") is in this list. */
  onlyIf?: RunGuard;
  /** The run's queue, when known: lets a store that partitions by queue skip a lookup. */
  queue?: string;
  /** Replace the whole record with `patch` instead of merging. */
  replace?: boolean;
}

/** The answer of {@link Store.updateRun}. */
export interface UpdateRunResult {
  applied: boolean;
  /** The record after the update, or as it is when not applied (null when missing). */
  record: RunRecord | null;
}

/** Keeps run state and results, dead letters, and atomic primitives. */
export interface Store {
  /** The run's record, or null. `queue`, when known, lets a partitioned store skip a lookup. */
  getRun(id: string, queue?: string): Promise<RunRecord | null>;
  /**
   * Merges `patch` into the run's record (creating it when missing, which needs every required
   * field in the patch), atomically with the `onlyIf` check.
   */
  updateRun(id: string, patch: Partial<RunRecord>, options: UpdateRunOptions): Promise<UpdateRunResult>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Sets when absent: returns null when set, or the value already there. */
  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<string | null>;
  /** Deletes the key when its value equals `expected`. */
  compareAndDelete(key: string, expected: string): Promise<boolean>;
  /**
   * Sets `key` to `value` when its value is `expected` (null: when the key is absent), atomically
   * with the check; true when it was set. `ttlMs` replaces the key's time to live (none: kept for
   * good). Circuit breakers, `app.lock()` (taking and renewing a lock) and rate limits enforced
   * by a push handler use it; a store without it gets a stand-in composed of
   * `compareAndDelete` and `setIfAbsent`, which is not atomic (see `flow/_cas.ts`).
   */
  compareAndSet?(key: string, expected: string | null, value: string, ttlMs?: number): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Adds `by` (default 1) and returns the new value. The TTL is set on creation. */
  incr(key: string, by?: number, ttlMs?: number): Promise<number>;
  /**
   * Cross-process result wake-ups, where the store can announce run ends (Redis over TCP: a
   * pub/sub channel per app): reads a run like `getRun` and marks it watched, so its end is
   * announced to `onRunEnded` listeners in every process.
   */
  watchRun?(id: string, queue?: string): Promise<RunRecord | null>;
  /**
   * Listens to the ends of watched runs (see `watchRun`); resolves once listening, to the
   * function that stops. One connection per process, shared by every listener. `succeeded`, when
   * given, is the run's success and its result (so the listener need not read the record).
   */
  onRunEnded?(listener: (id: string, succeeded?: { result: unknown }) => void): Promise<() => void>;
  addDeadLetter(entry: DeadLetter): Promise<void>;
  listDeadLetters(options?: { limit?: number }): Promise<DeadLetter[]>;
  /** Removes and returns a dead letter. */
  takeDeadLetter(id: string): Promise<DeadLetter | null>;
  /** Deletes a dead letter; false when there was none. */
  deleteDeadLetter?(id: string): Promise<boolean>;
  /** Deletes every dead letter; resolves to how many there were. */
  purgeDeadLetters?(): Promise<number>;
  /**
   * Where operators' state lives: the worker registry and its control messages, task statistics,
   * dead letter counts. Stores without it still run tasks; `app.inspect()` reports less.
   */
  readonly ops?: OpsStore | undefined;
  /** Schedules added at runtime (`app.schedules`), shared by every scheduler replica. */
  readonly schedules?: ScheduleStore | undefined;
  /**
   * The run history: recent runs listed and searched by queue, task, state, time and key, and a
   * capped log of state changes (the dashboard's runs table and live updates). Stores without it
   * still run tasks; the dashboard then lists only what the queues hold.
   */
  readonly history?: RunHistory | undefined;
  ping?(): Promise<void>;
  close?(): Promise<void>;
}

export type {
  ControlCommand,
  OpsStore,
  QueueCounts,
  QueuedRun,
  QueuedRunPage,
  QueueOps,
  ScheduleStore,
  StatsRow,
  WorkerInfo,
} from "./ops-contracts.ts";
export type { HistoryPage, HistoryQuery, HistoryRun, RunChange, RunHistory } from "./history-contracts.ts";
