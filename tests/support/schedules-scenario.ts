/**
 * The stored-schedules scenario the memory and Redis suites share: three scheduler replicas on
 * one store and one manual clock tick every 10 s while stored schedules are added, changed
 * (cron → every, input), shadow a code schedule, are paused, resumed and removed. Each tick must
 * fire exactly once across the replicas, every change must hold from the next tick on.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as v from "valibot";
import type { Broker, Store } from "../../backend.ts";
import { type App, createApp, type ManualClock, type Scheduler } from "../../mod.ts";

const T0 = Date.UTC(2030, 0, 1, 12);
const hhmmss = (ms: number) => new Date(ms).toISOString().slice(11, 19);

interface Replica {
  app: App;
  scheduler: Scheduler;
}

/** What each replica does at a step (before the replicas tick), by step time (hh:mm:ss). */
type Action = (r: Replica[]) => Promise<unknown>;

const ACTIONS = new Map<string, Action>([
  // Added mid-run: its 12:00 tick is at most 60 s old, so it runs.
  [
    "12:00:05",
    (r) => r[0]!.app.schedules.add("beat", { task: "beat", input: { tag: "cron" }, cron: "* * * * *" }),
  ],
  // cron → every 45 s from 12:00:07 (12:02:22, 12:03:07, …): from the next tick after now on.
  [
    "12:02:35",
    (r) => r[1]!.app.schedules.update("beat", { every: "45s", startAt: T0 + 7_000, input: { tag: "every" } }),
  ],
  ["12:04:05", (r) => r[2]!.app.schedules.update("beat", { input: { tag: "every2" } })],
  ["12:05:35", (r) => r[2]!.app.schedules.remove("beat")],
  // A stored "pulse" hides the code one with that id, then is paused, resumed and removed.
  [
    "12:06:05",
    (r) => r[0]!.app.schedules.add("pulse", { task: "beat", input: { tag: "stored" }, every: "2m" }),
  ],
  ["12:07:05", (r) => r[2]!.app.schedules.pause("pulse")],
  ["12:08:35", (r) => r[0]!.app.schedules.resume("pulse")],
  ["12:10:35", (r) => r[1]!.app.schedules.remove("pulse")],
]);

/** Every tick fired, as "schedule hh:mm:ss tag". */
const EXPECTED = [
  "beat 12:00:00 cron",
  "beat 12:01:00 cron",
  "beat 12:02:00 cron",
  "beat 12:03:07 every",
  "beat 12:03:52 every",
  "beat 12:04:37 every2",
  "beat 12:05:22 every2",
  ...["00", "01", "02", "03", "04", "05"].map((m) => `pulse 12:${m}:00 pulse`),
  // Stored at 12:06:05, before any replica handled 12:06: the stored one fires it.
  "pulse 12:06:00 stored",
  // 12:07 and 12:09 are not ticks of the stored pulse, 12:08 came due while it was paused.
  "pulse 12:10:00 stored",
  "pulse 12:11:00 pulse",
];

/**
 * Runs the scenario on three handles of one backend (the same instance, or three clients of one
 * Redis with one prefix) whose schedulers tick on `clock`.
 */
export async function storedSchedulesScenario(
  backends: readonly (Broker & Store)[],
  clock: ManualClock,
): Promise<void> {
  clock.set(T0);
  const ran = new Map<string, string>();
  const replicas: Replica[] = backends.map((backend) => {
    const app = createApp({ broker: backend, store: backend, clock });
    const beat = app.task({
      name: "beat",
      input: v.object({ tag: v.string() }),
      run: ({ tag }, ctx) => {
        ran.set(ctx.idempotencyKey, tag);
      },
    });
    app.schedule("pulse", { every: "1m", task: beat, input: { tag: "pulse" } });
    return { app, scheduler: app.scheduler() };
  });
  const fired = new Map<string, number>();
  let claimed = 0;
  for (let now = T0 + 5_000; now <= T0 + 11 * 60_000 + 5_000; now += 10_000) {
    clock.set(now);
    await ACTIONS.get(hhmmss(now))?.(replicas);
    const results = await Promise.all(replicas.map((r) => r.scheduler.tick()));
    for (const result of results) {
      assert.deepEqual(result.errors, [], `errors at ${hhmmss(now)}`);
      for (const e of result.enqueued) {
        const key = `${e.schedule} ${hhmmss(e.tick.getTime())}`;
        fired.set(key, (fired.get(key) ?? 0) + 1);
      }
      claimed += result.skipped.filter((s) => s.reason === "claimed").length;
    }
    if (hhmmss(now) === "12:02:35") {
      // Any replica lists the change at once, with the store's view of the last tick.
      const beat = (await replicas[2]!.app.schedules.list({ next: 2 })).find((s) => s.id === "beat");
      assert.deepEqual(
        [beat?.source, beat?.cron, beat?.every, beat?.paused, beat?.nextRuns.map((d) => hhmmss(d.getTime()))],
        ["stored", null, 45_000, false, ["12:03:07", "12:03:52"]],
      );
      assert.equal(hhmmss(beat!.lastTick!.getTime()), "12:02:35");
    }
    if (hhmmss(now) === "12:07:05") {
      const pulse = (await replicas[1]!.app.schedules.list()).filter((s) => s.id === "pulse");
      assert.deepEqual(
        pulse.map((s) => [s.source, s.paused, s.nextRuns.length]),
        [["stored", true, 0]],
      );
    }
  }
  for (const [key, count] of fired) assert.equal(count, 1, `${key} fired ${count} times`);
  assert.ok(claimed > 0, "replicas raced for ticks");
  await replicas[0]!.app.drain();
  const got = [...fired.keys()].sort().map((key) => {
    const [schedule, time] = key.split(" ");
    const tick = Date.parse(`2030-01-01T${time}Z`);
    return `${key} ${ran.get(`beat:sched:${schedule}:${tick}`)}`;
  });
  assert.deepEqual(got, [...EXPECTED].sort());
  const left = await replicas[0]!.app.schedules.list();
  assert.deepEqual(
    left.map((s) => [s.id, s.source]),
    [["pulse", "code"]],
  );
}
