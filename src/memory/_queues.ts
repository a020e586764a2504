/**
 * Internal: the message side of the in-memory backend — named queues with ten priorities, delayed
 * messages, leases with expiry and renewal, and waits for new messages without polling.
 *
 * @module
 */
import type { Clock, Delivery, Message, QueueCounts, QueuedRun, ReceiveOptions } from "../contracts.ts";
import { Limiter } from "./_limiter.ts";
import { Deque, MinHeap } from "./_structures.ts";

interface Entry {
  message: Message;
  /** parked: held back by a concurrency limit until a slot of its key frees. */
  state: "ready" | "delayed" | "leased" | "parked" | "gone";
  receipt: string;
  expiresAt: number;
  deliveries: number;
  /** While ready: since when it has waited (epoch ms). */
  since: number;
  /** A later attempt of a failed run (counted as retrying while delayed). */
  retry: boolean;
  reserved?: boolean;
  holding?: boolean;
  /** While delayed to its rate-limit turn: that turn (counted as limited, not scheduled). */
  turn?: number | undefined;
}

/** Called for each message as it is leased, with its delivery and the time of the lease. */
export type OnLease = (message: Message, delivery: Delivery, at: number) => void;

const PRIORITIES = 10;

class QueueState {
  readonly buckets: Deque<Entry>[] = Array.from({ length: PRIORITIES }, () => new Deque<Entry>());
  /** Ready entries. */
  size = 0;
  /** Delayed entries, first attempts and retries. */
  delayed = 0;
  retrying = 0;
  /** Held back by a limit: parked for a concurrency slot, or delayed to a rate-limit turn. */
  limited = 0;
  leased = 0;
  paused = false;
}

/** The queues of one memory backend. */
export class MessageQueues {
  readonly #clock: Clock;
  /** Eager mode without honoured delays: every message is due at once. */
  readonly #collapse: boolean;
  readonly #queues = new Map<string, QueueState>();
  readonly #delayed = new MinHeap<Entry>();
  readonly #leases = new MinHeap<Entry>();
  readonly #leased = new Map<string, Entry>();
  readonly #pending = new Map<string, Entry>();
  readonly #waiters = new Set<() => void>();
  readonly #limiter = new Limiter<Entry>();
  #receipts = 0;

  constructor(clock: Clock, collapseDelays: boolean) {
    this.#clock = clock;
    this.#collapse = collapseDelays;
  }

  send(messages: readonly Message[]): Promise<void> {
    const now = this.#clock.now();
    const collapse = this.#collapse;
    for (const message of messages) {
      const retry = (message.attempt ?? 1) > 1;
      const entry: Entry = {
        message,
        state: "ready",
        receipt: "",
        expiresAt: 0,
        deliveries: 0,
        since: now,
        retry,
      };
      this.#pending.set(message.id, entry);
      if (!collapse && message.notBefore !== undefined && message.notBefore > now) {
        entry.state = "delayed";
        this.#delayedCount(entry, 1);
        this.#delayed.push(message.notBefore, entry);
      } else {
        this.#enqueueReady(entry, false);
      }
    }
    this.wake();
    return Promise.resolve();
  }

