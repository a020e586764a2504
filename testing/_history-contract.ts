/**
 * The contract of a store's run history (`store.history`): runs listed newest first across
 * queues and paged without repeats or gaps, each filter (task, state, idempotency key, time,
 * text), a run with its input and workflow meta, and the change log read from a cursor. The
 * runs are made by an app on the backend, so a backend that writes its index inside its own
 * steps (Redis' scripts) is tested where it writes. Skipped for a store without a history.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { HistoryQuery, HistoryRun, RunHistory } from "../backend.ts";
import { type App, chain, createApp } from "../mod.ts";
import type { Env } from "./_env.ts";
import type { ContractTest } from "./_queue-ops-contract.ts";

function appOn(e: Env): App {
  return createApp({ broker: e.b, store: e.b, ...(e.clock === undefined ? {} : { clock: e.clock }) });
}

function historyOf(e: Env): RunHistory {
  const h = e.b.history;
  assert.ok(h, "the store has a history");
  return h;
}

/** Every page of a query, followed by cursor; asserts no page is over the limit. */
async function all(h: RunHistory, query: Omit<HistoryQuery, "limit">, limit: number): Promise<HistoryRun[]> {
  const out: HistoryRun[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1_000; pages++) {
    const page = await h.list({ ...query, limit, cursor });
    assert.ok(page.runs.length <= limit, "a page holds at most its limit");
    out.push(...page.runs);
    cursor = page.cursor;
    if (cursor === null) return out;
  }
  assert.fail("the pages never ended");
}

/** Lets the backend's clock pass one ms, so runs enqueued after have later times. */
async function nextMs(e: Env): Promise<void> {
  const at = e.now();
  if (e.clock !== undefined) e.clock.advance(1);
  else
    await e.eventually(
      async () => Date.now(),
      (t) => t > at,
      "the next ms",
    );
}

