/**
 * The fused ledger of the Redis backend: each compound step of the executor (enqueue, start,
 * succeed, retry, fail, defer, skip) is one call of the queue script — one round trip, atomic.
 * Steps that would span two queues (a retry sent to another queue) fall back to the composed
 * ledger.
 *
 * @module
 */
import {
  BackendError,
  type Broker,
  composeLedger,
  type Delivery,
  CANCELLED_STEP,
  type CancelledStep,
  type EnqueueItem,
  type IdempotencyClaim,
  type LeaseState,
  type Ledger,
  type Store,
  type Success,
  successPatch,
  type TakeNext,
  type UpdateRunResult,
} from "../../backend.ts";
import { QueueCall } from "./_call.ts";
import { int, list, maybeText, text } from "./_client.ts";
import { receiveResult, updateResult } from "./_codec.ts";

/** What the fused ledger needs from its backend. */
export interface LedgerHost {
  readonly prefix: string;
  readonly backend: Broker & Store;
  /** Runs a queue call; resolves to one result per op. */
  run(call: QueueCall): Promise<unknown[]>;
  /** Records a queue in the index of known queues (once per process). */
  register(queue: string): Promise<void>;
  /** Wakes this process's waiters on a queue. */
  wake(queue: string): void;
  /** How long dead letters are kept. */
  readonly deadLetterTtlMs: number;
  /** The pub/sub channel watched runs' ends are announced on. */
  readonly channel: string;
}

/**
 * An idempotency key to map to the run that succeeded (or undefined).
 *
 * @example
 * ```ts
 * import { idempotencyKey } from "celeriac/backend";
 * const idempotency: Idempotency = { key: idempotencyKey("default", "email.send", "welcome:a@b.co"), ttlMs: 86_400_000 };
 * ```
 */
export type Idempotency = IdempotencyClaim | undefined;

/**
 * The fused ledger, plus a step a worker may use to take its next task in the same call.
 *
 * @example
 * ```ts
 * const ledger = backend.ledger(backend) as RedisLedger;
 * const [next] = await ledger.succeedAndReceive(delivery, id, { at: Date.now() }, ttlMs, undefined, { max: 1, leaseMs: 30_000 });
 * ```
 */
export interface RedisLedger extends Ledger {
  /**
   * Records success (mapping `idempotency`'s key to this run), acks, and leases up to `next.max`
   * due messages of the same queue — like BullMQ's moveToFinished, one round trip per task
   * under load.
   */
  succeedAndReceive(
    delivery: Delivery,
    id: string,
    success: Success,
    ttlMs: number,
    idempotency: Idempotency,
    next: TakeNext,
  ): Promise<Delivery[] | CancelledStep>;
}

