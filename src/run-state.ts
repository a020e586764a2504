/**
 * The rules of a run's life, in one place: its states, which of them may start, which are
 * final, and the record patches of every transition (start, succeed, retry, fail, cancel, expire).
 * The executor builds its writes here; backends that fuse steps (the memory backend's start on
 * lease, the Redis scripts, whose state lists are interpolated from these sets) take their rules
 * from here too, so `grep` for a state name lands in this module.
 *
 * Records store each field as JSON; the state sets below are what every backend compares with.
 *
 * @example
 * ```ts
 * import { isStartable, successPatch } from "celeriac/backend";
 * isStartable("retrying"); // true
 * successPatch({ at: 1_700_000_000_000, result: 42 });
 * // { state: "succeeded", finishedAt: 1700000000000, updatedAt: 1700000000000, result: 42 }
 * ```
 *
 * @module
 */
import type { AttemptError, ErrorInfo, RunGuard, RunRecord, RunState } from "./contracts.ts";

export type { RunState } from "./contracts.ts";

/** Every state, in the order a run usually passes through them. */
export const RUN_STATES: readonly RunState[] = [
  "queued",
  "scheduled",
  "active",
  "retrying",
  "succeeded",
  "failed",
  "cancelled",
  "expired",
];

/**
 * States a run never leaves. `expired`: its expiry (`expiresAt`) passed before an attempt started,
 * so nothing ran (see {@link expiredPatch}).
 */
export const FINAL_STATES: ReadonlySet<RunState> = new Set<RunState>([
  "succeeded",
  "failed",
  "cancelled",
  "expired",
]);

/**
 * States a delivered run may start from. `active` is among them: a delivery whose earlier holder
 * lost its lease (a worker that died) starts the run again.
 */
export const STARTABLE_STATES: readonly RunState[] = ["queued", "scheduled", "retrying", "active"];

/**
 * The guard of a start that may also create the record: a record that is missing (expired, or
 * never written by a producer that only sent a message) is created from the delivery.
 */
export const START_GUARD: RunGuard = [...STARTABLE_STATES, "missing"];

/**
 * The guard of a push delivery's start (it has no lease): an active run is another copy's, until
 * its timeout says that copy's process died (see `pushStart` in `idempotency.ts`).
 */
export const PUSH_START_GUARD: RunGuard = START_GUARD.filter((s) => s !== "active");

/** A run that has not ended (a missing record included): an attempt's outcome may be recorded. */
export const UNFINISHED: RunGuard = ["queued", "scheduled", "active", "retrying", "missing"];

/** States of a run that waits for its turn: a deferred one that has not started stays one of them. */
export const WAITING_GUARD: RunGuard = ["queued", "scheduled", "retrying"];

/**
 * A run that has not started (or has no record yet): a debounced enqueue may replace its input
 * (see `Ledger.replace`, which also checks that its message is not leased).
 */
export const UNSTARTED_GUARD: RunGuard = ["queued", "scheduled", "missing"];

/** Progress is recorded, and a workflow node closed, only while the run is active. */
export const ACTIVE_GUARD: RunGuard = ["active"];

/**
 * States a run may be cancelled from: it has not ended. A running one is cancelled too: its
 * worker's next lease renewal aborts `ctx.signal`, and its outcome is not recorded.
 */
export const CANCELLABLE_STATES: RunGuard = ["queued", "scheduled", "retrying", "active"];

const startable: ReadonlySet<string> = new Set(STARTABLE_STATES);

/** True when a run in `state` may start. */
export function isStartable(state: string): boolean {
  return startable.has(state);
}

/** True when `state` is final. */
export function isFinal(state: string): state is RunState {
  return FINAL_STATES.has(state as RunState);
}

/**
 * What starting a delivered run did, as a broker that starts runs as it leases them reports it
 * (`Delivery.started`): applied, or the state that kept it from starting.
 */
export type StartResult = { readonly applied: true } | { readonly applied: false; readonly state: RunState };

/** The start result of a run that started (one shared object: brokers hand it to every delivery). */
export const STARTED: StartResult = Object.freeze({ applied: true });

/** The start result of a run kept from starting by its `state`. */
export function notStarted(state: RunState): StartResult {
  return { applied: false, state };
}

/** The first state of a run: queued, or scheduled when it may not start before a later time. */
export function initialState(delayed: boolean): RunState {
  return delayed ? "scheduled" : "queued";
}

