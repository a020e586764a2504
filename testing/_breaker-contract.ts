/**
 * The contract of circuit breakers on a backend: the store's compare-and-set they write with, and
 * a breaker opening, holding runs back without using their attempts, probing and closing — seen
 * alike by two apps on the same backend (two replicas). On a real-time backend the cooldowns are
 * short and the tests poll for each condition.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import type { Store } from "../backend.ts";
import { type App, createApp, type EventMap } from "../mod.ts";
import type { Env } from "./_env.ts";
import type { ContractTest } from "./_queue-ops-contract.ts";

/** Cooldown and retry backoff: long on a manual clock, short on real time. */
function times(e: Env): { cooldownMs: number; backoffMs: number } {
  return e.clock === undefined
    ? { cooldownMs: 600, backoffMs: 50 }
    : { cooldownMs: 10_000, backoffMs: 1_000 };
}

function appOn(e: Env): App {
  return createApp({ broker: e.b, store: e.b, ...(e.clock === undefined ? {} : { clock: e.clock }) });
}

/** A task that calls a downstream which is down while `down.value` holds; counts its calls. */
function downstream(
  app: App,
  e: Env,
  down: { value: boolean },
  breaker: { failureThreshold: number; halfOpenProbes?: number; name?: string },
  name = "downstream",
) {
  const { cooldownMs, backoffMs } = times(e);
  const calls: { id: string; attempt: number }[] = [];
  const task = app.task({
    name,
    retry: { maxAttempts: 20, backoff: "fixed", baseMs: backoffMs, jitter: "none" },
    breaker: { windowMs: 60_000, cooldownMs, halfOpenProbes: 1, ...breaker },
    run: (n: number, ctx) => {
      calls.push({ id: ctx.id, attempt: ctx.attempt });
      if (down.value) throw new Error("downstream is down");
      return n;
    },
  });
  return { task, calls };
}

/** Drains until every run has succeeded (the time passes on a manual clock, polls on real time). */
async function drainUntilSucceeded(e: Env, app: App, runs: readonly { status(): Promise<unknown> }[]) {
  await e.eventually(
    async () => {
      await app.drain();
      const states = await Promise.all(runs.map(async (r) => (await r.status()) as { state: string } | null));
      return states.map((s) => s?.state);
    },
    (states) => states.every((s) => s === "succeeded"),
    "every run to succeed",
  );
}

