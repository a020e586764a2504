/**
 * Internal: the tick protocol of one schedule. Each due tick is claimed with
 * `setIfAbsent("sched:<id>:<tickMs>")` and enqueued with that key as its idempotency key, so a
 * lost claim race, an expired claim or a retried call cannot double a run. The resume point
 * (`sched:<id>:last`) and the last run (`sched:<id>:run`) are plain sets: a lost race on them
 * moves them back a little, and the claims make going over a tick again harmless.
 *
 * @module
 */
import type { Store } from "../contracts.ts";
import { scheduleLastKey, scheduleRunKey, scheduleTickKey } from "../keys.ts";
import { FINAL_STATES } from "../run-state.ts";
import { planTicks, type ScheduleEntry } from "./define.ts";

/** A tick that was enqueued. */
export interface EnqueuedTick {
  schedule: string;
  tick: Date;
  runId: string;
}

/**
 * A tick that was not enqueued by this call: `missed` (the catch-up policy skipped it),
 * `overlap` (the previous run had not ended and the schedule has `overlap: false`), `claimed`
 * (another scheduler or an earlier call has it) or `duplicate` (its run already existed).
 */
export interface SkippedTick {
  schedule: string;
  tick: Date;
  reason: "missed" | "overlap" | "claimed" | "duplicate";
  /** For `overlap`: the run still going; for `duplicate`: the run that holds the tick. */
  runId?: string;
}

/** A schedule that could not be ticked; its remaining ticks are tried again on the next call. */
export interface TickError {
  schedule: string;
  /** The tick that failed, or null when the schedule's state could not be read. */
  tick: Date | null;
  error: unknown;
}

/**
 * What one `tick()` did.
 *
 * @example
 * ```ts
 * const { enqueued, skipped, errors } = await app.scheduler().tick();
 * ```
 */
export interface TickResult {
  /** The time ticks were computed for. */
  now: Date;
  enqueued: EnqueuedTick[];
  skipped: SkippedTick[];
  errors: TickError[];
}

/** The last run a schedule enqueued, as kept at `sched:<id>:run`. */
export interface RunPointer {
  id: string;
  tick: number;
  queue: string;
}

/** Store key of a schedule's resume point: the last tick handled, in epoch ms. */
export const lastKey: (id: string) => string = scheduleLastKey;
/** Store key of a schedule's last run ({@link RunPointer} as JSON). */
export const runKey: (id: string) => string = scheduleRunKey;

/** Reads a resume point; anything unreadable counts as none. */
export function parseLast(text: string | null): number | null {
  if (text === null) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** Reads a run pointer; anything unreadable counts as none. */
export function parseRun(text: string | null): RunPointer | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<RunPointer> | null;
    if (typeof value?.id === "string" && typeof value.tick === "number" && typeof value.queue === "string") {
      return { id: value.id, tick: value.tick, queue: value.queue };
    }
  } catch {
    // A corrupt pointer counts as none.
  }
  return null;
}

/**
 * Ticks one schedule up to `now`: plans the due ticks, claims each in the store, checks overlap,
 * enqueues with the claim as idempotency key, then advances the schedule's resume point. Failures
 * of one tick stop this schedule for this call (its claim is freed) and land in `out.errors`.
 */
export async function tickSchedule(
  store: Store,
  entry: ScheduleEntry,
  now: number,
  out: TickResult,
): Promise<void> {
  const stored = parseLast(await store.get(lastKey(entry.id)));
  const plan = planTicks(entry, stored, now);
  if (plan.through === null) return;
  for (const t of plan.missed) out.skipped.push({ schedule: entry.id, tick: new Date(t), reason: "missed" });
  let handled: number | null = plan.through;
  let previous: RunPointer | null | undefined; // read lazily: only overlap:false needs it
  let lastGood = plan.missed.length > 0 ? plan.missed[plan.missed.length - 1]! : null;
  for (const t of plan.run) {
    const tick = new Date(t);
    const key = scheduleTickKey(entry.id, t);
    const runId = crypto.randomUUID();
    try {
      const holder = await store.setIfAbsent(key, runId, entry.claimTtlMs);
      if (holder !== null) {
        out.skipped.push({ schedule: entry.id, tick, reason: "claimed" });
        lastGood = t;
        continue;
      }
      let id: string;
      try {
        if (!entry.overlap) {
          if (previous === undefined) previous = parseRun(await store.get(runKey(entry.id)));
          const record = previous === null ? null : await store.getRun(previous.id, previous.queue);
          if (record !== null && !FINAL_STATES.has(record.state)) {
            // The claim stays: every scheduler agrees this tick was skipped.
            out.skipped.push({ schedule: entry.id, tick, reason: "overlap", runId: record.id });
            lastGood = t;
            continue;
          }
        }
        id = (await entry.enqueue(entry.input(tick), { id: runId, idempotencyKey: key })).id;
      } catch (error) {
        // Nothing was enqueued: free the tick so the next call tries it again.
        await store.compareAndDelete(key, runId).catch(() => false);
        throw error;
      }
      previous = { id, tick: t, queue: entry.queue };
      if (id === runId) {
        await store.set(runKey(entry.id), JSON.stringify(previous));
        out.enqueued.push({ schedule: entry.id, tick, runId });
      } else {
        out.skipped.push({ schedule: entry.id, tick, reason: "duplicate", runId: id });
      }
      lastGood = t;
    } catch (error) {
      out.errors.push({ schedule: entry.id, tick, error });
      handled = lastGood;
      break;
    }
  }
  if (handled === null) return;
  // Advance the resume point, never move it back (a plain set: the claims make a lost race harmless).
  const current = parseLast(await store.get(lastKey(entry.id)));
  if (current === null || current < handled) await store.set(lastKey(entry.id), String(handled));
}
