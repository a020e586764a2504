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
import type { ErrorInfo, RunRecord, Store } from "./contracts.ts";
import { CeleriacError } from "./errors.ts";
import type { Run } from "./task.ts";

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
  /** Enqueues one step without validating its input (the step validates when it runs). */
  enqueueStep(task: string, input: unknown, key: string, cont: Continuation): Promise<void>;
  /** Validates an explicit input now, so a bad workflow fails before anything starts. */
  checkInput(task: string, input: unknown): Promise<void>;
  /** Wakes `run.result()` waiters of a finished node. */
  settled(id: string): void;
  run(id: string, queue: string): Run<unknown>;
}

const TTL_MS = 86_400_000;
const HOST = Symbol("celeriac.workflow.host");

/** A step of a workflow: a task and its input (or the previous step's result). */
export interface Signature {
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
export function signature(host: WorkflowHost, task: string, args: readonly unknown[]): Signature {
  const node: WorkflowNode & { t: "task" } =
    args.length === 0 ? { t: "task", task, piped: true } : { t: "task", task, input: args[0], piped: false };
  return { node, [HOST]: host };
}

type Part = Signature | Workflow<unknown>;

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
      await engine.start(node, input, undefined, id, q);
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

const KIND = { chain: "workflow.chain", group: "workflow.group", chord: "workflow.chord" } as const;

/** Starts nodes and carries results and failures up the tree. */
export class WorkflowEngine {
  readonly #host: WorkflowHost;

  constructor(host: WorkflowHost) {
    this.#host = host;
  }

  /** Starts `node` (id and queue of its record given for composite nodes) with a piped input. */
  async start(
    node: WorkflowNode,
    input: unknown,
    then: Continuation | undefined,
    id: string,
    q: string,
  ): Promise<void> {
    const host = this.#host;
    if (node.t === "task") {
      if (then === undefined) throw new CeleriacError("a single task is not a workflow: use task.enqueue()");
      await host.enqueueStep(node.task, node.piped ? input : node.input, `wf:${id}`, then);
      return;
    }
    await this.#open(id, q, node.t);
    if (node.t === "chain") {
      const [first, ...rest] = node.steps;
      const cont: Continuation = { k: "chain", id, q, pos: 0, rest };
      if (then !== undefined) cont.up = then;
      await this.start(first!, input, cont, `${id}.0`, q);
      return;
    }
    const groupId = node.t === "chord" ? `${id}.g` : id;
    let groupThen: Continuation | undefined = then;
    if (node.t === "chord") {
      await this.#open(groupId, q, "group");
      groupThen = { k: "chord", id, q, cb: node.callback };
      if (then !== undefined) groupThen.up = then;
    }
    const n = node.members.length;
    for (let i = 0; i < n; i++) {
      const cont: Continuation = { k: "group", id: groupId, q, i, n };
      if (groupThen !== undefined) cont.up = groupThen;
      await this.start(node.members[i]!, input, cont, `${groupId}.${i}`, q);
    }
  }

  /** A step (or a nested node) ended well with `result`. */
  async succeeded(cont: Continuation, result: unknown): Promise<void> {
    switch (cont.k) {
      case "chain": {
        const [next, ...rest] = cont.rest;
        if (next === undefined) {
          await this.#close(cont.id, cont.q, { state: "succeeded", result });
          if (cont.up !== undefined) await this.succeeded(cont.up, result);
          return;
        }
        const pos = cont.pos + 1;
        const following: Continuation = { ...cont, pos, rest };
        await this.start(next, result, following, `${cont.id}.${pos}`, cont.q);
        return;
      }
      case "group": {
        const slot = JSON.stringify({ ok: true, v: result });
        await this.#member(cont, slot);
        return;
      }
      case "chord": {
        const cb: Continuation = { k: "chain", id: cont.id, q: cont.q, pos: 0, rest: [] };
        if (cont.up !== undefined) cb.up = cont.up;
        if (cont.cb.t === "task") {
          await this.#host.enqueueStep(
            cont.cb.task,
            cont.cb.piped ? result : cont.cb.input,
            `wf:${cont.id}.cb`,
            cb,
          );
        } else {
          await this.start(cont.cb, result, cb, `${cont.id}.cb`, cont.q);
        }
        return;
      }
    }
  }

