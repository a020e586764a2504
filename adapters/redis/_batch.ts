/**
 * Builds one call of the queue script: the queue's keys, extra keys by index, and a flat list of
 * operations. Also the codecs of run records (a hash, one JSON value per field) and dead letters.
 *
 * @module
 */
import type { DeadLetter, Delivery, Message, RunGuard, RunRecord } from "../../src/contracts.ts";
import { BackendError } from "../../src/errors.ts";
import { int, list, maybeText, text } from "./_client.ts";
import { OP } from "./_scripts.ts";

/** The hash tag every key of a queue shares. */
export function queueTag(prefix: string, queue: string): string {
  return `{${prefix}:${queue}}`;
}

/** The six fixed keys of a queue, in the order the script expects. */
export function queueKeys(prefix: string, queue: string): string[] {
  const tag = queueTag(prefix, queue);
  return ["r", "t", "c", "w", "x", "xi"].map((suffix) => `${tag}:${suffix}`);
}

/** The key of a run record. */
export function runKey(prefix: string, queue: string, id: string): string {
  return `${queueTag(prefix, queue)}:run:${id}`;
}

/** The key of an idempotency claim taken at enqueue. */
export function idemKey(prefix: string, queue: string, key: string): string {
  return `${queueTag(prefix, queue)}:idem:${key}`;
}

/** The wake-up marker of a queue (blocking waiters pop it). */
export function wakeKey(prefix: string, queue: string): string {
  return `${queueTag(prefix, queue)}:w`;
}

/** Milliseconds as the integer string Redis wants (at least 1). */
export function ms(value: number): string {
  return String(Math.max(1, Math.ceil(value)));
}

