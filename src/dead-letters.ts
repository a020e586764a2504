/**
 * Dead letters as an app offers them (`app.deadLetters`: list, delete, purge, replay), and
 * replaying one — its envelope sent again under the same run id with a fresh attempt budget,
 * and put back in the list when that fails.
 *
 * @module
 */
import type { DeadLetter, RunRecord, Store } from "./contracts.ts";
import { decodeEnvelope, type Envelope, toMessage } from "./envelope.ts";
import { CeleriacError, EnvelopeError } from "./errors.ts";
import type { EnqueueItem, Ledger } from "./execute/ledger.ts";
import { initialState } from "./run-state.ts";
import type { ResolvedTask } from "./task.ts";

/** What a replay needs from its app. */
export interface ReplayHost {
  readonly store: Store;
  readonly ledger: Ledger;
  readonly tasks: ReadonlyMap<string, ResolvedTask>;
  now(): number;
}

/** Takes the dead letter `id` and sends it again; resolves to the run's id and queue. */
export async function replayDeadLetter(host: ReplayHost, id: string): Promise<{ id: string; queue: string }> {
  const { store } = host;
  const entry = await store.takeDeadLetter(id);
  if (entry === null) throw new CeleriacError(`no dead letter with id ${id}`);
  let envelope: Envelope;
  try {
    envelope = decodeEnvelope(entry.body);
  } catch (cause) {
    await store.addDeadLetter(entry);
    throw new EnvelopeError(`dead letter ${id} cannot be replayed: ${(cause as Error).message}`, { cause });
  }
  const now = host.now();
  // A replay is a deliberate new start: no delay or history, and the task's default expiry (if
  // any) counted from now instead of the run's own.
  const { notBefore: _n, errors: _e, expiresAt: _x, ...rest } = envelope;
  // Count replays in the envelope so a replay of the same attempt is a new send (Message.key).
  const prev = rest.meta?.replays;
  const fresh: Envelope = {
    ...rest,
    attempt: 1,
    enqueuedAt: now,
    meta: { ...rest.meta, replays: typeof prev === "number" ? prev + 1 : 1 },
  };
  const task = host.tasks.get(envelope.task);
  const record: RunRecord = {
    id: envelope.id,
    task: envelope.task,
    queue: envelope.queue,
    state: initialState(false),
    attempt: 0,
    maxAttempts: task?.retry.maxAttempts ?? 1,
    enqueuedAt: now,
    updatedAt: now,
  };
  if (fresh.idempotencyKey !== undefined) record.idempotencyKey = fresh.idempotencyKey;
  if (task?.expiresInMs !== undefined) fresh.expiresAt = record.expiresAt = now + task.expiresInMs;
  const item: EnqueueItem = { message: toMessage(fresh), record, ttlMs: task?.resultTtlMs ?? 86_400_000 };
  try {
    await host.ledger.enqueue([item]);
  } catch (error) {
    await store.addDeadLetter(entry);
    throw error;
  }
  return { id: envelope.id, queue: envelope.queue };
}

/**
 * An app's dead letters: call it to list them (newest first), or use its methods.
 *
 * @example
 * ```ts
 * for (const dl of await app.deadLetters()) console.log(dl.id, dl.reason);
 * await app.deadLetters.delete(id);
 * const removed = await app.deadLetters.purge();
 * ```
 */
export interface DeadLetters {
  /** Lists dead letters, newest first (100 unless `limit` says otherwise). */
  (options?: { limit?: number }): Promise<DeadLetter[]>;
  /** Lists dead letters, newest first. */
  list(options?: { limit?: number }): Promise<DeadLetter[]>;
  /** Deletes one; false when there was none with that id. */
  delete(id: string): Promise<boolean>;
  /** Deletes every dead letter; resolves to how many there were. */
  purge(): Promise<number>;
}

/** The `app.deadLetters` of a store (its optional delete and purge checked for when called). */
export function deadLettersOf(store: Store): DeadLetters {
  const list = (options: { limit?: number } = {}) => store.listDeadLetters(options);
  return Object.assign(list, {
    list,
    delete(id: string): Promise<boolean> {
      if (store.deleteDeadLetter === undefined) throw new TypeError("this store cannot delete dead letters");
      return store.deleteDeadLetter(id);
    },
    purge(): Promise<number> {
      if (store.purgeDeadLetters === undefined) throw new TypeError("this store cannot purge dead letters");
      return store.purgeDeadLetters();
    },
  });
}