/** Registers the circuit breaker tests with `brokerContract`'s runner. */
export function breakerContract(test: ContractTest): void {
  describe("circuit breaker", () => {
    test("compare-and-set writes only over the expected value or absence, with a TTL", async (e) => {
      const store: Store = e.b;
      if (store.compareAndSet === undefined) return;
      assert.equal(await store.compareAndSet("cas", null, "v1"), true);
      assert.equal(await store.compareAndSet("cas", null, "v2"), false, "present: absence is not expected");
      assert.equal(await store.compareAndSet("cas", "other", "v2"), false);
      assert.equal(await store.get("cas"), "v1");
      assert.equal(await store.compareAndSet("cas", "v1", '{"json":"text"}', 300), true);
      assert.equal(await store.get("cas"), '{"json":"text"}');
      assert.equal(await store.compareAndSet("none", "v1", "v2"), false, "absent: a value is not expected");
      assert.equal(await store.get("none"), null);
      await e.advance(300);
      await e.eventually(
        () => store.get("cas"),
        (v) => v === null,
        "the key to expire",
      );
      assert.equal(await store.compareAndSet("cas", null, "v3"), true, "an expired key is absent");
    });

    test("opens after failureThreshold failures; later runs wait with their attempts unused, then all succeed", async (e) => {
      const app = appOn(e);
      const down = { value: true };
      const { task, calls } = downstream(app, e, down, { failureThreshold: 3 });
      const runs = await task.enqueueMany(Array.from({ length: 8 }, (_, i) => i));
      await app.drain();
      assert.equal(calls.length, 3, "only the failures that opened it ran");
      const [info] = await app.inspect().breakers();
      assert.equal(info?.name, "downstream");
      assert.equal(info?.state, "open");
      assert.equal(info?.failures, 3);
      assert.ok(info?.until !== null && info!.until > e.now() - 1_000);
      const waiting = await runs[7]!.status();
      assert.equal(waiting?.state, "scheduled", "a deferred run waits, scheduled");
      assert.equal(waiting?.attempt, 0, "no attempt was used");
      assert.equal(waiting?.notBefore, info?.until, "it waits for the end of the cooldown");

      down.value = false;
      await e.advance(times(e).cooldownMs);
      await drainUntilSucceeded(e, app, runs);
      assert.equal(calls.length, 3 + runs.length, "each run ran once more, and only once");
      for (const run of runs) {
        const attempts = calls.filter((c) => c.id === run.id).map((c) => c.attempt);
        assert.deepEqual(
          attempts,
          attempts.map((_, i) => i + 1),
          "deferrals do not count as attempts",
        );
      }
      assert.equal((await app.inspect().breakers())[0]?.state, "closed");
    });

    test("a failed probe opens it again for another cooldown; a probe that succeeds closes it", async (e) => {
      const app = appOn(e);
      const events: [keyof EventMap, EventMap["breakerOpened"]][] = [];
      for (const type of ["breakerOpened", "breakerHalfOpen", "breakerClosed"] as const) {
        app.on(type, (event) => events.push([type, event]));
      }
      const down = { value: true };
      const { task, calls } = downstream(app, e, down, { failureThreshold: 1 });
      const run = await task.enqueue(1);
      await app.drain();
      assert.equal(calls.length, 1);
      const opened = events[0]?.[1];
      assert.deepEqual(
        events.map(([type]) => type),
        ["breakerOpened"],
      );
      assert.equal(opened?.name, "downstream");
      assert.equal(opened?.task, "downstream");
      assert.equal(opened?.failures, 1);

      await e.advance(times(e).cooldownMs);
      await e.eventually(
        async () => {
          await app.drain();
          return calls.length;
        },
        (n) => n === 2,
        "the probe",
      );
      assert.deepEqual(
        events.map(([type]) => type),
        ["breakerOpened", "breakerHalfOpen", "breakerOpened"],
      );
      assert.ok(events[2]![1].until! > opened!.until!, "a new cooldown");
      assert.equal((await app.inspect().breakers())[0]?.state, "open");

      down.value = false;
      await e.advance(times(e).cooldownMs);
      await drainUntilSucceeded(e, app, [run]);
      assert.deepEqual(
        events.map(([type]) => type),
        ["breakerOpened", "breakerHalfOpen", "breakerOpened", "breakerHalfOpen", "breakerClosed"],
      );
      assert.deepEqual(
        calls.map((c) => c.attempt),
        [1, 2, 3],
        "the probes were the run's own attempts",
      );
    });

    test("starts at most halfOpenProbes runs while half-open; the others wait", async (e) => {
      const app = appOn(e);
      const { cooldownMs } = times(e);
      let down = true;
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const calls: number[] = [];
      const task = app.task({
        name: "probed",
        retry: { maxAttempts: 5, backoff: "fixed", baseMs: cooldownMs * 10, jitter: "none" },
        breaker: { failureThreshold: 1, windowMs: 60_000, cooldownMs, halfOpenProbes: 2 },
        run: async (n: number) => {
          calls.push(n);
          if (down) throw new Error("downstream is down");
          await held;
          return n;
        },
      });
      await task.enqueue(0);
      await app.drain();
      const runs = await task.enqueueMany([1, 2, 3, 4, 5]);
      await app.drain();
      assert.deepEqual(calls, [0], "open: nothing more ran");
      down = false;
      await e.advance(cooldownMs);
      // All five due at once and taken together: two start as probes (held), three wait.
      const draining = app.drain({ concurrency: 5 });
      const states = async () => {
        const records = await Promise.all(runs.map((r) => r.status()));
        const now = e.now();
        return records.map((r) => (r?.state === "scheduled" && r.notBefore! > now ? "waits" : r?.state));
      };
      await e.eventually(
        states,
        (all) =>
          all.filter((s) => s === "waits").length === 3 && all.filter((s) => s === "active").length === 2,
        "two probes to run and three runs to wait",
      );
      await e.eventually(
        async () => (await app.inspect().breakers())[0],
        (info) => info?.state === "half-open" && info.probes === 2,
        "two probes",
      );
      assert.equal(calls.length, 3, "the first failure and two probes ran");
      release();
      await draining;
      assert.equal((await app.inspect().breakers())[0]?.state, "closed");
      await e.advance(cooldownMs);
      await drainUntilSucceeded(e, app, runs);
      assert.deepEqual(
        calls.slice(3).sort(),
        runs.map((_, i) => i + 1).filter((n) => !calls.slice(1, 3).includes(n)),
        "each waiting run ran once after it closed",
      );
    });

    test("a worker's runs that meet an open breaker go back to waiting, not active, and run after it closes", async (e) => {
      const app = appOn(e);
      const down = { value: true };
      const { task, calls } = downstream(app, e, down, { failureThreshold: 2 });
      const runs = await task.enqueueMany([1, 2, 3, 4, 5, 6]);
      const worker = app.worker({ concurrency: 2, pollMs: 20 }).start();
      try {
        const records = () => Promise.all(runs.map((r) => r.status()));
        // Leased and started two at a time: the two that opened it, and at most one more pair
        // that passed the check before it opened; the rest wait, scheduled, with no attempt used.
        const waiting = await e.eventually(
          records,
          (all) => all.every((r) => r?.state === "scheduled" || r?.state === "retrying"),
          "every run to wait",
        );
        assert.ok(calls.length >= 2 && calls.length <= 3, `attempts while open: ${calls.length}`);
        for (const r of waiting) {
          const ran = calls.filter((c) => c.id === r!.id).length;
          assert.equal(r!.attempt, ran, "the record shows the last attempt that ran");
        }
        down.value = false;
        await e.advance(times(e).cooldownMs);
        await e.eventually(
          async () => {
            if (e.clock !== undefined) e.clock.advance(times(e).backoffMs);
            return (await records()).map((r) => r?.state);
          },
          (all) => all.every((s) => s === "succeeded"),
          "every run to succeed",
        );
      } finally {
        await worker.stop();
      }
      for (const run of runs) {
        const attempts = calls.filter((c) => c.id === run.id).map((c) => c.attempt);
        assert.deepEqual(
          attempts,
          attempts.map((_, i) => i + 1),
          "deferrals do not count as attempts",
        );
      }
    });

    test("two apps on the same backend share the breaker: a replica sees it open and starts nothing", async (e) => {
      const first = appOn(e);
      const second = appOn(e);
      const down = { value: true };
      const a = downstream(first, e, down, { failureThreshold: 2, name: "api" }, "call.api");
      const healthy = { value: false };
      const b = downstream(second, e, healthy, { failureThreshold: 2, name: "api" }, "call.api");
      await a.task.enqueueMany([1, 2]);
      await first.drain();
      assert.equal(a.calls.length, 2);
      const run = await b.task.enqueue(3);
      await second.drain();
      assert.equal(b.calls.length, 0, "the replica started nothing while the breaker is open");
      const [seen] = await second.inspect().breakers();
      assert.equal(seen?.state, "open");
      assert.deepEqual(seen?.tasks, ["call.api"]);
      assert.equal(seen?.until, (await first.inspect().breakers())[0]?.until);
      assert.equal((await run.status())?.state, "scheduled");

      await e.advance(times(e).cooldownMs);
      await drainUntilSucceeded(e, second, [run]);
      assert.equal((await first.inspect().breakers())[0]?.state, "closed", "closed for the first app too");
    });
  });
}
