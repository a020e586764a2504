/**
 * Cron scheduling, exactly once per tick across any number of replicas, without a leader.
 *
 * Each due tick is claimed in the store (`setIfAbsent("sched:<id>:<tickMs>")`) and enqueued with
 * the same string as its idempotency key, so two schedulers, an edge cron and a restarted process
 * can all look at the same minute and one run comes out. The last handled tick of each schedule
 * is kept in the store, so whoever ticks next resumes where the last one stopped. A long-lived
 * process runs `app.scheduler().start()` (croner timers, unref'd); an edge function calls
 * `tick()` from its platform cron (see {@link cronTrigger} for Cloudflare Cron Triggers).
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
import type { CatchUp, ScheduleEntry } from "./define.ts";
import { lastKey, parseLast, parseRun, runKey, type TickResult, tickSchedule } from "./tick.ts";
import type { Clock, RunState, Store } from "../contracts.ts";
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
} from "./define.ts";
export type { EnqueuedTick, SkippedTick, TickError, TickResult } from "./tick.ts";

/**
 * Options of `app.scheduler()`.
 *
 * @example
 * ```ts
 * const scheduler = app.scheduler({ clock: manualClock(Date.UTC(2030, 0, 1)) });
 * ```
 */
export interface SchedulerOptions {
  /** Decides which ticks are due (croner's timers only wake the scheduler up). @default the app's clock */
  clock?: Clock;
}

/** What a scheduler needs from its app. */
export interface SchedulerHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly events: Emitter;
  /** Told when the scheduler starts and when it has stopped (the app stops running ones on close). */
  running?(scheduler: Scheduler, on: boolean): void;
}

/**
 * One schedule as `scheduler.list()` reports it.
 *
 * @example
 * ```ts
 * for (const s of await app.scheduler().list()) console.log(s.id, s.nextRuns[0], s.lastRun?.state);
 * ```
 */
export interface ScheduleStatus {
  id: string;
  cron: string;
  /** The IANA time zone, or null for UTC. */
  timezone: string | null;
  task: string;
  overlap: boolean;
  catchUp: CatchUp;
  /** The next tick times after now. */
  nextRuns: Date[];
  /** The last tick handled (enqueued or skipped) by any scheduler, or null. */
  lastTick: Date | null;
  /** The last run this schedule enqueued; `state` is null once its record has expired. */
  lastRun: { id: string; tick: Date; state: RunState | null } | null;
  /** True while this scheduler holds a live croner timer for the schedule. */
  armed: boolean;
}

function toMs(value: number | Date): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new RangeError(`now must be a valid date or epoch milliseconds, got ${String(value)}`);
  }
  return ms;
}

/**
 * Fires an app's schedules. Create it with `app.scheduler()`. `tick()` enqueues what is due and
 * returns; `start()` arms croner timers that call it at each tick; `stop()` disarms them and waits
 * for a tick in progress.
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
  readonly #schedules: ReadonlyMap<string, ScheduleEntry>;
  readonly #clock: Clock;
  readonly #jobs = new Map<string, Cron>();
  readonly #inflight = new Set<Promise<void>>();
  #running = false;

  constructor(
    host: SchedulerHost,
    schedules: ReadonlyMap<string, ScheduleEntry>,
    options: SchedulerOptions = {},
  ) {
    this.#host = host;
    this.#schedules = schedules;
    this.#clock = options.clock ?? host.clock;
    if (typeof this.#clock?.now !== "function") throw new TypeError("clock must have a now() method");
  }

  /** True between `start()` and `stop()`. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Enqueues every tick due since the last handled one, up to `now`, as each schedule's catch-up
   * policy allows. Safe to call from any number of replicas at once, early, late or twice: each
   * tick is enqueued once. Never throws for one schedule's failure; see `errors`.
   *
   * @example
   * ```ts
   * const { enqueued } = await app.scheduler().tick();
   * ```
   */
  async tick(now: number | Date = this.#clock.now()): Promise<TickResult> {
    return await this.#tick([...this.#schedules.values()], toMs(now));
  }

  /**
   * Arms one croner timer per schedule (unref'd, so timers alone never keep the process alive)
   * and runs one `tick()` at once to catch up. Errors are reported as `error` events.
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
    for (const entry of this.#schedules.values()) {
      const job = new Cron(
        entry.cron,
        {
          ...(entry.timezone === null ? {} : { timezone: entry.timezone }),
          ...(entry.startAt === null ? {} : { startAt: entry.startAt }),
          ...(entry.stopAt === null ? {} : { stopAt: entry.stopAt }),
          unref: true,
          protect: true,
          catch: true,
        },
        () => this.#fire([entry]),
      );
      this.#jobs.set(entry.id, job);
    }
    void this.#fire([...this.#schedules.values()]);
    return this;
  }

  /**
   * Disarms every timer and waits for ticks in progress. Nothing is enqueued after it resolves.
   *
   * @example
   * ```ts
   * await scheduler.stop();
   * ```
   */
  async stop(): Promise<void> {
    this.#running = false;
    for (const job of this.#jobs.values()) job.stop();
    this.#jobs.clear();
    while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
    this.#host.running?.(this, false);
  }

  /**
   * Lists the schedules: pattern, time zone, next tick times, last tick and last run with its state.
   *
   * @example
   * ```ts
   * const [nightly] = await app.scheduler().list({ next: 3 });
   * ```
   */
  async list(options: { now?: number | Date; next?: number } = {}): Promise<ScheduleStatus[]> {
    const now = toMs(options.now ?? this.#clock.now());
    const next = options.next ?? 5;
    if (!Number.isSafeInteger(next) || next < 0) {
      throw new RangeError(`next must be a non-negative integer, got ${String(next)}`);
    }
    const store = this.#host.store;
    return await Promise.all(
      [...this.#schedules.values()].map(async (entry): Promise<ScheduleStatus> => {
        const [lastText, runText] = await Promise.all([
          store.get(lastKey(entry.id)),
          store.get(runKey(entry.id)),
        ]);
        const last = parseLast(lastText);
        const run = parseRun(runText);
        const record = run === null ? null : await store.getRun(run.id, run.queue);
        return {
          id: entry.id,
          cron: entry.cron,
          timezone: entry.timezone,
          task: entry.task,
          overlap: entry.overlap,
          catchUp: entry.catchUp,
          nextRuns: next === 0 ? [] : entry.nextRuns(next, now),
          lastTick: last === null ? null : new Date(last),
          lastRun:
            run === null ? null : { id: run.id, tick: new Date(run.tick), state: record?.state ?? null },
          armed: this.#jobs.get(entry.id)?.isRunning() ?? false,
        };
      }),
    );
  }

  #fire(entries: ScheduleEntry[]): Promise<void> {
    if (!this.#running) return Promise.resolve();
    const events = this.#host.events;
    const done = this.#tick(entries, this.#clock.now()).then(
      (result) => {
        for (const e of result.errors)
          events.emit("error", { error: e.error, where: `schedule "${e.schedule}"` });
      },
      (error: unknown) => events.emit("error", { error, where: "scheduler tick" }),
    );
    this.#inflight.add(done);
    void done.finally(() => this.#inflight.delete(done));
    return done;
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