/**
 * A state as backends that store each field as JSON keep it (the Redis scripts compare and write
 * these texts; their lists are interpolated from here).
 */
export function storedState(state: RunState): string {
  return JSON.stringify(state);
}

/** A run's identity fields: enough to create its record when a start finds it missing. */
export type RunFields = Omit<RunRecord, "state" | "updatedAt">;

/**
 * The identity fields an envelope carries, enough to create the run's record when a start finds
 * it missing; with `withKey`, its idempotency key too.
 */
export function runFields(
  envelope: Pick<RunRecord, "id" | "task" | "queue" | "attempt" | "enqueuedAt" | "idempotencyKey">,
  maxAttempts: number,
  withKey: boolean,
): RunFields {
  const fields: RunFields = {
    id: envelope.id,
    task: envelope.task,
    queue: envelope.queue,
    attempt: envelope.attempt,
    maxAttempts,
    enqueuedAt: envelope.enqueuedAt,
  };
  if (withKey && envelope.idempotencyKey !== undefined) fields.idempotencyKey = envelope.idempotencyKey;
  return fields;
}

/** The start: active as of `at`, with the fields that create the record when it is missing. */
export function startPatch(fields: RunFields, at: number): Partial<RunRecord> {
  return { ...fields, state: "active", startedAt: at, updatedAt: at };
}

/**
 * A success, the one transition every run takes on the hot path: its time and result. A ledger
 * records it as the patch {@link successPatch} builds, or (Redis) through a dedicated short op.
 */
export interface Success {
  /** When the run finished. */
  at: number;
  /** The result (absent: the task keeps no result). */
  result?: unknown;
  /** `result` as JSON, when the caller has it already (saves an encode). */
  resultJson?: string;
}

/** The record patch of a success. */
export function successPatch(success: Success): Partial<RunRecord> {
  const { at } = success;
  return success.result === undefined
    ? { state: "succeeded", finishedAt: at, updatedAt: at }
    : { state: "succeeded", finishedAt: at, updatedAt: at, result: success.result };
}

/** A run found to duplicate a finished one: succeeded with that run's result, without running. */
export function duplicatePatch(fields: RunFields, at: number, result: unknown): Partial<RunRecord> {
  return { ...fields, state: "succeeded", result, finishedAt: at, updatedAt: at };
}

/** A failed attempt that will be retried at `notBefore`, with the attempts' errors so far. */
export function retryPatch(at: number, notBefore: number, errors: AttemptError[]): Partial<RunRecord> {
  return { state: "retrying", notBefore, updatedAt: at, errors };
}

/** The final failure of a run. */
export function failurePatch(at: number, error: ErrorInfo, errors: AttemptError[]): Partial<RunRecord> {
  return { state: "failed", finishedAt: at, updatedAt: at, error, errors };
}

/** A delivery that cannot run at all (its task is unknown): the run, created if missing, failed. */
export function rejectedPatch(fields: RunFields, at: number, error: ErrorInfo): Partial<RunRecord> {
  return { ...fields, maxAttempts: fields.attempt, state: "failed", finishedAt: at, updatedAt: at, error };
}

/**
 * A run whose expiry passed before this attempt started: it ends `expired` without running, with
 * the fields that create the record when it is missing. Guard it as a start is guarded (a run that
 * has ended, or is another copy's, is left alone).
 */
export function expiredPatch(
  fields: RunFields,
  at: number,
  expiresAt: number,
  error: ErrorInfo,
): Partial<RunRecord> {
  return { ...fields, state: "expired", expiresAt, finishedAt: at, updatedAt: at, error };
}

/** A cancellation (guard it with {@link CANCELLABLE_STATES}). */
export function cancelPatch(at: number): Partial<RunRecord> {
  return { state: "cancelled", finishedAt: at, updatedAt: at };
}

/**
 * A run whose delivery of `attempt` is sent back to wait until `notBefore` without using the
 * attempt (a circuit breaker was open): scheduled, or retrying when an earlier attempt failed,
 * with the last attempt that ran — as it would be had it not been delivered yet.
 */
export function deferPatch(at: number, notBefore: number, attempt: number): Partial<RunRecord> {
  return { state: attempt > 1 ? "retrying" : "scheduled", attempt: attempt - 1, notBefore, updatedAt: at };
}
