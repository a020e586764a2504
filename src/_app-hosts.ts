/**
 * Internal: the views of an app its subsystems work through (sending runs, cancelling, the
 * workflow engine, inspect and control), all made once from the app's parts.
 *
 * @module
 */
import type { CancelHost } from "./cancel.ts";
import type { Broker, Clock, Store } from "./contracts.ts";
import type { EnqueueInternals } from "./enqueue.ts";
import type { Emitter } from "./events.ts";
import type { Ledger } from "./execute/ledger.ts";
import type { OpsHost } from "./ops/inspect.ts";
import type { StatsCollector } from "./ops/stats.ts";
import type { ScheduleInfo } from "./ops/types.ts";
import type { ResultWaiters } from "./runs.ts";
import type { SendHost } from "./send.ts";
import type { EnqueueOptions, ResolvedTask, Run } from "./task.ts";
import { openEnqueueSpan, type Telemetry } from "./telemetry.ts";
import { workflowHost } from "./workflow/host.ts";
import type { WorkflowHost } from "./workflow/workflow.ts";

/** What an app is made of, as its subsystems need it. */
export interface AppParts {
  readonly broker: Broker;
  readonly store: Store;
  readonly clock: Clock;
  readonly events: Emitter;
  readonly ledger: Ledger;
  readonly telemetry: Telemetry | undefined;
  readonly waiters: ResultWaiters;
  readonly tasks: ReadonlyMap<string, ResolvedTask>;
  /** The queues the app's runs use (a queue that gets a run is added). */
  readonly queues: Set<string>;
  readonly stats: StatsCollector;
  run(id: string, queue?: string): Run<unknown>;
  enqueue(
    task: ResolvedTask,
    inputs: readonly unknown[],
    options: EnqueueOptions,
    internal?: EnqueueInternals,
  ): Promise<Run<unknown>[]>;
  replay(id: string): Promise<unknown>;
  schedules(): Promise<ScheduleInfo[]>;
  runEager(): Promise<void>;
}

/** The app's hosts. */
export interface AppHosts {
  send: SendHost;
  cancel: CancelHost;
  workflow: WorkflowHost;
  ops: OpsHost;
}

/** Makes the hosts of an app from its parts. */
export function appHosts(p: AppParts): AppHosts {
  const { broker, store, clock, events, tasks } = p;
  const settled = (id: string) => p.waiters.settled(id);
  return {
    send: { ...p, run: (id, queue) => p.run(id, queue) },
    cancel: { store, broker, clock, events, tasks, settled },
    workflow: workflowHost({
      store,
      clock,
      tasks,
      enqueue: (task, input, options, internal) => p.enqueue(task, [input], options, internal),
      settled,
      run: (id, queue) => p.run(id, queue),
      traceStart:
        p.telemetry?.enqueue === undefined
          ? undefined
          : (kind, id, queue) =>
              openEnqueueSpan(p.telemetry, events, { task: `workflow.${kind}`, queue, ids: [id] }),
    }),
    ops: {
      broker,
      store,
      clock,
      events,
      stats: p.stats,
      queues: () => [...p.queues],
      getRun: (id, queue) => p.run(id, queue),
      replay: (id) => p.replay(id),
      schedules: () => p.schedules(),
      tasks,
    },
  };
}