  async receive(options: ReceiveOptions, onLease?: OnLease): Promise<Delivery[]> {
    const deadline = options.waitMs > 0 ? this.#clock.now() + options.waitMs : 0;
    for (;;) {
      const out = this.take(options, onLease);
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
    for (const d of deliveries) this.ackOne(d);
    this.compactLeases();
    return Promise.resolve();
  }

  /** Removes one leased message for good (a stale receipt is ignored). */
  ackOne(delivery: Delivery): void {
    const entry = this.#leased.get(delivery.receipt);
    if (entry === undefined) return;
    this.#leased.delete(delivery.receipt);
    this.#queue(entry.message.queue).leased--;
    this.#free(entry);
    entry.state = "gone";
    if (this.#pending.get(entry.message.id) === entry) this.#pending.delete(entry.message.id);
  }

  /** Extends leases; resolves to whether each is still held. */
  renew(deliveries: readonly Delivery[], leaseMs: number): boolean[] {
    const expiresAt = this.#clock.now() + leaseMs;
    return deliveries.map((d) => {
      const entry = this.#leased.get(d.receipt);
      if (entry === undefined) return false;
      entry.expiresAt = expiresAt;
      this.#leases.push(expiresAt, entry);
      return true;
    });
  }

  release(deliveries: readonly Delivery[]): Promise<void> {
    for (const d of deliveries) {
      const entry = this.#leased.get(d.receipt);
      if (entry === undefined) continue;
      this.#leased.delete(d.receipt);
      this.#queue(entry.message.queue).leased--;
      this.#free(entry);
      this.#enqueueReady(entry, true);
    }
    this.wake();
    return Promise.resolve();
  }

  /** Removes a waiting message; with `leased`, also the lease of one being worked on (its holder's renewals fail). */
  cancel(id: string, leased: boolean): Promise<boolean> {
    const entry = this.#pending.get(id);
    if (entry === undefined || entry.state === "gone") return Promise.resolve(false);
    if (entry.state === "leased") {
      if (!leased) return Promise.resolve(false);
      this.#leased.delete(entry.receipt);
      this.#queue(entry.message.queue).leased--;
      this.#free(entry);
    }
    if (entry.state === "parked") {
      this.#limiter.unpark((e) => e === entry);
      this.#queue(entry.message.queue).limited--;
    }
    if (entry.state === "ready") this.#queue(entry.message.queue).size--;
    if (entry.state === "delayed") this.#delayedCount(entry, -1);
    entry.state = "gone";
    this.#pending.delete(id);
    return Promise.resolve(true);
  }

  /** True while the message of `id` is leased to a consumer. */
  leased(id: string): boolean {
    return this.#pending.get(id)?.state === "leased";
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
  compactLeases(): void {
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

  #delayedCount(entry: Entry, by: number): void {
    const q = this.#queue(entry.message.queue);
    if (entry.turn !== undefined) {
      q.limited += by;
      if (by < 0) entry.turn = undefined;
    } else if (entry.retry) q.retrying += by;
    else q.delayed += by;
  }

  /** A leased entry let go of its lease: parked entries of its concurrency key may go now. */
  #free(entry: Entry): void {
    const back = this.#limiter.freed(entry);
    for (let i = back.length - 1; i >= 0; i--) {
      const parked = back[i]!;
      if (parked.state !== "parked") continue;
      this.#queue(parked.message.queue).limited--;
      this.#enqueueReady(parked, true);
    }
    if (back.length > 0) this.wake();
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
      if (entry.state === "delayed") {
        this.#delayedCount(entry, -1);
        entry.since = key;
        this.#enqueueReady(entry, false);
      }
    }
    for (let key = this.#leases.peekKey(); key !== undefined && key <= now; key = this.#leases.peekKey()) {
      const entry = this.#leases.pop()!;
      if (entry.state === "leased" && entry.expiresAt <= now && this.#leased.get(entry.receipt) === entry) {
        this.#leased.delete(entry.receipt);
        this.#queue(entry.message.queue).leased--;
        this.#free(entry);
        this.#enqueueReady(entry, true);
      }
    }
  }

  /** Leases up to `options.max` due messages at once; `onLease` sees each as it is leased. */
  take(options: ReceiveOptions, onLease?: OnLease): Delivery[] {
    const now = this.#clock.now();
    this.#promote(now);
    const out: Delivery[] = [];
    for (const name of options.queues) {
      const q = this.#queues.get(name);
      if (q === undefined || q.size === 0 || q.paused) continue;
      for (let p = PRIORITIES - 1; p >= 0 && out.length < options.max; p--) {
        const bucket = q.buckets[p]!;
        while (out.length < options.max) {
          const entry = bucket.shift();
          if (entry === undefined) break;
          if (entry.state !== "ready") continue;
          q.size--;
          if (entry.message.limits !== undefined) {
            const admission = this.#limiter.admit(entry, now);
            if (admission.kind === "park") {
              entry.state = "parked";
              q.limited++;
              continue;
            }
            if (admission.kind === "defer") {
              entry.state = "delayed";
              entry.turn = admission.at;
              this.#delayedCount(entry, 1);
              this.#delayed.push(admission.at, entry);
              continue;
            }
          }
          q.leased++;
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
            leaseMs: options.leaseMs,
          };
          if (onLease !== undefined) onLease(entry.message, delivery, now);
          out.push(delivery);
        }
      }
      if (out.length >= options.max) break;
    }
    return out;
  }

