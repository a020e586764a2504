import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memory } from "../adapters/memory/mod.ts";
import type { Broker } from "../backend.ts";
import { CancelledError, createApp, manualClock, TaskFailedError } from "../mod.ts";
import { createRequestHandler } from "../src/http/mod.ts";

/** Keeps the event loop busy for `ms` (a CPU-bound handler). */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("timeouts of code that blocks the event loop", () => {
  it("fails a synchronous handler that ran past timeoutMs", async () => {
    const app = createApp();
    const t = app.task({
      name: "sync-busy",
      timeoutMs: 100,
      retry: { maxAttempts: 1 },
      run: () => busy(400),
    });
    const run = await t.enqueue(null);
    await app.drain();
    const record = await run.status();
    assert.equal(record?.state, "failed");
    assert.equal(record?.error?.name, "TimeoutError");
    await assert.rejects(run.result(), TaskFailedError);
  });

  it("fails an async handler that blocked the loop past timeoutMs before it resolved", async () => {
    const app = createApp();
    const t = app.task({
      name: "async-busy",
      timeoutMs: 100,
      retry: { maxAttempts: 1 },
      async run() {
        busy(400);
        return "late";
      },
    });
    const run = await t.enqueue(null);
    await app.drain();
    const record = await run.status();
    assert.equal(record?.state, "failed");
    assert.equal(record?.error?.name, "TimeoutError");
    assert.match(record?.error?.message ?? "", /timed out after 100 ms/);
  });

  it("keeps a handler that finished in time", async () => {
    const app = createApp();
    const t = app.task({ name: "quick", timeoutMs: 1_000, run: () => busy(5) });
    const run = await t.enqueue(null);
    await app.drain();
    assert.equal((await run.status())?.state, "succeeded");
  });
});

describe("startedAt", () => {
  it("is when the run was leased, never before it was enqueued (an idle worker waiting)", async () => {
    const clock = manualClock(Date.UTC(2030, 0, 1));
    const backend = memory({ clock });
    const app = createApp({ broker: backend, store: backend, clock });
    const t = app.task({ name: "t", run: () => "ok" });
    const worker = app.worker({ pollMs: 60_000 }).start(); // idle, waiting since the clock's start
    try {
      clock.advance(5_000);
      const run = await t.enqueue(null);
      assert.equal(await run.result(), "ok");
      const record = await run.status();
      assert.ok(record?.startedAt !== undefined);
      assert.ok(
        record.startedAt >= record.enqueuedAt,
        `started ${record.startedAt}, enqueued ${record.enqueuedAt}`,
      );
    } finally {
      await worker.stop();
    }
  });
});

describe("listeners", () => {
  it("reports an async listener that rejects as an error event; the run is unaffected", async () => {
    const app = createApp();
    const errors: string[] = [];
    app.on("error", (e) => errors.push(`${e.where}: ${(e.error as Error).message}`));
    app.on("succeeded", async () => {
      throw new Error("listener failed later");
    });
    const t = app.task({ name: "t", run: () => 1 });
    const run = await t.enqueue(null);
    await app.drain();
    assert.equal(await run.result(), 1);
    const reported = deferred();
    if (errors.length === 0) {
      const off = app.on("error", () => {
        off();
        reported.resolve();
      });
      await reported.promise;
    }
    assert.deepEqual(errors, ['listener for "succeeded": listener failed later']);
  });
});

describe("GET /health", () => {
  it("bounds each probe and says which backend timed out", async () => {
    const hanging: Broker = {
      send: () => Promise.resolve(),
      ping: () => new Promise(() => {}),
    };
    const store = memory();
    const app = createApp({ broker: hanging, store });
    const handle = createRequestHandler(app, { healthTimeoutMs: 100 });
    const started = performance.now();
    const res = await handle(new Request("https://app.example/health"));
    assert.ok(performance.now() - started < 1_000, "answered within the probe timeout");
    assert.equal(res.status, 503);
    const body = (await res.json()) as { checks: Record<string, { ok: boolean; error?: string }> };
    assert.equal(body.checks.store?.ok, true);
    assert.equal(body.checks.broker?.ok, false);
    assert.match(body.checks.broker?.error ?? "", /broker did not answer within 100 ms/);
    assert.throws(
      () => createRequestHandler(app, { healthTimeoutMs: 0 }),
      /healthTimeoutMs must be a positive/,
    );
  });
});

