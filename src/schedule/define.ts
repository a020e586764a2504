/**
 * Internal: schedule definitions (validated up front; `timing.ts` computes their ticks) and the
 * tick arithmetic the scheduler runs on: which ticks are due between the last handled one and now,
 * and which of them the catch-up policy runs.
 *
 * @module
 */
import { CeleriacError } from "../errors.ts";
import { checkQueueName } from "../keys.ts";
import type { EnqueueOptions, ResolvedTask, Task } from "../task.ts";
import { cronTiming, everyTiming, nextTicks, parseEvery, type Timing } from "./timing.ts";

/**
 * What happens to ticks that came due while no scheduler ran (or ran late):
 * - `"none"`: only ticks at most `graceMs` old run; older ones are skipped.
 * - `"latest"`: only the most recent due tick runs, however old; older ones are skipped.
 * - `"all"`: every due tick of the last 24 hours runs, oldest first (`{ windowMs }` sets the window).
 *
 * In every mode at most {@link MAX_TICKS_PER_CALL} ticks of one schedule run per `tick()` call;
 * the rest run on the next call, while they are still inside the window.
 *
 * @example
 * ```ts
 * app.schedule("report", { cron: "0 * * * *", task: report, catchUp: { windowMs: 6 * 3_600_000 } });
 * ```
 */
export type CatchUp = "none" | "latest" | "all" | { windowMs: number };

/**
 * When and how a schedule fires: the part of a definition shared by schedules in code
 * (`app.schedule`) and stored ones (`app.schedules.add`). Give exactly one of `cron` and `every`.
 *
 * @example
 * ```ts
 * const timing: ScheduleTiming = { every: "15m", startAt: Date.UTC(2030, 0, 1, 0, 5) };
 * ```
 */
export interface ScheduleTiming {
  /** A cron pattern croner accepts: 5 fields, 6 with seconds first, or 7 with a year; or `@daily` etc. */
  cron?: string;
  /**
   * A fixed interval instead of `cron`: a duration (`"30s"`, `"5m"`, `"1h30m"`, `"1d"`) or a
   * number of milliseconds (at least 1000). Ticks are anchored at `startAt` (epoch 0 when not
   * given): tick n is at `startAt + n * every`, the same on every replica.
   */
  every?: string | number;
  /** IANA time zone the cron pattern is read in (cron only). @default UTC */
  timezone?: string;
  /** No tick before this time (inclusive); the first tick of an `every` schedule. */
  startAt?: Date | number | string;
  /** No tick at or after this time (exclusive). */
  stopAt?: Date | number | string;
  /** When false, a tick is skipped while the schedule's previous run has not ended. @default true */
  overlap?: boolean;
  /** What to do with ticks missed while no scheduler ran. @default "latest" */
  catchUp?: CatchUp;
  /** How late a tick may be handled and still count as on time (for `catchUp: "none"`). @default 60_000 */
  graceMs?: number;
  /** The queue each run goes to. @default the task's queue */
  queue?: string;
  /** The priority of each run (0–9). @default the task's priority */
  priority?: number;
}

/**
 * Options of `app.schedule(id, options)`.
 *
 * @example
 * ```ts
 * app.schedule("nightly", {
 *   cron: "0 2 * * *",
 *   timezone: "Europe/Berlin",
 *   task: cleanup,
 *   input: (tick) => ({ before: tick.toISOString() }),
 *   overlap: false,
 * });
 * app.schedule("heartbeat", { every: "30s", task: ping });
 * ```
 */
export interface ScheduleOptions<I = unknown> extends ScheduleTiming {
  /** The task to enqueue on each tick; it must be registered on the same app. */
  task: Task<I, unknown>;
  /** The input of each run, or a function of the tick time that returns it. @default undefined */
  input?: NoInfer<I> | ((tick: Date) => NoInfer<I>);
}

/**
 * A defined schedule, as `app.schedule()` and `app.schedules.add()` return it.
 *
 * @example
 * ```ts
 * const nightly = app.schedule("nightly", { cron: "0 2 * * *", task: cleanup });
 * console.log(nightly.nextRuns(3));
 * ```
 */
export interface Schedule {
  readonly id: string;
  /** "code": defined with `app.schedule()`; "stored": added with `app.schedules.add()`. */
  readonly source: "code" | "stored";
  /** The cron pattern, or null for an `every` schedule. */
  readonly cron: string | null;
  /** The interval in ms, or null for a cron schedule. */
  readonly every: number | null;
  /** The IANA time zone, or null for UTC. */
  readonly timezone: string | null;
  /** The task's name. */
  readonly task: string;
  readonly startAt: Date | null;
  readonly stopAt: Date | null;
  readonly overlap: boolean;
  readonly catchUp: CatchUp;
  readonly graceMs: number;
  /** The queue its runs go to. */
  readonly queue: string;
  /** A paused schedule fires nothing (stored schedules only). */
  readonly paused: boolean;
  /** The next `count` tick times strictly after `after` (default: now on the system clock). */
  nextRuns(count?: number, after?: Date | number): Date[];
}

