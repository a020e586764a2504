/**
 * Sending what an enqueue built: the runs go to the ledger in one step, under a tracer's span when
 * there is one; `enqueued` events for the runs sent (not those an idempotency key absorbed); in
 * eager mode, the runs are run before the enqueue resolves.
 *
 * @module
 */
import type { Broker, Clock, Store } from "./contracts.ts";
import { type EnqueueInternals, enqueueItems } from "./enqueue.ts";
import type { Emitter } from "./events.ts";
import { flowControlled, flowRuns } from "./flow/enqueue.ts";
import type { Ledger } from "./execute/ledger.ts";
import { rejectFailed, type ResultWaiters } from "./runs.ts";
import type { EnqueueOptions, ResolvedTask, Run } from "./task.ts";
import { closeEnqueueSpan, type EnqueueSpan, openEnqueueSpan, type Telemetry } from "./telemetry.ts";

/** What sending needs from its app. */
export interface SendHost {
  readonly broker: Broker;
  readonly store: Store;
  readonly clock: Clock;
  readonly events: Emitter;
  readonly ledger: Ledger;
  readonly telemetry: Telemetry | undefined;
  readonly waiters: ResultWaiters;
  /** The app's queues: a queue that got a run is added. */
  readonly queues: Set<string>;
  run(id: string, queue: string): Run<unknown>;
  /** Eager mode: runs what is queued. */
  runEager(): Promise<void>;
}

/** Validates, sends and (in eager mode) runs the runs of one enqueue call. */
export async function sendRuns(
  host: SendHost,
  task: ResolvedTask,
  inputs: readonly unknown[],
  options: EnqueueOptions,
  internal: EnqueueInternals = {},
): Promise<Run<unknown>[]> {
  if (flowControlled(task, internal)) {
    return await flowRuns(host, task, inputs, options, internal, (i, o, n) => sendRuns(host, task, i, o, n));
  }
  let span: EnqueueSpan | undefined;
  const trace =
    host.telemetry?.enqueue === undefined
      ? undefined
      : (ids: string[], notBefore: number | undefined) => {
          span = openEnqueueSpan(host.telemetry, host.events, {
            task: task.name,
            queue: options.queue ?? task.queue,
            ids,
            parent: internal.trace,
            notBefore,
          });
          return span?.carrier;
        };
  const { queue, items } = await enqueueItems(task, inputs, options, internal, host.clock.now(), trace);
  if (host.waiters.watching) for (const item of items) item.watch = true;
  let owners: (string | null)[];
  try {
    owners = internal.send === undefined ? await host.ledger.enqueue(items) : await internal.send(items);
  } catch (error) {
    closeEnqueueSpan(host.events, span, { error });
    throw error;
  }
  if (span !== undefined)
    closeEnqueueSpan(host.events, span, { duplicates: owners.filter((o) => o != null).length });
  const runs: Run<unknown>[] = [];
  let sent = 0;
  for (let i = 0; i < items.length; i++) {
    const owner = owners[i] ?? null;
    const item = items[i]!;
    runs.push(host.run(owner ?? item.record.id, queue));
    if (owner !== null) continue;
    sent++;
    if (host.events.has("enqueued")) {
      const m = item.message;
      host.events.emit("enqueued", {
        id: m.id,
        task: task.name,
        queue,
        ...(m.notBefore === undefined ? {} : { notBefore: m.notBefore }),
      });
    }
  }
  if (sent > 0) {
    host.queues.add(queue);
    if (host.broker.eager) {
      await host.runEager();
      // Celery's task_eager_propagates: a user's enqueue (not a workflow step) rejects.
      if (host.broker.propagate && internal.meta === undefined) await rejectFailed(host.store, runs, queue);
    }
  }
  return runs;
}
