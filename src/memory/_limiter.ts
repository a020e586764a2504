/**
 * Internal: rate and concurrency limits of the in-memory backend, checked as messages are
 * leased: a rate limit as a cell rate per key (a run over it reserves the next free start and
 * waits for it, delayed); a concurrency limit as slots per key held by leased messages (a run over
 * it is parked and goes back to the front of its queue when a slot frees).
 *
 * @module
 */
import { gcra, type MessageLimits } from "../flow/limits.ts";

/** What the limiter needs of a queued message. */
export interface Limited {
  readonly message: { readonly limits?: MessageLimits | undefined };
  /** Its rate-limit start was reserved when it was last held back: it starts without a check. */
  reserved?: boolean;
  /** True while it holds its concurrency slot (leased). */
  holding?: boolean;
}

/** What to do with a message about to be leased. */
export type Admission = { kind: "lease" } | { kind: "defer"; at: number } | { kind: "park" };

const LEASE: Admission = Object.freeze({ kind: "lease" });

/** The limits' state of one backend. */
export class Limiter<E extends Limited> {
  readonly #tat = new Map<string, number>();
  readonly #slots = new Map<string, Set<E>>();
  readonly #parked = new Map<string, E[]>();

  /** Whether `entry` may be leased now; when it may, its slot is taken and its rate counted. */
  admit(entry: E, now: number): Admission {
    const limits = entry.message.limits;
    if (limits === undefined) return LEASE;
    const c = limits.concurrency;
    if (c !== undefined && (this.#slots.get(c.key)?.size ?? 0) >= c.limit) {
      const list = this.#parked.get(c.key);
      if (list === undefined) this.#parked.set(c.key, [entry]);
      else list.push(entry);
      return { kind: "park" };
    }
    const r = limits.rate;
    if (r !== undefined && entry.reserved !== true) {
      const step = gcra(this.#tat.get(r.key) ?? 0, now, r.limit, r.periodMs);
      this.#tat.set(r.key, step.tat);
      if (!step.ok) {
        entry.reserved = true;
        return { kind: "defer", at: step.at };
      }
    }
    entry.reserved = false;
    if (c !== undefined) {
      const slots = this.#slots.get(c.key);
      if (slots === undefined) this.#slots.set(c.key, new Set([entry]));
      else slots.add(entry);
      entry.holding = true;
    }
    return LEASE;
  }

  /**
   * The entry's lease ended (acked, released, cancelled, expired): its slot frees, and the parked
   * entries of its key that may now run are returned (to go back to the front of their queue).
   */
  freed(entry: E): E[] {
    const c = entry.message.limits?.concurrency;
    if (c === undefined || entry.holding !== true) return [];
    entry.holding = false;
    const slots = this.#slots.get(c.key);
    slots?.delete(entry);
    if (slots !== undefined && slots.size === 0) this.#slots.delete(c.key);
    const list = this.#parked.get(c.key);
    if (list === undefined) return [];
    const free = c.limit - (slots?.size ?? 0);
    const out = list.splice(0, Math.max(0, free));
    if (list.length === 0) this.#parked.delete(c.key);
    return out;
  }

  /** Drops parked entries that `gone` says are gone (a purge), returning them. */
  unpark(gone: (entry: E) => boolean): E[] {
    const out: E[] = [];
    for (const [key, list] of this.#parked) {
      const keep: E[] = [];
      for (const e of list) (gone(e) ? out : keep).push(e);
      if (keep.length === 0) this.#parked.delete(key);
      else this.#parked.set(key, keep);
    }
    return out;
  }
}