/** What an entry enqueues with: the tick's run id and idempotency key. */
type TickEnqueue = (
  input: unknown,
  options: { id: string; idempotencyKey: string },
) => Promise<{ id: string }>;

/** A schedule with what the scheduler needs to run it. Internal. */
export interface ScheduleEntry extends Schedule {
  readonly timing: Timing;
  /** Ticks younger than this may run ("none": graceMs; "all": windowMs; "latest": Infinity). */
  readonly windowMs: number;
  /** How long a tick claim is kept in the store. */
  readonly claimTtlMs: number;
  /** Resolves the input of one tick. */
  input(tick: Date): unknown;
  /** Enqueues one tick's run (with the schedule's queue and priority). */
  enqueue: TickEnqueue;
}

/** The most ticks of one schedule a single `tick()` call runs (and lists as missed). */
export const MAX_TICKS_PER_CALL = 1_000;
/** The window of `catchUp: "all"`. */
export const DEFAULT_CATCH_UP_WINDOW_MS = 86_400_000;
const DAY_MS = 86_400_000;

/** What `defineSchedule` needs from its app. */
export interface ScheduleHost {
  readonly tasks: ReadonlyMap<string, ResolvedTask>;
}

function toDate(where: string, name: string, value: Date | number | string | undefined): Date | null {
  if (value === undefined) return null;
  const date = value instanceof Date ? new Date(value.getTime()) : new Date(value);
  if (!(typeof value === "string" || typeof value === "number" || value instanceof Date)) {
    throw new TypeError(`${where}: ${name} must be a Date, a number or an ISO string, got ${String(value)}`);
  }
  if (Number.isNaN(date.getTime())) {
    throw new RangeError(`${where}: ${name} must be a valid date, got ${String(value)}`);
  }
  return date;
}

function resolveCatchUp(where: string, value: unknown): { catchUp: CatchUp; windowMs: number | null } {
  if (value === undefined || value === "latest") return { catchUp: "latest", windowMs: Infinity };
  if (value === "none") return { catchUp: "none", windowMs: null };
  if (value === "all") return { catchUp: "all", windowMs: DEFAULT_CATCH_UP_WINDOW_MS };
  if (typeof value === "object" && value !== null) {
    const windowMs = (value as { windowMs?: unknown }).windowMs;
    if (typeof windowMs === "number" && windowMs > 0 && Number.isFinite(windowMs)) {
      return { catchUp: { windowMs }, windowMs };
    }
  }
  throw new TypeError(
    `${where}: catchUp must be "none", "latest", "all" or { windowMs: <positive number> }, got ${JSON.stringify(value)}`,
  );
}

/** Checks a schedule id: a non-empty string without braces or whitespace (it is part of store keys). */
export function checkScheduleId(id: unknown): string {
  if (typeof id !== "string" || id.length === 0 || /[{}\s]/.test(id)) {
    throw new TypeError(
      `schedule id must be a non-empty string without braces or spaces, got ${JSON.stringify(id)}`,
    );
  }
  return id;
}

/** What a schedule fires, besides its timing. */
export interface ScheduleTarget {
  source: "code" | "stored";
  task: ResolvedTask;
  input: (tick: Date) => unknown;
  /** Enqueues one run of the task (the entry adds the schedule's queue and priority). */
  enqueue: (input: unknown, options: EnqueueOptions) => Promise<{ id: string }>;
  paused: boolean;
}

/**
 * Validates the timing and options of a schedule (throwing TypeError or RangeError naming the
 * schedule, the option and the value) and builds its entry.
 */