/** Builds the fused ledger over a backend that is both broker and store. */
export function fusedLedger(host: LedgerHost): RedisLedger {
  const composed = composeLedger(host.backend, host.backend);
  const call = (queue: string) => new QueueCall(host.prefix, queue);
  const one = async (c: QueueCall): Promise<unknown[]> => await host.run(c);
  const succeedAndReceive: RedisLedger["succeedAndReceive"] = async (
    delivery,
    id,
    success,
    ttlMs,
    idem,
    next,
  ) => {
    const c = call(delivery.queue);
    if (delivery.id === id) {
      const json =
        success.resultJson ?? (success.result === undefined ? undefined : JSON.stringify(success.result));
      c.succeed(delivery, success.at, json, ttlMs);
    } else {
      c.update(id, successPatch(success), { ttlMs }, false);
      c.ack(delivery);
    }
    if (idem !== undefined) c.own(idem.key, id, idem.ttlMs);
    // The announcement carries the result, so the waiter need not read the record again.
    if (delivery.watched === true) c.notify(host.channel, id, success.resultJson ?? successJson(success));
    // The worker chains to what it takes: no need to wake another one for it.
    const take =
      next.max >= 1 ? c.receive(Math.floor(next.max), next.leaseMs, next.start === true, false) : -1;
    const results = await one(c);
    const taken = take < 0 ? [] : receiveResult(results[take], delivery.queue, next.leaseMs).deliveries;
    // 2: the run was cancelled while it ran (nothing recorded); what was taken runs all the same.
    return delivery.id === id && results[0] === 2 ? { cancelled: true, next: taken } : taken;
  };

  return {
    async enqueue(items: readonly EnqueueItem[]) {
      const out: (string | null)[] = items.map(() => null);
      const groups = new Map<string, number[]>();
      items.forEach((item, index) => {
        const queue = item.message.queue;
        const group = groups.get(queue);
        if (group === undefined) groups.set(queue, [index]);
        else group.push(index);
      });
      await Promise.all(
        [...groups].map(async ([queue, indexes]) => {
          await host.register(queue);
          const c = call(queue);
          for (const index of indexes) {
            const item = items[index]!;
            c.enqueue(
              item.message,
              { record: item.record, ttlMs: item.ttlMs },
              item.idempotency,
              item.fresh,
              item.watch === true,
            );
          }
          const results = await one(c);
          indexes.forEach((index, j) => {
            out[index] = maybeText(results[j], "idempotency owner");
          });
          host.wake(queue);
        }),
      );
      return out;
    },

    async replace(item, onlyIf) {
      const queue = item.message.queue;
      await host.register(queue);
      const c = call(queue);
      const record = { record: item.record, ttlMs: item.ttlMs };
      c.enqueue(item.message, record, item.idempotency, false, item.watch === true, onlyIf);
      const [reply] = await one(c);
      if (reply === 0 || reply === "0") return false; // the run no longer waits
      host.wake(queue);
      return maybeText(reply, "idempotency owner");
    },

    async start(delivery, id, patch, options): Promise<UpdateRunResult> {
      // Reads back only the state (for a duplicate's outcome), not the whole record.
      const c = call(delivery.queue);
      c.update(id, patch, options, false);
      const [reply] = await one(c);
      return updateResult(reply, patch, options.replace === true);
    },

    succeed(delivery, id, success, ttlMs, idempotency, next) {
      return succeedAndReceive(delivery, id, success, ttlMs, idempotency, next ?? { max: 0, leaseMs: 0 });
    },

    succeedAndReceive,

    async retry(delivery, id, patch, ttlMs, next, take) {
      if (next.queue !== delivery.queue) return await composed.retry(delivery, id, patch, ttlMs, next);
      const c = call(delivery.queue);
      if (delivery.id === id && next.id === id) {
        // One op: the record's key holds the next attempt's message, so it keeps no TTL.
        c.retry(delivery, patch, next);
      } else {
        c.ack(delivery);
        c.update(id, patch, { ttlMs }, false);
        c.enqueue(next);
      }
      const at =
        take !== undefined && take.max >= 1
          ? c.receive(Math.floor(take.max), take.leaseMs, take.start === true, false)
          : -1;
      const results = await one(c);
      host.wake(next.queue);
      const taken = at < 0 ? undefined : receiveResult(results[at], delivery.queue, take!.leaseMs).deliveries;
      if (delivery.id === id && next.id === id && results[0] === 2) {
        return taken === undefined ? CANCELLED_STEP : { cancelled: true, next: taken };
      }
      return taken;
    },

    async fail(delivery, entry, update) {
      if (entry.queue !== delivery.queue) return await composed.fail(delivery, entry, update);
      await host.register(entry.queue);
      // Ack first, so the final record takes its TTL (a key with a pending message keeps none).
      const c = call(delivery.queue);
      c.ack(delivery);
      if (update !== undefined) c.update(entry.id, update.patch, update.options, false);
      c.deadAdd(entry, host.deadLetterTtlMs);
      if (delivery.watched === true) c.notify(host.channel, entry.id);
      await one(c);
    },

    async defer(delivery, next) {
      if (next.queue !== delivery.queue) return await composed.defer(delivery, next);
      const c = call(delivery.queue);
      c.ack(delivery);
      c.enqueue(next);
      await one(c);
      host.wake(next.queue);
    },

    async skip(delivery) {
      const c = call(delivery.queue);
      c.ack(delivery);
      await one(c);
    },

    renew(deliveries, leaseMs) {
      return host.backend.renew!(deliveries, leaseMs) as Promise<readonly LeaseState[]>;
    },

    async idempotencyOwner(key) {
      const c = call(key.queue);
      c.owner(key);
      const [reply] = await one(c);
      return maybeText(reply, "idempotency owner");
    },

    async claim(key, holder, ttlMs) {
      const c = call(key.queue);
      c.claim(key, holder, ttlMs);
      const [reply] = await one(c);
      if (reply === null || reply === undefined) return null;
      const [current, left] = list(reply, "claim holder");
      const remainingMs = int(left, "claim time left");
      return remainingMs >= 0
        ? { holder: text(current, "claim holder"), remainingMs }
        : { holder: text(current, "claim holder") };
    },

    async release(key, holder) {
      const c = call(key.queue);
      c.unclaim(key, holder);
      await one(c);
    },
  };
}

/** A success's result as JSON ("" for none), when the caller did not hand it over encoded. */
function successJson(success: Success): string {
  return success.result === undefined ? "" : JSON.stringify(success.result);
}

/**
 * Reads the announcement of a watched run's end (published by the notify op): `S\n<id>\n<result
 * JSON>` for a success (the JSON empty when the task keeps no result), `E\n<id>` for any other
 * end (the waiter reads the record); undefined for one this version does not know.
 */
export function parseEnded(message: string): { id: string; result?: { json: string } } | undefined {
  const kind = message.slice(0, 2);
  if (kind === "E\n") return { id: message.slice(2) };
  if (kind !== "S\n") return undefined;
  const at = message.indexOf("\n", 2);
  if (at < 0) return undefined;
  return { id: message.slice(2, at), result: { json: message.slice(at + 1) } };
}

/** Fails loudly when a reply does not have one result per op. */
export function checkResults(results: unknown[], expected: number): unknown[] {
  if (results.length !== expected) {
    throw new BackendError(`redis queue script answered ${results.length} results for ${expected} ops`);
  }
  return results;
}
