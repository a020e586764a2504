/**
 * The contract of rate and concurrency limits as the broker enforces them while leasing: global
 * across workers, per key, with no attempt consumed by a run held back, and a slot that follows
 * its lease. Skipped for a broker that does not enforce limits (push brokers).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { createApp } from "../mod.ts";
import { DEADLINE_MS, type Env } from "./_env.ts";
import type { ContractTest } from "./_queue-ops-contract.ts";

function appOf(e: Env) {
  return createApp({ broker: e.b, store: e.b, ...(e.clock === undefined ? {} : { clock: e.clock }) });
}

/** Drains until `done` holds, letting time pass between rounds (the clock's, or real). */
async function drainUntil(e: Env, app: ReturnType<typeof appOf>, done: () => boolean, stepMs: number) {
  const deadline = Date.now() + DEADLINE_MS * 4;
  while (!done()) {
    await app.drain({ concurrency: 10 });
    if (done()) return;
    if (Date.now() > deadline) assert.fail("timed out draining");
    await e.advance(stepMs);
  }
}

/** The limits tests, for `brokerContract`. */
export function limitsContract(test: ContractTest): void {
  describe("limits", () => {
    test("a rate limit spreads starts across its period and uses no attempt for a run held back", async (e) => {
      if (e.b.queueOps === undefined) return;
      const app = appOf(e);
      const period = e.clock === undefined ? 600 : 10_000;
      const starts: number[] = [];
      const attempts: number[] = [];
      const t = app.task({
        name: "limited",
        rateLimit: { limit: 3, periodMs: period },
        run: (_: number, ctx) => {
          starts.push(e.now());
          attempts.push(ctx.attempt);
        },
      });
      const runs = await t.enqueueMany([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      await drainUntil(e, app, () => starts.length === 9, period / 6);
      assert.deepEqual(attempts, [1, 1, 1, 1, 1, 1, 1, 1, 1], "held-back runs kept their attempt");
      for (let i = 0; i + 3 < starts.length; i++) {
        // Any four starts span at least one step of the rate (period / limit), less timer slack.
        assert.ok(starts[i + 3]! - starts[i]! >= period / 3 - 50, `starts ${starts.join(", ")}`);
      }
      assert.ok(
        starts[8]! - starts[0]! >= period * (2 / 3) * 0.9,
        `nine starts at 3 per period: ${starts.join(", ")}`,
      );
      for (const r of runs) assert.equal((await r.status())?.state, "succeeded");
    });

    test("one hot key does not hold back other keys", async (e) => {
      if (e.b.queueOps === undefined) return;
      const app = appOf(e);
      const done = new Map<string, number>();
      const t = app.task({
        name: "keyed",
        rateLimit: { limit: 2, periodMs: 60_000, key: (i) => (i as { k: string }).k },
        run: (i: { k: string }) => {
          done.set(i.k, (done.get(i.k) ?? 0) + 1);
        },
      });
      await t.enqueueMany(Array.from({ length: 300 }, () => ({ k: "hot" })));
      await t.enqueueMany(Array.from({ length: 20 }, (_, i) => ({ k: `cold${i % 10}` })));
      await app.drain({ concurrency: 10 });
      assert.equal(done.get("hot"), 2, "the hot key ran its limit");
      for (let i = 0; i < 10; i++) assert.equal(done.get(`cold${i}`), 2, `cold${i} ran past the hot key`);
      const [q] = await e.b.queueOps.counts(["default"]);
      assert.equal(q?.limited, 298, "the hot key's other runs wait for their turn");
      assert.equal(q?.scheduled, 0, "held back by the limit, not scheduled");
    });

    test("a concurrency limit holds per key across workers and frees with each end", async (e) => {
      if (e.b.queueOps === undefined) return;
      const app = appOf(e);
      const running = new Map<string, number>();
      const peak = new Map<string, number>();
      let finished = 0;
      const t = app.task({
        name: "exclusive",
        concurrency: { limit: 2, key: (i) => (i as { k: string }).k },
        run: async (i: { k: string }) => {
          const n = (running.get(i.k) ?? 0) + 1;
          running.set(i.k, n);
          peak.set(i.k, Math.max(peak.get(i.k) ?? 0, n));
          await new Promise((resolve) => setTimeout(resolve, 5));
          running.set(i.k, (running.get(i.k) ?? 1) - 1);
          finished++;
        },
      });
      await t.enqueueMany([
        ...Array.from({ length: 12 }, () => ({ k: "a" })),
        ...Array.from({ length: 6 }, () => ({ k: "b" })),
      ]);
      const workers = [
        app.worker({ concurrency: 6, pollMs: 200 }).start(),
        app.worker({ concurrency: 6, pollMs: 200 }).start(),
      ];
      try {
        await e.eventually(
          async () => finished,
          (n) => n === 18,
          "every run to finish",
        );
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
      assert.deepEqual([peak.get("a"), peak.get("b")], [2, 2]);
    });

    test("runs held back by a limit are counted, listed, cancelled and purged", async (e) => {
      const ops = e.b.queueOps;
      if (ops === undefined) return;
      const app = appOf(e);
      const ran: string[] = [];
      const single = app.task({
        name: "single",
        concurrency: { limit: 1 },
        run: (i: string) => void ran.push(i),
      });
      const rated = app.task({
        name: "rated",
        rateLimit: { limit: 1, periodMs: 3_600_000 },
        run: (i: string) => void ran.push(i),
      });
      const [c1, c2, c3] = await single.enqueueMany(["c1", "c2", "c3"]);
      const [r1, r2, r3] = await rated.enqueueMany(["r1", "r2", "r3"]);
      const leased = await e.receive(["default"], { max: 10, leaseMs: 600_000 });
      assert.deepEqual(leased.map((d) => d.id).sort(), [c1!.id, r1!.id].sort(), "one of each runs");
      assert.deepEqual(await e.receive(["default"], { max: 10, leaseMs: 600_000 }), [], "the rest wait");
      const [held] = await ops.counts(["default"]);
      assert.deepEqual(
        { ...held, oldestWaitingAt: null },
        {
          queue: "default",
          waiting: 0,
          scheduled: 0,
          retrying: 0,
          limited: 4,
          active: 2,
          paused: false,
          oldestWaitingAt: null,
        },
      );
      const listed = new Map<string, string>();
      for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
        const page = await ops.list("default", { cursor, limit: 2 });
        for (const r of page.runs) listed.set(r.id, r.state);
        cursor = page.cursor;
      }
      assert.deepEqual(
        Object.fromEntries([...listed].sort()),
        Object.fromEntries(
          [
            [c1!.id, "active"],
            [c2!.id, "limited"],
            [c3!.id, "limited"],
            [r1!.id, "active"],
            [r2!.id, "limited"],
            [r3!.id, "limited"],
          ].sort(),
        ),
      );
      assert.equal(await c2!.cancel(), true, "a parked run can be cancelled");
      assert.equal(await r2!.cancel(), true, "a run waiting for its rate turn can be cancelled");
      assert.equal((await ops.counts(["default"]))[0]?.limited, 2);
      assert.equal(await ops.purge("default"), 2, "the purge takes the held-back runs");
      assert.equal((await c3!.status())?.state, "cancelled");
      assert.equal((await r3!.status())?.state, "cancelled");
      assert.equal((await ops.counts(["default"]))[0]?.limited, 0);
      await e.b.ack!(leased);
      await e.advance(10);
      assert.deepEqual(
        await e.receive(["default"], { max: 10, leaseMs: 600_000 }),
        [],
        "nothing held back is left",
      );
      assert.deepEqual(ran, []);
    });

    test("a slot follows its lease: a holder that never ends frees it when the lease expires", async (e) => {
      if (e.b.queueOps === undefined) return;
      const app = appOf(e);
      const ran: string[] = [];
      const t = app.task({ name: "single", concurrency: { limit: 1 }, run: (i: string) => void ran.push(i) });
      await t.enqueueMany(["first", "second"]);
      const leaseMs = e.clock === undefined ? 400 : 30_000;
      const [held] = await e.b.receive!({ queues: ["default"], max: 10, leaseMs, waitMs: 0 });
      assert.ok(held, "the first run is leased (its worker then dies)");
      assert.deepEqual(
        await e.b.receive!({ queues: ["default"], max: 10, leaseMs, waitMs: 0 }),
        [],
        "no second slot",
      );
      await e.advance(leaseMs + 50);
      await drainUntil(e, app, () => ran.length === 2, 50);
      assert.deepEqual(ran.sort(), ["first", "second"]);
    });
  });
}
