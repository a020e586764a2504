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
  DeadLetter,
  Delivery,
  Message,
  ReceiveOptions,
  RunRecord,
  Store,
  UpdateRunOptions,
  UpdateRunResult,
} from "../../src/contracts.ts";
import { composeLedger, type Ledger } from "../../src/ledger.ts";
import { Deque, MinHeap } from "./_structures.ts";

/** Options of {@link memory}. */
export interface MemoryOptions {
  /**
   * Run each task to its end (retries included) before `enqueue` resolves.
   * @default false
   */
  eager?: boolean;
  /**
   * In eager mode, wait out delays and retry backoff for real instead of collapsing them to 0.
   * @default false
   */
  honorDelays?: boolean;
  /** Time source for delays, leases and TTLs. @default the system clock */
  clock?: Clock;
}

interface Entry {
  message: Message;
  state: "ready" | "delayed" | "leased" | "gone";
  receipt: string;
  expiresAt: number;
  deliveries: number;
}

interface Stored<T> {
  value: T;
  expiresAt: number;
}

const PRIORITIES = 10;
/** States a run may be started from as it is leased (a missing record is left to the executor). */
const STARTABLE: ReadonlySet<string> = new Set(["queued", "scheduled", "retrying", "active"]);

class QueueState {
  readonly buckets: Deque<Entry>[] = Array.from({ length: PRIORITIES }, () => new Deque<Entry>());
  size = 0;
}

/** The broker and store of {@link memory}. */
export class MemoryBackend implements Broker, Store {
  /** True in eager mode. */
  readonly eager: boolean;
  /** In eager mode, whether delays are waited out. */
  readonly honorDelays: boolean;
  readonly #clock: Clock;
  readonly #queues = new Map<string, QueueState>();
  readonly #delayed = new MinHeap<Entry>();
  readonly #leases = new MinHeap<Entry>();
  readonly #leased = new Map<string, Entry>();
  readonly #pending = new Map<string, Entry>();
  readonly #waiters = new Set<() => void>();
  readonly #runs = new Map<string, Stored<RunRecord>>();
  readonly #kv = new Map<string, Stored<string>>();
  readonly #dead = new Map<string, DeadLetter>();
  #receipts = 0;
  #writes = 0;
  /** True once an app uses this backend as its broker and its store: runs start as they are leased. */
  #fused = false;

  constructor(options: MemoryOptions = {}) {
    this.eager = options.eager === true;
    this.honorDelays = options.honorDelays === true;
    this.#clock = options.clock ?? { now: () => Date.now() };
  }

  // ---- broker ----

  send(messages: readonly Message[]): Promise<void> {
    const now = this.#clock.now();
    const collapse = this.eager && !this.honorDelays;
    for (const message of messages) {
      const entry: Entry = { message, state: "ready", receipt: "", expiresAt: 0, deliveries: 0 };
      this.#pending.set(message.id, entry);
      if (!collapse && message.notBefore !== undefined && message.notBefore > now) {
        entry.state = "delayed";
        this.#delayed.push(message.notBefore, entry);
      } else {
        this.#enqueueReady(entry, false);
      }
    }
    this.#wake();
    return Promise.resolve();
  }

  async receive(options: ReceiveOptions): Promise<Delivery[]> {
    const deadline = options.waitMs > 0 ? this.#clock.now() + options.waitMs : 0;
    for (;;) {
      const out = this.#take(options);
      if (out.length > 0 || options.waitMs <= 0 || options.signal?.aborted) return out;
      const now = this.#clock.now();
      if (now >= deadline) return out;
      let until = deadline - now;
      const nextDelayed = this.#delayed.peekKey();
      const nextLease = this.#leases.peekKey();
      if (nextDelayed !== undefined) until = Math.min(until, Math.max(1, nextDelayed - now));
      if (nextLease !== undefined) until = Math.min(until, Math.max(1, nextLease - now));
      await this.#wait(until, options.signal);
    }
  }

