/**
 * The in-memory backend: broker and store in one object, for development, tests and single-process
 * apps. `memory({ eager: true })` runs each task before `enqueue` resolves, through the same
 * executor and the same JSON round trip as production.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { memory } from "celeriac/adapters/memory";
 * const backend = memory();
 * const app = createApp({ broker: backend, store: backend });
 * ```
 *
 * @module
 */
import type {
  Broker,
  Clock,
  QueueOps,
  DeadLetter,
  Delivery,
  LeaseState,
  Message,
  ReceiveOptions,
  RunRecord,
  Store,
  UpdateRunOptions,
  UpdateRunResult,
} from "../contracts.ts";
import { CANCELLED_STEP, composeLedger, type Ledger } from "../execute/ledger.ts";
import { flatKey } from "../keys.ts";
import { cancelPatch, isStartable, notStarted, STARTED, successPatch } from "../run-state.ts";
import { DeadLetterList } from "./_dead-letters.ts";
import { MemoryHistory } from "./_history.ts";
import { MemoryOps } from "./_ops.ts";
import { MessageQueues } from "./_queues.ts";
import { MemorySchedules } from "./_schedules.ts";
import { type MemoryOptions, resolveMemoryOptions } from "./options.ts";

export type { MemoryOptions } from "./options.ts";

interface Stored<T> {
  value: T;
  expiresAt: number;
}