/** A run record patch as hash fields: name, JSON value, … (undefined values are skipped). */
export function encodeFields(patch: Partial<RunRecord>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    out.push(name, JSON.stringify(value));
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

function priorityOf(message: Message): string {
  const p = message.priority;
  return String(Number.isInteger(p) && p >= 0 && p <= 9 ? p : 0);
}

const FIXED_KEYS = new Map<string, readonly string[]>();

/**
 * One call of the queue script, built op by op; `run` hands it to the transport. Calls on the
 * same queue merge with `absorb` (extra keys are referenced by position, renumbered on merge).
 */
export class QueueCall {
  readonly prefix: string;
  readonly queue: string;
  readonly #fixed: readonly string[];
  /** Keys after the six queue keys (run records, idempotency keys). */
  readonly #extra: string[] = [];
  /** The ops' arguments; a number n stands for the key `#extra[n]`. */
  readonly #parts: (string | number)[] = [];
  #ops = 0;
  /** Messages the receive ops ask for in all (the script pops them at once). */
  #takes = 0;

  constructor(prefix: string, queue: string) {
    this.prefix = prefix;
    this.queue = queue;
    const tag = queueTag(prefix, queue);
    let fixed = FIXED_KEYS.get(tag);
    if (fixed === undefined) {
      fixed = queueKeys(prefix, queue);
      FIXED_KEYS.set(tag, fixed);
    }
    this.#fixed = fixed;
  }

  /** How many ops (and so results) the call has. */
  get size(): number {
    return this.#ops;
  }

  /** KEYS of the script: the queue's six, then the extra ones. */
  get keys(): string[] {
    return [...this.#fixed, ...this.#extra];
  }

  /** ARGV of the script, key references turned into KEYS indexes. */
  get args(): string[] {
    const base = this.#fixed.length + 1;
    const out = [String(this.#takes)];
    for (const p of this.#parts) out.push(typeof p === "number" ? String(base + p) : p);
    return out;
  }

  /** Appends the ops of another call on the same queue; returns the index of its first result. */
  absorb(other: QueueCall): number {
    const shift = this.#extra.length;
    for (const k of other.#extra) this.#extra.push(k);
    for (const p of other.#parts) this.#parts.push(typeof p === "number" ? p + shift : p);
    const first = this.#ops;
    this.#ops += other.#ops;
    this.#takes += other.#takes;
    return first;
  }

  #key(key: string): number {
    this.#extra.push(key);
    return this.#extra.length - 1;
  }

  #op(...args: (string | number)[]): number {
    for (const a of args) this.#parts.push(a);
    return this.#ops++;
  }

  /**
   * Sends a message; with `record`, (re)creates the run record; with `idem`, only if unclaimed.
   * `fresh`: the id was generated for this run just now (nothing to replace: one HSET).
   */
  enqueue(
    message: Message,
    record?: { record: RunRecord; ttlMs: number },
    idem?: { key: string; ttlMs: number },
    fresh = false,
  ): number {
    const fields = record === undefined ? [] : encodeFields(record.record);
    const withRecord = record !== undefined && fields.length > 0;
    return this.#op(
      OP.enqueue,
      message.id,
      priorityOf(message),
      message.notBefore === undefined ? "" : String(Math.ceil(message.notBefore)),
      message.body,
      message.attempt === undefined ? "" : String(message.attempt),
      fresh && withRecord ? "1" : "0",
      withRecord ? this.#key(runKey(this.prefix, this.queue, message.id)) : "",
      withRecord ? ms(record.ttlMs) : "",
      String(fields.length / 2),
      ...fields,
      idem === undefined ? "" : this.#key(idemKey(this.prefix, this.queue, idem.key)),
      idem === undefined ? "" : ms(idem.ttlMs),
    );
  }

  ack(delivery: Delivery): number {
    return this.#op(OP.ack, delivery.id, delivery.receipt);
  }

  renew(delivery: Delivery, leaseMs: number): number {
    return this.#op(OP.renew, delivery.id, delivery.receipt, ms(leaseMs));
  }

  release(delivery: Delivery): number {
    return this.#op(OP.release, delivery.id, delivery.receipt);
  }

  cancel(id: string): number {
    return this.#op(OP.cancel, id);
  }

  /**
   * Leases up to `max`; with `startAt`, also marks each leased run active as of that time.
   * `mark` false: do not re-arm the wake-up marker (a worker taking its next task as it ends one).
   */
  receive(max: number, leaseMs: number, startAt?: number, mark = true): number {
    this.#takes += max;
    return this.#op(
      OP.receive,
      String(max),
      ms(leaseMs),
      startAt === undefined ? "" : String(startAt),
      mark ? "1" : "0",
    );
  }

  /** Acks a leased delivery, records the failed attempt and sends `next` (same run, same queue). */
  retry(delivery: Delivery, patch: Partial<RunRecord>, next: Message): number {
    const fields = encodeFields(patch);
    return this.#op(
      OP.retry,
      delivery.id,
      delivery.receipt,
      priorityOf(next),
      next.notBefore === undefined ? "" : String(Math.ceil(next.notBefore)),
      next.body,
      next.attempt === undefined ? "" : String(next.attempt),
      String(fields.length / 2),
      ...fields,
    );
  }

  /** Acks a leased delivery and records the run's final fields, in one step. */
  finish(delivery: Delivery, patch: Partial<RunRecord>, ttlMs: number): number {
    const fields = encodeFields(patch);
    return this.#op(
      OP.finish,
      delivery.id,
      delivery.receipt,
      ms(ttlMs),
      String(fields.length / 2),
      ...fields,
    );
  }

  /**
   * `finish` for a success at `at` (state "succeeded", finishedAt = updatedAt = at, the result as
   * JSON unless undefined), in five arguments instead of a field list.
   */
  succeed(delivery: Delivery, at: number, resultJson: string | undefined, ttlMs: number): number {
    return this.#op(OP.succeed, delivery.id, delivery.receipt, ms(ttlMs), String(at), resultJson ?? "");
  }

  /** Updates a run record; `want` asks for the record as it was before the update. */
  update(
    id: string,
    patch: Partial<RunRecord>,
    options: { ttlMs: number; onlyIf?: RunGuard | undefined; replace?: boolean | undefined },
    want: boolean,
  ): number {
    const guards = (options.onlyIf ?? []).map((s) => (s === "missing" ? s : JSON.stringify(s)));
    const fields = encodeFields(patch);
    return this.#op(
      OP.update,
      this.#key(runKey(this.prefix, this.queue, id)),
      ms(options.ttlMs),
      options.replace === true ? "1" : "0",
      want ? "1" : "0",
      String(guards.length),
      ...guards,
      String(fields.length / 2),
      ...fields,
    );
  }

  get(id: string): number {
    return this.#op(OP.get, this.#key(runKey(this.prefix, this.queue, id)));
  }

  deadAdd(entry: DeadLetter): number {
    return this.#op(OP.deadAdd, entry.id, JSON.stringify(entry));
  }

  deadList(limit: number): number {
    return this.#op(OP.deadList, String(limit));
  }

  deadTake(id: string): number {
    return this.#op(OP.deadTake, id);
  }

  owner(key: string): number {
    return this.#op(OP.owner, this.#key(idemKey(this.prefix, this.queue, key)));
  }

  /** Maps an idempotency key to a run (the one whose effect happened). */
  claim(key: string, id: string, ttlMs: number): number {
    return this.#op(OP.claim, this.#key(idemKey(this.prefix, this.queue, key)), id, ms(ttlMs));
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
export function receiveResult(reply: unknown, queue: string): { deliveries: Delivery[]; dueInMs: number } {
  const flat = list(reply, "receive");
  const due = int(flat[0], "receive");
  const deliveries: Delivery[] = [];
  for (let i = 1; i + 4 < flat.length; i += 5) {
    const delivery: Delivery = {
      id: text(flat[i], "delivery id"),
      queue,
      body: text(flat[i + 1], "delivery body"),
      receipt: text(flat[i + 2], "delivery receipt"),
      deliveries: int(flat[i + 3], "delivery count"),
    };
    const started = flat[i + 4];
    if (started === 1) delivery.started = true;
    else if (typeof started === "string") delivery.started = text(started, "run state");
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

export { int, list, maybeText, text };