  ack(deliveries: readonly Delivery[]): Promise<void> {
    for (const d of deliveries) this.#ackOne(d);
    this.#compactLeases();
    return Promise.resolve();
  }

  #ackOne(delivery: Delivery): void {
    const entry = this.#leased.get(delivery.receipt);
    if (entry === undefined) return;
    this.#leased.delete(delivery.receipt);
    entry.state = "gone";
    if (this.#pending.get(entry.message.id) === entry) this.#pending.delete(entry.message.id);
  }

  renew(deliveries: readonly Delivery[], leaseMs: number): Promise<void> {
    const expiresAt = this.#clock.now() + leaseMs;
    for (const d of deliveries) {
      const entry = this.#leased.get(d.receipt);
      if (entry === undefined) continue;
      entry.expiresAt = expiresAt;
      this.#leases.push(expiresAt, entry);
    }
    return Promise.resolve();
  }

  release(deliveries: readonly Delivery[]): Promise<void> {
    for (const d of deliveries) {
      const entry = this.#leased.get(d.receipt);
      if (entry === undefined) continue;
      this.#leased.delete(d.receipt);
      this.#enqueueReady(entry, true);
    }
    this.#wake();
    return Promise.resolve();
  }

  cancel(id: string): Promise<boolean> {
    const entry = this.#pending.get(id);
    if (entry === undefined || (entry.state !== "ready" && entry.state !== "delayed"))
      return Promise.resolve(false);
    if (entry.state === "ready") this.#queue(entry.message.queue).size--;
    entry.state = "gone";
    this.#pending.delete(id);
    return Promise.resolve(true);
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
    return {
      ...composed,
      enqueue: (items) => {
        const now = this.#clock.now();
        const out: (string | null)[] = [];
        const messages: Message[] = [];
        for (const item of items) {
          if (item.idempotency !== undefined) {
            const key = `idem:${item.idempotency.key}`;
            const holder = this.#live(this.#kv, key, now);
            if (holder !== undefined) {
              out.push(holder.value);
              continue;
            }
            this.#kv.set(key, { value: item.record.id, expiresAt: now + item.idempotency.ttlMs });
          }
          this.#putRun(item.record.id, item.record, now + item.ttlMs, now);
          messages.push(item.message);
          out.push(null);
        }
        if (messages.length > 0) this.send(messages);
        return Promise.resolve(out);
      },
      start: (_delivery, id, patch, options) => this.updateRun(id, patch, options),
      succeed: (delivery, id, patch, ttlMs, idempotency, next) => {
        const now = this.#clock.now();
        this.#patchRun(id, patch, now + ttlMs, now);
        if (idempotency !== undefined) {
          this.#kv.set(`idem:${idempotency.key}`, { value: id, expiresAt: now + idempotency.ttlMs });
        }
        this.#ackOne(delivery);
        this.#compactLeases();
        if (next === undefined || next.max <= 0) return Promise.resolve(undefined);
        const taken = this.#take({
          queues: [delivery.queue],
          max: next.max,
          leaseMs: next.leaseMs,
          waitMs: 0,
          ...(next.startAt === undefined ? {} : { start: { at: next.startAt } }),
        });
        return Promise.resolve(taken);
      },
    };
  }

  /** Messages waiting (ready or delayed) and leased, for tests and monitoring. */
  stats(): { ready: number; delayed: number; leased: number } {
    let ready = 0;
    for (const q of this.#queues.values()) ready += q.size;
    let delayed = 0;
    for (const e of this.#pending.values()) if (e.state === "delayed") delayed++;
    return { ready, delayed, leased: this.#leased.size };
  }

  /**
   * Acked, released and renewed leases stay in the expiry heap until they would have expired (lazy
   * deletion), holding their messages; drop them once they outnumber the live leases.
   */
  #compactLeases(): void {
    if (this.#leases.size < 1024 || this.#leases.size < 2 * this.#leased.size) return;
    this.#leases.retain(
      (key, entry) =>
        entry.state === "leased" && entry.expiresAt === key && this.#leased.get(entry.receipt) === entry,
    );
  }

  #queue(name: string): QueueState {
    let q = this.#queues.get(name);
    if (q === undefined) {
      q = new QueueState();
      this.#queues.set(name, q);
    }
    return q;
  }

  #enqueueReady(entry: Entry, front: boolean): void {
    entry.state = "ready";
    const q = this.#queue(entry.message.queue);
    const bucket = q.buckets[entry.message.priority] ?? q.buckets[0]!;
    if (front) bucket.unshift(entry);
    else bucket.push(entry);
    q.size++;
  }

  #promote(now: number): void {
    for (let key = this.#delayed.peekKey(); key !== undefined && key <= now; key = this.#delayed.peekKey()) {
      const entry = this.#delayed.pop()!;
      if (entry.state === "delayed") this.#enqueueReady(entry, false);
    }
    for (let key = this.#leases.peekKey(); key !== undefined && key <= now; key = this.#leases.peekKey()) {
      const entry = this.#leases.pop()!;
      if (entry.state === "leased" && entry.expiresAt <= now && this.#leased.get(entry.receipt) === entry) {
        this.#leased.delete(entry.receipt);
        this.#enqueueReady(entry, true);
      }
    }
  }

  #take(options: ReceiveOptions): Delivery[] {
    const now = this.#clock.now();
    this.#promote(now);
    const out: Delivery[] = [];
    for (const name of options.queues) {
      const q = this.#queues.get(name);
      if (q === undefined || q.size === 0) continue;
      for (let p = PRIORITIES - 1; p >= 0 && out.length < options.max; p--) {
        const bucket = q.buckets[p]!;
        while (out.length < options.max) {
          const entry = bucket.shift();
          if (entry === undefined) break;
          if (entry.state !== "ready") continue;
          q.size--;
          entry.state = "leased";
          entry.deliveries++;
          entry.receipt = `${entry.message.id}#${++this.#receipts}`;
          entry.expiresAt = now + options.leaseMs;
          this.#leased.set(entry.receipt, entry);
          this.#leases.push(entry.expiresAt, entry);
          const delivery: Delivery = {
            id: entry.message.id,
            queue: entry.message.queue,
            body: entry.message.body,
            receipt: entry.receipt,
            deliveries: entry.deliveries,
          };
          if (options.start !== undefined && this.#fused)
            this.#startRun(entry.message, delivery, options.start.at);
          out.push(delivery);
        }
      }
      if (out.length >= options.max) break;
    }
    return out;
  }

  /** Marks a leased run active, as the executor's start step would; notes on the delivery what happened. */
  #startRun(message: Message, delivery: Delivery, at: number): void {
    const item = this.#live(this.#runs, message.id, at);
    if (item === undefined || message.attempt === undefined) return;
    const state = item.value.state;
    if (!STARTABLE.has(state)) {
      delivery.started = JSON.stringify(state);
      return;
    }
    // In place: stored records are never handed out (reads and updates return copies).
    const record = item.value;
    record.state = "active";
    record.attempt = message.attempt;
    record.startedAt = at;
    record.updatedAt = at;
    delivery.started = true;
  }

  #wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #wake(): void {
    if (this.#waiters.size === 0) return;
    for (const w of [...this.#waiters]) w();
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
    this.#dead.delete(entry.id);
    this.#dead.set(entry.id, structuredClone(entry));
    return Promise.resolve();
  }

  listDeadLetters(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const limit = options.limit ?? 100;
    const all = [...this.#dead.values()].reverse().slice(0, limit);
    return Promise.resolve(all.map((e) => structuredClone(e)));
  }

  takeDeadLetter(id: string): Promise<DeadLetter | null> {
    const entry = this.#dead.get(id);
    if (entry === undefined) return Promise.resolve(null);
    this.#dead.delete(id);
    return Promise.resolve(entry);
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#wake();
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
