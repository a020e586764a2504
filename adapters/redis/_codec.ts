/**
 * Codecs of the Redis backend: run records as hashes (one JSON value per field; fields starting
 * with a dot belong to the run's message), dead letters as JSON, and the replies of the queue
 * script's ops.
 *
 * @module
 */
import {
  BackendError,
  type DeadLetter,
  type Delivery,
  notStarted,
  type RunRecord,
  type RunState,
  STARTED,
} from "../../backend.ts";
import { int, list, text } from "./_client.ts";

/** Milliseconds as the integer string Redis wants (at least 1). */
export function ms(value: number): string {
  return String(Math.max(1, Math.ceil(value)));
}

/** A run record patch as hash fields: name, JSON value, … (undefined values are skipped). */
export function encodeFields(patch: Partial<RunRecord>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    // A finite number is its own JSON text (the common case: times, counts).
    out.push(
      name,
      typeof value === "number" && Number.isFinite(value) ? String(value) : JSON.stringify(value),
    );
  }
  return out;
}

/**
 * A run record from `~field, ~json, …`; null when it has no fields. Fields starting with a dot
 * belong to the run's message (same hash) and are not part of the record.
 */
export function decodeRecord(flat: readonly unknown[], from = 0): RunRecord | null {
  const record: Record<string, unknown> = {};
  let fields = 0;
  for (let i = from; i + 1 < flat.length; i += 2) {
    const name = text(flat[i], "a run record field");
    if (name.startsWith(".")) continue;
    fields++;
    const raw = text(flat[i + 1], "a run record value");
    try {
      record[name] = JSON.parse(raw) as unknown;
    } catch (cause) {
      throw new BackendError(`run record field ${name} is not JSON`, { cause });
    }
  }
  return fields === 0 ? null : (record as unknown as RunRecord);
}

/** A stored dead letter. */
export function decodeDeadLetter(json: string): DeadLetter {
  try {
    return JSON.parse(json) as DeadLetter;
  } catch (cause) {
    throw new BackendError("a stored dead letter is not JSON", { cause });
  }
}

/** The answer of an update op, merged into the record after the update. */
export function updateResult(
  reply: unknown,
  patch: Partial<RunRecord>,
  replace: boolean,
): { applied: boolean; record: RunRecord | null } {
  const flat = list(reply, "update");
  const applied = int(flat[0], "update") === 1;
  const before = decodeRecord(flat, 1);
  if (!applied) return { applied, record: before };
  const fresh = JSON.parse(JSON.stringify(patch)) as Partial<RunRecord>;
  const record = (before === null || replace ? fresh : { ...before, ...fresh }) as RunRecord;
  return { applied, record };
}

/** Deliveries and the time until something comes due, from a receive op. */
export function receiveResult(
  reply: unknown,
  queue: string,
  leaseMs: number,
): { deliveries: Delivery[]; dueInMs: number } {
  const flat = list(reply, "receive");
  const due = int(flat[0], "receive");
  const deliveries: Delivery[] = [];
  for (let i = 1; i + 5 < flat.length; i += 6) {
    const delivery: Delivery = {
      id: text(flat[i], "delivery id"),
      queue,
      body: text(flat[i + 1], "delivery body"),
      receipt: text(flat[i + 2], "delivery receipt"),
      deliveries: int(flat[i + 3], "delivery count"),
      leaseMs,
    };
    const started = flat[i + 4];
    if (started === 1) delivery.started = STARTED;
    else if (typeof started === "string") delivery.started = notStarted(stateOf(started));
    if (flat[i + 5] === 1) delivery.watched = true;
    deliveries.push(delivery);
  }
  return { deliveries, dueInMs: due < 0 ? Number.POSITIVE_INFINITY : due };
}

/** Dead letters with their insertion time, from a dead-list op. */
export function deadListResult(reply: unknown): { at: number; entry: DeadLetter }[] {
  const flat = list(reply, "dead letters");
  const out: { at: number; entry: DeadLetter }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    out.push({ at: int(flat[i], "dead letter time"), entry: decodeDeadLetter(text(flat[i + 1])) });
  }
  return out;
}

/** A state as the receive op reports it (`~` and the stored JSON). */
function stateOf(reply: unknown): RunState {
  const raw = text(reply, "run state");
  try {
    return JSON.parse(raw) as RunState;
  } catch (cause) {
    throw new BackendError(`run state ${raw} is not JSON`, { cause });
  }
}
