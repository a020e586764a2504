/**
 * Scheduling, exactly once per tick across any number of replicas, without a leader.
 *
 * Each due tick is claimed in the store (`setIfAbsent("sched:<id>:<tickMs>")`) and enqueued with
 * the same string as its idempotency key, so two schedulers, an edge cron and a restarted process
 * can all look at the same minute and one run comes out. The last handled tick of each schedule
 * is kept in the store, so whoever ticks next resumes where the last one stopped. Schedules come
 * from code (`app.schedule`) and from the store (`app.schedules`); each look at them re-reads the
 * stored ones when they changed. A long-lived process runs `app.scheduler().start()` (one
 * unref'd timer); an edge function calls `tick()` from its platform cron (see {@link cronTrigger}
 * for Cloudflare Cron Triggers).
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * const app = createApp();
 * const cleanup = app.task({ name: "cleanup", run: () => "swept" });
 * app.schedule("nightly", { cron: "0 2 * * *", timezone: "Europe/Berlin", task: cleanup });
 * const scheduler = app.scheduler().start();
 * // …
 * await scheduler.stop();
 * ```
 *
 * @module
 */
import { Cron } from "croner";
import { MAX_TICKS_PER_CALL, type ScheduleEntry } from "./define.ts";
import type { ScheduleSet, ScheduleView } from "./set.ts";
import { scheduleStatuses, type ScheduleStatus } from "./status.ts";
import { type TickResult, tickSchedule } from "./tick.ts";
import type { Clock, Store } from "../contracts.ts";
import { CeleriacError } from "../errors.ts";
import type { Emitter } from "../events.ts";

export {
  type CatchUp,
  DEFAULT_CATCH_UP_WINDOW_MS,
  defineSchedule,
  MAX_TICKS_PER_CALL,
  type Schedule,
  type ScheduleEntry,
  type ScheduleHost,
  type ScheduleOptions,
  type ScheduleTiming,
} from "./define.ts";
export type { ScheduleStatus } from "./status.ts";
export type { EnqueuedTick, SkippedTick, TickError, TickResult } from "./tick.ts";

/**
 * Options of `app.scheduler()`.
 *
 * @example
 * ```ts
 * const scheduler = app.scheduler({ clock: manualClock(Date.UTC(2030, 0, 1)), refreshMs: 2_000 });
 * ```
 */
export interface SchedulerOptions {
  /** Decides which ticks are due (the timer only wakes the scheduler up). @default the app's clock */
  clock?: Clock;
  /**
   * How often a started scheduler looks for stored schedules added, changed or removed by other
   * processes, besides waking at each tick (one revision read per look; changes made in this
   * process are seen at once). Timers have croner's resolution of one second. @default 5_000
   */
  refreshMs?: number;
}

/** What a scheduler needs from its app. */
export interface SchedulerHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly events: Emitter;
  /** Told when the scheduler starts and when it has stopped (the app stops running ones on close). */
  running?(scheduler: Scheduler, on: boolean): void;
}

function toMs(value: number | Date): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new RangeError(`now must be a valid date or epoch milliseconds, got ${String(value)}`);
  }
  return ms;
}

/** What a stored schedule that could not be read is reported as, in `errors` and `error` events. */
function viewErrors(view: ScheduleView): { schedule: string; error: unknown }[] {
  const out = view.invalid.map((i) => ({ schedule: i.id, error: i.error }));
  if (view.error !== undefined) out.push({ schedule: "*", error: view.error });
  return out;
}

/**
 * Fires an app's schedules. Create it with `app.scheduler()`. `tick()` enqueues what is due and
 * returns; `start()` keeps one timer armed for the next tick of any schedule (and for the next
 * look at the stored ones) and ticks what is due at each wake; `stop()` disarms it and waits for
 * a tick in progress.
 *
 * @example
 * ```ts
 * const scheduler = app.scheduler().start(); // long-lived process
 * await scheduler.stop();
 * const result = await app.scheduler().tick(); // edge cron
 * ```
 */
export class Scheduler {
  readonly #host: SchedulerHost;
  readonly #set: ScheduleSet;
  readonly #clock: Clock;
  readonly #refreshMs: number;
  #running = false;
  #timer: Cron | undefined;
  #unsubscribe: (() => void) | undefined;
  /** The wake in progress, and whether another was asked for meanwhile. */
  #waking: Promise<void> | undefined;
  #again = false;
  /** Per schedule: the entry last ticked here and the latest tick that covered (null: none yet). */
  readonly #seen = new Map<string, { entry: ScheduleEntry; through: number | null }>();
  /** Unreadable stored schedules already reported as `error` events. */
  readonly #reported = new WeakSet<object>();

