/**
 * The contract of a store's operators' part (`store.ops`): the worker registry with its TTL,
 * control messages handed out once, and statistics added up per minute and in total. Skipped for
 * a store without it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { OpsStore, StatsRow, WorkerInfo } from "../backend.ts";
import { type Env, msg } from "./_env.ts";
import type { ContractTest } from "./_queue-ops-contract.ts";

function ops(e: Env): OpsStore {
  const o = e.b.ops;
  assert.ok(o, "the store has an operators' part");
  return o;
}

function worker(id: string, at: number, queues = ["q"]): WorkerInfo {
  return {
    id,
    kind: "worker",
    hostname: "host-1",
    runtime: "Test/1",
    pid: 42,
    queues,
    concurrency: 4,
    prefetch: 0,
    startedAt: at,
    version: "0.0.0",
    beatAt: at,
    heartbeatMs: 100,
    state: "running",
    counters: { processed: 3, succeeded: 2, failed: 1, retried: 0 },
    active: [{ id: "r1", queue: "q", since: at }],
  };
}

const row = (minute: number, values: Record<string, number>, task = "t"): StatsRow => ({
  minute,
  task,
  queue: "q",
  values,
});

/** The operators' store tests, for `brokerContract`. */
export function opsStoreContract(test: ContractTest): void {
  describe("operators' store", () => {
    test("registers workers, forgets a stopped one and drops one whose reports stopped", async (e) => {
      if (e.b.ops === undefined) return;
      const ttl = e.clock === undefined ? 600 : 15_000;
      assert.deepEqual(
        await ops(e).report({ worker: worker("w1", e.now()), ttlMs: ttl, statsTtlMs: 60_000 }),
        [],
      );
      await ops(e).report({ worker: worker("w2", e.now(), ["a", "b"]), ttlMs: 60_000, statsTtlMs: 60_000 });
      await ops(e).report({ worker: worker("w3", e.now()), ttlMs: 60_000, statsTtlMs: 60_000 });
      const live = await ops(e).workers();
      assert.deepEqual(live.map((w) => w.id).sort(), ["w1", "w2", "w3"]);
      assert.deepEqual(
        live.find((w) => w.id === "w2"),
        worker("w2", live.find((w) => w.id === "w2")?.startedAt ?? 0, ["a", "b"]),
      );
      await ops(e).forget("w3");
      await e.advance(ttl + 50);
      assert.deepEqual(
        (await ops(e).workers()).map((w) => w.id),
        ["w2"],
        "w1 missed its beats, w3 stopped",
      );
      assert.equal(await ops(e).control("w1", { type: "shutdown" }), false, "no command for a gone worker");
    });

    test("hands each control command to its worker once, with its next report", async (e) => {
      if (e.b.ops === undefined) return;
      const beat = () => ops(e).report({ worker: worker("w1", e.now()), ttlMs: 60_000, statsTtlMs: 60_000 });
      await beat();
      assert.equal(await ops(e).control("w1", { type: "concurrency", concurrency: 7 }), true);
      assert.equal(await ops(e).control("w1", { type: "shutdown" }), true);
      assert.equal(await ops(e).control("nobody", { type: "shutdown" }), false);
      assert.deepEqual(await beat(), [{ type: "concurrency", concurrency: 7 }, { type: "shutdown" }]);
      assert.deepEqual(await beat(), []);
    });

    test("adds statistics per minute and in total", async (e) => {
      if (e.b.ops === undefined) return;
      const m = Math.floor(e.now() / 60_000);
      await ops(e).report({
        stats: [row(m - 1, { s: 2, rt3: 2 }), row(m, { s: 1, f: 1 })],
        ttlMs: 1,
        statsTtlMs: 600_000,
      });
      await ops(e).report({
        stats: [row(m, { s: 4, rtsum: 1500 }), row(m, { x: 1 }, 'we"ird\n')],
        ttlMs: 1,
        statsTtlMs: 600_000,
      });
      const got = await ops(e).stats(m);
      const sort = (rows: StatsRow[]) =>
        rows.map((r) => ({ ...r, values: { ...r.values } })).sort((a, b) => a.task.localeCompare(b.task));
      assert.deepEqual(sort(got.minutes), [
        row(m, { s: 5, f: 1, rtsum: 1500 }),
        row(m, { x: 1 }, 'we"ird\n'),
      ]);
      assert.deepEqual(
        sort(got.totals).map((r) => ({ task: r.task, values: r.values })),
        [
          { task: "t", values: { s: 7, f: 1, rt3: 2, rtsum: 1500 } },
          { task: 'we"ird\n', values: { x: 1 } },
        ],
      );
      assert.equal((await ops(e).stats(m - 1)).minutes.length, 3);
    });

    test("counts dead letters per queue", async (e) => {
      if (e.b.ops === undefined) return;
      const dead = (id: string, queue: string) => ({
        id,
        queue,
        task: "t",
        reason: "r",
        error: { name: "Error", message: "x" },
        errors: [],
        body: msg(id, queue).body,
        at: e.now(),
      });
      await e.b.addDeadLetter(dead("a", "qa"));
      await e.b.addDeadLetter(dead("b", "qa"));
      await e.b.addDeadLetter(dead("c", "qb"));
      assert.deepEqual(await ops(e).deadLetterCounts(["qa", "qb", "none"]), [2, 1, 0]);
    });
  });
}
