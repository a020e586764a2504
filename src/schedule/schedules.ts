/**
 * `app.schedules`: schedules added, changed, paused and removed at runtime, kept in the store
 * (`Store.schedules`) as plain JSON, like django-celery-beat's database scheduler. Every
 * scheduler replica on the same store fires them: it re-reads them at each wake when they changed
 * (one revision read), and sooner in the process that made the change.
 *
 * @module
 */
import type { Clock, ScheduleStore } from "../contracts.ts";
import { CeleriacError } from "../errors.ts";
import { checkScheduleId, type Schedule } from "./define.ts";
import { Scheduler } from "./scheduler.ts";
import type { ScheduleSet, ScheduleSetHost } from "./set.ts";
import { type ScheduleStatus, scheduleStatuses } from "./status.ts";
import {
  applyPatch,
  checkStored,
  parseStored,
  type StoredSchedule,
  type StoredSchedulePatch,
} from "./stored.ts";
import { lastKey, parseLast, runKey } from "./tick.ts";

/** The fields that decide a stored schedule's tick times, as comparable text. */
function timingOf(d: StoredSchedule): string {
  return JSON.stringify([d.cron, d.every, d.timezone, d.startAt, d.stopAt]);
}

/** What `app.schedules` needs from its app. */
export interface SchedulesHost extends ScheduleSetHost {
  readonly clock: Clock;
}

/**
 * The stored schedules of an app, shared through its store with every process on it. A stored
 * schedule with the id of one defined in code replaces it (in every process that reads the
 * store) until it is removed. Each method validates up front: an unknown task is an
 * `UnknownTaskError`, a bad option a `TypeError` or `RangeError` naming it and its value, input
 * the task's schema rejects a `ValidationError`. On a store without `schedules` every method
 * throws a `TypeError`.
 *
 * @example
 * ```ts
 * await app.schedules.add("digest", { task: "email.digest", input: { list: "weekly" }, cron: "0 8 * * 1" });
 * await app.schedules.update("digest", { every: "1h" });
 * await app.schedules.pause("digest");
 * await app.schedules.remove("digest");
 * ```
 */
export class Schedules {
  readonly #host: SchedulesHost;
  readonly #set: ScheduleSet;
  /** The app's running workers and schedulers (`armed` in `list()`: one of its schedulers runs). */
  readonly #running: ReadonlySet<unknown>;

  /** Internal: the app creates it (`app.schedules`). */
  constructor(host: SchedulesHost, set: ScheduleSet, running: ReadonlySet<unknown>) {
    this.#host = host;
    this.#set = set;
    this.#running = running;
  }

  #store(): ScheduleStore {
    const store = this.#set.store;
    if (store === undefined) {
      throw new TypeError(
        "app.schedules needs a store that keeps schedules (Store.schedules, as memory() and redis() do); this app's store has none",
      );
    }
    return store;
  }

  /**
   * Adds a stored schedule, or replaces the stored one with this id (so a deploy script can run
   * it every time). Resolves once it is stored; schedulers fire it from their next look on.
   *
   * @example
   * ```ts
   * await app.schedules.add("heartbeat", { task: "ping", every: "30s", startAt: Date.UTC(2030, 0, 1) });
   * ```
   */
  async add(id: string, definition: StoredSchedule): Promise<Schedule> {
    checkScheduleId(id);
    const store = this.#store();
    const { json, entry } = await checkStored(this.#host, id, definition);
    await store.put(id, json);
    this.#set.changed();
    return entry;
  }

  /**
   * Changes a stored schedule: each key of `patch` replaces that field and `null` removes it;
   * setting `every` drops `cron` (and `timezone`), setting `cron` drops `every`. A change of its
   * tick times takes effect from the next tick after now (earlier ticks of the new timing never
   * run); ticks are claimed by schedule id and tick time, so no tick fires twice across the change.
   * Throws `CeleriacError` when there is no stored schedule with this id.
   *
   * @example
   * ```ts
   * await app.schedules.update("digest", { every: "15m", input: { list: "daily" } });
   * ```
   */
  async update(id: string, patch: StoredSchedulePatch): Promise<Schedule> {
    checkScheduleId(id);
    const store = this.#store();
    const current = await this.#current(store, id);
    const next = applyPatch(current, patch, id);
    const { json, entry } = await checkStored(this.#host, id, next);
    // Resumed, or new tick times: what came due before now is handled (skipped) before
    // schedulers see the change, so it takes effect from the next tick.
    if ((current.paused === true && !entry.paused) || timingOf(current) !== timingOf(next)) {
      await this.#handledUntilNow(id);
    }
    await store.put(id, json);
    this.#set.changed();
    return entry;
  }

  /**
   * Pauses a stored schedule: schedulers stop firing it from their next look on.
   *
   * @example
   * ```ts
   * await app.schedules.pause("digest");
   * ```
   */
  pause(id: string): Promise<Schedule> {
    return this.update(id, { paused: true });
  }

  /**
   * Resumes a paused stored schedule from its next tick: ticks that came due while it was paused
   * never run.
   *
   * @example
   * ```ts
   * await app.schedules.resume("digest");
   * ```
   */
  resume(id: string): Promise<Schedule> {
    return this.update(id, { paused: null });
  }

  /**
   * Removes a stored schedule (a code schedule with its id fires again); false when there was none.
   *
   * @example
   * ```ts
   * const removed = await app.schedules.remove("digest");
   * ```
   */
  async remove(id: string): Promise<boolean> {
    checkScheduleId(id);
    const removed = await this.#store().remove(id);
    if (!removed) return false;
    if (!this.#set.code.has(id)) {
      const store = this.#host.store;
      await Promise.all([store.delete(lastKey(id)), store.delete(runKey(id))]);
    }
    this.#set.changed();
    return true;
  }

  /**
   * Lists every schedule, stored and from code (`source`), with `paused`, the next tick times,
   * the last tick any scheduler handled and the last run. Works on any store: without stored
   * schedules it lists the code ones.
   *
   * @example
   * ```ts
   * for (const s of await app.schedules.list()) console.log(s.id, s.source, s.paused, s.nextRuns[0], s.lastTick);
   * ```
   */
  async list(options: { now?: number | Date; next?: number } = {}): Promise<ScheduleStatus[]> {
    const at = options.now ?? this.#host.clock.now();
    const now = at instanceof Date ? at.getTime() : at;
    const view = await this.#set.view();
    const armed = [...this.#running].some((r) => r instanceof Scheduler && r.running);
    return await scheduleStatuses(this.#host.store, view, now, options.next ?? 5, armed);
  }

  async #current(store: ScheduleStore, id: string): Promise<StoredSchedule> {
    const row = (await store.list()).find((r) => r.id === id);
    if (row === undefined) {
      if (this.#set.code.has(id)) {
        throw new CeleriacError(
          `schedule "${id}" is defined in code, not stored: add a stored schedule with this id to replace it`,
        );
      }
      throw new CeleriacError(`no stored schedule "${id}"`);
    }
    const definition = parseStored(id, row.json);
    if (typeof definition !== "object" || definition === null || Array.isArray(definition)) {
      throw new TypeError(`schedule "${id}": the stored definition is not an object: add it again`);
    }
    return definition as StoredSchedule;
  }

  /** Moves the schedule's resume point to now (never back). */
  async #handledUntilNow(id: string): Promise<void> {
    const store = this.#host.store;
    const now = this.#host.clock.now();
    const last = parseLast(await store.get(lastKey(id)));
    if (last === null || last < now) await store.set(lastKey(id), String(now));
  }
}
