/**
 * The ledger: the few compound steps the executor and producers take against a broker and a
 * store together (enqueue, start, succeed, retry, fail). By default each step is composed from
 * the broker and store contracts; a backend that is both (Redis) can fuse each step into one
 * atomic round trip by implementing `Broker.ledger`.
 *
 * @module
 */
import type {
  Broker,
  DeadLetter,
  Delivery,
  LeaseState,
  Message,
  RunGuard,
  RunRecord,
  Store,
  UpdateRunOptions,
  UpdateRunResult,
} from "../contracts.ts";
import { flatKey, type QueueKey } from "../keys.ts";
import { type Success, successPatch, UNFINISHED } from "../run-state.ts";

/** An idempotency key (scoped per task and queue, see `keys.ts`) and how long it is remembered. */
export interface IdempotencyClaim {
  key: QueueKey;
  ttlMs: number;
}

/** A claim someone else holds: its holder, and how long it has left when the backend can tell. */
export interface ClaimHeld {
  holder: string;
  remainingMs?: number;
}

/** One run to enqueue. */
export interface EnqueueItem {
  message: Message;
  /** The run's initial record (state queued or scheduled). A ledger may keep this very object. */
  record: RunRecord;
  /** TTL of the record. */
  ttlMs: number;
  /** When set: send only if no run holds this key; the key then maps to this run. */
  idempotency?: IdempotencyClaim;
  /**
   * True when a process of this app waits for runs' results elsewhere (see `Store.watchRun`):
   * a backend that can announces this run's end.
   */
  watch?: boolean;
  /**
   * True when the run id was generated for this enqueue (random, never seen before): a backend
   * may skip looking for an earlier message or record under the same id.
   */
  fresh?: boolean;
}

/** What a succeed step may lease for the same worker in the same round trip. */
export interface TakeNext {
  /** At most this many deliveries, from the queue of the delivery that succeeded. */
  max: number;
  /** Their lease. */
  leaseMs: number;
  /** Also mark the leased runs active as they are leased, when the ledger can (`Delivery.started`). */
  start?: boolean;
}

/**
 * What `succeed` and `retry` answer when the run was cancelled while it ran: nothing was
 * recorded or sent, and `next` holds what the step leased all the same (the caller runs it).
 */
export interface CancelledStep {
  readonly cancelled: true;
  readonly next?: Delivery[];
}

/** Compound steps over a broker and a store. Every method is all-or-nothing where it can be. */
export interface Ledger {
  /**
   * Records and sends runs. Resolves, per item, to null when sent or to the id of the run that
   * already holds its idempotency key (nothing sent).
   */
  enqueue(items: readonly EnqueueItem[]): Promise<(string | null)[]>;
  /**
   * Optional (debounce needs it): sends `item` in place of the run of its id, atomically with the
   * check that the run still waits — its record's state (or "missing") is in `onlyIf` and its
   * message is not leased. Resolves to null when sent, to the id of the run that holds its
   * idempotency key (nothing sent), or to false when the run no longer waits (nothing sent or
   * recorded). Ledgers that cannot check and send in one step leave it out.
   */
  replace?(item: EnqueueItem, onlyIf: RunGuard): Promise<string | null | false>;
  /** Marks a delivered run active (guarded by `onlyIf`). */
  start(
    delivery: Delivery,
    id: string,
    patch: Partial<RunRecord>,
    options: UpdateRunOptions,
  ): Promise<UpdateRunResult>;
  /**
   * Records success (the patch `successPatch` builds, or a backend's own short form of it) and
   * acks; resolves to a {@link CancelledStep}, recording nothing, when the run was cancelled
   * while it ran. With `idempotency`, the key now maps to this run (the one whose effect happened), so
   * later deliveries holding the key return this run's result. With `next`, a ledger that can
   * (Redis, memory) also leases the next due deliveries of the same queue in the same step and
   * hands them back; the composed ledger hands back none.
   */
  succeed(
    delivery: Delivery,
    id: string,
    success: Success,
    ttlMs: number,
    idempotency?: IdempotencyClaim,
    next?: TakeNext,
  ): Promise<Delivery[] | undefined | CancelledStep>;
  /**
   * Records the failed attempt, sends the next one, acks this one. With `take`, a ledger that
   * can also leases the next due deliveries of the same queue in the same step, as `succeed` does.
   * Resolves to a {@link CancelledStep}, sending nothing, when the run was cancelled while it ran.
   */
  retry(
    delivery: Delivery,
    id: string,
    patch: Partial<RunRecord>,
    ttlMs: number,
    next: Message,
    take?: TakeNext,
  ): Promise<Delivery[] | undefined | CancelledStep>;
  /** Records a final failure (when `patch` is given), dead-letters, acks. */
  fail(
    delivery: Delivery,
    entry: DeadLetter,
    patch?: { patch: Partial<RunRecord>; options: UpdateRunOptions },
  ): Promise<void>;
  /** Sends the same run again later and acks this delivery (another holder is running it). */
  defer(delivery: Delivery, next: Message): Promise<void>;
  /** Acks without recording anything (a duplicate delivery). */
  skip(delivery: Delivery): Promise<void>;
  /** The run an idempotency key maps to, or null. */
  idempotencyOwner(key: QueueKey): Promise<string | null>;
  /**
   * Takes the run-time claim of a key for `holder` unless another holder has it: resolves to
   * null when taken (or already held by `holder`), else to the current holder and, when the
   * backend can tell, how long its claim has left.
   */
  claim(key: QueueKey, holder: string, ttlMs: number): Promise<ClaimHeld | null>;
  /**
   * Extends the leases of deliveries being worked on and the claims they hold (`Delivery.claim`),
   * in as few round trips as the backend can; resolves to each lease's state when the broker can
   * tell (see `Broker.renew`).
   */
  renew(deliveries: readonly Delivery[], leaseMs: number): Promise<readonly LeaseState[] | undefined>;
  /** Frees a claim when `holder` still has it. */
  release(key: QueueKey, holder: string): Promise<void>;
}

