/**
 * Expiry, in one place (Celery's `expires`): when a run expires, and what the executor does with
 * a delivery whose run has expired.
 *
 * - **When**: `enqueue(input, { expiresAt })` (a time) or `{ expiresInMs }` (from the enqueue),
 *   else the task's `expiresInMs`, else never. The time travels in the envelope (`expiresAt`) and
 *   on the record, and holds for the run: every attempt, retries and redeliveries included.
 * - **What**: a delivery picked up at or after its run's `expiresAt` (by the app's clock) is not
 *   run. Its run ends in the final state `expired` (error `ExpiredError`), the message is acked
 *   (never redelivered), an `expired` event is emitted and the outcome is counted. It is not
 *   dead-lettered unless the task says `deadLetterExpired: true`. A workflow step that expired
 *   fails its workflow as a failed step does.
 *
 * A broker that starts runs as it leases them (memory, Redis) may already have marked the run
 * active when the executor sees the delivery: the expiry is then recorded over that start (the
 * record's `startedAt` is the lease's time), and nothing runs.
 *
 * @module
 */
import type { Clock, DeadLetter, Delivery, ErrorInfo, Outcome, Store } from "./contracts.ts";
import type { Envelope } from "./envelope.ts";
import { ExpiredError } from "./errors.ts";
import type { Emitter } from "./events.ts";
import type { Ledger } from "./execute/ledger.ts";
import { pushStart } from "./idempotency.ts";
import type { StatsCollector } from "./ops/stats.ts";
import { expiredPatch, runFields, START_GUARD } from "./run-state.ts";
import type { ResolvedTask } from "./task.ts";
import { carrierOf, type TraceCarrier } from "./telemetry.ts";
import type { Continuation } from "./workflow/workflow.ts";

/** The expiry options of `enqueue`. */
export interface ExpiryOptions {
  expiresAt?: Date | number | undefined;
  expiresInMs?: number | undefined;
}

/** Checks a duration of expiry (`expiresInMs` of a task or an enqueue): a positive finite number. */
export function checkExpiresInMs(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${where}expiresInMs must be a positive number of ms, got ${String(value)}`);
  }
  return value;
}

/**
 * When a run enqueued at `now` expires (epoch ms), or undefined for never: the enqueue's
 * `expiresAt` or `expiresInMs` (not both: `TypeError`), else the task's default. A time already
 * past is accepted: the run expires when it is picked up.
 */
export function expiresAtOf(
  options: ExpiryOptions,
  taskExpiresInMs: number | undefined,
  now: number,
): number | undefined {
  const { expiresAt, expiresInMs } = options;
  if (expiresAt !== undefined && expiresInMs !== undefined) {
    throw new TypeError("enqueue: give expiresAt or expiresInMs, not both");
  }
  if (expiresInMs !== undefined) return now + checkExpiresInMs(expiresInMs, "enqueue: ");
  if (expiresAt !== undefined) {
    const at = expiresAt instanceof Date ? expiresAt.getTime() : expiresAt;
    if (typeof at !== "number" || !Number.isFinite(at)) {
      throw new RangeError(
        `enqueue: expiresAt must be a valid Date or epoch ms, got ${String(expiresAt as unknown)}`,
      );
    }
    return at;
  }
  return taskExpiresInMs === undefined ? undefined : now + taskExpiresInMs;
}

/** True when the run an envelope carries has expired by `clock` (read only when it can expire). */
export function isExpired(envelope: Envelope, clock: Clock): envelope is Envelope & { expiresAt: number } {
  return envelope.expiresAt !== undefined && clock.now() >= envelope.expiresAt;
}

/** What ending an expired run needs (the executor's dependencies have it all). */
export interface ExpireDeps {
  readonly ledger: Ledger;
  readonly store: Store;
  readonly clock: Clock;
  readonly events: Emitter;
  readonly stats?: StatsCollector | undefined;
  readonly workflow?:
    | {
        failed(cont: Continuation, error: ErrorInfo, where: string, trace?: TraceCarrier): Promise<void>;
      }
    | undefined;
  settled(id: string): void;
}

/**
 * Ends the run of a delivery whose expiry has passed, without running it: records `expired`
 * (guarded as a start is, so a run that has ended, or that another copy of a push delivery runs,
 * is left alone), acks the message (dead-letters it with `deadLetterExpired`), then counts it,
 * fails its workflow step and emits `expired`.
 */
export async function expire(
  deps: ExpireDeps,
  delivery: Delivery,
  envelope: Envelope & { expiresAt: number },
  task: ResolvedTask,
): Promise<Outcome> {
  const { ledger, clock, events } = deps;
  const { id, expiresAt } = envelope;
  // The broker found the run ended (or cancelled) as it leased it: a stale delivery.
  if (delivery.started !== undefined && !delivery.started.applied) {
    await ledger.skip(delivery);
    return { kind: "duplicate", id, state: delivery.started.state };
  }
  const now = clock.now();
  const expired = new ExpiredError(id, expiresAt);
  const error: ErrorInfo = { name: expired.name, message: expired.message };
  const fields = runFields(envelope, task.retry.maxAttempts, true);
  const patch = expiredPatch(fields, now, expiresAt, error);
  // A push delivery has no lease: an active record is another copy's until its timeout says
  // that copy died (as for a start); a pull delivery's lease is its own.
  const done =
    delivery.leaseMs === undefined
      ? await pushStart(deps, delivery, envelope, patch, {
          fields,
          resultTtlMs: task.resultTtlMs,
          timeoutMs: task.timeoutMs,
        })
      : await ledger.start(delivery, id, patch, { ttlMs: task.resultTtlMs, onlyIf: START_GUARD });
  if ("kind" in done) return done;
  if (!done.applied) {
    await ledger.skip(delivery);
    return { kind: "duplicate", id, state: done.record?.state ?? "missing" };
  }
  let entry: DeadLetter | undefined;
  if (task.deadLetterExpired) {
    entry = {
      id,
      task: task.name,
      queue: envelope.queue,
      reason: `expired before it started: ${error.name}: ${error.message}`,
      error,
      errors: envelope.errors ?? [],
      body: delivery.body,
      at: now,
    };
    await ledger.fail(delivery, entry);
  } else {
    await ledger.skip(delivery);
  }
  deps.settled(id);
  deps.stats?.ended(task.name, envelope.queue, now, "expired");
  const cont = envelope.meta?.cont as Continuation | undefined;
  if (cont !== undefined && deps.workflow !== undefined) {
    try {
      await deps.workflow.failed(cont, error, envelope.task, carrierOf(envelope.meta));
    } catch (failure) {
      events.emit("error", { error: failure, where: `workflow of run ${id}` });
    }
  }
  events.emit("expired", { id, task: task.name, attempt: envelope.attempt, expiresAt });
  if (entry !== undefined) events.emit("deadLettered", entry);
  return { kind: "expired", id, expiresAt };
}
