/**
 * The workflow engine: starts workflow nodes and carries each step's result or failure up the
 * tree (chain: the next step; group: a member slot written once plus the store's atomic
 * counter; chord: the callback once the group is complete).
 *
 * @module
 */
import type { ErrorInfo, RunRecord } from "../contracts.ts";
import { CeleriacError } from "../errors.ts";
import { groupCountKey, groupMemberKey } from "../keys.ts";
import { ACTIVE_GUARD } from "../run-state.ts";
import type { TraceCarrier } from "../telemetry.ts";
import type { Continuation, WorkflowHost, WorkflowNode } from "./workflow.ts";

const TTL_MS = 86_400_000;

const KIND = { chain: "workflow.chain", group: "workflow.group", chord: "workflow.chord" } as const;

/** Starts nodes and carries results and failures up the tree. */
export class WorkflowEngine {
  readonly #host: WorkflowHost;

  constructor(host: WorkflowHost) {
    this.#host = host;
  }

  /**
   * Starts `node` (id and queue of its record given for composite nodes) with a piped input;
   * `trace`: the context its steps are enqueued under.
   */
  async start(
    node: WorkflowNode,
    input: unknown,
    then: Continuation | undefined,
    id: string,
    q: string,
    trace?: TraceCarrier,
  ): Promise<void> {
    const host = this.#host;
    if (node.t === "task") {
      if (then === undefined) throw new CeleriacError("a single task is not a workflow: use task.enqueue()");
      await host.enqueueStep(node.task, node.piped ? input : node.input, id, then, trace);
      return;
    }
    await this.#open(id, q, node.t);
    if (node.t === "chain") {
      const [first, ...rest] = node.steps;
      const cont: Continuation = { k: "chain", id, q, pos: 0, rest };
      if (then !== undefined) cont.up = then;
      await this.start(first!, input, cont, `${id}.0`, q, trace);
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
      await this.start(node.members[i]!, input, cont, `${groupId}.${i}`, q, trace);
    }
  }

  /** A step (or a nested node) ended well with `result`; `trace`: the context of the attempt. */
  async succeeded(cont: Continuation, result: unknown, trace?: TraceCarrier): Promise<void> {
    switch (cont.k) {
      case "chain": {
        const [next, ...rest] = cont.rest;
        if (next === undefined) {
          await this.#close(cont.id, cont.q, { state: "succeeded", result });
          if (cont.up !== undefined) await this.succeeded(cont.up, result, trace);
          return;
        }
        // A cancelled chain starts no further step.
        if (!(await this.#stillActive(cont.id, cont.q))) return;
        const pos = cont.pos + 1;
        const following: Continuation = { ...cont, pos, rest };
        await this.start(next, result, following, `${cont.id}.${pos}`, cont.q, trace);
        return;
      }
      case "group": {
        const slot = JSON.stringify({ ok: true, v: result });
        await this.#member(cont, slot, trace);
        return;
      }
      case "chord": {
        const cb: Continuation = { k: "chain", id: cont.id, q: cont.q, pos: 0, rest: [] };
        if (cont.up !== undefined) cb.up = cont.up;
        // A cancelled chord runs no callback.
        if (!(await this.#stillActive(cont.id, cont.q))) return;
        if (cont.cb.t === "task") {
          await this.#host.enqueueStep(
            cont.cb.task,
            cont.cb.piped ? result : cont.cb.input,
            `${cont.id}.cb`,
            cb,
            trace,
          );
        } else {
          await this.start(cont.cb, result, cb, `${cont.id}.cb`, cont.q, trace);
        }
        return;
      }
    }
  }

  /** A step (or a nested node) failed for good. */
  async failed(cont: Continuation, error: ErrorInfo, where: string, trace?: TraceCarrier): Promise<void> {
    switch (cont.k) {
      case "chain": {
        const info = {
          name: error.name,
          message: `step ${cont.pos + 1} (${where}) failed: ${error.message}`,
        };
        await this.#close(cont.id, cont.q, { state: "failed", error: info });
        if (cont.up !== undefined) await this.failed(cont.up, info, "chain", trace);
        return;
      }
      case "group":
        await this.#member(
          cont,
          JSON.stringify({ ok: false, e: { ...error, message: `${where}: ${error.message}` } }),
          trace,
        );
        return;
      case "chord": {
        const info = { name: error.name, message: `chord header failed, callback not run: ${error.message}` };
        await this.#close(cont.id, cont.q, { state: "failed", error: info });
        if (cont.up !== undefined) await this.failed(cont.up, info, "chord", trace);
      }
    }
  }

  /** Records one member's outcome once; the member that completes the set closes the group. */
  async #member(cont: Continuation & { k: "group" }, slot: string, trace?: TraceCarrier): Promise<void> {
    const { store } = this.#host;
    const fresh = (await store.setIfAbsent(groupMemberKey(cont.id, cont.i), slot, TTL_MS)) === null;
    let complete: boolean;
    if (fresh) {
      complete = (await store.incr(groupCountKey(cont.id), 1, TTL_MS)) === cont.n;
    } else {
      // A duplicate (or a retry after a crash between the two writes): count the slots themselves.
      const counted = Number((await store.get(groupCountKey(cont.id))) ?? "0");
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
        if (cont.up !== undefined) await this.succeeded(cont.up, results, trace);
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
      if (cont.up !== undefined) await this.failed(cont.up, info, "group", trace);
    }
  }

  #slots(cont: Continuation & { k: "group" }): Promise<(string | null)[]> {
    const { store } = this.#host;
    return Promise.all(Array.from({ length: cont.n }, (_, i) => store.get(groupMemberKey(cont.id, i))));
  }

  /** False when a composite node was cancelled (or has ended): it continues no further. */
  async #stillActive(id: string, queue: string): Promise<boolean> {
    return (await this.#host.store.getRun(id, queue))?.state === "active";
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
      { ttlMs: TTL_MS, queue, onlyIf: ACTIVE_GUARD },
    );
    if (res.applied) this.#host.settled(id);
    return res.applied;
  }
}