export function scheduleEntry(id: string, options: ScheduleTiming, target: ScheduleTarget): ScheduleEntry {
  const where = `schedule "${id}"`;
  const timezone = options.timezone ?? null;
  if (timezone !== null && (typeof timezone !== "string" || timezone.length === 0)) {
    throw new TypeError(`${where}: timezone must be an IANA time zone name, got ${JSON.stringify(timezone)}`);
  }
  const startAt = toDate(where, "startAt", options.startAt);
  const stopAt = toDate(where, "stopAt", options.stopAt);
  if (startAt !== null && stopAt !== null && startAt.getTime() >= stopAt.getTime()) {
    throw new RangeError(
      `${where}: startAt must be before stopAt, got ${startAt.toISOString()} and ${stopAt.toISOString()}`,
    );
  }
  const overlap = options.overlap ?? true;
  if (typeof overlap !== "boolean") {
    throw new TypeError(`${where}: overlap must be a boolean, got ${JSON.stringify(overlap)}`);
  }
  const graceMs = options.graceMs ?? 60_000;
  if (typeof graceMs !== "number" || !(graceMs >= 0) || !Number.isFinite(graceMs)) {
    throw new RangeError(`${where}: graceMs must be a non-negative number, got ${String(graceMs)}`);
  }
  const { catchUp, windowMs } = resolveCatchUp(where, options.catchUp);
  const queue = options.queue === undefined ? target.task.queue : checkQueueName(options.queue, `${where}: `);
  const priority = options.priority;
  if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > 9)) {
    throw new RangeError(`${where}: priority must be an integer from 0 to 9, got ${String(priority)}`);
  }
  if ((options.cron === undefined) === (options.every === undefined)) {
    throw new TypeError(`${where}: give exactly one of cron and every`);
  }
  let timing: Timing;
  let every: number | null = null;
  if (options.every !== undefined) {
    if (timezone !== null) throw new TypeError(`${where}: timezone applies to cron schedules only`);
    every = parseEvery(options.every, where);
    timing = everyTiming(every, startAt, stopAt);
  } else {
    timing = cronTiming(where, options.cron, timezone, startAt, stopAt);
  }
  const overrides = {
    ...(options.queue === undefined ? {} : { queue }),
    ...(priority === undefined ? {} : { priority }),
  };
  const effectiveWindow = windowMs ?? graceMs;
  return {
    id,
    source: target.source,
    cron: every === null ? (options.cron as string) : null,
    every,
    timezone,
    task: target.task.name,
    startAt,
    stopAt,
    overlap,
    catchUp,
    graceMs,
    queue,
    paused: target.paused,
    timing,
    windowMs: effectiveWindow,
    claimTtlMs: (Number.isFinite(effectiveWindow) ? Math.max(effectiveWindow, graceMs) : graceMs) + DAY_MS,
    input: target.input,
    enqueue: (input, tick) => target.enqueue(input, { ...tick, ...overrides }),
    nextRuns(count = 1, after = Date.now()) {
      return nextTicks(timing, count, after instanceof Date ? after.getTime() : after);
    },
  };
}

/**
 * Validates a schedule defined in code and adds it to `registry`; throws naming the schedule.
 */
export function defineSchedule<I>(
  host: ScheduleHost,
  registry: Map<string, ScheduleEntry>,
  id: string,
  options: ScheduleOptions<I>,
): Schedule {
  checkScheduleId(id);
  const where = `schedule "${id}"`;
  if (registry.has(id)) throw new CeleriacError(`${where} is already defined on this app`);
  if (typeof options !== "object" || options === null)
    throw new TypeError(`${where}: options must be an object`);
  const { task } = options;
  if (typeof task !== "object" || task === null || typeof task.enqueue !== "function") {
    throw new TypeError(`${where}: task must be a task returned by app.task()`);
  }
  if (host.tasks.get(task.name) !== task.options) {
    throw new CeleriacError(`${where}: task "${task.name}" is not registered on this app`);
  }
  const input = options.input;
  const entry = scheduleEntry(id, options, {
    source: "code",
    task: task.options,
    input: typeof input === "function" ? (tick) => (input as (tick: Date) => unknown)(tick) : () => input,
    enqueue: task.enqueue as (input: unknown, options: EnqueueOptions) => Promise<{ id: string }>,
    paused: false,
  });
  registry.set(id, entry);
  return entry;
}

/** Which due ticks of one schedule to run now, which were missed, and how far that handles it. */
export interface TickPlan {
  /** Ticks to run, oldest first. */
  run: number[];
  /** Ticks skipped by the catch-up policy (at most {@link MAX_TICKS_PER_CALL} listed). */
  missed: number[];
  /** Every due tick up to here is handled once `run` is; null when nothing was due. */
  through: number | null;
}

/** The next tick strictly after `after`, or null. */
function nextTick(entry: ScheduleEntry, after: number): number | null {
  return entry.timing.next(after);
}

/**
 * Plans the ticks in (`from`, `now`]: `from` is the last handled tick (exclusive), or null for a
 * schedule nobody has ticked yet, whose history starts here: its latest due tick runs when it is
 * at most `graceMs` old, and nothing older counts as missed.
 */
export function planTicks(entry: ScheduleEntry, from: number | null, now: number): TickPlan {
  const latest = entry.timing.latest(now);
  if (latest === null || (from !== null && latest <= from)) return { run: [], missed: [], through: null };
  if (from === null)
    return { run: now - latest <= entry.graceMs ? [latest] : [], missed: [], through: latest };
  const run: number[] = [];
  let through = latest;
  if (entry.windowMs === Infinity) {
    run.push(latest);
  } else {
    // Every tick inside the window, oldest first: t > now - windowMs - 1 ms, so t >= now - windowMs.
    let t = nextTick(entry, Math.max(from, now - entry.windowMs - 1));
    while (t !== null && t <= now) {
      if (run.length === MAX_TICKS_PER_CALL) {
        through = run[run.length - 1]!;
        break;
      }
      run.push(t);
      t = nextTick(entry, t);
    }
  }
  const before = run[0] ?? latest + 1;
  const missed: number[] = [];
  for (let t = nextTick(entry, from); t !== null && t < before; t = nextTick(entry, t)) {
    if (missed.length === MAX_TICKS_PER_CALL) break;
    missed.push(t);
  }
  return { run, missed, through };
}
