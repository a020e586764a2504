/**
 * Internal: cancelling a run by id — its record marked cancelled when it has not started, and its
 * waiting message removed from the broker.
 *
 * @module
 */
import type { Broker, Clock, Store } from "./contracts.ts";
import type { Emitter } from "./events.ts";
import { CANCELLABLE_STATES, cancelPatch } from "./run-state.ts";
import type { ResolvedTask } from "./task.ts";

/** What a cancel needs from its app. */
export interface CancelHost {
  readonly store: Store;
  readonly broker: Broker;
  readonly clock: Clock;
  readonly events: Emitter;
  readonly tasks: ReadonlyMap<string, ResolvedTask>;
  /** Wakes `run.result()` waiters. */
  settled(id: string): void;
}

/** Cancels a run that has not started; false when it started, ended or does not exist. */
export async function cancelRun(host: CancelHost, id: string, queue: string | undefined): Promise<boolean> {
  const { store } = host;
  const now = host.clock.now();
  const current = await store.getRun(id, queue);
  if (current === null) return false;
  const ttlMs = host.tasks.get(current.task)?.resultTtlMs ?? 86_400_000;
  const res = await store.updateRun(id, cancelPatch(now), {
    ttlMs,
    onlyIf: CANCELLABLE_STATES,
    queue: current.queue,
  });
  if (!res.applied || res.record === null) return false;
  await host.broker.cancel?.(id, res.record.queue);
  host.settled(id);
  host.events.emit("cancelled", { id, task: res.record.task });
  return true;
}
