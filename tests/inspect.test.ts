import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Broker, Store } from "../backend.ts";
import { VERSION } from "../backend.ts";
import { memory } from "../adapters/memory/mod.ts";
import { type App, createApp, NonRetryableError } from "../mod.ts";
import { type RedisRig, startRig, waitFor } from "./support/redis-fixtures.ts";

type Backend = Broker & Store;
interface Subject {
  backend: Backend;
  close(): Promise<void>;
}

const BEAT = 60;

/** A gate a task waits on, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

function opsSuite(name: string, make: () => Promise<Subject>) {
  describe(name, () => {
    const test = (title: string, body: (app: App) => Promise<void>) =>
      it(title, { timeout: 30_000 }, async () => {
        const { backend, close } = await make();
        const app = createApp({ broker: backend, store: backend });
        try {
          await body(app);
        } finally {
          await app.close();
          await close();
        }
      });

    test("a worker registers, shows its running runs and counters, and deregisters on stop", async (app) => {
      const g = gate();
      const started: string[] = [];
      const slow = app.task({
        name: "slow",
        queue: "work",
        run: async (_: unknown, ctx) => {
          started.push(ctx.id);
          ctx.progress({ step: 1 });
          await g.opened;
          return 1;
        },
      });
      const quick = app.task({ name: "quick", queue: "work", run: () => 2 });
      await quick.enqueue(undefined).then((r) => r.id);
      const first = await quick.enqueue(undefined);
      const worker = app
        .worker({ queues: ["work"], concurrency: 3, heartbeatMs: BEAT, hostname: "box-1" })
        .start();
      await first.result({ timeoutMs: 10_000 });
      const run = await slow.enqueue(undefined);
      await waitFor(() => started.length === 1, 10_000, "the slow run to start");
      await waitFor(
        async () => (await app.inspect().active()).some((a) => a.id === run.id && a.progress !== undefined),
        10_000,
        "the running run to show with its progress",
      );
      const [w] = await app.inspect().workers();
      assert.ok(w);
      assert.equal(w.id, worker.id);
      assert.deepEqual(
        {
          kind: w.kind,
          hostname: w.hostname,
          queues: w.queues,
          concurrency: w.concurrency,
          version: w.version,
        },
        { kind: "worker", hostname: "box-1", queues: ["work"], concurrency: 3, version: VERSION },
      );
      assert.equal(w.pid, process.pid);
      assert.match(w.runtime, /^(Node\.js|Deno|Bun)\//);
      assert.equal(w.heartbeatMs, BEAT);
      assert.equal(w.counters.succeeded, 2);
      assert.deepEqual(
        w.active.map((a) => a.id),
        [run.id],
      );
      const [active] = await app.inspect().active();
      assert.deepEqual(
        {
          id: active?.id,
          task: active?.task,
          worker: active?.worker,
          attempt: active?.attempt,
          progress: active?.progress,
        },
        { id: run.id, task: "slow", worker: worker.id, attempt: 1, progress: { step: 1 } },
      );
      g.open();
      await run.result({ timeoutMs: 10_000 });
      await worker.stop();
      assert.deepEqual(await app.inspect().workers(), [], "a stopped worker is gone at once");
    });

    test("queues() reports counts, dead letters, paused state, oldest wait and live workers", async (app) => {
      const doomed = app.task({
        name: "doomed",
        queue: "a",
        run: () => {
          throw new NonRetryableError("no");
        },
      });
      const later = app.task({ name: "later", queue: "b", run: () => 1 });
      await later.enqueue(undefined);
      await later.enqueue(undefined, { delayMs: 60_000 });
      const failed = await doomed.enqueue(undefined);
      const worker = app.worker({ queues: ["a"], heartbeatMs: BEAT }).start();
      await assert.rejects(failed.result({ timeoutMs: 10_000 }));
      await app.control.pause("b");
      await waitFor(
        async () => (await app.inspect().workers()).length === 1,
        10_000,
        "the worker to register",
      );
      const queues = await app.inspect().queues();
      const a = queues.find((q) => q.queue === "a");
      const b = queues.find((q) => q.queue === "b");
      assert.deepEqual(
        { waiting: a?.waiting, deadLetters: a?.deadLetters, workers: a?.workers, paused: a?.paused },
        { waiting: 0, deadLetters: 1, workers: 1, paused: false },
      );
      assert.deepEqual(
        { waiting: b?.waiting, scheduled: b?.scheduled, workers: b?.workers, paused: b?.paused },
        { waiting: 1, scheduled: 1, workers: 0, paused: true },
      );
      assert.ok(b?.oldestWaitingAgeMs !== null && (b?.oldestWaitingAgeMs ?? -1) >= 0);
      assert.equal(a?.oldestWaitingAgeMs, null);
      await worker.stop();
    });

    test("stats() counts outcomes per task with runtime percentiles; metrics() exposes them", async (app) => {
      let calls = 0;
      const flaky = app.task({
        name: "flaky",
        retry: { maxAttempts: 3, baseMs: 1, jitter: "none" },
        run: () => {
          calls++;
          if (calls === 1) throw new Error("once");
          return calls;
        },
      });
      const bad = app.task({
        name: "bad",
        run: () => {
          throw new NonRetryableError("never");
        },
      });
      const runs = [await flaky.enqueue(undefined), await bad.enqueue(undefined)];
      const worker = app.worker({ heartbeatMs: BEAT }).start();
      await runs[0]?.result({ timeoutMs: 10_000 });
      await assert.rejects(runs[1]!.result({ timeoutMs: 10_000 }));
      const stats = await app.inspect().stats({ windowMs: 300_000 });
      const f = stats.find((s) => s.task === "flaky");
      const b = stats.find((s) => s.task === "bad");
      assert.deepEqual(
        { succeeded: f?.succeeded, retried: f?.retried, failed: f?.failed },
        { succeeded: 1, retried: 1, failed: 0 },
      );
      assert.deepEqual({ succeeded: b?.succeeded, failed: b?.failed }, { succeeded: 0, failed: 1 });
      assert.ok(f?.runtime.p50 !== null && f?.runtime.p99 !== null && (f?.runtime.mean ?? -1) >= 0);
      assert.ok((f?.runtime.p50 ?? 0) <= (f?.runtime.p99 ?? 0));
      const text = await app.metrics();
      assert.match(text, /^celeriac_tasks_total\{task="flaky",queue="default",outcome="succeeded"\} 1$/m);
      assert.match(text, /^celeriac_tasks_total\{task="flaky",queue="default",outcome="retried"\} 1$/m);
      assert.match(text, /^celeriac_tasks_total\{task="bad",queue="default",outcome="failed"\} 1$/m);
      assert.match(text, /^celeriac_queue_dead_letters\{queue="default"\} 1$/m);
      assert.match(text, /^celeriac_workers\{kind="worker"\} 1$/m);
      assert.match(text, /^celeriac_task_runtime_seconds_count\{task="flaky",queue="default"\} 2$/m);
      await worker.stop();
    });

    test("control changes a worker's concurrency and shuts it down with its next beat", async (app) => {
      app.task({ name: "noop", run: () => 1 });
      const worker = app.worker({ concurrency: 2, heartbeatMs: BEAT }).start();
      await waitFor(
        async () => (await app.inspect().workers()).length === 1,
        10_000,
        "the worker to register",
      );
      assert.equal(await app.control.concurrency(worker.id, 7), true);
      await waitFor(() => worker.concurrency === 7, 10_000, "the new concurrency");
      await waitFor(
        async () => (await app.inspect().workers())[0]?.concurrency === 7,
        10_000,
        "the registry to show it",
      );
      await assert.rejects(app.control.concurrency(worker.id, 0), RangeError);
      assert.equal(await app.control.concurrency("no-such-worker", 3), false);
      assert.equal(await app.control.shutdown(worker.id), true);
      await worker.stopped();
      assert.equal(worker.running, false);
      assert.deepEqual(await app.inspect().workers(), []);
    });

    test("cancels queued runs in bulk by task and replays dead letters in bulk with progress", async (app) => {
      const keep = app.task({ name: "keep", queue: "bulk", run: () => "kept" });
      const drop = app.task({ name: "drop", queue: "bulk", run: () => "dropped" });
      let failing = true;
      const fragile = app.task({
        name: "fragile",
        run: () => {
          if (failing) throw new NonRetryableError("down");
          return "ok";
        },
      });
      const kept = await keep.enqueueMany([1, 2, 3]);
      const dropped = await drop.enqueueMany([1, 2, 3, 4]);
      const seen: { done: number; total: number | null }[] = [];
      const cancelled = await app.control.cancel({
        queue: "bulk",
        task: "drop",
        onProgress: (p) => seen.push(p),
      });
      assert.equal(cancelled, 4);
      assert.deepEqual(seen.at(-1), { done: 4, total: 4 });
      for (const r of dropped) assert.equal((await r.status())?.state, "cancelled");
      const broken = await fragile.enqueueMany([1, 2, 3]);
      await app.drain();
      assert.equal((await app.inspect().queues()).find((q) => q.queue === "default")?.deadLetters, 3);
      await assert.rejects(app.control.replay({}), TypeError);
      failing = false;
      const progress: number[] = [];
      assert.equal(
        await app.control.replay({ task: "fragile", onProgress: (p) => progress.push(p.done) }),
        3,
      );
      assert.deepEqual(progress, [1, 2, 3]);
      await app.drain();
      for (const r of [...kept, ...broken]) assert.ok(["kept", "ok"].includes((await r.result()) as string));
      assert.equal(await app.control.replay({ all: true }), 0, "nothing left to replay");
    });
  });
}

opsSuite("inspect and control on memory", async () => {
  const backend = memory();
  return { backend, close: () => backend.close() };
});

describe("inspect and control on redis", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.stop();
  });
  opsSuite("over TCP", async () => rig.backend("tcp"));
  opsSuite("over REST", async () => rig.backend("rest"));
});