/** A cancelled step that leased nothing. */
export const CANCELLED_STEP: CancelledStep = Object.freeze({ cancelled: true });

/** The ledger composed from the two contracts, for backends that do not fuse steps. */
export function composeLedger(broker: Broker, store: Store): Ledger {
  const ack = async (delivery: Delivery) => {
    await broker.ack?.([delivery]);
  };
  return {
    async enqueue(items) {
      const out: (string | null)[] = [];
      const claimed: [string, string][] = [];
      const messages: Message[] = [];
      try {
        for (const item of items) {
          if (item.idempotency !== undefined) {
            const key = flatKey(item.idempotency.key);
            const existing = await store.setIfAbsent(key, item.record.id, item.idempotency.ttlMs);
            if (existing !== null) {
              out.push(existing);
              continue;
            }
            claimed.push([key, item.record.id]);
          }
          await store.updateRun(item.record.id, item.record, {
            ttlMs: item.ttlMs,
            queue: item.message.queue,
            replace: true,
          });
          messages.push(item.message);
          out.push(null);
        }
        if (messages.length > 0) await broker.send(messages);
      } catch (error) {
        // Nothing (or not everything) was sent: free the keys so a later enqueue is not lost to dedup.
        await Promise.all(claimed.map(([k, v]) => store.compareAndDelete(k, v).catch(() => false)));
        throw error;
      }
      return out;
    },
    start(delivery, id, patch, options) {
      return store.updateRun(id, patch, { ...options, queue: delivery.queue });
    },
    async succeed(delivery, id, success, ttlMs, idempotency) {
      const res = await store.updateRun(id, successPatch(success), {
        ttlMs,
        queue: delivery.queue,
        onlyIf: UNFINISHED,
      });
      if (!res.applied && res.record?.state === "cancelled") {
        await ack(delivery);
        return CANCELLED_STEP;
      }
      if (idempotency !== undefined) await store.set(flatKey(idempotency.key), id, idempotency.ttlMs);
      await ack(delivery);
      return undefined;
    },
    async retry(delivery, id, patch, ttlMs, next) {
      const res = await store.updateRun(id, patch, { ttlMs, queue: delivery.queue, onlyIf: UNFINISHED });
      if (!res.applied && res.record?.state === "cancelled") {
        await ack(delivery);
        return CANCELLED_STEP;
      }
      await broker.send([next]);
      await ack(delivery);
      return undefined;
    },
    async fail(delivery, entry, update) {
      if (update !== undefined) {
        await store.updateRun(entry.id, update.patch, { ...update.options, queue: delivery.queue });
      }
      await store.addDeadLetter(entry);
      await ack(delivery);
    },
    async defer(delivery, next) {
      await broker.send([next]);
      await ack(delivery);
    },
    skip: ack,
    idempotencyOwner(key) {
      return store.get(flatKey(key));
    },
    async claim(key, holder, ttlMs) {
      const current = await store.setIfAbsent(flatKey(key), holder, ttlMs);
      return current === null || current === holder ? null : { holder: current };
    },
    async renew(deliveries, leaseMs) {
      const states = (await broker.renew?.(deliveries, leaseMs)) ?? undefined;
      await Promise.all(
        deliveries.map(async (d, i) => {
          if (d.claim === undefined || (states !== undefined && states[i] !== "held")) return;
          const name = flatKey(d.claim.key);
          if ((await store.get(name)) === d.claim.holder) await store.set(name, d.claim.holder, leaseMs);
        }),
      );
      return states;
    },
    async release(key, holder) {
      await store.compareAndDelete(flatKey(key), holder);
    },
  };
}