  constructor(host: SchedulerHost, set: ScheduleSet, options: SchedulerOptions = {}) {
    this.#host = host;
    this.#set = set;
    this.#clock = options.clock ?? host.clock;
    if (typeof this.#clock?.now !== "function") throw new TypeError("clock must have a now() method");
    const refreshMs = options.refreshMs ?? 5_000;
    if (typeof refreshMs !== "number" || !(refreshMs > 0) || !Number.isFinite(refreshMs)) {
      throw new RangeError(`refreshMs must be a positive number, got ${String(refreshMs)}`);
    }
    this.#refreshMs = refreshMs;
  }

  /** True between `start()` and `stop()`. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Enqueues every tick due since the last handled one, up to `now`, as each schedule's catch-up
   * policy allows; stored schedules are read first (again only when they changed). Safe to call
   * from any number of replicas at once, early, late or twice: each tick is enqueued once. Never
   * throws for one schedule's failure; see `errors` (a stored schedule this process cannot read
   * is listed there with `tick: null`, and `schedule: "*"` when the stored set could not be read).
   *
   * @example
   * ```ts
   * const { enqueued } = await app.scheduler().tick();
   * ```
   */
  async tick(now: number | Date = this.#clock.now()): Promise<TickResult> {
    const ms = toMs(now);
    const view = await this.#set.view();
    const result = await this.#tick(
      view.entries.filter((e) => !e.paused),
      ms,
    );
    for (const e of viewErrors(view)) result.errors.push({ ...e, tick: null });
    return result;
  }