  /** Every queue seen. */
  known(): string[] {
    return [...this.#queues.keys()];
  }

  /** A queue's counts (without dead letters, which the store keeps). */
  counts(name: string): Omit<QueueCounts, "queue"> {
    const q = this.#queues.get(name);
    if (q === undefined) {
      return {
        waiting: 0,
        scheduled: 0,
        retrying: 0,
        limited: 0,
        active: 0,
        paused: false,
        oldestWaitingAt: null,
      };
    }
    let oldest: number | null = null;
    for (const bucket of q.buckets) {
      // The first ready entry of each priority is its oldest (released ones go back to the front).
      for (const entry of bucket.values()) {
        if (entry.state !== "ready") continue;
        if (oldest === null || entry.since < oldest) oldest = entry.since;
        break;
      }
    }
    return {
      waiting: q.size,
      scheduled: q.delayed,
      retrying: q.retrying,
      limited: q.limited,
      active: q.leased,
      paused: q.paused,
      oldestWaitingAt: oldest,
    };
  }

  /** Stops or resumes handing out a queue's messages. */
  setPaused(name: string, paused: boolean): void {
    this.#queue(name).paused = paused;
    if (!paused) this.wake();
  }

  /** Removes a queue's ready and delayed messages; resolves to their ids. */
  purge(name: string): string[] {
    const q = this.#queues.get(name);
    if (q === undefined) return [];
    const ids: string[] = [];
    const drop = (entry: Entry) => {
      entry.state = "gone";
      ids.push(entry.message.id);
      if (this.#pending.get(entry.message.id) === entry) this.#pending.delete(entry.message.id);
    };
    for (const bucket of q.buckets) {
      bucket.retain((entry) => {
        if (entry.state === "ready") drop(entry);
        return false;
      });
    }
    for (const entry of this.#pending.values()) {
      if (entry.state === "delayed" && entry.message.queue === name) drop(entry);
    }
    for (const entry of this.#limiter.unpark((e) => e.message.queue === name)) drop(entry);
    q.size = q.delayed = q.retrying = q.limited = 0;
    return ids;
  }

  /** A queue's messages from position `from` on, at most `limit` (ready, delayed, leased). */
  list(name: string, from: number, limit: number): { runs: QueuedRun[]; next: number | null } {
    const q = this.#queues.get(name);
    const runs: QueuedRun[] = [];
    let i = 0;
    const add = (run: QueuedRun): boolean => {
      if (i++ < from) return true;
      if (runs.length >= limit) return false;
      runs.push(run);
      return true;
    };
    if (q === undefined) return { runs, next: null };
    const task = (entry: Entry) => taskOf(entry.message.body);
    for (let p = PRIORITIES - 1; p >= 0; p--) {
      for (const entry of q.buckets[p]!.values()) {
        if (entry.state !== "ready") continue;
        if (!add({ id: entry.message.id, task: task(entry), state: "waiting", at: null })) {
          return { runs, next: i - 1 };
        }
      }
    }
    for (const entry of this.#pending.values()) {
      if (entry.message.queue !== name) continue;
      const id = entry.message.id;
      let run: QueuedRun;
      if (entry.state === "leased") run = { id, task: task(entry), state: "active", at: entry.expiresAt };
      else if (entry.state === "parked") run = { id, task: task(entry), state: "limited", at: null };
      else if (entry.state !== "delayed") continue;
      else if (entry.turn !== undefined) run = { id, task: task(entry), state: "limited", at: entry.turn };
      else {
        const state = entry.retry ? "retrying" : "scheduled";
        run = { id, task: task(entry), state, at: entry.message.notBefore ?? null };
      }
      if (!add(run)) return { runs, next: i - 1 };
    }
    return { runs, next: null };
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

  /** Wakes every receive waiting for a message. */
  wake(): void {
    if (this.#waiters.size === 0) return;
    for (const w of [...this.#waiters]) w();
  }
}

/** The task name of an envelope, read without validating it (null when unreadable). */
function taskOf(body: string): string | null {
  try {
    const task = (JSON.parse(body) as { task?: unknown } | null)?.task;
    return typeof task === "string" ? task : null;
  } catch {
    return null;
  }
}
