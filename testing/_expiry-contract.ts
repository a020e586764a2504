/**
 * The contract of expiry through an app (`expiresAt` / `expiresInMs`, Celery's `expires`): a run
 * not started by its expiry is not run, ends `expired`, is acked and counted, and is dead-lettered
 * only when its task asks — on the plain path (`drain`), on the path where the broker starts runs
 * as it leases them (a worker), and for a retry.
 *
 * On a manual clock the expiries are long and the clock is moved; on real time (Redis) they are
 * short and the time is waited out (`Env.advance`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { processDelivery } from "../backend.ts";
import { type App, createApp, ExpiredError, type RunRecord } from "../mod.ts";
import type { Env } from "./_env.ts";
import type { ContractTest } from "./_queue-ops-contract.ts";

/** An expiry the test waits out: long on a manual clock, short on real time. */
const soon = (e: Env) => (e.clock === undefined ? 300 : 60_000);

function appOf(e: Env): App {
  return createApp({ broker: e.b, store: e.b, ...(e.clock === undefined ? {} : { clock: e.clock }) });
}

/** The app's `expired` events, as they come. */
function expiredEvents(app: App): { id: string; attempt: number; expiresAt: number }[] {
  const seen: { id: string; attempt: number; expiresAt: number }[] = [];
  app.on("expired", (event) => seen.push(event));
  return seen;
}

/** Waiting, delayed and leased messages left on the default queue (0 when acked for good). */
async function left(e: Env): Promise<number | undefined> {
  const [counts] = (await e.b.queueOps?.counts(["default"])) ?? [];
  return counts === undefined
    ? undefined
    : counts.waiting + counts.scheduled + counts.retrying + counts.active;
}

