/**
 * Workflows, Celery's canvas: `chain` (each result feeds the next step), `group` (members in
 * parallel, ordered results) and `chord` (a group, then a callback with its results), nestable.
 *
 * A workflow is plain data travelling in each step's envelope (`meta.cont`): what to do when the
 * step ends. Steps are ordinary runs with their own retry policy; continuations are made safe for
 * duplicate deliveries and crashes by deterministic ids, idempotency keys and, for groups, a
 * per-member slot written once plus the store's atomic counter.
 *
 * @example
 * ```ts
 * import { chain, chord, group } from "celeriac";
 * const run = await chain(fetchPage.with({ url }), parse.with(), store.with()).enqueue();
 * const report = await chord(group(urls.map((url) => fetchPage.with({ url }))), summarize.with()).enqueue();
 * console.log(await report.result());
 * ```
 *
 * @module
 */
import type { Store } from "../contracts.ts";
import { CeleriacError } from "../errors.ts";
import type { Run } from "../task.ts";
import type { EnqueueSpan, TraceCarrier } from "../telemetry.ts";
import { WorkflowEngine } from "./engine.ts";

/** A workflow node as it travels on the wire. */
export type WorkflowNode =
  | { t: "task"; task: string; input?: unknown; piped: boolean }
  | { t: "chain"; steps: WorkflowNode[] }
  | { t: "group"; members: WorkflowNode[] }
  | { t: "chord"; members: WorkflowNode[]; callback: WorkflowNode };

/** What happens when a node ends; carried in the envelope of the step that is running. */
export type Continuation =
  | { k: "chain"; id: string; q: string; pos: number; rest: WorkflowNode[]; up?: Continuation }
  | { k: "group"; id: string; q: string; i: number; n: number; up?: Continuation }
  | { k: "chord"; id: string; q: string; cb: WorkflowNode; up?: Continuation };

/** The app internals a workflow needs. */
export interface WorkflowHost {
  readonly store: Store;
  readonly clock: { now(): number };
  hasTask(name: string): boolean;
  queueOf(task: string): string;
  /**
   * Enqueues one step under run id `id` (the step's node id, so a cancel can find it) without
   * validating its input (the step validates when it runs).
   */
  enqueueStep(
    task: string,
    input: unknown,
    id: string,
    cont: Continuation,
    trace?: TraceCarrier,
  ): Promise<void>;
  /** A tracer's span around starting a whole workflow (absent or undefined: no tracing). */
  traceStart?(kind: string, id: string, queue: string): EnqueueSpan | undefined;
  /** Validates an explicit input now, so a bad workflow fails before anything starts. */
  checkInput(task: string, input: unknown): Promise<void>;
  /** Wakes `run.result()` waiters of a finished node. */
  settled(id: string): void;
  run(id: string, queue: string): Run<unknown>;
}

const HOST = Symbol("celeriac.workflow.host");

/** A step of a workflow: a task and its input (or the previous step's result), from `task.with()`. */
export interface Step {
  readonly node: WorkflowNode & { t: "task" };
  readonly [HOST]: WorkflowHost;
}

/** A workflow ready to start. */
export interface Workflow<R = unknown> {
  readonly node: WorkflowNode;
  /**
   * Starts the workflow; `input` feeds its first step(s) when they take the previous result.
   * Resolves to a run handle whose `result()` is the workflow's result.
   */
  enqueue(input?: unknown): Promise<Run<R>>;
}

/** Internal: makes a signature (used by `task.with()`). */
export function signature(host: WorkflowHost, task: string, args: readonly unknown[]): Step {
  const node: WorkflowNode & { t: "task" } =
    args.length === 0 ? { t: "task", task, piped: true } : { t: "task", task, input: args[0], piped: false };
  return { node, [HOST]: host };
}

type Part = Step | Workflow<unknown>;

function hostOf(parts: readonly Part[], what: string): WorkflowHost {
  let host: WorkflowHost | undefined;
  for (const part of parts) {
    const h = (part as { [HOST]?: WorkflowHost })[HOST];
    if (h === undefined) throw new TypeError(`${what}: every step must come from task.with() or a workflow`);
    if (host !== undefined && h !== host) throw new CeleriacError(`${what}: steps belong to different apps`);
    host = h;
  }
  if (host === undefined) throw new TypeError(`${what} needs at least one step`);
  return host;
}

