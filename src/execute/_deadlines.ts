/**
 * Many timeouts on one timer (exported from `celeriac/backend` for adapters that bound many calls). Tasks of one kind share a `timeoutMs`, so their deadlines
 * arrive in the order they were set: one FIFO per duration, one timer armed for the earliest head.
 * Adding and cancelling are O(1); cancelled entries are dropped lazily.
 *
 * @module
 */

/** A pending deadline (cancel it with `Deadlines.cancel`). */
export interface Entry {
  at: number;
  /** The lane (duration) it belongs to. */
  ms: number;
  fire: (() => void) | undefined;
}

/**
 * A set of pending deadlines served by a single timer.
 *
 * @example
 * ```ts
 * import { Deadlines } from "celeriac/backend";
 * const deadlines = new Deadlines();
 * const entry = deadlines.add(5_000, () => console.log("too late"));
 * deadlines.cancel(entry); // answered in time
 * ```
 */
export class Deadlines {
  readonly #lanes = new Map<number, { items: Entry[]; head: number }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Infinity;
  #pending = 0;

  /** Calls `fire` after `ms` unless the returned handle is cancelled first. */
  add(ms: number, fire: () => void): Entry {
    const entry: Entry = { at: performance.now() + ms, ms, fire };
    let lane = this.#lanes.get(ms);
    if (lane === undefined) {
      lane = { items: [], head: 0 };
      this.#lanes.set(ms, lane);
    }
    lane.items.push(entry);
    this.#pending++;
    if (entry.at < this.#armedAt) this.#arm(entry.at);
    return entry;
  }

  /**
   * Cancels a deadline (no-op when it already fired). Cancelled entries at the head of their
   * lane are dropped at once, so a lane whose deadlines are all cancelled before they fire (the
   * common case: tasks end in time) never grows, whether or not its timer ever fires.
   */
  cancel(entry: Entry): void {
    if (entry.fire === undefined) return;
    entry.fire = undefined;
    if (--this.#pending === 0) {
      this.#disarm();
      return;
    }
    const lane = this.#lanes.get(entry.ms);
    if (lane === undefined) return;
    const { items } = lane;
    while (lane.head < items.length && items[lane.head]!.fire === undefined) lane.head++;
    if (lane.head >= 1024 && lane.head * 2 >= items.length) {
      items.splice(0, lane.head);
      lane.head = 0;
    }
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(() => this.#run(), Math.max(0, at - performance.now()));
  }

  /** Nothing is pending: every entry left is cancelled, so every lane goes. */
  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
    this.#lanes.clear();
  }

  #run(): void {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    const due: (() => void)[] = [];
    for (const [ms, lane] of this.#lanes) {
      const { items } = lane;
      while (lane.head < items.length) {
        const entry = items[lane.head]!;
        if (entry.fire !== undefined && entry.at > now) break;
        lane.head++;
        if (entry.fire !== undefined) {
          due.push(entry.fire);
          entry.fire = undefined;
          this.#pending--;
        }
      }
      if (lane.head >= 1024 && lane.head * 2 >= items.length) {
        items.splice(0, lane.head);
        lane.head = 0;
      }
      const head = items[lane.head];
      if (head === undefined) this.#lanes.delete(ms);
      else if (head.at < next) next = head.at;
    }
    if (next !== Infinity) this.#arm(next);
    for (const fire of due) fire();
  }
}
