/**
 * One call of the queue script, built op by op: the queue's keys, extra keys by index, and a
 * flat list of operations. Calls on the same queue merge (`absorb`).
 *
 * @module
 */
import type { DeadLetter, Delivery, Message, QueueKey, RunGuard, RunRecord } from "../../backend.ts";
import { encodeFields, ms } from "./_codec.ts";
import { queueKeyOf, queueKeys, queueTag, runKey } from "./_keys.ts";
import { OP } from "./lua/mod.ts";

function priorityOf(message: Message): string {
  const p = message.priority;
  return String(Number.isInteger(p) && p >= 0 && p <= 9 ? p : 0);
}

/** A guard's states as the script compares them: as stored (JSON), and "missing". */
function storedGuards(guard: RunGuard): string[] {
  return guard.map((s) => (s === "missing" ? s : JSON.stringify(s)));
}

/** Where a purge goes on: the back counter and time it began at, its phase and scan cursor. */
export interface PurgePage {
  back: string;
  at: string;
  phase: "r" | "t" | "p" | "";
  cursor: string;
}

/** A message's limits as the hash fields the receive op checks (.l rate, .k concurrency). */
function limitFields(fields: string[], message: Message): void {
  const l = message.limits;
  if (l === undefined) return;
  if (l.rate !== undefined) fields.push(".l", `${l.rate.limit}\t${l.rate.periodMs}\t${l.rate.key}`);
  if (l.concurrency !== undefined) fields.push(".k", `${l.concurrency.limit}\t${l.concurrency.key}`);
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
   * `onlyIf`: only while the run waits — its state (or "missing") listed, its message not leased.
   */
  enqueue(
    message: Message,
    record?: { record: RunRecord; ttlMs: number },
    idem?: { key: QueueKey; ttlMs: number },
    fresh = false,
    watch = false,
    onlyIf: RunGuard = [],
  ): number {
    const fields = record === undefined ? [] : encodeFields(record.record);
    // Watched from the start (its producer's process waits on results): its end is announced.
    if (watch && fields.length > 0) fields.push(".w", "1");
    const withRecord = record !== undefined && fields.length > 0;
    limitFields(fields, message);
    return this.#op(
      OP.enqueue,
      message.id,
      priorityOf(message),
      message.notBefore === undefined ? "" : String(Math.ceil(message.notBefore)),
      message.body,
      message.attempt === undefined ? "" : String(message.attempt),
      fresh && withRecord ? "1" : "0",
      withRecord ? this.#key(runKey(this.prefix, this.queue, message.id)) : "",
      String(Date.now()),
      String(fields.length / 2),
      ...fields,
      idem === undefined ? "" : this.#queueKey(idem.key),
      idem === undefined ? "" : ms(idem.ttlMs),
      String(onlyIf.length),
      ...storedGuards(onlyIf),
    );
  }

  ack(delivery: Delivery): number {
    return this.#op(OP.ack, delivery.id, delivery.receipt);
  }

  /** Extends a lease, and the claim the delivery holds (when it holds one in this queue). */
  renew(delivery: Delivery, leaseMs: number): number {
    const claim = delivery.claim?.key.queue === this.queue ? delivery.claim : undefined;
    return this.#op(
      OP.renew,
      delivery.id,
      delivery.receipt,
      ms(leaseMs),
      claim === undefined ? "" : this.#queueKey(claim.key),
      claim === undefined ? "" : claim.holder,
    );
  }

  release(delivery: Delivery): number {
    return this.#op(OP.release, delivery.id, delivery.receipt);
  }

  /** Removes a waiting message; with `leased`, also the lease of one being run. */
  cancel(id: string, leased = false): number {
    return this.#op(OP.cancel, id, leased ? "1" : "0");
  }

  /**
   * Leases up to `max`; with `start`, also marks each leased run active as of the lease (the
   * server's time).
   * `mark` false: do not re-arm the wake-up marker (a worker taking its next task as it ends one).
   */
  receive(max: number, leaseMs: number, start = false, mark = true): number {
    this.#takes += max;
    return this.#op(OP.receive, String(max), ms(leaseMs), start ? "1" : "", mark ? "1" : "0");
  }

  /** Acks a leased delivery, records the failed attempt and sends `next` (same run, same queue). */
  retry(delivery: Delivery, patch: Partial<RunRecord>, next: Message): number {
    const fields = encodeFields(patch);
    limitFields(fields, next);
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

  /**
   * Acks a leased delivery and records a success at `at` (state "succeeded", finishedAt =
   * updatedAt = at, the result as JSON unless undefined), in one step of five arguments.
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
    const guards = storedGuards(options.onlyIf ?? []);
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

  /** Reads a run record and marks it watched (its end is announced on `channel`). */
  watch(id: string): number {
    return this.#op(OP.watch, this.#key(runKey(this.prefix, this.queue, id)));
  }

  /**
   * Announces a watched run's end on `channel`: its success with `resultJson` ("" for none) when
   * given and the record says succeeded, else just that it ended (see `parseEnded`).
   */
  notify(channel: string, id: string, resultJson?: string): number {
    return this.#op(
      OP.notify,
      this.#key(runKey(this.prefix, this.queue, id)),
      channel,
      id,
      resultJson ?? "",
      resultJson === undefined ? "0" : "1",
    );
  }

  get(id: string): number {
    return this.#op(OP.get, this.#key(runKey(this.prefix, this.queue, id)));
  }

  deadAdd(entry: DeadLetter, retentionMs: number): number {
    return this.#op(OP.deadAdd, entry.id, JSON.stringify(entry), ms(retentionMs));
  }

  deadList(limit: number, retentionMs: number): number {
    return this.#op(OP.deadList, String(limit), ms(retentionMs));
  }

  deadDelete(id: string): number {
    return this.#op(OP.deadDelete, id);
  }

  deadPurge(): number {
    return this.#op(OP.deadPurge);
  }

  deadTake(id: string): number {
    return this.#op(OP.deadTake, id);
  }

  /** The run an idempotency key maps to. */
  owner(key: QueueKey): number {
    return this.#op(OP.owner, this.#queueKey(key));
  }

  /** Maps an idempotency key to a run (the one whose effect happened). */
  own(key: QueueKey, id: string, ttlMs: number): number {
    return this.#op(OP.own, this.#queueKey(key), id, ms(ttlMs));
  }

  /**
   * Takes the run-time claim of a key for `holder` (`runId:receipt`) unless another holder has it;
   * takes over one left by an earlier delivery of the same run whose lease is gone.
   */
  claim(key: QueueKey, holder: string, ttlMs: number): number {
    const runId = holder.slice(0, Math.max(holder.lastIndexOf(":"), 0));
    return this.#op(OP.claim, this.#queueKey(key), holder, ms(ttlMs), runId);
  }

  /** Frees a claim when `holder` still has it. */
  unclaim(key: QueueKey, holder: string): number {
    return this.#op(OP.unclaim, this.#queueKey(key), holder);
  }

  /** The queue's counts (see the counts op in lua/admin.ts). */
  counts(): number {
    return this.#op(OP.counts);
  }

  /** Pauses (true) or resumes the queue. */
  pause(paused: boolean): number {
    return this.#op(OP.pause, paused ? "1" : "0");
  }

  /** One page of a purge; `from` the reply of the page before (undefined: the first page). */
  purge(limit: number, ttlMs: number, from?: PurgePage): number {
    return this.#op(
      OP.purge,
      from?.back ?? "",
      from?.at ?? "",
      String(limit),
      ms(ttlMs),
      from?.phase ?? "r",
      from?.cursor ?? "0",
    );
  }

  /**
   * One page of the queue's messages: `phase` "r" ready (cursor a rank), "t" timers (a scan
   * cursor), "p" parked lists ("index:list name", "" from the first).
   */
  list(phase: "r" | "t" | "p", cursor: string, limit: number): number {
    return this.#op(OP.list, phase, cursor, String(limit));
  }

  /** A key of this queue: it must carry this queue's hash tag (one slot per call). */
  #queueKey(key: QueueKey): number {
    if (key.queue !== this.queue) {
      throw new TypeError(`key of queue ${key.queue} in a call on queue ${this.queue}`);
    }
    return this.#key(queueKeyOf(this.prefix, key));
  }
}
