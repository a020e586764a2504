/**
 * Internal: what the workflow engine reaches of its app — enqueueing a step under its node id
 * with the step's idempotency key, and checking an explicit input before anything starts.
 *
 * @module
 */
import type { Clock, Store } from "../contracts.ts";
import { type EnqueueInternals, jsonCopy } from "../enqueue.ts";
import { UnknownTaskError } from "../errors.ts";
import { workflowStepKey } from "../keys.ts";
import { validate } from "../schema.ts";
import type { EnqueueOptions, ResolvedTask, Run } from "../task.ts";
import type { EnqueueSpan } from "../telemetry.ts";
import type { WorkflowHost } from "./workflow.ts";

/** The app's parts a workflow host is made of. */
export interface WorkflowHostParts {
  readonly store: Store;
  readonly clock: Clock;
  readonly tasks: ReadonlyMap<string, ResolvedTask>;
  enqueue(
    task: ResolvedTask,
    input: unknown,
    options: EnqueueOptions,
    internal: EnqueueInternals,
  ): Promise<unknown>;
  settled(id: string): void;
  run(id: string, queue: string): Run<unknown>;
  /** See `WorkflowHost.traceStart`. */
  traceStart?: ((kind: string, id: string, queue: string) => EnqueueSpan | undefined) | undefined;
}

/** The workflow host of an app. */
export function workflowHost(parts: WorkflowHostParts): WorkflowHost {
  const task = (name: string) => {
    const t = parts.tasks.get(name);
    if (t === undefined) throw new UnknownTaskError(name);
    return t;
  };
  return {
    store: parts.store,
    clock: parts.clock,
    hasTask: (name) => parts.tasks.has(name),
    queueOf: (name) => task(name).queue,
    enqueueStep: async (name, input, id, cont, trace) => {
      await parts.enqueue(
        task(name),
        input,
        { id, idempotencyKey: workflowStepKey(id) },
        trace === undefined
          ? { meta: { cont }, skipValidation: true }
          : { meta: { cont }, skipValidation: true, trace },
      );
    },
    ...(parts.traceStart === undefined ? {} : { traceStart: parts.traceStart }),
    checkInput: async (name, input) => {
      const t = task(name);
      const what = `input of workflow step "${name}"`;
      const copy = jsonCopy(input, what);
      if (t.schema !== undefined) await validate(t.schema, copy, what);
    },
    settled: parts.settled,
    run: parts.run,
  };
}
