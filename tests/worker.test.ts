import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { createApp, manualClock } from "../mod.ts";

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("worker", () => {
  it("runs up to `concurrency` tasks at once and all of them in the end", async () => {
    const app = createApp();
    let running = 0;
    let peak = 0;
    const t = app.task({
      name: "sleepy",
      input: v.number(),
      run: async (n) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return n;
      },
    });
    const runs = await t.enqueueMany(Array.from({ length: 40 }, (_, i) => i));
    const worker = app.worker({ concurrency: 4 }).start();
    const results = await Promise.all(runs.map((r) => r.result()));
    await worker.stop();
    assert.deepEqual(results, [...Array(40).keys()]);
    assert.equal(peak, 4);
  });

  it("serves every queue the app's tasks use when no queues are given", async () => {
    const app = createApp();
    const a = app.task({ name: "a", queue: "io", run: () => "a" });
    const b = app.task({ name: "b", run: () => "b" });
    const worker = app.worker().start();
    const [ra, rb] = [await a.enqueue(null), await b.enqueue(null)];
    assert.deepEqual([await ra.result(), await rb.result()], ["a", "b"]);
    await worker.stop();
  });

  it("picks up work sent while it waits, without polling", async () => {
    const app = createApp();
    const t = app.task({ name: "ping", run: () => "pong" });
    const worker = app.worker({ pollMs: 60_000 }).start();
    const run = await t.enqueue(null);
    assert.equal(await run.result({ timeoutMs: 2_000 }), "pong");
    await worker.stop();
  });

  it("keeps going after a task throws or hangs", async () => {
    const app = createApp();
    const bad = app.task({
      name: "bad",
      retry: { maxAttempts: 1 },
      run: () => {
        throw new Error("bad");
      },
    });
    const hang = app.task({
      name: "hang",
      timeoutMs: 50,
      retry: { maxAttempts: 1 },
      run: () => new Promise(() => {}),
    });
    const good = app.task({ name: "good", run: () => "good" });
    const worker = app.worker({ concurrency: 2 }).start();
    const runs = [await bad.enqueue(null), await hang.enqueue(null), await good.enqueue(null)];
    await assert.rejects(runs[0]!.result());
    await assert.rejects(runs[1]!.result(), /TimeoutError/);
    assert.equal(await runs[2]!.result(), "good");
    await worker.stop();
  });

  it("renews leases while a task runs, so no other worker gets it", async () => {
    const backend = memory();
    let renewals = 0;
    const renewed = deferred();
    const renew = backend.renew.bind(backend);
    backend.renew = (deliveries, leaseMs) => {
      if (++renewals === 10) renewed.resolve();
      return renew(deliveries, leaseMs);
    };
    const app = createApp({ broker: backend, store: backend });
    const gate = deferred();
    const started = deferred();
    let starts = 0;
    const t = app.task({
      name: "long",
      run: async () => {
        starts++;
        started.resolve();
        await gate.promise;
        return "done";
      },
    });
    const one = app.worker({ leaseMs: 60 }).start();
    const two = app.worker({ leaseMs: 60 }).start();
    const run = await t.enqueue(null);
    await started.promise;
    // Ten renewals span several lease lengths: without them the second worker would take the task.
    await renewed.promise;
    gate.resolve();
    assert.equal(await run.result(), "done");
    assert.equal(starts, 1);
    await Promise.all([one.stop(), two.stop()]);
  });

  it("redelivers a task whose worker died after the lease expired", async () => {
    const clock = manualClock(0);
    const backend = memory({ clock });
    const app = createApp({ broker: backend, store: backend, clock });
    let runs = 0;
    const t = app.task({ name: "lost", run: () => ++runs });
    const run = await t.enqueue(null);
    // A worker takes it and dies: it never acks, never renews.
    const [taken] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 1_000, waitMs: 0 });
    assert.equal(taken?.deliveries, 1);
    assert.equal(await app.drain(), 0, "invisible while leased");
    clock.advance(1_000);
    assert.equal(await app.drain(), 1);
    assert.equal(await run.result(), 1);
  });

  it("stops gracefully: waits for in-flight work within the grace period", async () => {
    const app = createApp();
    const started = deferred();
    let finished = false;
    const t = app.task({
      name: "finishing",
      run: async () => {
        started.resolve();
        await new Promise((r) => setTimeout(r, 30));
        finished = true;
      },
    });
    const worker = app.worker({ shutdownGraceMs: 5_000 }).start();
    const run = await t.enqueue(null);
    await started.promise;
    await worker.stop();
    assert.equal(finished, true);
    assert.equal((await run.status())?.state, "succeeded");
    assert.equal(worker.running, false);
  });

  it("releases unfinished work after the grace period so another worker completes it", async () => {
    const backend = memory();
    const app = createApp({ broker: backend, store: backend });
    const started = deferred();
    let attempts = 0;
    const t = app.task({
      name: "stuck",
      run: async (_i, ctx) => {
        attempts++;
        if (attempts === 1) {
          started.resolve();
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
          throw new Error("aborted by shutdown");
        }
        return "second worker";
      },
    });
    const first = app.worker({ shutdownGraceMs: 20 }).start();
    const run = await t.enqueue(null);
    await started.promise;
    await first.stop();
    assert.equal(backend.stats().ready, 1, "the task is back in its queue");
    const second = app.worker().start();
    assert.equal(await run.result(), "second worker");
    await second.stop();
  });

  it("leases `prefetch` tasks ahead, runs `concurrency` at once, and sends waiting ones back on stop", async () => {
    const backend = memory();
    const app = createApp({ broker: backend, store: backend });
    const gate = deferred();
    const bothStarted = deferred();
    const ran: number[] = [];
    let running = 0;
    let peak = 0;
    const t = app.task({
      name: "gated",
      input: v.number(),
      run: async (n) => {
        ran.push(n);
        peak = Math.max(peak, ++running);
        if (ran.length === 2) bothStarted.resolve();
        await gate.promise;
        running--;
      },
    });
    const runs = await t.enqueueMany(Array.from({ length: 10 }, (_, i) => i));
    const worker = app.worker({ concurrency: 2, prefetch: 3 });
    assert.deepEqual([worker.active, worker.prefetched], [0, 0]);
    worker.start();
    await bothStarted.promise;
    assert.equal(worker.active, 2);
    assert.equal(worker.prefetched, 3);
    assert.deepEqual(backend.stats(), { ready: 5, delayed: 0, leased: 5 });
    const stopped = worker.stop();
    gate.resolve();
    await stopped;
    // The two running tasks finished; the three waiting ones went back without running.
    assert.deepEqual([worker.active, worker.prefetched], [0, 0]);
    assert.deepEqual(ran, [0, 1]);
    assert.equal(peak, 2);
    assert.deepEqual(backend.stats(), { ready: 8, delayed: 0, leased: 0 });
    const next = app.worker({ concurrency: 3 }).start();
    await Promise.all(runs.map((r) => r.result()));
    await next.stop();
    assert.deepEqual(
      [...ran].sort((a, b) => a - b),
      [...Array(10).keys()],
    );
  });

  it("leases no more than `concurrency` with prefetch 0", async () => {
    const backend = memory();
    const app = createApp({ broker: backend, store: backend });
    const gate = deferred();
    const started = deferred();
    let count = 0;
    const t = app.task({
      name: "held",
      run: async () => {
        if (++count === 3) started.resolve();
        await gate.promise;
      },
    });
    const runs = await t.enqueueMany(Array.from({ length: 8 }, () => null));
    const worker = app.worker({ concurrency: 3, prefetch: 0 }).start();
    await started.promise;
    assert.deepEqual(backend.stats(), { ready: 5, delayed: 0, leased: 3 });
    assert.equal(worker.prefetched, 0);
    gate.resolve();
    await Promise.all(runs.map((r) => r.result()));
    await worker.stop();
    assert.equal(count, 8);
  });

  it("stops with its app: app.close() stops workers and schedulers before closing the backends", async () => {
    const app = createApp();
    const started = deferred();
    let finished = false;
    const t = app.task({
      name: "closing",
      run: async () => {
        started.resolve();
        await new Promise((r) => setTimeout(r, 20));
        finished = true;
      },
    });
    const worker = app.worker().start();
    const scheduler = app.scheduler().start();
    // Stopped and started again: still one the app stops.
    const again = app.worker();
    await again.start().stop();
    again.start();
    const run = await t.enqueue(null);
    await started.promise;
    await app.close();
    assert.equal(worker.running, false);
    assert.equal(again.running, false);
    assert.equal(scheduler.running, false);
    assert.equal(finished, true, "the in-flight task finished within the grace period");
    assert.equal((await run.status())?.state, "succeeded");
  });

  it("validates its options", () => {
    const app = createApp();
    assert.throws(() => app.worker({ concurrency: 0 }), /concurrency must be a positive integer, got 0/);
    assert.throws(() => app.worker({ leaseMs: -1 }), /leaseMs must be a positive number, got -1/);
    assert.throws(() => app.worker({ queues: [] }), /queues must be a non-empty array/);
    assert.throws(() => app.worker({ prefetch: -1 }), /prefetch must be a non-negative integer, got -1/);
    assert.throws(() => app.worker({ prefetch: 1.5 }), /prefetch must be a non-negative integer, got 1.5/);
  });
});