  /**
   * Starts firing: ticks what is due at once (to catch up), then keeps one unref'd timer armed
   * for the next tick of any schedule, so timers alone never keep the process alive. Schedules
   * defined or stored later are armed too. Errors are reported as `error` events.
   *
   * @example
   * ```ts
   * const scheduler = app.scheduler().start();
   * ```
   */
  start(): this {
    if (this.#running) return this;
    this.#running = true;
    this.#host.running?.(this, true);
    this.#unsubscribe = this.#set.subscribe(() => this.#wake());
    this.#wake();
    return this;
  }

  /**
   * Disarms the timer and waits for a tick in progress. Nothing is enqueued after it resolves.
   *
   * @example
   * ```ts
   * await scheduler.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#running = false;
    this.#timer?.stop();
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    while (this.#waking !== undefined) await this.#waking;
    this.#seen.clear();
    this.#host.running?.(this, false);
  }

  /**
   * Lists the schedules, from code and stored: timing, next tick times, last tick and last run
   * with its state.
   *
   * @example
   * ```ts
   * const [nightly] = await app.scheduler().list({ next: 3 });
   * ```
   */
  async list(options: { now?: number | Date; next?: number } = {}): Promise<ScheduleStatus[]> {
    const now = toMs(options.now ?? this.#clock.now());
    const view = await this.#set.view();
    return await scheduleStatuses(this.#host.store, view, now, options.next ?? 5, this.#running);
  }

  /** Looks at the schedules now: at start, on the timer, and when this process changed one. */
  #wake(): void {
    if (!this.#running) return;
    if (this.#waking !== undefined) {
      this.#again = true;
      return;
    }
    this.#waking = (async () => {
      do {
        this.#again = false;
        try {
          await this.#wakeOnce();
        } catch (error) {
          this.#host.events.emit("error", { error, where: "scheduler tick" });
        }
      } while (this.#again && this.#running);
      this.#waking = undefined;
    })();
  }

  async #wakeOnce(): Promise<void> {
    const now = this.#clock.now();
    const view = await this.#set.view();
    const events = this.#host.events;
    for (const invalid of view.invalid) {
      if (this.#reported.has(invalid)) continue; // once per definition, not at every wake
      this.#reported.add(invalid);
      events.emit("error", { error: invalid.error, where: `schedule "${invalid.id}"` });
    }
    if (view.error !== undefined) events.emit("error", { error: view.error, where: "stored schedules" });
    if (!this.#running) return;
    const active = view.entries.filter((e) => !e.paused);
    let retry = view.error !== undefined;
    const due = active.filter((e) => this.#isDue(e, now));
    if (due.length > 0) {
      const result = await this.#tick(due, now);
      const failed = new Set(result.errors.map((e) => e.schedule));
      const handled = new Map<string, number>();
      for (const t of [...result.enqueued, ...result.skipped.filter((s) => s.reason !== "missed")]) {
        handled.set(t.schedule, (handled.get(t.schedule) ?? 0) + 1);
      }
      for (const entry of due) {
        if (failed.has(entry.id)) {
          this.#seen.delete(entry.id);
          retry = true;
        } else if ((handled.get(entry.id) ?? 0) >= MAX_TICKS_PER_CALL) {
          this.#seen.delete(entry.id);
          this.#again = true; // more ticks to catch up on
        } else {
          this.#seen.set(entry.id, { entry, through: entry.timing.latest(now) });
        }
      }
      for (const e of result.errors)
        events.emit("error", { error: e.error, where: `schedule "${e.schedule}"` });
    }
    const ids = new Set(active.map((e) => e.id));
    for (const id of this.#seen.keys()) if (!ids.has(id)) this.#seen.delete(id);
    if (this.#running) this.#arm(active, now, retry);
  }

  /** A schedule is due here when it is new or changed, or a tick came due since it was last ticked. */
  #isDue(entry: ScheduleEntry, now: number): boolean {
    const seen = this.#seen.get(entry.id);
    if (seen === undefined || seen.entry !== entry) return true;
    const latest = entry.timing.latest(now);
    return latest !== null && (seen.through === null || latest > seen.through);
  }

  /** Arms the one timer: the next tick of any schedule, or the next look at the stored ones. */
  #arm(active: ScheduleEntry[], now: number, retry: boolean): void {
    this.#timer?.stop();
    this.#timer = undefined;
    let at = Infinity;
    for (const entry of active) {
      const t = entry.timing.next(now);
      if (t !== null && t < at) at = t;
    }
    if (this.#set.store !== undefined || retry) at = Math.min(at, now + this.#refreshMs);
    if (!Number.isFinite(at)) return;
    // Timers run on real time; the clock only decides what is due.
    const delay = at - this.#clock.now();
    if (delay <= 0) {
      this.#again = true; // it came due while this wake ticked
      return;
    }
    // croner fires on whole seconds: a target a few ms past one is clock jitter, not a later tick.
    const wall = Date.now();
    const second = Math.floor((wall + delay) / 1000) * 1000;
    let fire = wall + delay - second < 50 ? second : second + 1000;
    if (fire <= wall) fire += 1000;
    this.#timer = new Cron(new Date(fire), { unref: true, catch: true }, () => this.#wake());
  }

  async #tick(entries: ScheduleEntry[], now: number): Promise<TickResult> {
    const result: TickResult = { now: new Date(now), enqueued: [], skipped: [], errors: [] };
    await Promise.all(
      entries.map((entry) =>
        tickSchedule(this.#host.store, entry, now, result).catch((error: unknown) => {
          result.errors.push({ schedule: entry.id, tick: null, error });
        }),
      ),
    );
    return result;
  }
}

/** The part of a Cloudflare `ExecutionContext` that {@link cronTrigger} uses. */
export interface WaitUntilContext {
  waitUntil?(promise: Promise<unknown>): void;
}

/** What {@link cronTrigger} needs: an app (or anything with a `scheduler()`). */
export interface SchedulerSource {
  scheduler(): { tick(): Promise<TickResult> };
}

/**
 * A Cloudflare Cron Trigger handler: each invocation ticks the app's schedules, kept alive with
 * `ctx.waitUntil` when there is one. Rejects when a schedule failed (after ticking the others),
 * so the platform shows the failure. A trigger every minute drives every schedule.
 *
 * @example
 * ```ts
 * import { cronTrigger } from "celeriac";
 * export default { fetch: handler.fetch, scheduled: cronTrigger(app) };
 * ```
 */
export function cronTrigger(
  app: SchedulerSource,
): (event: unknown, env: unknown, ctx?: WaitUntilContext) => Promise<void> {
  return (_event, _env, ctx) => {
    const done = app
      .scheduler()
      .tick()
      .then((result) => {
        if (result.errors.length === 0) return;
        const first = result.errors[0]!;
        const message = result.errors
          .map(
            (e) =>
              `schedule "${e.schedule}": ${e.error instanceof Error ? e.error.message : String(e.error)}`,
          )
          .join("; ");
        throw new CeleriacError(`${result.errors.length} schedule tick(s) failed: ${message}`, {
          cause: first.error,
        });
      });
    ctx?.waitUntil?.(done);
    return done;
  };
}
