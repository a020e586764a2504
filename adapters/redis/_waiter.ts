/**
 * Waiting for work between empty polls. Over TCP a waiter blocks on the queues' wake-up markers
 * (BZPOPMIN on a dedicated connection), so an idle worker sends about nothing. On Redis Cluster a
 * worker's queues may sit in different slots, and one BZPOPMIN cannot span slots: such a wait
 * blocks once per slot, on a watcher per slot that this backend's waits share (a worker on a
 * single queue, or on queues in one slot, blocks directly as on a single node). Without blocking
 * (REST) a waiter polls, doubling the pause after each empty poll from `pollMinMs` up to
 * `pollMaxMs`. Sends made through the same backend wake local waiters at once either way.
 *
 * @module
 */
import type { Transport } from "./_client.ts";
import { wakeKey } from "./_keys.ts";
import { bySlot } from "./_slot.ts";
import { KEY_SCRIPT } from "./lua/mod.ts";

/** How long one watcher's blocking wait lasts before it checks whether anyone still waits. */
const WATCH_MS = 2_000;

/**
 * One slot's markers, watched by one blocking loop while any wait of this backend needs them.
 * A marker it takes when no wait wants it any more is put back, so no other process misses it.
 */
class SlotWatch {
  readonly #t: Transport;
  readonly #keys: readonly string[];
  readonly #waiting = new Set<() => void>();
  readonly #onIdle: () => void;
  #running = false;
  #closed = false;

  constructor(t: Transport, keys: readonly string[], onIdle: () => void) {
    this.#t = t;
    this.#keys = keys;
    this.#onIdle = onIdle;
  }

  /** Wakes `wake` at the next marker of this slot; returns the function that stops waiting. */
  add(wake: () => void): () => void {
    this.#waiting.add(wake);
    if (!this.#running) void this.#loop();
    return () => this.#waiting.delete(wake);
  }

  close(): void {
    this.#closed = true;
  }

  async #loop(): Promise<void> {
    this.#running = true;
    try {
      while (this.#waiting.size > 0 && !this.#closed) {
        let popped: string | undefined;
        try {
          popped = await this.#t.blockKey!(this.#keys, WATCH_MS);
        } catch {
          // A failed wait: the waits fall back to their own deadlines; try again shortly.
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        if (popped === undefined) continue;
        if (this.#waiting.size === 0) {
          // Nobody here wants it any more: give the marker back for the other processes.
          await this.#t.run(KEY_SCRIPT, [popped], ["mark"]).catch(() => {});
          break;
        }
        for (const wake of [...this.#waiting]) wake();
      }
    } finally {
      this.#running = false;
      if (this.#waiting.size === 0) this.#onIdle();
      else if (!this.#closed) void this.#loop();
    }
  }
}

/** Paces the polls of one backend and wakes its waiters. */
export class Waiter {
  readonly #t: Transport;
  readonly #prefix: string;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #waiters = new Set<() => void>();
  /** Per-slot watchers, by their marker keys (only once the server turned out to be a cluster). */
  readonly #watches = new Map<string, SlotWatch>();
  #interval: number;
  #lastEmptyAt = 0;
  /** The server is a Redis Cluster (a BZPOPMIN across slots was refused): multi-slot waits split. */
  #cluster = false;

  constructor(t: Transport, prefix: string, minMs: number, maxMs: number) {
    this.#t = t;
    this.#prefix = prefix;
    this.#minMs = minMs;
    this.#maxMs = maxMs;
    this.#interval = minMs;
  }

  /** True when waits poll instead of blocking. */
  get polling(): boolean {
    return this.#t.block === undefined;
  }

  /** Wakes every local waiter (a send or release in this process). */
  wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  /** A poll found work: the next empty poll starts the backoff again. */
  found(): void {
    this.#interval = this.#minMs;
    this.#lastEmptyAt = 0;
  }

  /** A poll found nothing. */
  empty(): void {
    this.#lastEmptyAt = Date.now();
  }

  /** Before the first poll of a waiting receive: keeps an idle poller's pace across calls. */
  async pace(waitMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (!this.polling || this.#lastEmptyAt === 0) return;
    const pause = this.#interval - (Date.now() - this.#lastEmptyAt);
    if (pause > 0) await this.#sleep(Math.min(pause, waitMs), signal);
  }

  /**
   * Waits up to `ms` for work on `queues`. Resolves true when the caller should poll again
   * before `ms` is over (woken, or a polling pause ended), false when the whole `ms` passed.
   */
  async wait(queues: readonly string[], ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (!this.polling) {
      const keys = queues.map((q) => wakeKey(this.#prefix, q));
      const groups = this.#cluster ? bySlot(keys) : [keys];
      if (groups.length > 1) return await this.#watch(groups, ms, signal);
      try {
        return await this.#t.block!(keys, ms, signal);
      } catch (error) {
        const cause = (error as { cause?: { message?: unknown } }).cause;
        if (!/CROSSSLOT|same slot/i.test(String(cause?.message ?? ""))) throw error;
        // A cluster, and these queues are in different slots: wait per slot, now and from now on.
        this.#cluster = true;
        return await this.#watch(bySlot(keys), ms, signal);
      }
    }
    const sleepMs = Math.min(ms, this.#interval);
    const woken = await this.#sleep(sleepMs, signal);
    this.#interval = woken ? this.#minMs : Math.min(this.#interval * 2, this.#maxMs);
    return woken || sleepMs < ms;
  }

  /** Stops the slot watchers (the connections close with the transport). */
  close(): void {
    for (const watch of this.#watches.values()) watch.close();
    this.#watches.clear();
    this.wake();
  }

  /** Waits on every slot's watcher at once: true at the first marker, false after `ms`. */
  #watch(groups: readonly string[][], ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      const stops: (() => void)[] = [];
      const done = (woken: boolean) => {
        clearTimeout(timer);
        for (const stop of stops) stop();
        this.#waiters.delete(wake);
        signal?.removeEventListener("abort", abort);
        resolve(woken);
      };
      const wake = () => done(true);
      const abort = () => done(false);
      const timer = setTimeout(abort, ms);
      this.#waiters.add(wake);
      signal?.addEventListener("abort", abort, { once: true });
      for (const keys of groups) {
        const name = keys.join("\n");
        let watch = this.#watches.get(name);
        if (watch === undefined) {
          watch = new SlotWatch(this.#t, keys, () => this.#watches.delete(name));
          this.#watches.set(name, watch);
        }
        stops.push(watch.add(wake));
      }
    });
  }

  /** Sleeps up to `ms`; resolves true when a local send woke it. */
  #sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        signal?.removeEventListener("abort", abort);
        resolve(woken);
      };
      const wake = () => done(true);
      const abort = () => done(false);
      const timer = setTimeout(abort, ms);
      this.#waiters.add(wake);
      signal?.addEventListener("abort", abort, { once: true });
    });
  }
}