function check(host: WorkflowHost, node: WorkflowNode): void {
  switch (node.t) {
    case "task":
      if (!host.hasTask(node.task))
        throw new CeleriacError(`workflow step "${node.task}" is not a registered task`);
      return;
    case "chain":
      for (const s of node.steps) check(host, s);
      return;
    case "group":
      for (const m of node.members) check(host, m);
      return;
    case "chord":
      for (const m of node.members) check(host, m);
      check(host, node.callback);
  }
}

function build<R>(host: WorkflowHost, node: WorkflowNode): Workflow<R> & { [HOST]: WorkflowHost } {
  check(host, node);
  return {
    node,
    [HOST]: host,
    enqueue: async (input?: unknown) => {
      await checkInputs(host, node);
      const engine = new WorkflowEngine(host);
      const id = crypto.randomUUID();
      const q = firstQueue(host, node);
      const span = host.traceStart?.(node.t, id, q);
      try {
        await engine.start(node, input, undefined, id, q, span?.carrier);
      } catch (error) {
        span?.end({ error });
        throw error;
      }
      span?.end({});
      return host.run(id, q) as Run<R>;
    },
  };
}

/**
 * Runs steps one after another; each step's result is the next step's input.
 *
 * @example
 * ```ts
 * const run = await chain(download.with({ url }), resize.with(), upload.with()).enqueue();
 * ```
 */
export function chain<R = unknown>(...steps: Part[]): Workflow<R> {
  const host = hostOf(steps, "chain()");
  return build(host, { t: "chain", steps: steps.map((s) => s.node) });
}

/**
 * Runs members in parallel; the result is the list of member results, in order.
 *
 * @example
 * ```ts
 * const run = await group(urls.map((url) => fetchPage.with({ url }))).enqueue();
 * ```
 */
export function group<R = unknown[]>(members: readonly Part[]): Workflow<R> {
  if (members.length === 0) throw new TypeError("group() needs at least one member");
  const host = hostOf(members, "group()");
  return build(host, { t: "group", members: members.map((m) => m.node) });
}

/**
 * Runs a group, then `callback` exactly once with the ordered member results. If a member fails
 * for good, the callback does not run and the chord fails.
 *
 * @example
 * ```ts
 * const run = await chord(group(parts.map((p) => render.with(p))), merge.with()).enqueue();
 * ```
 */
export function chord<R = unknown>(
  header: Workflow<unknown[]> | readonly Part[],
  callback: Part,
): Workflow<R> {
  const members = Array.isArray(header)
    ? (header as readonly Part[]).map((m) => m.node)
    : (() => {
        const node = (header as Workflow<unknown[]>).node;
        if (node.t !== "group") throw new TypeError("chord() takes a group or a list of members");
        return node.members;
      })();
  if (members.length === 0) throw new TypeError("chord() needs at least one member");
  const parts: Part[] = Array.isArray(header)
    ? [...(header as readonly Part[]), callback]
    : [header as Part, callback];
  const host = hostOf(parts, "chord()");
  return build(host, { t: "chord", members, callback: callback.node });
}

async function checkInputs(host: WorkflowHost, node: WorkflowNode): Promise<void> {
  switch (node.t) {
    case "task":
      if (!node.piped) await host.checkInput(node.task, node.input);
      return;
    case "chain":
      for (const s of node.steps) await checkInputs(host, s);
      return;
    case "group":
      for (const m of node.members) await checkInputs(host, m);
      return;
    case "chord":
      for (const m of node.members) await checkInputs(host, m);
      await checkInputs(host, node.callback);
  }
}

function firstQueue(host: WorkflowHost, node: WorkflowNode): string {
  switch (node.t) {
    case "task":
      return host.queueOf(node.task);
    case "chain":
      return firstQueue(host, node.steps[0]!);
    case "group":
    case "chord":
      return firstQueue(host, node.members[0]!);
  }
}
