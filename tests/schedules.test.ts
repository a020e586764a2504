import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { CeleriacError, createApp, manualClock, UnknownTaskError, ValidationError } from "../mod.ts";
import { everyTiming, parseEvery } from "../src/schedule/timing.ts";
import { at, iso, MIN, ticksOf } from "./support/scheduler-fixtures.ts";
import { storedSchedulesScenario } from "./support/schedules-scenario.ts";

/** An app with a task whose input is `{ n: number }`, on a backend of its own. */
function numberApp(start = at("2030-01-01T12:00:00Z")) {
  const clock = manualClock(start);
  const backend = memory({ clock });
  const app = createApp({ broker: backend, store: backend, clock });
  const count = app.task({ name: "count", input: v.object({ n: v.number() }), run: ({ n }) => n });
  return { app, clock, backend, count };
}

describe("stored schedules (app.schedules)", () => {
  it("fires each tick once across three replicas while schedules are added, changed, paused and removed", async () => {
    const clock = manualClock(0);
    const backend = memory({ clock });
    await storedSchedulesScenario([backend, backend, backend], clock);
  });

  it("anchors every-schedules at startAt (epoch 0 by default), in code and stored alike", async () => {
    const { app, count } = numberApp(at("2030-01-01T12:00:00Z"));
    const inCode = app.schedule("code", {
      every: "1h30m",
      startAt: "2030-01-01T00:10:00Z",
      task: count,
      input: { n: 1 },
    });
    const stored = await app.schedules.add("stored", { task: "count", input: { n: 2 }, every: 90 * MIN });
    const after = at("2030-01-01T12:00:00Z");
    assert.deepEqual(inCode.nextRuns(2, after).map(iso), ["2030-01-01T12:10:00Z", "2030-01-01T13:40:00Z"]);
    // 90 minutes from the epoch: 00:00, 01:30, 03:00, … 12:00, 13:30.
    assert.deepEqual(stored.nextRuns(2, after - 1).map(iso), [
      "2030-01-01T12:00:00Z",
      "2030-01-01T13:30:00Z",
    ]);
    assert.equal(stored.every, 90 * MIN);
    assert.equal(stored.cron, null);
    // Two apps (replicas) compute the same ticks and claim them once.
    const other = createApp({ broker: app.broker, store: app.store, clock: app.clock });
    const count2 = other.task({ name: "count", input: v.object({ n: v.number() }), run: ({ n }) => n });
    other.schedule("code", {
      every: "1h30m",
      startAt: "2030-01-01T00:10:00Z",
      task: count2,
      input: { n: 1 },
    });
    const r = await Promise.all([app.scheduler().tick(), other.scheduler().tick()]);
    assert.deepEqual(r.flatMap((x) => ticksOf(x)).sort(), ["2030-01-01T12:00:00Z"]);
    const later = await Promise.all([
      app.scheduler().tick(at("2030-01-01T12:10:01Z")),
      other.scheduler().tick(at("2030-01-01T12:10:01Z")),
    ]);
    assert.deepEqual(
      later.flatMap((x) => x.enqueued.map((e) => `${e.schedule} ${iso(e.tick)}`)),
      ["code 2030-01-01T12:10:00Z"],
    );
  });

  it("sends each run to the schedule's queue with its priority, in code and stored", async () => {
    const { app, count } = numberApp(at("2030-01-01T12:00:30Z"));
    app.schedule("code", { every: "1m", task: count, input: { n: 1 }, queue: "cron-jobs", priority: 7 });
    await app.schedules.add("stored", {
      task: "count",
      input: { n: 2 },
      every: "1m",
      queue: "cron-jobs",
      priority: 2,
    });
    const r = await app.scheduler().tick();
    const records = await Promise.all(r.enqueued.map((e) => app.getRun(e.runId, "cron-jobs").status()));
    assert.deepEqual(records.map((x) => [x?.queue, x?.task]).sort(), [
      ["cron-jobs", "count"],
      ["cron-jobs", "count"],
    ]);
    const deliveries = await app.broker.receive!({
      queues: ["cron-jobs"],
      max: 2,
      leaseMs: 1_000,
      waitMs: 0,
    });
    assert.deepEqual(
      deliveries.map((d) => JSON.parse(d.body).priority),
      [7, 2],
    );
  });

  it("computes interval ticks with stopAt exclusive and no tick before startAt", () => {
    const t = everyTiming(1_000, new Date(10_500), new Date(13_500));
    assert.deepEqual(
      [t.latest(10_499), t.latest(10_500), t.latest(12_999), t.latest(99_999)],
      [null, 10_500, 12_500, 12_500],
    );
    assert.deepEqual([t.next(0), t.next(10_500), t.next(12_500)], [10_500, 11_500, null]);
    assert.deepEqual(
      [parseEvery("1h30m", "x"), parseEvery("1d", "x"), parseEvery("1500ms", "x"), parseEvery(5_000, "x")],
      [5_400_000, 86_400_000, 1_500, 5_000],
    );
  });

  it("skips what came due while paused and resumes from the next tick", async () => {
    const { app, clock } = numberApp(at("2030-01-01T12:00:30Z"));
    await app.schedules.add("m", { task: "count", input: { n: 1 }, cron: "* * * * *" });
    const scheduler = app.scheduler();
    assert.deepEqual(ticksOf(await scheduler.tick()), ["2030-01-01T12:00:00Z"]);
    const paused = await app.schedules.pause("m");
    assert.equal(paused.paused, true);
    clock.set(at("2030-01-01T12:03:10Z"));
    assert.deepEqual(await scheduler.tick(), {
      now: new Date(clock.now()),
      enqueued: [],
      skipped: [],
      errors: [],
    });
    await app.schedules.resume("m");
    const resumed = await scheduler.tick();
    assert.deepEqual([ticksOf(resumed), ticksOf(resumed, "missed")], [[], []]);
    assert.deepEqual(ticksOf(await scheduler.tick(at("2030-01-01T12:04:01Z"))), ["2030-01-01T12:04:00Z"]);
  });

  it("lists code and stored schedules; a stored one hides the code one with its id until removed", async () => {
    const { app, count } = numberApp();
    app.schedule("a", { cron: "0 * * * *", task: count, input: { n: 1 } });
    app.schedule("b", { every: "10m", task: count, input: { n: 2 } });
    await app.schedules.add("b", {
      task: "count",
      input: { n: 3 },
      cron: "15 * * * *",
      timezone: "Asia/Kolkata",
    });
    const listed = await app.schedules.list({ next: 1 });
    assert.deepEqual(
      listed.map((s) => [s.id, s.source, s.cron, s.every, s.timezone, s.nextRuns.map(iso), s.armed]),
      [
        ["a", "code", "0 * * * *", null, null, ["2030-01-01T13:00:00Z"], false],
        ["b", "stored", "15 * * * *", null, "Asia/Kolkata", ["2030-01-01T12:45:00Z"], false],
      ],
    );
    assert.deepEqual(ticksOf(await app.scheduler().tick()), ["2030-01-01T12:00:00Z"]); // "a" only
    assert.equal(await app.schedules.remove("b"), true);
    assert.equal(await app.schedules.remove("b"), false);
    const back = (await app.schedules.list()).find((s) => s.id === "b");
    assert.deepEqual([back?.source, back?.every], ["code", 10 * MIN]);
  });

  it("shows code and stored schedules in app.inspect().schedules() with their next and last tick", async () => {
    const { app, count } = numberApp(at("2030-01-01T12:00:30Z"));
    app.schedule("code", { cron: "0 * * * *", task: count, input: { n: 1 } });
    await app.schedules.add("stored", { task: "count", input: { n: 2 }, every: "15m", paused: true });
    await app.scheduler().tick();
    assert.deepEqual(await app.inspect().schedules(), [
      {
        id: "code",
        source: "code",
        task: "count",
        cron: "0 * * * *",
        everyMs: null,
        paused: false,
        next: at("2030-01-01T13:00:00Z"),
        last: at("2030-01-01T12:00:00Z"),
      },
      {
        id: "stored",
        source: "stored",
        task: "count",
        cron: null,
        everyMs: 15 * MIN,
        paused: true,
        next: null,
        last: null,
      },
    ]);
  });

  it("reports a stored schedule this process cannot run, and leaves it to those that can", async () => {
    const { app, backend } = numberApp(at("2030-01-01T12:00:30Z"));
    await app.schedules.add("count-it", { task: "count", input: { n: 1 }, every: "1m" });
    const other = createApp({ broker: backend, store: backend, clock: app.clock });
    const errors: string[] = [];
    const r = await other.scheduler().tick();
    for (const e of r.errors) errors.push(`${e.schedule}: ${(e.error as Error).name}`);
    assert.deepEqual(errors, ["count-it: UnknownTaskError"]);
    assert.deepEqual(r.enqueued, []);
    const [listed] = await other.schedules.list();
    assert.deepEqual([listed?.task, listed?.every, listed?.nextRuns], ["count", 60_000, []]);
    assert.match(listed?.error ?? "", /UnknownTaskError: unknown task "count"/);
    assert.deepEqual(ticksOf(await app.scheduler().tick()), ["2030-01-01T12:00:00Z"]);
  });

  it("rejects bad definitions up front with typed errors naming the option and value", async () => {
    const { app, count } = numberApp();
    const s = app.schedules;
    await assert.rejects(
      s.add("x", { task: "nope", every: "1m" }),
      (e: Error) => e instanceof UnknownTaskError,
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 }, cron: "61 * * * *" }),
      (e: Error) =>
        e instanceof TypeError && /schedule "x": invalid cron pattern "61 \* \* \* \*"/.test(e.message),
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 }, every: "soon" }),
      (e: Error) =>
        e instanceof TypeError && /schedule "x": every must be a duration .* got "soon"/.test(e.message),
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 }, every: 500 }),
      (e: Error) => e instanceof RangeError && /every must be .* at least 1000, got 500/.test(e.message),
    );
    await assert.rejects(s.add("x", { task: "count", input: { n: 1 }, every: "1.5h" }), TypeError);
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 }, every: "1m", cron: "* * * * *" }),
      /schedule "x": give exactly one of cron and every/,
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 } }),
      /give exactly one of cron and every/,
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 }, every: "1m", timezone: "Europe/Berlin" }),
      /timezone applies to cron schedules only/,
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 }, cron: "* * * * *", timezone: "Mars/Olympus" }),
      (e: Error) => e instanceof RangeError && /invalid timezone "Mars\/Olympus"/.test(e.message),
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: "one" }, every: "1m" }),
      (e: Error) => e instanceof ValidationError && /input of schedule "x" is invalid at n/.test(e.message),
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 }, every: "1m", priority: 10 }),
      (e: Error) =>
        e instanceof RangeError && /priority must be an integer from 0 to 9, got 10/.test(e.message),
    );
    await assert.rejects(
      s.add("x", { task: "count", input: { n: 1 }, every: "1m", queue: "a b" }),
      (e: Error) => e instanceof TypeError && /schedule "x": queue must be/.test(e.message),
    );
    await assert.rejects(
      // @ts-expect-error an unknown option
      s.add("x", { task: "count", input: { n: 1 }, every: "1m", evry: "2m" }),
      (e: Error) => e instanceof TypeError && /unknown option "evry" of schedule "x"/.test(e.message),
    );
    await assert.rejects(
      s.add("a b", { task: "count", input: { n: 1 }, every: "1m" }),
      /schedule id must be/,
    );
    assert.deepEqual(await s.list(), [], "nothing was stored");
    await assert.rejects(
      s.update("x", { every: "2m" }),
      (e: Error) => e instanceof CeleriacError && /no stored schedule "x"/.test(e.message),
    );
    app.schedule("coded", { every: "1m", task: count, input: { n: 1 } });
    await assert.rejects(s.pause("coded"), /schedule "coded" is defined in code, not stored/);
    await s.add("ok", { task: "count", input: { n: 1 }, every: "1m" });
    await assert.rejects(s.update("ok", { input: { n: "two" } }), ValidationError);
    await assert.rejects(s.update("ok", { cron: "nope" }), TypeError);
    // @ts-expect-error priority must be a number
    await assert.rejects(s.update("ok", { priority: "high" }), RangeError);
    const [kept] = (await s.list()).filter((x) => x.id === "ok");
    assert.equal(kept?.every, 60_000, "a rejected update changes nothing");
    assert.throws(() => app.schedule("fast", { every: "0s", task: count, input: { n: 1 } }), RangeError);
    assert.throws(
      () => app.schedule("none", { task: count, input: { n: 1 } }),
      /give exactly one of cron and every/,
    );
  });

  it("throws a TypeError from app.schedules on a store without stored schedules, and still lists code ones", async () => {
    const backend = memory();
    Object.defineProperty(backend, "schedules", { value: undefined });
    const app = createApp({ broker: backend, store: backend });
    const t = app.task({ name: "t", run: () => 1 });
    app.schedule("code", { every: "1m", task: t });
    const message = /app.schedules needs a store that keeps schedules/;
    await assert.rejects(
      app.schedules.add("x", { task: "t", every: "1m" }),
      (e: Error) => e instanceof TypeError && message.test(e.message),
    );
    await assert.rejects(app.schedules.update("x", {}), message);
    await assert.rejects(app.schedules.pause("x"), message);
    await assert.rejects(app.schedules.resume("x"), message);
    await assert.rejects(app.schedules.remove("x"), message);
    assert.deepEqual(
      (await app.schedules.list()).map((s) => s.id),
      ["code"],
    );
    assert.equal((await app.scheduler().tick()).enqueued.length, 1);
  });
});