  /** A step (or a nested node) failed for good. */
  async failed(cont: Continuation, error: ErrorInfo, where: string): Promise<void> {
    switch (cont.k) {
      case "chain": {
        const info = {
          name: error.name,
          message: `step ${cont.pos + 1} (${where}) failed: ${error.message}`,
        };
        await this.#close(cont.id, cont.q, { state: "failed", error: info });
        if (cont.up !== undefined) await this.failed(cont.up, info, "chain");
        return;
      }
      case "group":
        await this.#member(
          cont,
          JSON.stringify({ ok: false, e: { ...error, message: `${where}: ${error.message}` } }),
        );
        return;
      case "chord": {
        const info = { name: error.name, message: `chord header failed, callback not run: ${error.message}` };
        await this.#close(cont.id, cont.q, { state: "failed", error: info });
        if (cont.up !== undefined) await this.failed(cont.up, info, "chord");
      }
    }
  }

  /** Records one member's outcome once; the member that completes the set closes the group. */
  async #member(cont: Continuation & { k: "group" }, slot: string): Promise<void> {
    const { store } = this.#host;
    const base = `wf:${cont.id}`;
    const fresh = (await store.setIfAbsent(`${base}:m:${cont.i}`, slot, TTL_MS)) === null;
    let complete: boolean;
    if (fresh) {
      complete = (await store.incr(`${base}:n`, 1, TTL_MS)) === cont.n;
    } else {
      // A duplicate (or a retry after a crash between the two writes): count the slots themselves.
      const counted = Number((await store.get(`${base}:n`)) ?? "0");
      if (counted >= cont.n) return;
      complete = (await this.#slots(cont)).every((s) => s !== null);
    }
    if (!complete) return;
    const slots = await this.#slots(cont);
    const outcomes = slots.map((s) => JSON.parse(s ?? "null") as { ok: boolean; v?: unknown; e?: ErrorInfo });
    const failures = outcomes.flatMap((o, i) =>
      o.ok ? [] : [`member ${i + 1}: ${o.e?.name}: ${o.e?.message}`],
    );
    if (failures.length === 0) {
      const results = outcomes.map((o) => o.v);
      if (await this.#close(cont.id, cont.q, { state: "succeeded", result: results })) {
        if (cont.up !== undefined) await this.succeeded(cont.up, results);
      }
      return;
    }
    const report = outcomes.map((o) =>
      o.ok ? { state: "succeeded", result: o.v } : { state: "failed", error: o.e },
    );
    const info = {
      name: "GroupError",
      message: `${failures.length} of ${cont.n} failed: ${failures.join("; ")}`,
    };
    if (await this.#close(cont.id, cont.q, { state: "failed", error: info, result: report })) {
      if (cont.up !== undefined) await this.failed(cont.up, info, "group");
    }
  }

  #slots(cont: Continuation & { k: "group" }): Promise<(string | null)[]> {
    const { store } = this.#host;
    return Promise.all(Array.from({ length: cont.n }, (_, i) => store.get(`wf:${cont.id}:m:${i}`)));
  }

  async #open(id: string, queue: string, kind: keyof typeof KIND): Promise<void> {
    const now = this.#host.clock.now();
    const record: RunRecord = {
      id,
      task: KIND[kind],
      queue,
      state: "active",
      attempt: 1,
      maxAttempts: 1,
      enqueuedAt: now,
      startedAt: now,
      updatedAt: now,
    };
    await this.#host.store.updateRun(id, record, { ttlMs: TTL_MS, queue, onlyIf: ["missing"] });
  }

  /** Ends a composite node once; false when it had already ended. */
  async #close(id: string, queue: string, patch: Partial<RunRecord>): Promise<boolean> {
    const now = this.#host.clock.now();
    const res = await this.#host.store.updateRun(
      id,
      { ...patch, finishedAt: now, updatedAt: now },
      { ttlMs: TTL_MS, queue, onlyIf: ["active"] },
    );
    if (res.applied) this.#host.settled(id);
    return res.applied;
  }
}