/** The expiry tests, for `brokerContract`. */
export function expiryContract(test: ContractTest): void {
  describe("expiry through an app", () => {
    test("a run not started before its expiry ends expired, unrun, acked and not dead-lettered", async (e) => {
      const a = appOf(e);
      const events = expiredEvents(a);
      let calls = 0;
      const t = a.task({ name: "expiring", run: (n: number) => ++calls + n });
      const enqueuedAt = e.now();
      const run = await t.enqueue(1, { expiresInMs: soon(e) });
      const kept = await t.enqueue(2, { expiresInMs: 3_600_000 });
      const queued = await run.status();
      assert.equal(queued?.state, "queued");
      assert.ok(
        queued?.expiresAt !== undefined && queued.expiresAt >= enqueuedAt + soon(e),
        "the record carries its expiry",
      );
      await e.advance(soon(e));
      assert.equal(await a.drain(), 2);
      assert.equal(calls, 1, "only the run that had not expired ran");
      assert.equal(await kept.result(), 3);
      const record = (await run.status()) as RunRecord;
      assert.equal(record.state, "expired");
      assert.equal(record.error?.name, "ExpiredError");
      assert.equal(record.result, undefined);
      await assert.rejects(run.result({ timeoutMs: 5_000 }), (error: unknown) => {
        assert.ok(error instanceof ExpiredError, String(error));
        assert.equal(error.runId, run.id);
        assert.equal(error.expiresAt, queued?.expiresAt);
        return true;
      });
      assert.deepEqual(
        events.map((x) => [x.id, x.attempt, x.expiresAt]),
        [[run.id, 1, queued?.expiresAt]],
      );
      assert.deepEqual(await a.deadLetters(), [], "not dead-lettered unless asked");
      assert.equal(await run.cancel(), false, "expired is final");
      assert.equal(await a.drain(), 0, "acked: nothing comes back");
      assert.equal((await left(e)) ?? 0, 0);
      if (e.b.ops === undefined) return;
      const [stats] = (await a.inspect().stats()).filter((s) => s.task === "expiring");
      assert.deepEqual(
        { succeeded: stats?.succeeded, failed: stats?.failed, expired: stats?.expired },
        { succeeded: 1, failed: 0, expired: 1 },
      );
      assert.match(
        await a.metrics(),
        /^celeriac_tasks_total\{task="expiring",queue="default",outcome="expired"\} 1$/m,
      );
    });

    test("a run the broker starts as it leases it still ends expired when it was due before", async (e) => {
      const a = appOf(e);
      let calls = 0;
      const t = a.task({ name: "leased", run: () => ++calls });
      // Already past at enqueue: it expires whenever it is picked up, on any clock.
      const run = await t.enqueue(null, { expiresAt: new Date(e.now() - 1) });
      const [delivery, ...more] = await e.receive(["default"], { start: true, leaseMs: 30_000 });
      assert.ok(delivery !== undefined && more.length === 0);
      if (delivery.started?.applied === true) {
        assert.equal((await run.status())?.state, "active", "the broker started it as it leased it");
      }
      const outcome = await processDelivery(a, delivery);
      assert.equal(outcome.kind, "expired");
      assert.equal(calls, 0);
      assert.equal((await run.status())?.state, "expired", "the start on lease did not stick");
      await e.advance(soon(e));
      assert.deepEqual(await e.receive(["default"], { leaseMs: 30_000 }), [], "acked, never redelivered");

      // And through a worker, which asks the broker to start what it leases.
      const late = await t.enqueue(null, { expiresAt: e.now() - 1 });
      const fresh = await t.enqueue(null, { expiresInMs: 3_600_000 });
      const worker = a.worker({ concurrency: 2, pollMs: 1_000 }).start();
      try {
        assert.equal(await fresh.result({ timeoutMs: 10_000 }), 1);
        await assert.rejects(late.result({ timeoutMs: 10_000 }), ExpiredError);
      } finally {
        await worker.stop();
      }
      assert.equal(calls, 1);
      assert.equal((await late.status())?.state, "expired");
      assert.equal((await left(e)) ?? 0, 0);
    });

    test("dead-letters an expired run when its task says deadLetterExpired", async (e) => {
      const a = appOf(e);
      const t = a.task({ name: "kept", expiresInMs: soon(e), deadLetterExpired: true, run: () => "ran" });
      const dead: string[] = [];
      a.on("deadLettered", (entry) => dead.push(entry.id));
      const run = await t.enqueue(null);
      assert.ok((await run.status())?.expiresAt !== undefined, "the task's default applies");
      await e.advance(soon(e));
      await a.drain();
      assert.equal((await run.status())?.state, "expired");
      const [entry, ...more] = await a.deadLetters();
      assert.equal(more.length, 0);
      assert.equal(entry?.id, run.id);
      assert.equal(entry?.error.name, "ExpiredError");
      assert.match(entry?.reason ?? "", /^expired before it started: ExpiredError: /);
      assert.deepEqual(dead, [run.id]);
      // A replay starts afresh: the task's expiry counts from the replay.
      const replayedAt = e.now();
      await a.replay(run.id);
      const replayed = await run.status();
      assert.equal(replayed?.state, "queued");
      assert.ok((replayed?.expiresAt ?? 0) >= replayedAt + soon(e), "a fresh expiry");
    });

    test("a retry that would start after the run's expiry expires instead", async (e) => {
      const a = appOf(e);
      const expiry = e.clock === undefined ? 1_000 : 60_000;
      let calls = 0;
      const t = a.task({
        name: "flaky",
        retry: { maxAttempts: 5, backoff: "fixed", baseMs: expiry + 200, jitter: "none" },
        run: () => {
          calls++;
          throw new Error("down");
        },
      });
      const run = await t.enqueue(null, { expiresInMs: expiry });
      assert.equal(await a.drain(), 1);
      assert.equal((await run.status())?.state, "retrying");
      await e.advance(expiry + 200);
      await e.eventually(
        async () => {
          await a.drain();
          return (await run.status())?.state;
        },
        (state) => state === "expired",
        "the retry to expire",
      );
      assert.equal(calls, 1, "the retry did not run");
      const record = await run.status();
      assert.equal(record?.attempt, 2, "the attempt that expired");
      assert.equal(record?.errors?.[0]?.message, "down", "the history of the attempts that ran is kept");
      assert.deepEqual(await a.deadLetters(), []);
    });
  });
}