describe("unknown options", () => {
  it("are a TypeError naming the key, for app, task, enqueue and worker options", async () => {
    assert.throws(() => createApp({ brokr: memory() } as never), /unknown option "brokr" of createApp/);
    const app = createApp();
    assert.throws(
      () => app.task({ name: "t", run: () => 1, retry: { maxAtempts: 3 } } as never),
      /unknown option "maxAtempts" of task "t": retry/,
    );
    assert.throws(
      () => app.task({ name: "u", run: () => 1, expires: 5 } as never),
      /unknown option "expires" of task "u"/,
    );
    const t = app.task({ name: "v", run: () => 1 });
    await assert.rejects(t.enqueue(null, { dealyMs: 5 } as never), /unknown option "dealyMs" of enqueue/);
    await assert.rejects(
      t.enqueueMany([null], { routes: {} } as never),
      /unknown option "routes" of enqueue/,
    );
    assert.throws(() => app.worker({ concurency: 2 } as never), /unknown option "concurency" of worker/);
  });
});

describe("queue names", () => {
  it("are checked the same way at definition and at enqueue", async () => {
    const app = createApp();
    const t = app.task({ name: "t", run: () => 1 });
    for (const queue of ["", "a b", "a}{b"]) {
      assert.throws(
        () => app.task({ name: `t${queue}`, queue, run: () => 1 }),
        /queue must be a non-empty string/,
      );
      await assert.rejects(t.enqueue(null, { queue }), /queue must be a non-empty string/);
    }
  });
});

describe("eager mode", () => {
  it("rejects enqueue with the run's TaskFailedError under propagate: true (and resolves by default)", async () => {
    const failing = (app: ReturnType<typeof createApp>) =>
      app.task({
        name: "fails",
        retry: { maxAttempts: 2, baseMs: 0, jitter: "none" },
        run: () => {
          throw new Error("no luck");
        },
      });
    const strict = createApp({ broker: memory({ eager: true, propagate: true }) });
    const error = await failing(strict)
      .enqueue(null)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(error instanceof TaskFailedError, String(error));
    assert.match(error.message, /no luck/);
    const lenient = createApp({ broker: memory({ eager: true }) });
    const run = await failing(lenient).enqueue(null);
    assert.equal((await run.status())?.state, "failed");
    assert.throws(() => memory({ propagate: true }), /propagate needs eager: true/);
  });
});

describe("dead letters", () => {
  it("can be deleted and purged, and expire after their retention", async () => {
    const clock = manualClock(Date.UTC(2030, 0, 1));
    const backend = memory({ clock, deadLetterTtlMs: 60_000 });
    const app = createApp({ broker: backend, store: backend, clock });
    const t = app.task({
      name: "fails",
      retry: { maxAttempts: 1 },
      run: () => {
        throw new Error("no");
      },
    });
    const runs = await t.enqueueMany([1, 2, 3]);
    await app.drain();
    assert.equal((await app.deadLetters()).length, 3);
    assert.equal(await app.deadLetters.delete(runs[0]!.id), true);
    assert.equal(await app.deadLetters.delete(runs[0]!.id), false);
    assert.deepEqual(
      (await app.deadLetters.list()).map((d) => d.id).sort(),
      [runs[1]!.id, runs[2]!.id].sort(),
    );
    assert.equal(await app.deadLetters.purge(), 2);
    assert.deepEqual(await app.deadLetters(), []);
    await t.enqueue(4);
    await app.drain();
    assert.equal((await app.deadLetters()).length, 1);
    clock.advance(60_001);
    assert.deepEqual(await app.deadLetters(), [], "expired after deadLetterTtlMs");
  });
});

