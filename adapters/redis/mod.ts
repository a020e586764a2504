/**
 * The Redis backend: broker and store in one, over Lua scripts that run unchanged on a single
 * Redis, Redis Cluster and Upstash — through an ioredis client (TCP, blocking waits) or an
 * `@upstash/redis` client (REST, polling). Pass the same instance as broker and store to fuse
 * each step of the executor into one round trip.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { redis } from "celeriac/adapters/redis";
 * import { Redis } from "ioredis";
 *
 * const r = redis({ client: new Redis("redis://127.0.0.1:6379") });
 * const app = createApp({ broker: r, store: r });
 * ```
 *
 * @module
 */
import {
  BackendError,
  type Broker,
  type DeadLetter,
  type Delivery,
  type LeaseState,
  type Ledger,
  type Message,
  type OpsStore,
  type QueueOps,
  type ReceiveOptions,
  type RunRecord,
  type Store,
  type UpdateRunOptions,
  type UpdateRunResult,
} from "../../backend.ts";
import { CallBatcher } from "./_batcher.ts";
import { DeadLetters } from "./_dead-letters.ts";
import { RedisHistory } from "./_history.ts";
import { QueueCall } from "./_call.ts";
import { int, list, maybeText, type Transport, text, transport } from "./_client.ts";
import { decodeRecord, ms, receiveResult, updateResult } from "./_codec.ts";
import { kvKey, queueIndexKey, schedulesKey } from "./_keys.ts";
import { fusedLedger, parseEnded, type RedisLedger } from "./_ledger.ts";
import { type RedisOptions, resolveOptions } from "./_options.ts";
import { redisOpsStore } from "./_ops-store.ts";
import { deadLetterCount, redisQueueOps } from "./_queue-ops.ts";
import { RedisSchedules } from "./_schedules.ts";
import { Waiter } from "./_waiter.ts";
import { KEY_SCRIPT, queueScript } from "./lua/mod.ts";

export type { BunRedisLike, IoRedisLike, RedisClientLike, UpstashLike } from "./_client.ts";
export type { Idempotency, RedisLedger } from "./_ledger.ts";
export type { HistoryOptions, RedisOptions } from "./_options.ts";

/** The longest single wait a timer can take. */
const MAX_WAIT_MS = 2 ** 31 - 1;

/**
 * The broker and store of {@link redis}. Keys: per queue, under the hash tag `{prefix:queue}`
 * (messages, leases, run records, idempotency claims, dead letters); generic store keys at
 * `prefix:kv:<key>`; the index of known queues at `prefix:queues`; stored schedules at
 * `prefix:schedules`.
 *
 * Lookups without the run's queue (`getRun(id)` with no hint, `updateRun` without
 * `options.queue`, `listDeadLetters`, `takeDeadLetter`) read the queue index and then ask every
 * known queue, in parallel: one extra round trip plus one script per queue.
 *
 * Call `close()` (or `app.close()`) when done: it drops the connections opened for blocking
 * waits. The client you passed stays open; close it yourself.
 *
 * @example
 * ```ts
 * const backend: RedisBackend = redis({ client });
 * const app = createApp({ broker: backend, store: backend });
 * // …
 * await app.close();
 * client.disconnect();
 * ```
 */
export class RedisBackend implements Broker, Store {
  /** The key prefix. */
  readonly prefix: string;
  /** "tcp" (ioredis or Bun's client: blocking waits) or "rest" (@upstash/redis: polling). */
  readonly transport: "tcp" | "rest";
  readonly #t: Transport;
  readonly #known = new Map<string, Promise<void>>();
  readonly #waiter: Waiter;
  #closed = false;
  #ledger: RedisLedger | undefined;
  readonly #calls: CallBatcher;
  readonly #deadLetterTtlMs: number;
  readonly #dead: DeadLetters;
  /** Queue counts, pause and resume, purge and listing. */
  readonly queueOps: QueueOps;
  /** The worker registry, control messages and task statistics. */
  readonly ops: OpsStore;
  /** Stored schedules (`app.schedules`): one hash at `prefix:schedules`. */
  readonly schedules: RedisSchedules;
  /** The run history (`RedisOptions.history`); absent with `history: false`. */
  readonly history?: RedisHistory;

