/**
 * What an enqueue sends: each input checked and round-tripped through JSON (the executor sees
 * exactly that), validated by the task's schema, and turned into a message and a run record.
 * Nothing is sent here; the app hands the items to its ledger.
 *
 * @module
 */
import { LIMITS_META, limitsFor, type MessageLimits } from "./flow/limits.ts";
import type { RunRecord } from "./contracts.ts";
import { type Envelope, ENVELOPE_VERSION, toMessage } from "./envelope.ts";
import { SerializationError } from "./errors.ts";
import type { EnqueueItem } from "./execute/ledger.ts";
import { newRunId } from "./_ids.ts";
import { expiresAtOf } from "./expiry.ts";
import { toJson } from "./json.ts";
import { checkQueueName, idempotencyKey } from "./keys.ts";
import { initialState } from "./run-state.ts";
import { validate } from "./schema.ts";
import { checkKeys } from "./_options.ts";
import { ENQUEUE_KEYS, type EnqueueOptions, type ResolvedTask } from "./task.ts";
import { TRACE_META, type TraceCarrier } from "./telemetry.ts";

/** Internal enqueue options used by workflows and flow control. */
export interface EnqueueInternals {
  meta?: Record<string, unknown>;
  skipValidation?: boolean;
  /** The context a workflow step is enqueued under (the attempt that completed the step before). */
  trace?: TraceCarrier;
  /**
   * The inputs' schema outputs, validated already (flow control validates to compute its keys):
   * used instead of validating again. Set, it also marks the enqueue as past flow control.
   */
  validated?: readonly unknown[];
  /** Sends the items instead of `ledger.enqueue` (a debounced enqueue replaces a waiting run). */
  send?: (items: readonly EnqueueItem[]) => Promise<(string | null)[]>;
}

/**
 * The input as the executor will see it: after a JSON round trip (SerializationError, naming
 * `what`, when it is not JSON).
 */
export function jsonCopy(input: unknown, what: string): unknown {
  try {
    return JSON.parse(toJson(input, "input"));
  } catch (error) {
    throw new SerializationError(`${what}: ${(error as Error).message}`, { cause: error });
  }
}

/** When a run may start: `delayMs` or `at`, undefined for now (or a time already past). */
function notBeforeOf(options: EnqueueOptions, now: number): number | undefined {
  let notBefore: number | undefined;
  if (options.delayMs !== undefined) {
    if (!Number.isFinite(options.delayMs) || options.delayMs < 0) {
      throw new RangeError(`delayMs must be a non-negative number, got ${String(options.delayMs)}`);
    }
    notBefore = now + options.delayMs;
  }
  if (options.at !== undefined) {
    const at = options.at instanceof Date ? options.at.getTime() : options.at;
    if (!Number.isFinite(at)) throw new RangeError(`at must be a valid date, got ${String(options.at)}`);
    notBefore = at;
  }
  return notBefore !== undefined && notBefore <= now ? undefined : notBefore;
}

/**
 * Checks the options of an enqueue of `task` at `now` (throwing naming the option): its queue,
 * priority, start time (undefined: now) and expiry (undefined: never).
 */
export function checkEnqueueOptions(
  task: ResolvedTask,
  options: EnqueueOptions,
  now: number,
): { queue: string; priority: number; notBefore: number | undefined; expiresAt: number | undefined } {
  checkKeys(options, ENQUEUE_KEYS, "enqueue");
  const queue = options.queue === undefined ? task.queue : checkQueueName(options.queue, "enqueue: ");
  const priority = options.priority ?? task.priority;
  if (!Number.isInteger(priority) || priority < 0 || priority > 9) {
    throw new RangeError(`priority must be an integer from 0 to 9, got ${String(priority)}`);
  }
  const notBefore = notBeforeOf(options, now);
  return { queue, priority, notBefore, expiresAt: expiresAtOf(options, task.expiresInMs, now) };
}

/**
 * The ledger items for `inputs` of `task`, all on one queue; `trace` (a tracer's enqueue span)
 * gives the context their envelopes carry. Throws (and so sends nothing) on
 * the first bad option, input that is not JSON, input the schema rejects, or a bad idempotency key.
 */
export async function enqueueItems(
  task: ResolvedTask,
  inputs: readonly unknown[],
  options: EnqueueOptions,
  internal: EnqueueInternals,
  now: number,
  trace?: (ids: string[], notBefore: number | undefined) => TraceCarrier | undefined,
): Promise<{ queue: string; items: EnqueueItem[] }> {
  const { queue, priority, notBefore, expiresAt } = checkEnqueueOptions(task, options, now);
  const built: {
    envelope: Envelope;
    record: RunRecord;
    key: string | undefined;
    limits: MessageLimits | undefined;
  }[] = [];
  const what = `input of task "${task.name}"`;
  for (let index = 0; index < inputs.length; index++) {
    // Validate exactly what the executor will see: the input after a JSON round trip.
    const input2 = jsonCopy(inputs[index], what);
    // Workflow steps are validated when they run, so a bad hand-over fails that step.
    const valid =
      internal.validated !== undefined
        ? internal.validated[index]
        : task.schema === undefined || internal.skipValidation === true
          ? input2
          : await validate(task.schema, input2, what);
    const id = options.id ?? newRunId();
    const key = options.idempotencyKey ?? task.idempotencyKey?.(valid);
    if (key !== undefined && (typeof key !== "string" || key.length === 0)) {
      throw new TypeError(
        `idempotency key of task "${task.name}" must be a non-empty string, got ${JSON.stringify(key)}`,
      );
    }
    const envelope: Envelope = {
      v: ENVELOPE_VERSION,
      id,
      task: task.name,
      queue,
      priority,
      attempt: 1,
      enqueuedAt: now,
      input: input2,
    };
    const record: RunRecord = {
      id,
      task: task.name,
      queue,
      state: initialState(notBefore !== undefined),
      attempt: 0,
      maxAttempts: task.retry.maxAttempts,
      enqueuedAt: now,
      updatedAt: now,
    };
    if (notBefore !== undefined) envelope.notBefore = record.notBefore = notBefore;
    if (expiresAt !== undefined) envelope.expiresAt = record.expiresAt = expiresAt;
    if (internal.meta !== undefined) envelope.meta = internal.meta;
    if (key !== undefined) envelope.idempotencyKey = record.idempotencyKey = key;
    const limits = limitsFor(task.name, task.limits, valid);
    built.push({ envelope, record, key, limits });
  }
  // The tracer's context, once the ids are known, goes into every envelope before it is encoded.
  const carrier = trace?.(
    built.map((b) => b.envelope.id),
    notBefore,
  );
  if (carrier !== undefined) {
    const meta = { ...internal.meta, [TRACE_META]: carrier };
    for (const b of built) b.envelope.meta = meta;
  }
  const items: EnqueueItem[] = [];
  for (const { envelope, record, key, limits } of built) {
    if (limits !== undefined) envelope.meta = { ...envelope.meta, [LIMITS_META]: limits };
    const item: EnqueueItem = {
      message: toMessage(envelope),
      record,
      ttlMs: task.resultTtlMs + (notBefore === undefined ? 0 : notBefore - now),
    };
    if (key !== undefined) {
      item.idempotency = { key: idempotencyKey(queue, task.name, key), ttlMs: task.idempotencyTtlMs };
    }
    if (options.id === undefined) item.fresh = true;
    items.push(item);
  }
  return { queue, items };
}
