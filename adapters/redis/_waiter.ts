/**
 * Waiting for work between empty polls. Over TCP a waiter blocks on the queues' wake-up markers
 * (BZPOPMIN on a dedicated connection), so an idle worker sends about nothing. Without blocking
 * (REST, or queues spread over cluster slots) it polls, doubling the pause after each empty poll
 * from `pollMinMs` up to `pollMaxMs`. Sends made through the same backend wake local waiters at
 * once either way.
 *
 * @module
 */
import { wakeKey } from "./_keys.ts";
import type { Transport } from "./_client.ts";

/** Paces the polls of one backend and wakes its waiters. */
export class Waiter {
  readonly #t: Transport;
  readonly #prefix: string;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #waiters = new Set<() => void>();
  #interval: number;
  #lastEmptyAt = 0;
  #noBlock = false;

  constructor(t: Transport, prefix: string, minMs: number, maxMs: number) {
    this.#t = t;
    this.#prefix = prefix;
    this.#minMs = minMs;
    this.#maxMs = maxMs;
    this.#interval = minMs;
  }

  /** True when waits poll instead of blocking. */
  get polling(): boolean {
    return this.#t.block === undefined || this.#noBlock;
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
      try {
        return await this.#t.block!(
          queues.map((q) => wakeKey(this.#prefix, q)),
          ms,
          signal,
        );
      } catch (error) {
        const cause = (error as { cause?: { message?: unknown } }).cause;
        if (!/CROSSSLOT|same slot/i.test(String(cause?.message ?? ""))) throw error;
        this.#noBlock = true; // markers in different cluster slots: poll instead
      }
    }
    const sleepMs = Math.min(ms, this.#interval);
    const woken = await this.#sleep(sleepMs, signal);
    this.#interval = woken ? this.#minMs : Math.min(this.#interval * 2, this.#maxMs);
    return woken || sleepMs < ms;
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