  /** Wraps the client; throws TypeError/RangeError naming a wrong option. Prefer {@link redis}. */
  constructor(options: RedisOptions) {
    const { prefix, commandTimeoutMs, pollMinMs, pollMaxMs, deadLetterTtlMs, history } =
      resolveOptions(options);
    this.#deadLetterTtlMs = deadLetterTtlMs;
    this.prefix = prefix;
    this.#t = transport(options.client, commandTimeoutMs);
    this.transport = this.#t.kind;
    this.schedules = new RedisSchedules(this.#t, schedulesKey(prefix));
    const listen = this.#t.listen;
    if (listen !== undefined) {
      this.watchRun = async (id, queue) => {
        if (queue !== undefined) {
          const record = await this.#watchIn(queue, id);
          if (record !== null) return record;
        }
        const found = await this.#find(id, queue);
        return found === null ? null : await this.#watchIn(found.queue, id);
      };
      this.onRunEnded = async (listener) => {
        let on = true;
        await listen.call(this.#t, this.#channel, (message) => {
          const ended = on ? parseEnded(message) : undefined;
          if (ended === undefined) return;
          if (ended.result === undefined) listener(ended.id);
          else {
            let result: unknown;
            try {
              result = ended.result.json === "" ? undefined : JSON.parse(ended.result.json);
            } catch {
              listener(ended.id); // unreadable: the waiter reads the record
              return;
            }
            listener(ended.id, { result });
          }
        });
        return () => {
          on = false;
        };
      };
    }
    this.#waiter = new Waiter(this.#t, prefix, pollMinMs, pollMaxMs);
    this.#calls = new CallBatcher(this.#t, prefix, queueScript(history));
    if (history !== false) {
      this.history = new RedisHistory({ prefix, t: this.#t, queues: () => this.#queues() });
    }
    this.#dead = new DeadLetters({
      prefix,
      retentionMs: deadLetterTtlMs,
      run: (c) => this.#run(c),
      queues: () => this.#queues(),
      register: (q) => this.#register(q),
    });
    const opsHost = {
      prefix,
      run: (c: QueueCall) => this.#run(c),
      queues: () => this.#queues(),
      wake: () => this.#waiter.wake(),
    };
    this.queueOps = redisQueueOps(opsHost);
    this.ops = redisOpsStore(this.#t, prefix, (queue) => deadLetterCount(opsHost, queue));
  }

  // ---- plumbing ----

  /** Runs a queue call, batched with the other calls on its queue of this microtask checkpoint. */
  #run(call: QueueCall): Promise<unknown[]> {
    return this.#calls.run(call);
  }