/** Registers the run history tests with `brokerContract`'s runner. */
export function historyContract(test: ContractTest): void {
  describe("run history", () => {
    test("lists runs newest first across queues, in pages without repeats or gaps", async (e) => {
      if (e.b.history === undefined) return;
      const app = appOn(e);
      const a = app.task({ name: "hist.a", queue: "ha", run: (n: number) => n });
      const b = app.task({ name: "hist.b", queue: "hb", run: (n: number) => n });
      const ids: string[] = [];
      for (let i = 0; i < 14; i++) {
        ids.push((await (i % 3 === 0 ? b : a).enqueue(i)).id);
        if (i % 4 === 0) await nextMs(e);
      }
      const h = historyOf(e);
      for (const limit of [1, 3, 5, 20]) {
        const runs = await all(h, { queues: ["ha", "hb"] }, limit);
        assert.deepEqual(
          runs.map((r) => r.id).sort(),
          [...ids].sort(),
          `every run exactly once at limit ${limit}`,
        );
        for (let i = 1; i < runs.length; i++) {
          assert.ok(runs[i - 1]!.enqueuedAt >= runs[i]!.enqueuedAt, "newest first");
        }
      }
      const onlyB = await all(h, { queues: ["hb"] }, 2);
      assert.deepEqual(
        onlyB.map((r) => r.queue),
        Array(5).fill("hb"),
      );
      const first = (await h.list({ queues: ["ha", "hb"], limit: 1 })).runs[0]!;
      assert.equal(first.id, ids[13], "the newest first");
      assert.deepEqual(first.input, 13, "with its input");
      assert.equal(first.state, "queued");
      assert.deepEqual((await h.list({ queues: ["nowhere"], limit: 5 })).runs, []);
      await assert.rejects(h.list({ queues: ["ha"], limit: 0 }), RangeError);
      await assert.rejects(h.list({ queues: ["ha"], limit: 5, state: "nope" as never }), TypeError);
    });

    test("filters by task, state, idempotency key, time and text, and gets one run", async (e) => {
      if (e.b.history === undefined) return;
      const app = appOn(e);
      const ok = app.task({ name: "hist.ok", queue: "hf", run: (s: { word: string }) => ({ echo: s.word }) });
      const bad = app.task({
        name: "hist.bad",
        queue: "hf",
        retry: { maxAttempts: 1 },
        run: (): never => {
          throw new Error("kaput Zebra");
        },
      });
      const t0 = e.now();
      const r1 = await ok.enqueue({ word: "alpha" });
      const r2 = await ok.enqueue({ word: "Needle-in-input" }, { idempotencyKey: "order-77" });
      await nextMs(e);
      const t1 = e.now();
      const r3 = await bad.enqueue({ word: "gamma" } as never);
      const later = await ok.enqueue({ word: "delayed" }, { delayMs: 60_000 });
      await e.eventually(
        async () => {
          await app.drain();
          return Promise.all([r1, r2, r3].map(async (r) => (await r.status())?.state));
        },
        (s) => s.join() === "succeeded,succeeded,failed",
        "the three runs to end",
      );
      const h = historyOf(e);
      const ids = async (q: Omit<HistoryQuery, "limit" | "queues">) =>
        (await all(h, { queues: ["hf"], ...q }, 2)).map((r) => r.id).sort();
      assert.deepEqual(await ids({ task: "hist.ok" }), [r1.id, r2.id, later.id].sort());
      assert.deepEqual(await ids({ state: "succeeded" }), [r1.id, r2.id].sort());
      assert.deepEqual(await ids({ state: "failed" }), [r3.id]);
      assert.deepEqual(await ids({ state: "scheduled" }), [later.id]);
      assert.deepEqual(await ids({ task: "hist.ok", state: "succeeded" }), [r1.id, r2.id].sort());
      assert.deepEqual(await ids({ task: "hist.bad", state: "succeeded" }), []);
      assert.deepEqual(await ids({ idempotencyKey: "order-77" }), [r2.id]);
      assert.deepEqual(await ids({ from: t1 }), [r3.id, later.id].sort());
      assert.deepEqual(await ids({ from: t0, to: t1 }), [r1.id, r2.id].sort());
      if (h.textSearch) {
        assert.deepEqual(await ids({ text: "needle-IN" }), [r2.id], "input text, any case");
        assert.deepEqual(await ids({ text: "zebra" }), [r3.id], "error text");
        assert.deepEqual(await ids({ text: "Needle", state: "succeeded" }), [r2.id]);
      }
      const ended = await all(h, { queues: ["hf"], state: "succeeded" }, 5);
      assert.ok((ended[0]!.finishedAt ?? 0) >= (ended[1]!.finishedAt ?? 0), "ended runs newest ended first");

      const got = await h.get(r3.id, "hf");
      assert.ok(got);
      assert.equal(got.state, "failed");
      assert.deepEqual(got.input, { word: "gamma" });
      assert.match(got.error?.message ?? "", /kaput Zebra/);
      assert.equal(got.errors?.length, 1);
      const okRun = await h.get(r1.id);
      assert.deepEqual(okRun?.result, { echo: "alpha" });
      assert.deepEqual(okRun?.input, { word: "alpha" });
      assert.equal(await h.get("no-such-run"), null);
    });

    test("keeps a workflow step's meta with the run", async (e) => {
      if (e.b.history === undefined) return;
      const app = appOn(e);
      const one = app.task({ name: "hist.one", queue: "hw", run: (n: number) => n + 1 });
      const two = app.task({ name: "hist.two", queue: "hw", run: (n: number) => n * 2 });
      const flow = await chain(one.with(1), two.with()).enqueue();
      await e.eventually(
        async () => {
          await app.drain();
          return (await flow.status())?.state;
        },
        (s) => s === "succeeded",
        "the chain to end",
      );
      const runs = await all(historyOf(e), { queues: ["hw"] }, 10);
      const steps = runs.filter((r) => r.task === "hist.one" || r.task === "hist.two");
      assert.equal(steps.length, 2, `both steps listed (of ${runs.map((r) => r.task).join(", ")})`);
      assert.ok(
        steps.some((r) => r.meta !== undefined),
        "a step carries its workflow's links",
      );
    });

    test("logs state changes after a cursor, oldest first, per queue", async (e) => {
      if (e.b.history === undefined) return;
      const app = appOn(e);
      const t = app.task({ name: "hist.log", queue: "hl", run: (n: number) => n });
      const other = app.task({ name: "hist.other", queue: "hm", run: (n: number) => n });
      const h = historyOf(e);
      const start = await h.changes(["hl"], null, 100);
      assert.deepEqual(start.changes, [], "from now: nothing yet");
      const run = await t.enqueue(1);
      await other.enqueue(2);
      await e.eventually(
        async () => {
          await app.drain();
          return (await run.status())?.state;
        },
        (s) => s === "succeeded",
        "the run to end",
      );
      const seen = await h.changes(["hl"], start.cursor, 100);
      const mine = seen.changes.filter((c) => c.id === run.id);
      assert.deepEqual(
        mine.map((c) => c.state),
        ["queued", "active", "succeeded"],
      );
      assert.ok(mine.every((c) => c.queue === "hl" && c.task === "hist.log" && c.at > 0));
      assert.ok(
        seen.changes.every((c) => c.queue === "hl"),
        "only the queues asked for",
      );
      const again = await h.changes(["hl"], seen.cursor, 100);
      assert.deepEqual(again.changes, [], "nothing after the last cursor");
      const paged = await h.changes(["hl"], start.cursor, 1);
      assert.equal(paged.changes.length, 1);
      const rest = await h.changes(["hl"], paged.cursor, 100);
      assert.deepEqual(
        [...paged.changes, ...rest.changes].map((c) => c.state),
        seen.changes.map((c) => c.state),
        "a small limit pages through the same changes",
      );
    });

    test("a cancelled run is listed cancelled and logged", async (e) => {
      if (e.b.history === undefined) return;
      const app = appOn(e);
      const t = app.task({ name: "hist.cancel", queue: "hc", run: (n: number) => n });
      const h = historyOf(e);
      const start = await h.changes(["hc"], null, 10);
      const run = await t.enqueue(1, { delayMs: 60_000 });
      assert.equal(await run.cancel(), true);
      const cancelled = await all(h, { queues: ["hc"], state: "cancelled" }, 5);
      assert.deepEqual(
        cancelled.map((r) => r.id),
        [run.id],
      );
      const log = await h.changes(["hc"], start.cursor, 10);
      assert.deepEqual(
        log.changes.map((c) => c.state),
        ["scheduled", "cancelled"],
      );
    });
  });
}