/** The broker and store of {@link memory}. */
export class MemoryBackend implements Broker, Store {
  /** True in eager mode. */
  readonly eager: boolean;
  /** In eager mode, whether delays are waited out. */
  readonly honorDelays: boolean;
  /** In eager mode, whether a failed run rejects `enqueue()`. */
  readonly propagate: boolean;
  readonly #clock: Clock;
  readonly #mq: MessageQueues;
  readonly #runs = new Map<string, Stored<RunRecord>>();
  readonly #kv = new Map<string, Stored<string>>();
  readonly #dead: DeadLetterList;
  /** Stored schedules (`app.schedules`), shared by every app on this backend. */
  readonly schedules: MemorySchedules = new MemorySchedules();
  #writes = 0;
  /** Options of the fused succeed's take (reused: see there). */
  readonly #takeNext: { queues: string[]; max: number; leaseMs: number; waitMs: number } = {
    queues: [""],
    max: 1,
    leaseMs: 0,
    waitMs: 0,
  };
  /** Starts a run as it is leased, at the time of the lease. */
  readonly #onLease = (message: Message, delivery: Delivery, at: number): void =>
    this.#startRun(message, delivery, at);
  /** True once an app uses this backend as its broker and its store: runs start as they are leased. */
  #fused = false;
  /** The worker registry, control messages and task statistics. */
  readonly ops: MemoryOps;
  /** Queue counts, pause and resume, purge and listing. */
  readonly queueOps: QueueOps;
  /** The run history (recent runs and their state changes); undefined with `history: false`. */
  readonly history: MemoryHistory | undefined;

  constructor(options: MemoryOptions = {}) {
    const resolved = resolveMemoryOptions(options);
    this.eager = resolved.eager;
    this.honorDelays = resolved.honorDelays;
    this.propagate = resolved.propagate;
    this.#clock = resolved.clock;
    this.#dead = new DeadLetterList(this.#clock, resolved.deadLetterTtlMs);
    this.#mq = new MessageQueues(this.#clock, this.eager && !this.honorDelays);
    this.ops = new MemoryOps(this.#clock, (queue) => this.#dead.count(queue));
    this.history =
      resolved.history === false
        ? undefined
        : new MemoryHistory(resolved.history, (id) => this.#live(this.#runs, id, this.#clock.now())?.value);
    const mq = this.#mq;
    this.queueOps = {
      known: () => Promise.resolve(mq.known()),
      counts: (queues) => Promise.resolve(queues.map((queue) => ({ queue, ...mq.counts(queue) }))),
      pause: (queue) => Promise.resolve(mq.setPaused(queue, true)),
      resume: (queue) => Promise.resolve(mq.setPaused(queue, false)),
      purge: (queue) => Promise.resolve(this.#purge(queue)),
      list: (queue, options) => {
        const from = options.cursor == null ? 0 : Number(options.cursor);
        if (!Number.isSafeInteger(from) || from < 0) {
          return Promise.reject(new TypeError(`not a cursor of this backend: ${String(options.cursor)}`));
        }
        const page = mq.list(queue, from, Math.max(1, Math.floor(options.limit)));
        return Promise.resolve({ runs: page.runs, cursor: page.next === null ? null : String(page.next) });
      },
    };
  }

  /** Drops a queue's waiting and delayed messages; their runs (kept here) are cancelled. */
  #purge(queue: string): number {
    const ids = this.#mq.purge(queue);
    const now = this.#clock.now();
    for (const id of ids) {
      const item = this.#live(this.#runs, id, now);
      const state = item?.value.state;
      if (item !== undefined && (state === "queued" || state === "scheduled" || state === "retrying")) {
        item.value = { ...item.value, ...cancelPatch(now) };
        this.history?.changed(item.value);
      }
    }
    return ids.length;
  }

  // ---- broker ----

  send(messages: readonly Message[]): Promise<void> {
    return this.#mq.send(messages);
  }

  receive(options: ReceiveOptions): Promise<Delivery[]> {
    if (options.start !== true || !this.#fused) return this.#mq.receive(options);
    return this.#mq.receive(options, this.#onLease);
  }

  ack(deliveries: readonly Delivery[]): Promise<void> {
    return this.#mq.ack(deliveries);
  }

  renew(deliveries: readonly Delivery[], leaseMs: number): Promise<LeaseState[]> {
    const held = this.#mq.renew(deliveries, leaseMs);
    const now = this.#clock.now();
    return Promise.resolve(
      held.map((ok, i) => {
        if (ok) return "held";
        return this.#live(this.#runs, deliveries[i]!.id, now)?.value.state === "cancelled"
          ? "cancelled"
          : "lost";
      }),
    );
  }

  release(deliveries: readonly Delivery[]): Promise<void> {
    return this.#mq.release(deliveries);
  }

  cancel(id: string, _queue?: string, options?: { leased?: boolean }): Promise<boolean> {
    return this.#mq.cancel(id, options?.leased === true);
  }

  /** Messages waiting (ready or delayed) and leased, for tests and monitoring. */
  stats(): { ready: number; delayed: number; leased: number } {
    return this.#mq.stats();
  }

  /**
   * When this backend is also the app's store: the composed steps, with `succeed` leasing the next
   * delivery of the same queue in the same step (as the Redis ledger does), and runs started as
   * they are leased. Fewer turns of the event loop per task; the same records and events.
   */
  ledger(store: Store): Ledger | undefined {
    if (store !== this) return undefined;
    this.#fused = true;
    const composed = composeLedger(this, this);
    const ledger: Ledger = {
      ...composed,
      enqueue: (items) => {
        const now = this.#clock.now();
        const out: (string | null)[] = [];
        const messages: Message[] = [];
        for (const item of items) {
          if (item.idempotency !== undefined) {
            const key = flatKey(item.idempotency.key);
            const holder = this.#live(this.#kv, key, now);
            if (holder !== undefined) {
              out.push(holder.value);
              continue;
            }
            this.#kv.set(key, { value: item.record.id, expiresAt: now + item.idempotency.ttlMs });
          }
          // The record was made for this enqueue and is not used after it: kept as is, no copy.
          this.#runs.set(item.record.id, { value: item.record, expiresAt: now + item.ttlMs });
          this.history?.added(item.record, item.message.body);
          this.#sweep(now);
          messages.push(item.message);
          out.push(null);
        }
        if (messages.length > 0) this.send(messages);
        return Promise.resolve(out);
      },
      // One synchronous step, so no lease comes between the check and the send.
      replace: (item, onlyIf) => {
        const { id } = item.record;
        const now = this.#clock.now();
        const state = this.#live(this.#runs, id, now)?.value.state ?? "missing";
        if (!onlyIf.includes(state) || this.#mq.leased(id)) return Promise.resolve(false);
        const held = item.idempotency && this.#live(this.#kv, flatKey(item.idempotency.key), now);
        if (held) return Promise.resolve(held.value);
        void this.#mq.cancel(id, false); // the waiting message this one replaces
        return ledger.enqueue([item]).then(([owner]) => owner ?? null);
      },
      start: (_delivery, id, patch, options) => this.updateRun(id, patch, options),
      succeed: (delivery, id, success, ttlMs, idempotency, next) => {
        const now = this.#clock.now();
        const item = this.#live(this.#runs, id, now);
        if (item === undefined) this.#patchRun(id, successPatch(success), now + ttlMs, now);
        else if (item.value.state === "cancelled") {
          // Cancelled while it ran: the late success is not recorded.
          this.#mq.ackOne(delivery);
          return Promise.resolve(CANCELLED_STEP);
        } else {
          // In place, like the start on lease (stored records are never handed out, only copies):
          // the fields of run-state's successPatch, without building the patch.
          const record = item.value;
          record.state = "succeeded";
          record.finishedAt = success.at;
          record.updatedAt = success.at;
          if (success.result !== undefined) record.result = success.result;
          item.expiresAt = now + ttlMs;
          this.history?.changed(record);
          this.#sweep(now);
        }
        if (idempotency !== undefined) {
          this.#kv.set(flatKey(idempotency.key), { value: id, expiresAt: now + idempotency.ttlMs });
        }
        this.#mq.ackOne(delivery);
        this.#mq.compactLeases();
        if (next === undefined || next.max <= 0) return Promise.resolve(undefined);
        // One reusable options object and hook: take() is synchronous, so nothing else sees them.
        const take = this.#takeNext;
        take.queues[0] = delivery.queue;
        take.max = next.max;
        take.leaseMs = next.leaseMs;
        return Promise.resolve(this.#mq.take(take, next.start === true ? this.#onLease : undefined));
      },
    };
    return ledger;
  }

  /** Marks a leased run active, as the executor's start step would; notes on the delivery what happened. */
  #startRun(message: Message, delivery: Delivery, at: number): void {
    const item = this.#live(this.#runs, message.id, at);
    if (item === undefined || message.attempt === undefined) return;
    const state = item.value.state;
    // A missing record is left to the executor, which can create it.
    if (!isStartable(state)) {
      delivery.started = notStarted(state);
      return;
    }
    // In place: stored records are never handed out (reads and updates return copies).
    const record = item.value;
    record.state = "active";
    record.attempt = message.attempt;
    record.startedAt = at;
    record.updatedAt = at;
    this.history?.changed(record);
    delivery.started = STARTED;
  }

  // ---- store ----

  #sweep(now: number): void {
    // Amortized: a full pass only after as many writes as there are entries.
    if (++this.#writes < 4096 + this.#runs.size + this.#kv.size) return;
    this.#writes = 0;
    // forEach rather than for…of over entries: no [key, value] array per entry.
    this.#runs.forEach((v, k, map) => {
      if (v.expiresAt <= now) map.delete(k);
    });
    this.#kv.forEach((v, k, map) => {
      if (v.expiresAt <= now) map.delete(k);
    });
  }

  #live<T>(map: Map<string, Stored<T>>, key: string, now: number): Stored<T> | undefined {
    const item = map.get(key);
    if (item === undefined) return undefined;
    if (item.expiresAt <= now) {
      map.delete(key);
      return undefined;
    }
    return item;
  }

  getRun(id: string): Promise<RunRecord | null> {
    const item = this.#live(this.#runs, id, this.#clock.now());
    return Promise.resolve(item === undefined ? null : structuredClone(item.value));
  }

  updateRun(id: string, patch: Partial<RunRecord>, options: UpdateRunOptions): Promise<UpdateRunResult> {
    const now = this.#clock.now();
    const item = this.#live(this.#runs, id, now);
    const state = item === undefined ? "missing" : item.value.state;
    if (options.onlyIf !== undefined && !options.onlyIf.includes(state)) {
      return Promise.resolve({ applied: false, record: item === undefined ? null : { ...item.value } });
    }
    const record =
      options.replace === true
        ? this.#putRun(id, patch, now + options.ttlMs, now)
        : this.#patchRun(id, patch, now + options.ttlMs, now);
    if (this.history !== undefined && patch.state !== undefined && patch.state !== state) {
      if (state === "missing" || options.replace === true) this.history.added(record, undefined);
      else this.history.changed(record);
    }
    // A copy: the stored record may later change in place (fused start and succeed).
    return Promise.resolve({ applied: true, record: { ...record } });
  }

  #putRun(id: string, patch: Partial<RunRecord>, expiresAt: number, now: number): RunRecord {
    const record = { ...patch } as RunRecord;
    this.#runs.set(id, { value: record, expiresAt });
    this.#sweep(now);
    return record;
  }

  /** Merges `patch` into the live record (creating it when missing) and sets its expiry. */
  #patchRun(id: string, patch: Partial<RunRecord>, expiresAt: number, now: number): RunRecord {
    const item = this.#live(this.#runs, id, now);
    if (item === undefined) return this.#putRun(id, patch, expiresAt, now);
    // A new object, not Object.assign(item.value, patch): V8 adds properties to an existing
    // object through its slow generic path; a spread into a fresh literal is the fast one.
    const record = { ...item.value, ...patch };
    item.value = record;
    item.expiresAt = expiresAt;
    this.#sweep(now);
    return record;
  }

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.#live(this.#kv, key, this.#clock.now())?.value ?? null);
  }

  set(key: string, value: string, ttlMs?: number): Promise<void> {
    const now = this.#clock.now();
    this.#kv.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : now + ttlMs });
    this.#sweep(now);
    return Promise.resolve();
  }

  setIfAbsent(key: string, value: string, ttlMs?: number): Promise<string | null> {
    const now = this.#clock.now();
    const existing = this.#live(this.#kv, key, now);
    if (existing !== undefined) return Promise.resolve(existing.value);
    this.#kv.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : now + ttlMs });
    this.#sweep(now);
    return Promise.resolve(null);
  }

  compareAndDelete(key: string, expected: string): Promise<boolean> {
    const existing = this.#live(this.#kv, key, this.#clock.now());
    if (existing === undefined || existing.value !== expected) return Promise.resolve(false);
    this.#kv.delete(key);
    return Promise.resolve(true);
  }

  compareAndSet(key: string, expected: string | null, value: string, ttlMs?: number): Promise<boolean> {
    const now = this.#clock.now();
    if ((this.#live(this.#kv, key, now)?.value ?? null) !== expected) return Promise.resolve(false);
    this.#kv.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : now + ttlMs });
    this.#sweep(now);
    return Promise.resolve(true);
  }

  delete(key: string): Promise<void> {
    this.#kv.delete(key);
    return Promise.resolve();
  }

  incr(key: string, by = 1, ttlMs?: number): Promise<number> {
    const now = this.#clock.now();
    const existing = this.#live(this.#kv, key, now);
    const current = existing === undefined ? 0 : Number(existing.value);
    if (!Number.isFinite(current)) {
      return Promise.reject(new TypeError(`value at ${key} is not a number`));
    }
    const next = current + by;
    if (existing === undefined) {
      this.#kv.set(key, { value: String(next), expiresAt: ttlMs === undefined ? Infinity : now + ttlMs });
    } else {
      existing.value = String(next);
    }
    return Promise.resolve(next);
  }

  addDeadLetter(entry: DeadLetter): Promise<void> {
    this.#dead.add(entry);
    return Promise.resolve();
  }

  listDeadLetters(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    return Promise.resolve(this.#dead.list(options.limit ?? 100));
  }

  takeDeadLetter(id: string): Promise<DeadLetter | null> {
    return Promise.resolve(this.#dead.take(id));
  }

  /** Deletes a dead letter; false when there was none. */
  deleteDeadLetter(id: string): Promise<boolean> {
    return Promise.resolve(this.#dead.delete(id));
  }

  /** Deletes every dead letter; resolves to how many there were. */
  purgeDeadLetters(): Promise<number> {
    return Promise.resolve(this.#dead.purge());
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#mq.wake();
    return Promise.resolve();
  }
}

/**
 * Creates an in-memory broker and store. Pass the same instance as both to share state.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { memory } from "celeriac/adapters/memory";
 * const app = createApp({ broker: memory({ eager: true }) }); // tests: enqueue runs the task
 * ```
 */
export function memory(options: MemoryOptions = {}): MemoryBackend {
  return new MemoryBackend(options);
}
