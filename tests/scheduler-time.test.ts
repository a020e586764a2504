import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { at, iso, MIN, ticksOf, tickApp } from "./support/scheduler-fixtures.ts";
import type { App, ManualClock, TickResult } from "../mod.ts";

/** Ticks every `stepMs` from `from` to `to` and returns the enqueued ticks as ISO strings. */
async function sweep(
  app: App,
  clock: ManualClock,
  from: number,
  to: number,
  stepMs: number,
): Promise<string[]> {
  const scheduler = app.scheduler();
  const fired: string[] = [];
  for (let now = from; now <= to; now += stepMs) {
    clock.set(now);
    const r = await scheduler.tick();
    assert.deepEqual(r.errors, []);
    fired.push(...ticksOf(r));
  }
  return fired;
}

function localTime(tick: string, timeZone: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(new Date(tick));
}

describe("scheduler time", () => {
  it("fires a Europe/Berlin 02:30 schedule once a day across both DST changes", async () => {
    const { app, clock, beat, input } = tickApp(0);
    app.schedule("berlin", { cron: "30 2 * * *", timezone: "Europe/Berlin", task: beat, input });
    const spring = await sweep(app, clock, at("2025-03-28T00:00:00Z"), at("2025-04-01T00:00:00Z"), 7 * MIN);
    // 02:30 does not exist on 30 March: the fixed-time job runs at the first valid time, 03:00 CEST.
    assert.deepEqual(spring, [
      "2025-03-28T01:30:00Z",
      "2025-03-29T01:30:00Z",
      "2025-03-30T01:00:00Z",
      "2025-03-31T00:30:00Z",
    ]);
    assert.deepEqual(
      spring.map((t) => localTime(t, "Europe/Berlin")),
      ["02:30", "02:30", "03:00", "02:30"],
    );
    // 02:30 happens twice on 26 October: it runs once, at the first one.
    const fall = tickApp(0);
    fall.app.schedule("berlin", {
      cron: "30 2 * * *",
      timezone: "Europe/Berlin",
      task: fall.beat,
      input: fall.input,
    });
    const autumn = await sweep(
      fall.app,
      fall.clock,
      at("2025-10-25T00:00:00Z"),
      at("2025-10-28T00:00:00Z"),
      7 * MIN,
    );
    assert.deepEqual(autumn, ["2025-10-25T00:30:00Z", "2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"]);
  });

  it("fires a daily 09:00 America/New_York schedule at 09:00 local across the November change", async () => {
    const { app, clock, beat, input } = tickApp(0);
    app.schedule("ny", { cron: "0 9 * * *", timezone: "America/New_York", task: beat, input });
    const fired = await sweep(app, clock, at("2025-10-31T00:00:00Z"), at("2025-11-05T00:00:00Z"), 10 * MIN);
    assert.deepEqual(fired, [
      "2025-10-31T13:00:00Z",
      "2025-11-01T13:00:00Z",
      "2025-11-02T14:00:00Z",
      "2025-11-03T14:00:00Z",
      "2025-11-04T14:00:00Z",
    ]);
    assert.ok(fired.every((t) => localTime(t, "America/New_York") === "09:00"));
  });

  it("catches up after 10 minutes of downtime as each policy says", async () => {
    const by = (r: TickResult, id: string, reason?: string) =>
      (reason === undefined
        ? r.enqueued.filter((e) => e.schedule === id)
        : r.skipped.filter((s) => s.schedule === id && s.reason === reason)
      ).map((e) => iso(e.tick).slice(11, 16));
    const minutes = (a: number, b: number) =>
      Array.from({ length: b - a + 1 }, (_, i) => `12:${String(a + i).padStart(2, "0")}`);

    const { app, beat, input, ran } = tickApp(at("2030-01-01T12:00:05Z"));
    app.schedule("none", { cron: "* * * * *", task: beat, input, catchUp: "none" });
    app.schedule("latest", { cron: "* * * * *", task: beat, input, catchUp: "latest" });
    app.schedule("all", { cron: "* * * * *", task: beat, input, catchUp: "all" });
    app.schedule("window", { cron: "* * * * *", task: beat, input, catchUp: { windowMs: 5 * MIN } });
    const scheduler = app.scheduler();
    assert.equal((await scheduler.tick()).enqueued.length, 4, "every schedule runs its on-time 12:00 tick");
    // Down from 12:00:05 to 12:10:45: ticks 12:01–12:10 came due meanwhile.
    const r = await scheduler.tick(at("2030-01-01T12:10:45Z"));
    assert.deepEqual(r.errors, []);
    assert.deepEqual(by(r, "none"), ["12:10"]); // 45 s late: still on time
    assert.deepEqual(by(r, "none", "missed"), minutes(1, 9));
    assert.deepEqual(by(r, "latest"), ["12:10"]);
    assert.deepEqual(by(r, "latest", "missed"), minutes(1, 9));
    assert.deepEqual(by(r, "all"), minutes(1, 10));
    assert.deepEqual(by(r, "all", "missed"), []);
    assert.deepEqual(by(r, "window"), minutes(6, 10));
    assert.deepEqual(by(r, "window", "missed"), minutes(1, 5));
    assert.equal(await app.drain(), 4 + 1 + 1 + 10 + 5);
    assert.equal(ran.length, 21);

    // Every five minutes, back 90 s after the 12:10 tick: "none" runs nothing, "latest" only 12:10.
    const five = tickApp(at("2030-01-01T12:00:05Z"));
    for (const catchUp of ["none", "latest", "all"] as const) {
      five.app.schedule(catchUp, { cron: "*/5 * * * *", task: five.beat, input: five.input, catchUp });
    }
    const s5 = five.app.scheduler();
    assert.equal((await s5.tick()).enqueued.length, 3);
    const r5 = await s5.tick(at("2030-01-01T12:11:30Z"));
    assert.deepEqual(by(r5, "none"), []);
    assert.deepEqual(by(r5, "none", "missed"), ["12:05", "12:10"]);
    assert.deepEqual(by(r5, "latest"), ["12:10"]);
    assert.deepEqual(by(r5, "latest", "missed"), ["12:05"]);
    assert.deepEqual(by(r5, "all"), ["12:05", "12:10"]);
    assert.equal(await five.app.drain(), 3 + 1 + 2);
  });

  it("honours startAt (inclusive) and stopAt (exclusive)", async () => {
    const { app, clock, beat, input } = tickApp(0);
    app.schedule("window", {
      cron: "* * * * *",
      task: beat,
      input,
      startAt: "2030-01-01T12:02:00Z",
      stopAt: new Date("2030-01-01T12:05:00Z"),
    });
    const fired = await sweep(app, clock, at("2030-01-01T12:00:01Z"), at("2030-01-01T12:09:01Z"), MIN);
    assert.deepEqual(fired, ["2030-01-01T12:02:00Z", "2030-01-01T12:03:00Z", "2030-01-01T12:04:00Z"]);
  });
});
