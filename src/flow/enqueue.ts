/**
 * Flow control at enqueue, in front of the usual path (`sendRuns`): a task's `debounce` and
 * `throttle` options, validated when the task is defined, and applied to its enqueues (not to
 * workflow steps, which their workflow sends).
 *
 * @module
 */
import { checkEnqueueOptions, type EnqueueInternals, jsonCopy } from "../enqueue.ts";
import { validate } from "../schema.ts";
import type { SendHost } from "../send.ts";
import type { EnqueueOptions, ResolvedTask, Run } from "../task.ts";
import { debounceRuns, type ResolvedDebounce, resolveDebounce, type SendFn } from "./debounce.ts";
import { type ResolvedThrottle, resolveThrottle, throttleRuns } from "./throttle.ts";

/** A task's flow-control options, validated. */
export interface ResolvedFlow {
  debounce?: ResolvedDebounce;
  throttle?: ResolvedThrottle;
}

/**
 * Validates a definition's `debounce` and `throttle` (`where` names the task). They do not go
 * together: a debounced key already starts at most one run per quiet period. A task default
 * `expiresInMs` must outlast `debounce.delayMs`.
 */
export function resolveFlow(
  def: { debounce?: unknown; throttle?: unknown; expiresInMs?: unknown },
  where: string,
): ResolvedFlow {
  const debounce = resolveDebounce(def.debounce, where);
  const throttle = resolveThrottle(def.throttle, where);
  if (debounce !== undefined && throttle !== undefined) {
    throw new TypeError(`${where}: debounce and throttle cannot both be set`);
  }
  // A run's expiry counts from its last enqueue: one no longer than the quiet period would
  // expire every debounced run before it is due.
  const { expiresInMs } = def;
  if (debounce !== undefined && typeof expiresInMs === "number" && expiresInMs <= debounce.delayMs) {
    throw new RangeError(
      `${where}: expiresInMs (${expiresInMs}) must be longer than debounce.delayMs (${debounce.delayMs}), ` +
        "or every debounced run expires before it is due",
    );
  }
  const flow: ResolvedFlow = {};
  if (debounce !== undefined) flow.debounce = debounce;
  if (throttle !== undefined) flow.throttle = throttle;
  return flow;
}

/** True when an enqueue of `task` goes through flow control first. */
export function flowControlled(task: ResolvedTask, internal: EnqueueInternals): boolean {
  return (
    (task.debounce !== undefined || task.throttle !== undefined) &&
    internal.meta === undefined &&
    internal.validated === undefined
  );
}

/**
 * Validates the options and every input (so a bad one sends nothing and counts nothing), then
 * debounces or throttles them; `send` takes what is to be sent down the usual path.
 */
export async function flowRuns(
  host: SendHost,
  task: ResolvedTask,
  inputs: readonly unknown[],
  options: EnqueueOptions,
  internal: EnqueueInternals,
  send: SendFn,
): Promise<Run<unknown>[]> {
  const now = host.clock.now();
  const { queue, notBefore } = checkEnqueueOptions(task, options, now);
  const what = `input of task "${task.name}"`;
  const validated: unknown[] = [];
  for (const input of inputs) {
    const copy = jsonCopy(input, what);
    validated.push(task.schema === undefined ? copy : await validate(task.schema, copy, what));
  }
  // An enqueue that names its run (a schedule's tick) is that run: not debounced.
  if (task.debounce !== undefined && options.id === undefined) {
    return await debounceRuns(host, task, task.debounce, queue, inputs, validated, options, internal, send);
  }
  if (task.throttle !== undefined) {
    const { store } = host;
    return await throttleRuns(
      store,
      now,
      notBefore,
      task,
      task.throttle,
      inputs,
      validated,
      options,
      internal,
      send,
    );
  }
  return await send(inputs, options, { ...internal, validated });
}
