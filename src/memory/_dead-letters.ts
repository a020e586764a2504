/**
 * Internal: the dead letters of the memory backend, newest last, each kept for the retention.
 *
 * @module
 */
import type { Clock, DeadLetter } from "../contracts.ts";

/** Dead letters by run id, in the order they were added, expiring after `ttlMs`. */
export class DeadLetterList {
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, { entry: DeadLetter; expiresAt: number }>();

  constructor(clock: Clock, ttlMs: number) {
    this.#clock = clock;
    this.#ttlMs = ttlMs;
  }

  /** Drops expired entries (the oldest come first, so the scan stops at the first live one). */
  #expire(now: number): void {
    for (const [id, item] of this.#entries) {
      if (item.expiresAt > now) break;
      this.#entries.delete(id);
    }
  }

  add(entry: DeadLetter): void {
    const now = this.#clock.now();
    this.#expire(now);
    this.#entries.delete(entry.id);
    this.#entries.set(entry.id, { entry: structuredClone(entry), expiresAt: now + this.#ttlMs });
  }

  list(limit: number): DeadLetter[] {
    this.#expire(this.#clock.now());
    return [...this.#entries.values()]
      .reverse()
      .slice(0, limit)
      .map((item) => structuredClone(item.entry));
  }

  take(id: string): DeadLetter | null {
    this.#expire(this.#clock.now());
    const item = this.#entries.get(id);
    if (item === undefined) return null;
    this.#entries.delete(id);
    return item.entry;
  }

  delete(id: string): boolean {
    this.#expire(this.#clock.now());
    return this.#entries.delete(id);
  }

  /** Dead letters of one queue. */
  count(queue: string): number {
    this.#expire(this.#clock.now());
    let n = 0;
    for (const item of this.#entries.values()) if (item.entry.queue === queue) n++;
    return n;
  }

  purge(): number {
    this.#expire(this.#clock.now());
    const count = this.#entries.size;
    this.#entries.clear();
    return count;
  }
}
