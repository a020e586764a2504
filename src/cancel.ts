/**
 * Internal: cancelling a run by id. A run that has not ended is marked cancelled and its message
 * removed from the broker — a waiting one for good; a running one loses its lease, so its
 * worker's next renewal aborts its `ctx.signal` and its outcome is not recorded. Cancelling a
 * workflow (chain, group, chord) cancels its steps that have not run yet and records which had.
 *
 * @module
 */
import type { Broker, Clock, RunRecord, Store } from "./contracts.ts";
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

/** One step of a cancelled workflow, as its record reports. */
export interface CancelledWorkflowStep {
  id: string;
  task: string;
  /** The state the step was in: "cancelled" when this cancel stopped it. */
  state: string;
}

/** What a cancelled workflow's record keeps as its `result`. */
export interface WorkflowCancelReport {
  /** Tasks of the steps that had already run (succeeded or failed). */
  ran: string[];
  /** Tasks of the steps this cancel stopped. */
  cancelled: string[];
  steps: CancelledWorkflowStep[];
}

const WORKFLOW = "workflow.";

/** Cancels a run that has not ended; false when it ended or does not exist. */
export async function cancelRun(host: CancelHost, id: string, queue: string | undefined): Promise<boolean> {
  const current = await host.store.getRun(id, queue);
  if (current === null) return false;
  if (current.task.startsWith(WORKFLOW)) return await cancelWorkflow(host, current);
  return await cancelStep(host, current);
}

async function cancelStep(host: CancelHost, current: RunRecord): Promise<boolean> {
  const ttlMs = host.tasks.get(current.task)?.resultTtlMs ?? 86_400_000;
  const res = await host.store.updateRun(current.id, cancelPatch(host.clock.now()), {
    ttlMs,
    onlyIf: CANCELLABLE_STATES,
    queue: current.queue,
  });
  if (!res.applied || res.record === null) return false;
  await host.broker.cancel?.(current.id, res.record.queue, { leased: current.state === "active" });
  host.settled(current.id);
  host.events.emit("cancelled", { id: current.id, task: res.record.task });
  return true;
}

/** The ids of a composite node's children, in order (a chain's later steps do not exist yet). */
function childIds(node: RunRecord): string[] | ((i: number) => string) {
  if (node.task === `${WORKFLOW}chord`) return [`${node.id}.g`, `${node.id}.cb`];
  return (i) => `${node.id}.${i}`;
}

/**
 * Marks a workflow node cancelled first (so no continuation starts anything after it), then
 * cancels its children that have not ended, depth first; the node's record keeps the report.
 */
async function cancelWorkflow(host: CancelHost, node: RunRecord): Promise<boolean> {
  const { store } = host;
  const claimed = await store.updateRun(node.id, cancelPatch(host.clock.now()), {
    ttlMs: 86_400_000,
    onlyIf: ["active"],
    queue: node.queue,
  });
  if (!claimed.applied) return false;
  const report: WorkflowCancelReport = { ran: [], cancelled: [], steps: [] };
  await walk(host, node, report);
  await store.updateRun(node.id, { result: report }, { ttlMs: 86_400_000, queue: node.queue });
  host.settled(node.id);
  host.events.emit("cancelled", { id: node.id, task: node.task });
  return true;
}

async function walk(host: CancelHost, node: RunRecord, report: WorkflowCancelReport): Promise<void> {
  const ids = childIds(node);
  for (let i = 0; ; i++) {
    const id = typeof ids === "function" ? ids(i) : ids[i];
    if (id === undefined) return;
    const child = await host.store.getRun(id);
    if (child === null) {
      if (typeof ids === "function") return; // the chain's or group's last existing step
      continue;
    }
    if (child.task.startsWith(WORKFLOW)) {
      if (child.state === "active") {
        await host.store.updateRun(child.id, cancelPatch(host.clock.now()), {
          ttlMs: 86_400_000,
          onlyIf: ["active"],
          queue: child.queue,
        });
        host.settled(child.id);
      }
      await walk(host, child, report);
      continue;
    }
    const stopped = await cancelStep(host, child);
    const state = stopped ? "cancelled" : child.state;
    report.steps.push({ id: child.id, task: child.task, state });
    if (stopped) report.cancelled.push(child.task);
    else if (child.state === "succeeded" || child.state === "failed") report.ran.push(child.task);
  }
}
