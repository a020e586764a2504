/**
 * The contract of debounce and throttle at enqueue, through an app on the backend: the last
 * input wins and runs once after the quiet period, `maxWaitMs` caps a continuous stream,
 * separate keys are independent, a run a worker has leased is never replaced, and throttled
 * enqueues are dropped or delayed with handles that say so. Debounce tests are skipped for a
 * backend whose ledger cannot replace a waiting run (`Ledger.replace`).
 *
 * Time: on a manual clock the tests move it; on real time (Redis) they use delays of a few
 * hundred ms and poll for conditions, and assert what the algorithm fixes exactly (the start
 * time recorded on the run, the input it ran with) rather than how fast a machine is.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { type App, createApp, FlowKeyError, type Run, ThrottledError } from "../mod.ts";
import { DEADLINE_MS, type Env } from "./_env.ts";
import type { ContractTest } from "./_queue-ops-contract.ts";

const app = (e: Env): App =>
  createApp({ broker: e.b, store: e.b, ...(e.clock === undefined ? {} : { clock: e.clock }) });

/** The quiet period: long on a manual clock, short on real time. */
const quiet = (e: Env) => (e.clock === undefined ? 400 : 1_000);

/** True when the backend's ledger can replace a waiting run (what debounce needs). */
const canReplace = (e: Env) => e.b.ledger?.(e.b)?.replace !== undefined;

/** Drains the app until `done` holds, letting time pass between rounds, up to a deadline. */
async function drainUntil(e: Env, a: App, done: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    await a.drain();
    if (await done()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await e.advance(e.clock === undefined ? 10 : 50);
  }
}

/** Lets time pass to the start of a `periodMs` window unless more than `need` ms of this one are left. */
async function freshWindow(e: Env, periodMs: number, need: number): Promise<number> {
  const left = periodMs - (e.now() % periodMs);
  if (left < need) await e.advance(left);
  const now = e.now();
  return now - (now % periodMs);
}

const ended = async (runs: readonly Run<unknown>[]) =>
  (await Promise.all(runs.map((r) => r.status()))).every((s) => s?.state === "succeeded");

