import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { at, iso, MIN, ticksOf, tickApp } from "./support/scheduler-fixtures.ts";
import { createApp, cronTrigger, manualClock } from "../mod.ts";
import { MAX_TICKS_PER_CALL } from "../src/schedule/define.ts";

/** mulberry32: a seeded random source, so a failure replays exactly. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("scheduler", () => {
  it("fires a per-minute schedule exactly 1,440 times in 24 hours across three replicas", async () => {
    const T0 = Date.UTC(2030, 0, 1);
    const clock = manualClock(T0);
    const backend = memory({ clock });
    const ran: number[] = [];
    const replicas = [0, 1, 2].map(() => {
      const app = createApp({ broker: backend, store: backend, clock });
      const beat = app.task({
        name: "beat",
        input: v.object({ tick: v.number() }),
        run: ({ tick }) => {
          ran.push(tick);
          return tick;
        },
      });
      app.schedule("minutely", {
        cron: "* * * * *",
        task: beat,
        input: (tick) => ({ tick: tick.getTime() }),
      });
      return { app, scheduler: app.scheduler() };
    });
    const random = seeded(1440);
    let enqueued = 0;
    let claimed = 0;
    let calls = 0;
    for (let m = 0; m < 1440; m++) {
      const base = T0 + m * MIN;
      const batch: { replica: number; now: number }[] = [];
      for (let r = 0; r < 3; r++) {
        if (random() < 0.7) batch.push({ replica: r, now: base + Math.floor(random() * 55_000) });
        if (random() < 0.15) batch.push({ replica: r, now: base + Math.floor(random() * 55_000) }); // twice
        if (random() < 0.1) batch.push({ replica: r, now: base - Math.floor(random() * 30_000) }); // stale view
      }
      if (!batch.some((b) => b.now >= base)) batch.push({ replica: m % 3, now: base + 59_000 });
      clock.set(base);
      // Concurrent calls interleave at every await: claims race for real.
      const results = await Promise.all(batch.map((b) => replicas[b.replica]!.scheduler.tick(b.now)));
      calls += results.length;
      for (const r of results) {
        assert.deepEqual(r.errors, []);
        assert.deepEqual(ticksOf(r, "missed"), []);
        enqueued += r.enqueued.length;
        claimed += r.skipped.filter((s) => s.reason === "claimed").length;
      }
      if (m % 60 === 59) await replicas[m % 3]!.app.drain();
    }
    await replicas[0]!.app.drain();
    assert.equal(enqueued, 1440);
    assert.equal(ran.length, 1440);
    assert.deepEqual(
      ran.sort((a, b) => a - b),
      Array.from({ length: 1440 }, (_, m) => T0 + m * MIN),
    );
    assert.ok(calls > 2 * 1440, `replicas ticked ${calls} times`);
    assert.ok(claimed > 0, "some calls lost a claim race");
  });

  it("skips ticks while the previous run of an overlap:false schedule has not ended", async () => {
    const clock = manualClock(at("2030-01-01T12:00:01Z"));
    const app = createApp({ broker: memory({ clock }), clock });
    const started = deferred();
    const release = deferred();
    const slow = app.task({
      name: "slow",
      run: async () => {
        started.resolve();
        await release.promise;
        return "done";
      },
    });
    app.schedule("exclusive", { cron: "* * * * *", task: slow, overlap: false });
    const scheduler = app.scheduler();
    const first = await scheduler.tick();
    assert.deepEqual(ticksOf(first), ["2030-01-01T12:00:00Z"]);

    const draining = app.drain();
    await started.promise;
    assert.equal((await app.getRun(first.enqueued[0]!.runId).status())?.state, "active");
    const blocked = await scheduler.tick(at("2030-01-01T12:01:01Z"));
    assert.deepEqual(blocked.enqueued, []);
    assert.deepEqual(blocked.skipped, [
      {
        schedule: "exclusive",
        tick: new Date("2030-01-01T12:01:00Z"),
        reason: "overlap",
        runId: first.enqueued[0]!.runId,
      },
    ]);
    // Other replicas agree: the skipped tick is claimed, it never runs later.
    assert.deepEqual(ticksOf(await app.scheduler().tick(at("2030-01-01T12:01:30Z"))), []);

    release.resolve();
    assert.equal(await draining, 1);
    const next = await scheduler.tick(at("2030-01-01T12:02:01Z"));
    assert.deepEqual(ticksOf(next), ["2030-01-01T12:02:00Z"]);
    // A queued run that has not started yet blocks too.
    const queued = await scheduler.tick(at("2030-01-01T12:03:01Z"));
    assert.deepEqual(ticksOf(queued, "overlap"), ["2030-01-01T12:03:00Z"]);
    const [status] = await scheduler.list({ now: at("2030-01-01T12:03:01Z"), next: 2 });
    assert.equal(status?.lastRun?.id, next.enqueued[0]!.runId);
    assert.equal(status?.lastRun?.state, "queued");
    assert.equal(status?.lastTick?.toISOString(), "2030-01-01T12:03:00.000Z");
  });

  it("handles the edge cron entry called early, late and twice for the same minute", async () => {
    const { app, clock, beat, input, ran } = tickApp(at("2030-01-01T11:59:00Z"));
    app.schedule("minutely", { cron: "* * * * *", task: beat, input });
    const a = app.scheduler();
    const b = app.scheduler();
    assert.deepEqual(ticksOf(await a.tick()), ["2030-01-01T11:59:00Z"]);
    const early = await a.tick(at("2030-01-01T11:59:59.999Z"));
    assert.deepEqual([early.enqueued, early.skipped], [[], []]);
    assert.deepEqual(ticksOf(await a.tick(at("2030-01-01T12:00:00Z"))), ["2030-01-01T12:00:00Z"]);
    const again = await b.tick(at("2030-01-01T12:00:00Z"));
    assert.deepEqual([again.enqueued, again.skipped], [[], []]);
    // Twice at once, from two schedulers: one run.
    const both = await Promise.all([
      a.tick(at("2030-01-01T12:01:00.500Z")),
      b.tick(at("2030-01-01T12:01:00.500Z")),
    ]);
    assert.deepEqual(
      both.flatMap((r) => ticksOf(r)),
      ["2030-01-01T12:01:00Z"],
    );
    // Late within the minute, then very late.
    assert.deepEqual(ticksOf(await b.tick(at("2030-01-01T12:02:50Z"))), ["2030-01-01T12:02:00Z"]);
    const late = await a.tick(at("2030-01-01T12:06:10Z"));
    assert.deepEqual(ticksOf(late), ["2030-01-01T12:06:00Z"]);
    assert.deepEqual(ticksOf(late, "missed"), [
      "2030-01-01T12:03:00Z",
      "2030-01-01T12:04:00Z",
      "2030-01-01T12:05:00Z",
    ]);

    // The Cloudflare Cron Trigger helper ticks on the app's clock and hands its work to waitUntil.
    clock.set(at("2030-01-01T12:07:02Z"));
    const waited: Promise<unknown>[] = [];
    const handler = cronTrigger(app);
    await handler(
      { scheduledTime: at("2030-01-01T12:07:00Z"), cron: "* * * * *" },
      {},
      {
        waitUntil: (p) => waited.push(p),
      },
    );
    assert.equal(waited.length, 1);
    await handler({}, {}); // no ctx, same minute: nothing to do
    const [status] = await a.list();
    assert.equal(status?.lastTick?.toISOString(), "2030-01-01T12:07:00.000Z");

    assert.equal(await app.drain(), 6);
    assert.deepEqual(
      ran.map((t) => new Date(t).toISOString().slice(11, 16)),
      ["11:59", "12:00", "12:01", "12:02", "12:06", "12:07"],
    );
  });

  it("retries a tick whose enqueue failed on the next call, and cronTrigger() reports the failure", async () => {
    const { app, beat, ran } = tickApp(at("2030-01-01T12:00:10Z"));
    let fail = true;
    app.schedule("flaky", {
      cron: "* * * * *",
      task: beat,
      input: (tick) => {
        if (fail) throw new Error("input source down");
        return { tick: tick.getTime() };
      },
    });
    await assert.rejects(cronTrigger(app)({}, {}), /schedule "flaky": input source down/);
    fail = false;
    const r = await app.scheduler().tick(at("2030-01-01T12:00:20Z"));
    assert.deepEqual(ticksOf(r), ["2030-01-01T12:00:00Z"]);
    await app.drain();
    assert.deepEqual(ran, [at("2030-01-01T12:00:00Z")]);
  });

  it("cannot double a tick whose claim was lost: the idempotency key still holds it", async () => {
    const { app, beat, input, ran } = tickApp(at("2030-01-01T12:00:01Z"));
    app.schedule("minutely", { cron: "* * * * *", task: beat, input });
    const first = await app.scheduler().tick();
    assert.deepEqual(ticksOf(first), ["2030-01-01T12:00:00Z"]);
    // The claim expired and the resume point went back (a lost race, a store failover).
    const tickMs = at("2030-01-01T12:00:00Z");
    await app.store.delete(`sched:minutely:${tickMs}`);
    await app.store.set("sched:minutely:last", String(tickMs - MIN));
    const again = await app.scheduler().tick(at("2030-01-01T12:00:30Z"));
    assert.deepEqual(again.enqueued, []);
    assert.deepEqual(again.skipped, [
      { schedule: "minutely", tick: new Date(tickMs), reason: "duplicate", runId: first.enqueued[0]!.runId },
    ]);
    assert.equal(await app.drain(), 1);
    assert.deepEqual(ran, [tickMs]);
  });

  it(`runs at most ${MAX_TICKS_PER_CALL} ticks of a schedule per call, oldest first, and resumes`, async () => {
    const { app, beat, input } = tickApp(at("2030-01-01T12:00:00Z"));
    app.schedule("seconds", { cron: "* * * * * *", task: beat, input, catchUp: { windowMs: 3_600_000 } });
    const scheduler = app.scheduler();
    assert.equal((await scheduler.tick()).enqueued.length, 1);
    const now = at("2030-01-01T12:30:00Z"); // 1,800 ticks due
    const first = await scheduler.tick(now);
    assert.equal(first.enqueued.length, MAX_TICKS_PER_CALL);
    assert.equal(iso(first.enqueued[0]!.tick), "2030-01-01T12:00:01Z");
    const rest = await scheduler.tick(now);
    assert.equal(rest.enqueued.length, 1800 - MAX_TICKS_PER_CALL);
    assert.equal(iso(rest.enqueued.at(-1)!.tick), "2030-01-01T12:30:00Z");
    assert.deepEqual((await scheduler.tick(now)).enqueued, []);
  });

  it("lists schedules with next run times, last tick and the last run's state", async () => {
    const { app, beat, input } = tickApp(at("2030-01-01T12:00:30Z"));
    app.schedule("hourly", { cron: "0 * * * *", task: beat, input, timezone: "Asia/Kolkata" });
    const scheduler = app.scheduler();
    const [before] = await scheduler.list({ next: 2 });
    assert.deepEqual(before, {
      id: "hourly",
      source: "code",
      cron: "0 * * * *",
      every: null,
      timezone: "Asia/Kolkata",
      task: "beat",
      overlap: true,
      catchUp: "latest",
      paused: false,
      nextRuns: [new Date("2030-01-01T12:30:00Z"), new Date("2030-01-01T13:30:00Z")],
      lastTick: null,
      lastRun: null,
      armed: false,
      error: null,
    });
    const r = await scheduler.tick(at("2030-01-01T12:30:05Z"));
    await app.drain();
    const [after] = await scheduler.list({ now: at("2030-01-01T12:30:05Z"), next: 1 });
    assert.deepEqual(after?.lastRun, {
      id: r.enqueued[0]!.runId,
      tick: new Date("2030-01-01T12:30:00Z"),
      state: "succeeded",
    });
    assert.deepEqual(after?.nextRuns, [new Date("2030-01-01T13:30:00Z")]);
  });

  it("rejects bad definitions up front, naming the schedule", () => {
    const { app, beat, input } = tickApp(0);
    assert.throws(
      () => app.schedule("broken", { cron: "61 * * * *", task: beat, input }),
      (e: Error) =>
        e instanceof TypeError &&
        e.message.includes('schedule "broken"') &&
        e.message.includes('"61 * * * *"'),
    );
    assert.throws(
      () => app.schedule("short", { cron: "* * *", task: beat, input }),
      /schedule "short": invalid cron/,
    );
    assert.throws(
      () => app.schedule("date", { cron: "2030-01-01T00:00:00Z", task: beat, input }),
      /schedule "date": invalid cron pattern/,
    );
    assert.throws(
      () => app.schedule("mars", { cron: "* * * * *", timezone: "Mars/Olympus", task: beat, input }),
      /schedule "mars": invalid timezone "Mars\/Olympus"/,
    );
    assert.throws(
      () => app.schedule("cu", { cron: "* * * * *", task: beat, input, catchUp: { windowMs: 0 } }),
      /schedule "cu": catchUp must be/,
    );
    assert.throws(
      () => app.schedule("range", { cron: "* * * * *", task: beat, input, startAt: 2000, stopAt: 1000 }),
      /schedule "range": startAt must be before stopAt/,
    );
    const other = createApp().task({ name: "elsewhere", run: () => 1 });
    assert.throws(
      () => app.schedule("foreign", { cron: "* * * * *", task: other }),
      /not registered on this app/,
    );
    app.schedule("ok", { cron: "@hourly", task: beat, input });
    assert.throws(
      () => app.schedule("ok", { cron: "@daily", task: beat, input }),
      /schedule "ok" is already defined/,
    );
    // @ts-expect-error the input must match the task's schema
    app.schedule("typed", { cron: "* * * * *", task: beat, input: { tick: "noon" } });
  });
});
