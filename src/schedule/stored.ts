/**
 * Internal: stored schedules, as `app.schedules` keeps them — plain JSON naming a task, so any
 * process (another replica, the CLI, an admin route) can add, change and remove them. A stored
 * definition is checked in full when it is written (the task exists, the timing parses, the input
 * passes the task's schema) and again, without the schema, by each process that reads it.
 *
 * @module
 */
import { UnknownTaskError } from "../errors.ts";
import { jsonCopy } from "../enqueue.ts";
import { checkKeys, keysOf } from "../_options.ts";
import { validate } from "../schema.ts";
import type { EnqueueOptions, ResolvedTask, Run } from "../task.ts";
import { type CatchUp, type ScheduleEntry, type ScheduleHost, scheduleEntry } from "./define.ts";

/**
 * A stored schedule: plain JSON. Give exactly one of `cron` and `every`.
 *
 * @example
 * ```ts
 * const nightly: StoredSchedule = { task: "reports.build", input: { kind: "daily" }, cron: "0 2 * * *", timezone: "Europe/Berlin" };
 * const heartbeat: StoredSchedule = { task: "ping", every: "30s" };
 * ```
 */
export interface StoredSchedule {
  /** The name of the task to enqueue on each tick (registered on the apps that run schedulers). */
  task: string;
  /** The input of each run (JSON), checked against the task's schema when written. @default undefined */
  input?: unknown;
  /** A cron pattern croner accepts. */
  cron?: string;
  /** A fixed interval instead of `cron`: `"30s"`, `"5m"`, `"1h30m"`, or milliseconds (at least 1000). */
  every?: string | number;
  /** IANA time zone of the cron pattern. @default UTC */
  timezone?: string;
  /** No tick before this time (epoch ms or ISO string); the anchor of `every`. @default 0 */
  startAt?: number | string;
  /** No tick at or after this time (epoch ms or ISO string). */
  stopAt?: number | string;
  /** The queue each run goes to. @default the task's queue */
  queue?: string;
  /** The priority of each run (0–9). @default the task's priority */
  priority?: number;
  /** When false, a tick is skipped while the previous run has not ended. @default true */
  overlap?: boolean;
  /** What to do with ticks missed while no scheduler ran. @default "latest" */
  catchUp?: CatchUp;
  /** How late a tick may be handled and still count as on time. @default 60_000 */
  graceMs?: number;
  /** A paused schedule fires nothing; ticks that come due while paused never run. @default false */
  paused?: boolean;
}

/**
 * A change to a stored schedule: each key given replaces that field, `null` removes it. Setting
 * `every` drops `cron` (and `timezone`, unless the patch sets it), setting `cron` drops `every`.
 *
 * @example
 * ```ts
 * const patch: StoredSchedulePatch = { every: "5m", input: { kind: "fast" } };
 * ```
 */
export type StoredSchedulePatch = { [K in keyof StoredSchedule]?: StoredSchedule[K] | null };

const STORED_KEYS = keysOf<StoredSchedule>({
  task: true,
  input: true,
  cron: true,
  every: true,
  timezone: true,
  startAt: true,
  stopAt: true,
  queue: true,
  priority: true,
  overlap: true,
  catchUp: true,
  graceMs: true,
  paused: true,
});

/** What stored schedules need from their app: its tasks and a way to enqueue one by name. */
export interface StoredHost extends ScheduleHost {
  enqueue(name: string, input: unknown, options?: EnqueueOptions): Promise<Run<unknown>>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function taskOf(host: StoredHost, id: string, definition: unknown): ResolvedTask {
  const where = `schedule "${id}"`;
  if (!isRecord(definition)) {
    throw new TypeError(`${where}: a stored schedule must be an object, got ${JSON.stringify(definition)}`);
  }
  checkKeys(definition, STORED_KEYS, where);
  const name = definition.task;
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(`${where}: task must be the name of a registered task, got ${JSON.stringify(name)}`);
  }
  const task = host.tasks.get(name);
  if (task === undefined) throw new UnknownTaskError(name);
  return task;
}

/**
 * The entry of a stored definition (already JSON); throws UnknownTaskError for a task this app
 * does not know, TypeError or RangeError for a bad option. The input is not validated here: each
 * tick's enqueue does that.
 */
export function storedEntry(host: StoredHost, id: string, definition: unknown): ScheduleEntry {
  const task = taskOf(host, id, definition);
  const def = definition as StoredSchedule;
  const paused = def.paused ?? false;
  if (typeof paused !== "boolean") {
    throw new TypeError(`schedule "${id}": paused must be a boolean, got ${JSON.stringify(paused)}`);
  }
  const input = def.input;
  const { task: _task, input: _input, paused: _paused, ...timing } = def;
  return scheduleEntry(id, timing, {
    source: "stored",
    task,
    input: () => input,
    enqueue: (value, options) => host.enqueue(task.name, value, options),
    paused,
  });
}

/**
 * Checks a definition before it is written, as `app.schedules.add` does: the options, the task,
 * the timing, and the input after a JSON round trip against the task's schema (ValidationError).
 * Resolves to the JSON text to store and the entry it makes.
 */
export async function checkStored(
  host: StoredHost,
  id: string,
  definition: unknown,
): Promise<{ json: string; entry: ScheduleEntry }> {
  const task = taskOf(host, id, definition);
  const def = jsonCopy(definition, `schedule "${id}"`) as StoredSchedule;
  const entry = storedEntry(host, id, def);
  if (task.schema !== undefined) await validate(task.schema, def.input, `input of schedule "${id}"`);
  return { json: JSON.stringify(def), entry };
}

/** Applies a patch to a stored definition (see {@link StoredSchedulePatch}). */
export function applyPatch(current: StoredSchedule, patch: StoredSchedulePatch, id: string): StoredSchedule {
  if (!isRecord(patch)) throw new TypeError(`schedule "${id}": a patch must be an object`);
  checkKeys(patch, STORED_KEYS, `schedule "${id}"`);
  const next: Record<string, unknown> = { ...current };
  if (patch.every != null && patch.cron === undefined) {
    delete next.cron;
    if (patch.timezone === undefined) delete next.timezone;
  }
  if (patch.cron != null && patch.every === undefined) delete next.every;
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete next[key];
    else if (value !== undefined) next[key] = value;
  }
  return next as unknown as StoredSchedule;
}

/** Parses stored JSON text; a corrupt one is a TypeError naming the schedule. */
export function parseStored(id: string, json: string): unknown {
  try {
    return JSON.parse(json);
  } catch (cause) {
    throw new TypeError(`schedule "${id}": the stored definition is not JSON`, { cause });
  }
}
