/**
 * The contract of a pull broker's queue ops (`broker.queueOps`): counts, pause and resume, purge
 * and listing, as operators use them. Skipped for a broker without queue ops.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { Message, QueueOps } from "../backend.ts";
import { createApp } from "../mod.ts";
import { type Env, ids, msg } from "./_env.ts";

/** Registers one test (the suite's runner: a fresh backend per test). */
export type ContractTest = (title: string, body: (e: Env) => Promise<void>) => void;

function ops(e: Env): QueueOps {
  const q = e.b.queueOps;
  assert.ok(q, "the broker has queue ops");
  return q;
}

/** A delay the test waits out: long on a manual clock, short on real time. */
const later = (e: Env) => (e.clock === undefined ? 1_000 : 60_000);

function retryOf(id: string, notBefore: number): Message {
  return { ...msg(id, "q", 0, notBefore), attempt: 2 };
}

/** The queue ops tests, for `brokerContract`. */
export function queueOpsContract(test: ContractTest): void {
  describe("queue ops", () => {
    test("counts waiting, scheduled, retrying and active messages and the oldest wait", async (e) => {
      if (e.b.queueOps === undefined) return;
      const sentAt = e.now();
      await e.b.send([msg("a"), msg("b"), msg("c")]);
      await e.b.send([msg("later", "q", 0, sentAt + later(e)), retryOf("again", sentAt + later(e))]);
      assert.deepEqual(ids(await e.receive(["q"], { max: 1, leaseMs: 600_000 })), ["a"]);
      const [q, none] = await ops(e).counts(["q", "never-used"]);
      assert.ok(q?.oldestWaitingAt != null, "the oldest waiting time is known");
      assert.ok(
        q.oldestWaitingAt >= sentAt - 5 && q.oldestWaitingAt <= e.now(),
        `oldest ${q.oldestWaitingAt}`,
      );
      assert.deepEqual(
        { ...q, oldestWaitingAt: 0 },
        {
          queue: "q",
          waiting: 2,
          scheduled: 1,
          retrying: 1,
          limited: 0,
          active: 1,
          paused: false,
          oldestWaitingAt: 0,
        },
      );
      assert.deepEqual(none, {
        queue: "never-used",
        waiting: 0,
        scheduled: 0,
        retrying: 0,
        limited: 0,
        active: 0,
        paused: false,
        oldestWaitingAt: null,
      });
      assert.ok((await ops(e).known()).includes("q"));
      await e.advance(later(e) + 1);
      const due = await e.receive(["q"]);
      assert.deepEqual(ids(due).sort(), ["again", "b", "c", "later"]);
      const [after] = await ops(e).counts(["q"]);
      assert.deepEqual(
        {
          waiting: after?.waiting,
          scheduled: after?.scheduled,
          retrying: after?.retrying,
          active: after?.active,
        },
        { waiting: 0, scheduled: 0, retrying: 0, active: 5 },
        "promoted messages leave the delayed counts",
      );
      await e.b.ack!(due);
      const [acked] = await ops(e).counts(["q"]);
      assert.equal(acked?.active, 1);
    });

    test("a paused queue keeps its messages while others drain, takes sends, and resumes waiters", async (e) => {
      if (e.b.queueOps === undefined) return;
      await e.b.send([msg("a1", "qa"), msg("a2", "qa"), msg("b1", "qb"), msg("b2", "qb")]);
      await ops(e).pause("qa");
      assert.deepEqual(ids(await e.receive(["qa", "qb"])), ["b1", "b2"]);
      await e.b.send([msg("a3", "qa")]);
      assert.deepEqual(ids(await e.receive(["qa", "qb"])), []);
      const [qa] = await ops(e).counts(["qa"]);
      assert.equal(qa?.paused, true);
      assert.equal(qa?.waiting, 3, "the paused queue's waiting count stays put");
      const waiting = e.receive(["qa"], { waitMs: 4_000 });
      await ops(e).resume("qa");
      assert.deepEqual(ids(await waiting), ["a1", "a2", "a3"], "a consumer waiting on the queue is woken");
      assert.equal((await ops(e).counts(["qa"]))[0]?.paused, false);
    });

    test("purge removes waiting and delayed messages, leaves leased ones, cancels their runs", async (e) => {
      if (e.b.queueOps === undefined) return;
      const app = createApp({ broker: e.b, store: e.b, ...(e.clock ? { clock: e.clock } : {}) });
      const t = app.task({ name: "t", queue: "q", run: () => 1 });
      const running = await t.enqueue(undefined);
      const [leased] = await e.receive(["q"], { leaseMs: 600_000 });
      assert.equal(leased?.id, running.id);
      const waiting = await t.enqueue(undefined);
      const delayed = await t.enqueue(undefined, { delayMs: later(e) });
      await e.b.send([msg("bare", "q")]);
      assert.equal(await ops(e).purge("q"), 3);
      assert.equal((await waiting.status())?.state, "cancelled");
      assert.equal((await delayed.status())?.state, "cancelled");
      assert.notEqual((await running.status())?.state, "cancelled", "a leased run is left alone");
      const [q] = await ops(e).counts(["q"]);
      assert.deepEqual([q?.waiting, q?.scheduled, q?.retrying, q?.active], [0, 0, 0, 1]);
      await e.advance(later(e) + 1);
      assert.deepEqual(await e.receive(["q"]), [], "nothing purged comes back");
    });

    test("purge under concurrent sends removes only what was sent before it began", async (e) => {
      if (e.b.queueOps === undefined) return;
      const before = Array.from({ length: 1_200 }, (_, i) => msg(`old${i}`));
      await e.b.send(before.slice(0, 600));
      await e.b.send(before.slice(600).map((m, i) => ({ ...m, notBefore: e.now() + later(e) + i })));
      let done = false;
      const purged = ops(e)
        .purge("q")
        .finally(() => {
          done = true;
        });
      // Sends from the moment the purge has begun (its first page is gone) until it ends.
      await e.eventually(
        async () => done || ((await ops(e).counts(["q"]))[0]?.waiting ?? 600) < 600,
        (begun) => begun,
        "the purge to begin",
      );
      const late: Message[] = [];
      let n = 0;
      do {
        const batch = [msg(`new${n}`), msg(`new${n + 1}`, "q", 0, e.now() + later(e))];
        n += 2;
        late.push(...batch);
        await e.b.send(batch);
      } while (!done);
      const removed = await purged;
      assert.ok(removed <= before.length, `removed ${removed}`);
      const [q] = await ops(e).counts(["q"]);
      assert.equal((q?.waiting ?? 0) + (q?.scheduled ?? 0), before.length - removed + late.length);
      await e.advance(2 * later(e) + 600);
      const left = new Set<string>();
      for (;;) {
        const got = await e.receive(["q"], { max: 500 });
        if (got.length === 0) break;
        for (const d of got) left.add(d.id);
      }
      for (const m of late) assert.ok(left.has(m.id), `${m.id}, sent while the purge ran, is kept`);
    });

    test("lists every message of a queue page by page with its state", async (e) => {
      if (e.b.queueOps === undefined) return;
      const app = createApp({ broker: e.b, store: e.b, ...(e.clock ? { clock: e.clock } : {}) });
      const t = app.task({ name: "listed", queue: "q", run: () => 1 });
      const runs = await t.enqueueMany(Array.from({ length: 7 }, () => undefined));
      const delayed = await t.enqueue(undefined, { delayMs: 60_000 });
      await e.b.send([retryOf("again", e.now() + 60_000)]);
      const [leased] = await e.receive(["q"], { max: 1 });
      const seen = new Map<string, { task: string | null; state: string; at: number | null }>();
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await ops(e).list("q", { cursor, limit: 3 });
        assert.ok(page.runs.length <= 3);
        for (const r of page.runs) seen.set(r.id, { task: r.task, state: r.state, at: r.at });
        cursor = page.cursor;
        assert.ok(++pages < 50, "the listing ends");
      } while (cursor !== null);
      assert.equal(seen.size, 9);
      assert.equal(seen.get(leased?.id ?? "")?.state, "active");
      assert.ok((seen.get(leased?.id ?? "")?.at ?? 0) > e.now(), "an active message's lease ends later");
      for (const r of runs.slice(1))
        assert.deepEqual(seen.get(r.id), { task: "listed", state: "waiting", at: null });
      assert.equal(seen.get(delayed.id)?.state, "scheduled");
      assert.ok(Math.abs((seen.get(delayed.id)?.at ?? 0) - (e.now() + 60_000)) < 5_000);
      assert.equal(seen.get("again")?.state, "retrying");
      await assert.rejects(ops(e).list("q", { cursor: "no such cursor", limit: 3 }), TypeError);
    });
  });
}