describe("cancel", () => {
  it("cancels a running task: its signal aborts, and it does not end succeeded", async () => {
    const app = createApp();
    const started = deferred();
    let aborted: unknown;
    const t = app.task({
      name: "long",
      run: (_input, ctx) =>
        new Promise((resolve) => {
          started.resolve();
          ctx.signal.addEventListener("abort", () => {
            aborted = ctx.signal.reason;
            resolve("finished anyway");
          });
        }),
    });
    const worker = app.worker({ leaseMs: 300 }).start();
    try {
      const run = await t.enqueue(null);
      await started.promise;
      assert.equal(await run.cancel(), true);
      await assert.rejects(run.result({ timeoutMs: 5_000 }), CancelledError);
      const record = await run.status();
      assert.equal(record?.state, "cancelled");
      const deadline = Date.now() + 5_000;
      while (aborted === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(aborted instanceof CancelledError, `signal aborted with ${String(aborted)}`);
      assert.equal((await run.status())?.state, "cancelled", "the late success is not recorded");
    } finally {
      await worker.stop();
    }
  });

  it("cancels a chain's pending steps and says which had already run", async () => {
    const clock = manualClock(Date.UTC(2030, 0, 1));
    const backend = memory({ clock });
    const app = createApp({ broker: backend, store: backend, clock });
    const ran: string[] = [];
    const step = (name: string) => app.task({ name, run: (x: unknown) => ran.push(name) && x });
    const { chain } = await import("../mod.ts");
    const a = step("a");
    const b = step("b");
    const c = step("c");
    const run = await chain(a.with(1), b.with(), c.with()).enqueue();
    // Run the first step only.
    const [first] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 60_000, waitMs: 0 });
    const { processDelivery } = await import("../backend.ts");
    await processDelivery(app, first!);
    assert.deepEqual(ran, ["a"]);
    assert.equal(await run.cancel(), true);
    await app.drain();
    assert.deepEqual(ran, ["a"], "no step after the cancel ran");
    const record = await run.status();
    assert.equal(record?.state, "cancelled");
    assert.deepEqual((record!.result as { ran: string[] }).ran, ["a"]);
    await assert.rejects(run.result(), CancelledError);
  });
});

describe("a prefetched run", () => {
  it("whose lease lapsed while the loop was blocked is dropped, not run twice", async () => {
    const backend = memory();
    const app = createApp({ broker: backend, store: backend });
    const counts = new Map<string, number>();
    const t = app.task({
      name: "t",
      run: (input: string) => {
        counts.set(input, (counts.get(input) ?? 0) + 1);
        if (input === "A") busy(1_000);
      },
    });
    const worker = app.worker({ concurrency: 1, prefetch: 1, leaseMs: 200, pollMs: 50 }).start();
    try {
      const runs = await t.enqueueMany(["A", "B"]);
      for (const run of runs) await run.result({ timeoutMs: 10_000 });
      // Let the worker finish whatever it still holds before counting.
      await worker.stop();
      assert.deepEqual(Object.fromEntries(counts), { A: 1, B: 1 });
    } finally {
      await worker.stop();
    }
  });
});

describe("ctx.idempotencyKey and ctx.once", () => {
  it("give a stable key across attempts and skip a recorded step on a re-run", async () => {
    const app = createApp();
    const keys: string[] = [];
    const effects: string[] = [];
    let attempt = 0;
    const t = app.task({
      name: "billing.charge",
      idempotencyKey: (input) => `order:${(input as { order: string }).order}`,
      retry: { maxAttempts: 2, baseMs: 0, jitter: "none" },
      async run(input: { order: string }, ctx) {
        keys.push(ctx.idempotencyKey);
        const charge = await ctx.once("charge", () => {
          effects.push(`charged ${input.order}`);
          return { id: `ch_${input.order}`, at: new Date(0) };
        });
        if (++attempt === 1) throw new Error("crashed after the charge");
        return charge;
      },
    });
    const run = await t.enqueue({ order: "o1" });
    await app.drain();
    await app.drain();
    // The recorded value is its JSON round trip, on the first run as on the re-run.
    assert.deepEqual(await run.result(), { id: "ch_o1", at: "1970-01-01T00:00:00.000Z" });
    assert.deepEqual(effects, ["charged o1"], "the charge ran once across both attempts");
    assert.deepEqual(keys, ["billing.charge:order:o1", "billing.charge:order:o1"]);
    const plain = app.task({ name: "plain", run: (_input, ctx) => ctx.idempotencyKey });
    const other = await plain.enqueue(null);
    await app.drain();
    assert.equal(await other.result(), other.id, "a run without a key: its run id");
  });
});