  #key(op: string, key: string, ...args: string[]): Promise<unknown> {
    return this.#t.run(KEY_SCRIPT, [key], [op, ...args]);
  }

  #kv(key: string): string {
    return kvKey(this.prefix, key);
  }

  /** Adds a queue to the index of known queues, once per process (retried after a failure). */
  #register(queue: string): Promise<void> {
    let done = this.#known.get(queue);
    if (done === undefined) {
      done = this.#key("sadd", queueIndexKey(this.prefix), queue).then(() => {});
      done.catch(() => this.#known.delete(queue));
      this.#known.set(queue, done);
    }
    return done;
  }

  async #queues(): Promise<string[]> {
    const reply = list(await this.#key("smembers", queueIndexKey(this.prefix)), "queue index");
    return reply.map((q) => text(q, "queue name"));
  }

  #byQueue<T extends { queue: string }>(items: readonly T[]): Map<string, T[]> {
    const groups = new Map<string, T[]>();
    for (const item of items) {
      const group = groups.get(item.queue);
      if (group === undefined) groups.set(item.queue, [item]);
      else group.push(item);
    }
    return groups;
  }

  async #each<T extends { queue: string }>(items: readonly T[], add: (c: QueueCall, item: T) => void) {
    await Promise.all(
      [...this.#byQueue(items)].map(([queue, group]) => {
        const c = new QueueCall(this.prefix, queue);
        for (const item of group) add(c, item);
        return this.#run(c);
      }),
    );
  }

  // ---- broker ----

  /** Sends messages (one script per queue); a message replaces an undelivered one with its id. */
  async send(messages: readonly Message[]): Promise<void> {
    await Promise.all([...this.#byQueue(messages).keys()].map((q) => this.#register(q)));
    await this.#each(messages, (c, m) => c.enqueue(m));
    this.#waiter.wake();
  }

  /**
   * Leases up to `max` due messages, queue by queue in order (one script per queue). When none
   * is due it waits up to `waitMs`: blocking on the queues' markers over TCP, polling over REST.
   */
  async receive(options: ReceiveOptions): Promise<Delivery[]> {
    // A worker left running on a closed backend gets errors (and backs off) instead of an
    // endless stream of empty answers.
    if (this.#closed) throw new BackendError("this redis backend is closed");
    const max = Math.floor(options.max);
    if (!(max >= 1) || options.queues.length === 0) return [];
    const waitMs = options.waitMs > 0 ? Math.min(options.waitMs, MAX_WAIT_MS) : 0;
    const signal = options.signal;
    const deadline = Date.now() + waitMs;
    if (waitMs > 0) await this.#waiter.pace(waitMs, signal);
    // Rounds that found messages due but held all of them back (limits): asked again at once.
    let heldBack = 0;
    for (;;) {
      if (signal?.aborted || this.#closed) return [];
      const out: Delivery[] = [];
      let dueInMs = Number.POSITIVE_INFINITY;
      for (const queue of options.queues) {
        if (out.length >= max) break;
        const c = new QueueCall(this.prefix, queue);
        c.receive(max - out.length, options.leaseMs, options.start === true);
        const taken = receiveResult((await this.#run(c))[0], queue, options.leaseMs);
        out.push(...taken.deliveries);
        dueInMs = Math.min(dueInMs, taken.dueInMs);
      }
      if (out.length > 0) {
        this.#waiter.found();
        return out;
      }
      if (dueInMs === 0 && heldBack++ < 100) continue;
      this.#waiter.empty();
      const left = deadline - Date.now();
      if (waitMs === 0 || left <= 0 || signal?.aborted) return [];
      const waited = Math.min(left, dueInMs + 1);
      // Waited out the deadline with nothing due: return, the caller asks again (no extra poll).
      if (!(await this.#waiter.wait(options.queues, waited, signal)) && waited >= left) return [];
    }
  }

  /** Removes delivered messages; a stale receipt is ignored. */
  async ack(deliveries: readonly Delivery[]): Promise<void> {
    await this.#each(deliveries, (c, d) => c.ack(d));
  }

  /** Extends leases; a stale receipt is ignored. */
  async renew(deliveries: readonly Delivery[], leaseMs: number): Promise<LeaseState[]> {
    const states: LeaseState[] = deliveries.map(() => "lost");
    const byQueue = new Map<string, number[]>();
    deliveries.forEach((d, i) => {
      const group = byQueue.get(d.queue);
      if (group === undefined) byQueue.set(d.queue, [i]);
      else group.push(i);
    });
    await Promise.all(
      [...byQueue].map(async ([queue, indexes]) => {
        const c = new QueueCall(this.prefix, queue);
        for (const i of indexes) c.renew(deliveries[i]!, leaseMs);
        const results = await this.#run(c);
        indexes.forEach((i, j) => {
          const n = int(results[j], "renew");
          states[i] = n === 1 ? "held" : n === 2 ? "cancelled" : "lost";
        });
      }),
    );
    return states;
  }

  /** Returns leased messages to the front of their priority at once. */
  async release(deliveries: readonly Delivery[]): Promise<void> {
    await this.#each(deliveries, (c, d) => c.release(d));
    this.#waiter.wake();
  }

  /** Removes a message that was not delivered yet. */
  async cancel(id: string, queue: string, options?: { leased?: boolean }): Promise<boolean> {
    const c = new QueueCall(this.prefix, queue);
    c.cancel(id, options?.leased === true);
    return int((await this.#run(c))[0], "cancel") === 1;
  }

  /** The fused ledger (one script call per step) when `store` is this backend. */
  ledger(store: Store): Ledger | undefined {
    if ((store as unknown) !== this) return undefined;
    this.#ledger ??= fusedLedger({
      prefix: this.prefix,
      backend: this,
      run: (c) => this.#run(c),
      register: (q) => this.#register(q),
      wake: () => this.#waiter.wake(),
      deadLetterTtlMs: this.#deadLetterTtlMs,
      channel: this.#channel,
    });
    return this.#ledger;
  }

  // ---- store ----

  async #getIn(queue: string, id: string): Promise<RunRecord | null> {
    const c = new QueueCall(this.prefix, queue);
    c.get(id);
    return decodeRecord(list((await this.#run(c))[0], "run record"));
  }

  /** Finds a run in every known queue but `skip`; resolves to its queue and record. */
  async #find(id: string, skip?: string): Promise<{ queue: string; record: RunRecord } | null> {
    const queues = (await this.#queues()).filter((q) => q !== skip);
    const records = await Promise.all(queues.map((q) => this.#getIn(q, id)));
    const i = records.findIndex((r) => r !== null);
    return i < 0 ? null : { queue: queues[i]!, record: records[i]! };
  }

  /** The pub/sub channel the ends of watched runs are announced on. */
  get #channel(): string {
    return `${this.prefix}:ended`;
  }

  /**
   * Over TCP: reads a run and marks it watched, so its end is announced to `onRunEnded`
   * listeners (one script call, as `getRun`). Over REST there is no announcement to listen to.
   */
  watchRun?(id: string, queue?: string): Promise<RunRecord | null>;

  /** Over TCP: listens to the ends of watched runs on one subscriber connection per backend. */
  onRunEnded?(listener: (id: string, succeeded?: { result: unknown }) => void): Promise<() => void>;

  async #watchIn(queue: string, id: string): Promise<RunRecord | null> {
    const c = new QueueCall(this.prefix, queue);
    c.watch(id);
    return decodeRecord(list((await this.#run(c))[0], "run record"));
  }

  /** The run's record; without `queue` (or when not found there) every known queue is asked. */
  async getRun(id: string, queue?: string): Promise<RunRecord | null> {
    if (queue !== undefined) {
      const record = await this.#getIn(queue, id);
      if (record !== null) return record;
    }
    return (await this.#find(id, queue))?.record ?? null;
  }

  /** Merges (or replaces) a run record atomically with the `onlyIf` check, and resets its TTL. */
  async updateRun(
    id: string,
    patch: Partial<RunRecord>,
    options: UpdateRunOptions,
  ): Promise<UpdateRunResult> {
    const queue = options.queue ?? (await this.#find(id))?.queue ?? patch.queue ?? "default";
    await this.#register(queue);
    const c = new QueueCall(this.prefix, queue);
    c.update(id, patch, options, true);
    return updateResult((await this.#run(c))[0], patch, options.replace === true);
  }

  /** The value at a generic key (`prefix:kv:<key>`), or null. */
  async get(key: string): Promise<string | null> {
    return maybeText(await this.#key("get", this.#kv(key)));
  }

  /** Sets a generic key, with an optional time to live. */
  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    await this.#key("set", this.#kv(key), value, ttlMs === undefined ? "" : ms(ttlMs));
  }

  /** Sets a key when absent: null when set, or the value already there. */
  async setIfAbsent(key: string, value: string, ttlMs?: number): Promise<string | null> {
    return maybeText(await this.#key("nx", this.#kv(key), value, ttlMs === undefined ? "" : ms(ttlMs)));
  }

  /** Deletes a key when its value equals `expected`. */
  async compareAndDelete(key: string, expected: string): Promise<boolean> {
    return int(await this.#key("cad", this.#kv(key), expected)) === 1;
  }

  /** Sets a key to `value` when its value is `expected` (null: absent), in one script call. */
  async compareAndSet(key: string, expected: string | null, value: string, ttlMs?: number): Promise<boolean> {
    const ttl = ttlMs === undefined ? "" : ms(ttlMs);
    const reply = await this.#key(
      "cas",
      this.#kv(key),
      expected === null ? "0" : "1",
      expected ?? "",
      value,
      ttl,
    );
    return int(reply, "cas") === 1;
  }

  /** Deletes a key. */
  async delete(key: string): Promise<void> {
    await this.#key("del", this.#kv(key));
  }

  /** Adds `by` (default 1, may be fractional) and returns the new value; the TTL is set on creation. */
  async incr(key: string, by = 1, ttlMs?: number): Promise<number> {
    if (typeof by !== "number" || !Number.isFinite(by)) {
      throw new TypeError(`by must be a finite number, got ${String(by)}`);
    }
    const reply = await this.#key("incr", this.#kv(key), String(by), ttlMs === undefined ? "" : ms(ttlMs));
    return Number(text(reply, "incr"));
  }

  /** Keeps a dead letter under its queue. */
  addDeadLetter(entry: DeadLetter): Promise<void> {
    return this.#dead.add(entry);
  }

  /** Dead letters of every known queue, newest first. */
  listDeadLetters(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    return this.#dead.list(options.limit ?? 100);
  }

  /** Removes and returns a dead letter, looked up in every known queue. */
  takeDeadLetter(id: string): Promise<DeadLetter | null> {
    return this.#dead.take(id);
  }

  /** Deletes a dead letter, looked up in every known queue; false when there was none. */
  deleteDeadLetter(id: string): Promise<boolean> {
    return this.#dead.delete(id);
  }

  /** Deletes every dead letter of every known queue; resolves to how many there were. */
  purgeDeadLetters(): Promise<number> {
    return this.#dead.purge();
  }

  /** Checks Redis answers (one script call). */
  async ping(): Promise<void> {
    const reply = await this.#key("ping", this.#kv("ping"));
    if (int(reply, "ping") !== 1) throw new BackendError("redis ping answered unexpectedly");
  }

  /** Drops the blocking connections this backend opened and wakes its waiters; the client stays open. */
  close(): Promise<void> {
    this.#closed = true;
    this.#waiter.close();
    this.#t.close();
    return Promise.resolve();
  }
}

/**
 * Creates a Redis broker and store. Pass the same instance as both: each step of the executor
 * then takes one round trip.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { redis } from "celeriac/adapters/redis";
 * import { Redis } from "@upstash/redis";
 *
 * const r = redis({ client: new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN }) });
 * const app = createApp({ broker: r, store: r });
 * ```
 */
export function redis(options: RedisOptions): RedisBackend {
  return new RedisBackend(options);
}