/** The debounce and throttle tests, for `brokerContract`. */
export function debounceContract(test: ContractTest): void {
  describe("debounce and throttle", () => {
    test("debounce: the last input wins, and the run starts once, delayMs after the last enqueue", async (e) => {
      if (!canReplace(e)) return;
      const a = app(e);
      const delayMs = quiet(e);
      const seen: number[] = [];
      const t = a.task({
        name: "debounced",
        debounce: { key: (i) => (i as { k: string }).k, delayMs },
        run: (i: { k: string; n: number }) => {
          seen.push(i.n);
          return i.n;
        },
      });
      const first = await t.enqueue({ k: "x", n: 1 });
      const second = await t.enqueue({ k: "x", n: 2 });
      const lastAt = e.now();
      const third = await t.enqueue({ k: "x", n: 3 });
      assert.deepEqual(
        [first.debounced, second.debounced, third.debounced],
        ["scheduled", "replaced", "replaced"],
      );
      assert.equal(second.id, first.id);
      assert.equal(third.id, first.id);
      const scheduled = await third.status();
      assert.equal(scheduled?.state, "scheduled");
      assert.ok((scheduled?.notBefore ?? 0) >= lastAt + delayMs, "due a quiet period after the last enqueue");
      assert.equal(await a.drain(), 0, "nothing runs during the quiet period");
      await drainUntil(e, a, () => ended([third]), "the debounced run");
      assert.deepEqual(seen, [3]);
      assert.equal(await first.result(), 3);
      const record = await first.status();
      assert.ok((record?.startedAt ?? 0) >= (scheduled?.notBefore ?? 0), "it started when due, not before");
      const counts = await e.b.queueOps?.counts(["default"]);
      if (counts !== undefined) assert.equal(counts[0]!.waiting + counts[0]!.scheduled, 0, "nothing is left");
    });

    test("debounce: separate keys are independent", async (e) => {
      if (!canReplace(e)) return;
      const a = app(e);
      const seen: string[] = [];
      const t = a.task({
        name: "keyed",
        debounce: { key: (i) => (i as { k: string }).k, delayMs: quiet(e) },
        run: (i: { k: string; n: number }) => {
          seen.push(`${i.k}${i.n}`);
        },
      });
      const runs = await t.enqueueMany([
        { k: "a", n: 1 },
        { k: "b", n: 1 },
        { k: "a", n: 2 },
        { k: "b", n: 2 },
        { k: "c", n: 1 },
      ]);
      assert.deepEqual(
        runs.map((r) => r.debounced),
        ["scheduled", "scheduled", "replaced", "replaced", "scheduled"],
      );
      assert.equal(new Set(runs.map((r) => r.id)).size, 3);
      await drainUntil(e, a, () => ended(runs), "the three runs");
      assert.deepEqual(seen.sort(), ["a2", "b2", "c1"]);
    });

    test("debounce: maxWaitMs caps a continuous stream, and each burst runs its last input", async (e) => {
      if (!canReplace(e)) return;
      const a = app(e);
      const delayMs = quiet(e);
      const maxWaitMs = 2 * delayMs;
      const ran = new Map<string, number>();
      const t = a.task({
        name: "stream",
        debounce: { delayMs, maxWaitMs },
        run: (n: number, ctx) => {
          ran.set(ctx.id, n);
        },
      });
      // An enqueue every quarter of the quiet period, for three times the cap: without maxWaitMs
      // nothing would ever start.
      const handles: { run: Run<unknown>; n: number; before: number; after: number }[] = [];
      const step = delayMs / 4;
      for (let n = 0; n < 12 * 2; n++) {
        const before = e.now();
        const run = await t.enqueue(n);
        handles.push({ run, n, before, after: e.now() });
        await a.drain();
        await e.advance(step);
      }
      const runs = [...new Map(handles.map((h) => [h.run.id, h.run])).values()];
      assert.ok(runs.length >= 2, `the stream was cut into bursts (${runs.length})`);
      await drainUntil(e, a, () => ended(runs), "every burst's run");
      for (const run of runs) {
        const mine = handles.filter((h) => h.run.id === run.id);
        assert.equal(mine[0]!.run.debounced, "scheduled");
        assert.ok(
          mine.slice(1).every((h) => h.run.debounced === "replaced"),
          "the burst's other enqueues replaced its input",
        );
        const record = await run.status();
        const first = mine[0]!;
        const last = mine.at(-1)!;
        if (record?.notBefore === undefined) {
          // Due at once: the last replacement came once the cap had passed.
          assert.ok(last.after >= first.before + maxWaitMs, "queued at once only after the cap");
        } else {
          assert.ok(record.notBefore <= first.after + maxWaitMs, "due within maxWaitMs of the first enqueue");
        }
        assert.equal(ran.get(run.id), last.n, "it ran the burst's last input");
      }
    });

    test("debounce: a run a worker has leased is never replaced; the next enqueue begins a new burst", async (e) => {
      if (!canReplace(e)) return;
      const a = app(e);
      const seen: number[] = [];
      const t = a.task({ name: "leased", debounce: { delayMs: quiet(e) }, run: (n: number) => seen.push(n) });
      const first = await t.enqueue(1);
      await e.advance(quiet(e));
      const [delivery] = await e.eventually(
        () => e.receive(["default"], { max: 1, leaseMs: 30_000 }),
        (got) => got.length > 0,
        "the run to come due",
      );
      assert.equal(delivery?.id, first.id);
      const second = await t.enqueue(2);
      assert.equal(second.debounced, "scheduled");
      assert.notEqual(second.id, first.id);
      await e.b.release!([delivery!]);
      await drainUntil(e, a, () => ended([first, second]), "both runs");
      assert.deepEqual(seen.sort(), [1, 2], "each input ran once, none was lost");
    });

    test("debounce: concurrent enqueues from two apps join one burst and run once", async (e) => {
      if (!canReplace(e)) return;
      const apps = [app(e), app(e)];
      const seen: number[] = [];
      const tasks = apps.map((a) =>
        a.task({ name: "racy", debounce: { delayMs: quiet(e) }, run: (n: number) => seen.push(n) }),
      );
      const runs = await Promise.all(Array.from({ length: 10 }, (_, n) => tasks[n % 2]!.enqueue(n)));
      assert.equal(new Set(runs.map((r) => r.id)).size, 1, "one run for the burst");
      assert.equal(runs.filter((r) => r.debounced === "scheduled").length, 1, "one enqueue began it");
      await drainUntil(e, apps[0]!, () => ended(runs.slice(0, 1)), "the run");
      assert.equal(seen.length, 1);
    });

    test("debounce: a failing key function is a FlowKeyError and sends nothing", async (e) => {
      if (!canReplace(e)) return;
      const a = app(e);
      const t = a.task({
        name: "keyless",
        debounce: { key: () => "", delayMs: quiet(e) },
        run: () => 1,
      });
      await assert.rejects(t.enqueue(null), FlowKeyError);
      assert.equal(await a.drain(), 0);
      const counts = await e.b.queueOps?.counts(["default"]);
      if (counts !== undefined) assert.equal(counts[0]!.scheduled + counts[0]!.waiting, 0);
      assert.throws(() => a.task({ name: "bad", debounce: { delayMs: -1 }, run: () => 1 }), RangeError);
    });

    test("throttle: drops the enqueues over the limit, and their handles say so", async (e) => {
      const a = app(e);
      const periodMs = 60_000;
      const window = await freshWindow(e, periodMs, 5_000);
      const seen: string[] = [];
      const t = a.task({
        name: "throttled",
        throttle: { key: (i) => (i as { to: string }).to, limit: 2, periodMs },
        run: (i: { to: string; n: number }) => {
          seen.push(`${i.to}${i.n}`);
        },
      });
      const runs = await t.enqueueMany([1, 2, 3].map((n) => ({ to: "ada", n })));
      const fourth = await t.enqueue({ to: "ada", n: 4 });
      const other = await t.enqueue({ to: "bob", n: 1 });
      assert.deepEqual(
        [...runs, fourth, other].map((r) => r.throttled),
        [undefined, undefined, "dropped", "dropped", undefined],
      );
      assert.equal(await fourth.status(), null, "a dropped enqueue records nothing");
      const error = await fourth.result().catch((err: unknown) => err);
      assert.ok(error instanceof ThrottledError);
      assert.equal(error.retryAt, window + periodMs);
      await drainUntil(e, a, () => ended([runs[0]!, runs[1]!, other]), "the admitted runs");
      assert.deepEqual(seen.sort(), ["ada1", "ada2", "bob1"]);
      assert.equal(await a.drain(), 0, "the dropped ones were never sent");
    });

    test("throttle: delays the enqueues over the limit to the next window with room", async (e) => {
      const a = app(e);
      const periodMs = e.clock === undefined ? 800 : 1_000;
      const window = await freshWindow(e, periodMs, periodMs / 2);
      const t = a.task({
        name: "paced",
        throttle: { limit: 2, periodMs, mode: "delay" },
        run: (n: number) => n,
      });
      const runs = await t.enqueueMany([1, 2, 3, 4, 5]);
      assert.deepEqual(
        runs.map((r) => r.throttled),
        [undefined, undefined, "delayed", "delayed", "delayed"],
      );
      const due = await Promise.all(runs.map(async (r) => (await r.status())?.notBefore));
      assert.deepEqual(due, [
        undefined,
        undefined,
        window + periodMs,
        window + periodMs,
        window + 2 * periodMs,
      ]);
      await drainUntil(e, a, () => ended(runs), "every run");
      for (const [i, run] of runs.entries()) {
        const record = await run.status();
        assert.ok((record?.startedAt ?? 0) >= (due[i] ?? 0), `run ${i + 1} did not start before its window`);
      }
    });
  });
}
