/**
 * Internal: what `scheduler.list()` and `app.schedules.list()` report for each schedule — its
 * definition, next ticks, and from the store the last tick any scheduler handled and the last
 * run it enqueued.
 *
 * @module
 */
import type { RunState, Store } from "../contracts.ts";
import type { ScheduleInfo } from "../ops/types.ts";
import type { CatchUp, ScheduleEntry } from "./define.ts";
import type { InvalidSchedule, ScheduleView } from "./set.ts";
import { lastKey, parseLast, parseRun, runKey } from "./tick.ts";
import { parseEvery } from "./timing.ts";

/**
 * One schedule as `scheduler.list()` and `app.schedules.list()` report it.
 *
 * @example
 * ```ts
 * for (const s of await app.schedules.list()) console.log(s.id, s.source, s.nextRuns[0], s.lastTick);
 * ```
 */
export interface ScheduleStatus {
  id: string;
  /** "code" (`app.schedule`) or "stored" (`app.schedules.add`; it hides a code one with its id). */
  source: "code" | "stored";
  /** The cron pattern, or null for an `every` schedule. */
  cron: string | null;
  /** The interval in ms, or null for a cron schedule. */
  every: number | null;
  /** The IANA time zone, or null for UTC. */
  timezone: string | null;
  task: string;
  overlap: boolean;
  catchUp: CatchUp;
  /** True for a paused stored schedule: it fires nothing and has no next runs. */
  paused: boolean;
  /** The next tick times after now. */
  nextRuns: Date[];
  /** The last tick handled (enqueued or skipped) by any scheduler, or null. */
  lastTick: Date | null;
  /** The last run this schedule enqueued; `state` is null once its record has expired. */
  lastRun: { id: string; tick: Date; state: RunState | null } | null;
  /** True while a running scheduler (this one, or for `app.schedules.list()` one of this app's) fires it. */
  armed: boolean;
  /**
   * Why this process cannot run a stored schedule (a task it does not know, a definition it
   * cannot read), or null. Such a schedule is still run by processes that can.
   */
  error: string | null;
}

type Listed = Omit<ScheduleStatus, "lastTick" | "lastRun">;

function fromEntry(entry: ScheduleEntry, now: number, next: number, armed: boolean): Listed {
  const nextRuns = entry.paused || next === 0 ? [] : entry.nextRuns(next, now);
  return {
    id: entry.id,
    source: entry.source,
    cron: entry.cron,
    every: entry.every,
    timezone: entry.timezone,
    task: entry.task,
    overlap: entry.overlap,
    catchUp: entry.catchUp,
    paused: entry.paused,
    nextRuns,
    armed: armed && !entry.paused && entry.timing.next(now) !== null,
    error: null,
  };
}

function fromInvalid(invalid: InvalidSchedule): Listed {
  const d = invalid.definition;
  let every: number | null = null;
  try {
    every = d.every === undefined ? null : parseEvery(d.every, "");
  } catch {
    // unreadable: listed as null
  }
  const error = invalid.error;
  return {
    id: invalid.id,
    source: "stored",
    cron: typeof d.cron === "string" ? d.cron : null,
    every,
    timezone: typeof d.timezone === "string" ? d.timezone : null,
    task: typeof d.task === "string" ? d.task : "",
    overlap: d.overlap !== false,
    catchUp: "latest",
    paused: d.paused === true,
    nextRuns: [],
    armed: false,
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
  };
}

/** Lists a view's schedules (valid ones first, in definition order), with what the store knows of each. */
export async function scheduleStatuses(
  store: Store,
  view: ScheduleView,
  now: number,
  next: number,
  armed: boolean,
): Promise<ScheduleStatus[]> {
  if (!Number.isSafeInteger(next) || next < 0) {
    throw new RangeError(`next must be a non-negative integer, got ${String(next)}`);
  }
  const listed = [
    ...view.entries.map((e) => fromEntry(e, now, next, armed)),
    ...view.invalid.map(fromInvalid),
  ];
  return await Promise.all(
    listed.map(async (status): Promise<ScheduleStatus> => {
      const [lastText, runText] = await Promise.all([
        store.get(lastKey(status.id)),
        store.get(runKey(status.id)),
      ]);
      const last = parseLast(lastText);
      const run = parseRun(runText);
      const record = run === null ? null : await store.getRun(run.id, run.queue);
      return {
        ...status,
        lastTick: last === null ? null : new Date(last),
        lastRun: run === null ? null : { id: run.id, tick: new Date(run.tick), state: record?.state ?? null },
      };
    }),
  );
}

/** A listed schedule as `app.inspect().schedules()` reports it. */
export function scheduleInfo(status: ScheduleStatus): ScheduleInfo {
  return {
    id: status.id,
    source: status.source,
    task: status.task,
    cron: status.cron,
    everyMs: status.every,
    paused: status.paused,
    next: status.nextRuns[0]?.getTime() ?? null,
    last: status.lastTick?.getTime() ?? null,
  };
}
