import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import {
  CancelledError,
  createApp,
  manualClock,
  NonRetryableError,
  RetryAfterError,
  type RunRecord,
  TaskFailedError,
  ValidationError,
} from "../mod.ts";
import { encodeEnvelope, errorInfo, processDelivery } from "../backend.ts";

function setup() {
  const clock = manualClock(Date.UTC(2030, 0, 1));
  const backend = memory({ clock });
  const app = createApp({ broker: backend, store: backend, clock, random: () => 0.5 });
  return { clock, backend, app };
}

describe("executor", () => {
  it("runs a task with validated input and stores its result", async () => {
    const { app } = setup();
    const add = app.task({
      name: "math.add",
      input: v.object({ a: v.number(), b: v.number() }),
      run: ({ a, b }) => ({ sum: a + b }),
    });
    const run = await add.enqueue({ a: 2, b: 3 });
    assert.equal((await run.status())?.state, "queued");
    assert.equal(await app.drain(), 1);
    const record = (await run.status()) as RunRecord;
    assert.equal(record.state, "succeeded");
    assert.equal(record.attempt, 1);
    assert.deepEqual(record.result, { sum: 5 });
    assert.deepEqual(await run.result(), { sum: 5 });
  });

  it("gives run() the schema's output (transforms applied after the JSON round trip)", async () => {
    const { app } = setup();
    let seen: unknown;
    const t = app.task({
      name: "transform",
      input: v.object({
        when: v.pipe(
          v.string(),
          v.isoDate(),
          v.transform((s) => s.split("-").map(Number)),
        ),
      }),
      run: (input) => {
        seen = input.when;
      },
    });
    await t.enqueue({ when: "2030-01-02" });
    await app.drain();
    assert.deepEqual(seen, [2030, 1, 2]);
  });

  it("rejects invalid input at enqueue with the schema issues and sends nothing", async () => {
    const { app, backend } = setup();
    const t = app.task({
      name: "email",
      input: v.object({ to: v.pipe(v.string(), v.email()) }),
      run: () => 1,
    });
    await assert.rejects(
      t.enqueue({ to: "not-an-email" }),
      (e: unknown) =>
        e instanceof ValidationError && e.issues.length === 1 && e.issues[0]?.path?.join(".") === "to",
    );
    assert.deepEqual(backend.stats(), { ready: 0, delayed: 0, leased: 0 });
  });

  it("rejects inputs JSON cannot carry at enqueue", async () => {
    const { app } = setup();
    const t = app.task({ name: "anything", run: () => 1 });
    await assert.rejects(t.enqueue({ n: 1n }), {
      name: "SerializationError",
      message: /input\.n is a bigint/,
    });
    await assert.rejects(t.enqueue({ m: new Map() }), /input\.m is a Map/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await assert.rejects(t.enqueue(cyclic), /cycle/);
  });

  it("refuses a second task with the same name", () => {
    const { app } = setup();
    app.task({ name: "dup", run: () => 1 });
    assert.throws(() => app.task({ name: "dup", run: () => 2 }), /a task named "dup" is already registered/);
  });

  it("validates task options at definition time, naming the option", () => {
    const { app } = setup();
    assert.throws(() => app.task({ name: "a", retry: { maxAttempts: 0 }, run: () => 1 }), {
      name: "RangeError",
      message: 'task "a": retry.maxAttempts must be a positive integer, got 0',
    });
    assert.throws(
      () => app.task({ name: "b", priority: 12, run: () => 1 }),
      /priority must be an integer from 0 to 9, got 12/,
    );
    assert.throws(
      () => app.task({ name: "c", timeoutMs: -5, run: () => 1 }),
      /timeoutMs must be a positive integer, got -5/,
    );
    assert.throws(() => app.task({ name: "", run: () => 1 }), TypeError);
    // @ts-expect-error: input must be a Standard Schema
    assert.throws(() => app.task({ name: "d", input: { parse() {} }, run: () => 1 }), /Standard Schema/);
  });

  it("retries with backoff until an attempt succeeds", async () => {
    const { app, clock } = setup();
    let calls = 0;
    const flaky = app.task({
      name: "flaky",
      retry: { maxAttempts: 5, baseMs: 1_000, jitter: "none" },
      run: () => {
        calls++;
        if (calls < 3) throw new Error(`boom ${calls}`);
        return "ok";
      },
    });
    const retrying: number[] = [];
    app.on("retrying", (e) => retrying.push(e.delayMs));
    const run = await flaky.enqueue(null);
    await app.drain();
    assert.equal((await run.status())?.state, "retrying");
    assert.equal(await app.drain(), 0, "not due before the backoff");
    clock.advance(1_000);
    await app.drain();
    clock.advance(1_999);
    assert.equal(await app.drain(), 0);
    clock.advance(1);
    await app.drain();
    const record = (await run.status()) as RunRecord;
    assert.equal(record.state, "succeeded");
    assert.equal(record.attempt, 3);
    assert.deepEqual(retrying, [1_000, 2_000]);
    assert.deepEqual(
      record.errors?.map((e) => [e.attempt, e.message]),
      [
        [1, "boom 1"],
        [2, "boom 2"],
      ],
    );
  });

  it("fails and dead-letters after the last attempt, with the attempt history", async () => {
    const { app, clock } = setup();
    const t = app.task({
      name: "always.fails",
      retry: { maxAttempts: 2, baseMs: 10, jitter: "none" },
      run: () => {
        throw new TypeError("nope");
      },
    });
    const failed: string[] = [];
    app.on("failed", (e) => failed.push(e.error.name));
    const run = await t.enqueue({ x: 1 });
    await app.drain();
    clock.advance(10);
    await app.drain();
    const record = (await run.status()) as RunRecord;
    assert.equal(record.state, "failed");
    assert.equal(record.error?.name, "TypeError");
    assert.deepEqual(failed, ["TypeError"]);
    const [dl] = await app.deadLetters();
    assert.equal(dl?.id, run.id);
    assert.match(dl?.reason ?? "", /failed after 2 attempts: TypeError: nope/);
    assert.deepEqual(
      dl?.errors.map((e) => e.attempt),
      [1, 2],
    );
    await assert.rejects(
      run.result(),
      (e: unknown) => e instanceof TaskFailedError && e.errorName === "TypeError" && e.runId === run.id,
    );
  });

  it("does not retry a NonRetryableError or errors outside retryOn", async () => {
    const { app } = setup();
    const a = app.task({
      name: "permanent",
      retry: { maxAttempts: 5 },
      run: () => {
        throw new NonRetryableError("account closed");
      },
    });
    const b = app.task({
      name: "selective",
      retry: { maxAttempts: 5, retryOn: [RangeError] },
      run: () => {
        throw new TypeError("not retried");
      },
    });
    const ra = await a.enqueue(1);
    const rb = await b.enqueue(1);
    await app.drain();
    assert.equal((await ra.status())?.state, "failed");
    assert.equal((await rb.status())?.attempt, 1);
    assert.equal((await rb.status())?.state, "failed");
    assert.equal((await app.deadLetters()).length, 2);
  });

  it("retries on ctx.retry() and RetryAfterError with the asked delay, counting attempts", async () => {
    const { app, clock } = setup();
    let n = 0;
    const t = app.task({
      name: "asks",
      retry: { maxAttempts: 3, baseMs: 1 },
      run: (_input, ctx) => {
        n++;
        if (ctx.attempt === 1) ctx.retry({ delayMs: 5_000 });
        if (ctx.attempt === 2) throw new RetryAfterError("429", { delayMs: 7_000 });
        return ctx.attempt;
      },
    });
    const run = await t.enqueue(null);
    await app.drain();
    clock.advance(4_999);
    assert.equal(await app.drain(), 0);
    clock.advance(1);
    await app.drain();
    clock.advance(7_000);
    await app.drain();
    assert.equal(await run.result(), 3);
    assert.equal(n, 3);
  });

  it("fails an attempt at timeoutMs even if the handler ignores its signal", async () => {
    const { app } = setup();
    let aborted = false;
    const t = app.task({
      name: "hangs",
      timeoutMs: 20,
      retry: { maxAttempts: 1 },
      run: (_i, ctx) =>
        new Promise(() => {
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
          });
        }),
    });
    const run = await t.enqueue(null);
    await app.drain();
    const record = await run.status();
    assert.equal(record?.state, "failed");
    assert.equal(record?.error?.name, "TimeoutError");
    assert.match(record?.error?.message ?? "", /timed out after 20 ms/);
    assert.equal(aborted, true);
  });

  it("records whatever a handler throws, Error or not", async () => {
    const { app } = setup();
    const thrown: unknown[] = ["a string", undefined, { code: 42 }, null, 7];
    const runs = [];
    for (const [i, value] of thrown.entries()) {
      const t = app.task({
        name: `throws.${i}`,
        retry: { maxAttempts: 1 },
        run: () => {
          throw value;
        },
      });
      runs.push(await t.enqueue(null));
    }
    await app.drain();
    const messages = await Promise.all(runs.map(async (r) => (await r.status())?.error?.message));
    assert.deepEqual(messages, [
      "a string",
      "task threw undefined",
      'task threw a non-Error value: {"code":42}',
      "task threw a non-Error value: null",
      "task threw a non-Error value: 7",
    ]);
  });

  it("fails clearly when a result is not JSON, and keeps processing", async () => {
    const { app } = setup();
    const bad = app.task({ name: "bad.result", retry: { maxAttempts: 3 }, run: () => ({ when: 10n }) });
    const good = app.task({ name: "good", run: () => "fine" });
    const r1 = await bad.enqueue(null);
    const r2 = await good.enqueue(null);
    await app.drain();
    const record = await r1.status();
    assert.equal(record?.state, "failed");
    assert.equal(record?.attempt, 1, "a non-JSON result is not retried");
    assert.match(record?.error?.message ?? "", /returned a value that is not JSON: result\.when is a bigint/);
    assert.equal(await r2.result(), "fine");
  });

  it("dead-letters an envelope naming an unknown task", async () => {
    const { app, backend } = setup();
    app.task({ name: "known", run: () => 1 });
    const body = encodeEnvelope({
      v: 1,
      id: "run-1",
      task: "nobody.knows",
      queue: "default",
      priority: 0,
      attempt: 1,
      enqueuedAt: 0,
      input: {},
    });
    await backend.send([{ id: "run-1", queue: "default", priority: 0, body }]);
    await app.drain();
    const [dl] = await app.deadLetters();
    assert.equal(dl?.id, "run-1");
    assert.match(dl?.reason ?? "", /UnknownTaskError: unknown task "nobody\.knows"/);
    assert.equal(dl?.body, body);
    assert.equal((await app.getRun("run-1").status())?.state, "failed");
  });

  it("dead-letters malformed envelopes with the reason and keeps going", async () => {
    const { app, backend } = setup();
    const ok = app.task({ name: "ok", run: () => "yes" });
    await backend.send([
      { id: "m1", queue: "default", priority: 0, body: "{not json" },
      { id: "m2", queue: "default", priority: 0, body: JSON.stringify({ v: 1, id: "m2" }) },
      { id: "m3", queue: "default", priority: 0, body: JSON.stringify({ v: 99, id: "m3" }) },
    ]);
    const run = await ok.enqueue(null);
    await app.drain();
    const reasons = (await app.deadLetters()).map((d) => d.reason).sort();
    assert.equal(reasons.length, 3);
    assert.match(reasons[0] ?? "", /EnvelopeError: envelope is malformed at task/);
    assert.match(reasons[1] ?? "", /EnvelopeError: envelope is not JSON/);
    assert.match(reasons[2] ?? "", /EnvelopeError: envelope version 99 is not supported/);
    assert.equal(await run.result(), "yes");
  });

  it("records progress and emits progress events", async () => {
    const { app } = setup();
    const seen: unknown[] = [];
    let during: unknown;
    const t = app.task({
      name: "steps",
      run: async (_i, ctx) => {
        void ctx.progress({ current: 1, total: 2 });
        await ctx.progress({ current: 2, total: 2 });
        during = (await app.getRun(ctx.id).status())?.progress;
        return "done";
      },
    });
    app.on("progress", (e) => seen.push(e.progress));
    const run = await t.enqueue(null);
    await app.drain();
    assert.deepEqual(seen, [
      { current: 1, total: 2 },
      { current: 2, total: 2 },
    ]);
    assert.deepEqual(during, { current: 2, total: 2 });
    assert.deepEqual((await run.status())?.progress, { current: 2, total: 2 });
  });

  it("keeps running when a listener throws", async () => {
    const { app } = setup();
    const errors: string[] = [];
    app.on("active", () => {
      throw new Error("listener broke");
    });
    app.on("error", (e) => errors.push(e.where));
    const t = app.task({ name: "still.runs", run: () => 1 });
    const run = await t.enqueue(null);
    await app.drain();
    assert.equal(await run.result(), 1);
    assert.deepEqual(errors, ['listener for "active"']);
  });

  it("emits lifecycle events in order", async () => {
    const { app, clock } = setup();
    const log: string[] = [];
    for (const type of ["enqueued", "active", "retrying", "succeeded"] as const) {
      app.on(type, () => log.push(type));
    }
    let n = 0;
    const t = app.task({
      name: "evented",
      retry: { baseMs: 1, jitter: "none" },
      run: () => {
        if (n++ === 0) throw new Error("once");
      },
    });
    await t.enqueue(null);
    await app.drain();
    clock.advance(1);
    await app.drain();
    assert.deepEqual(log, ["enqueued", "active", "retrying", "active", "succeeded"]);
  });

  it("skips the result with ignoreResult but keeps the state", async () => {
    const { app } = setup();
    const t = app.task({ name: "quiet", ignoreResult: true, run: () => ({ big: "x".repeat(100) }) });
    const run = await t.enqueue(null);
    await app.drain();
    const record = await run.status();
    assert.equal(record?.state, "succeeded");
    assert.equal("result" in (record ?? {}), false);
  });

  it("expires records after resultTtlMs", async () => {
    const { app, clock } = setup();
    const t = app.task({ name: "short.lived", resultTtlMs: 1_000, run: () => 1 });
    const run = await t.enqueue(null);
    await app.drain();
    clock.advance(999);
    assert.equal((await run.status())?.state, "succeeded");
    clock.advance(1);
    assert.equal(await run.status(), null);
  });

  it("cancels queued and scheduled runs, not finished ones", async () => {
    const { app, backend } = setup();
    let ran = 0;
    const t = app.task({
      name: "cancellable",
      run: () => {
        ran++;
      },
    });
    const queued = await t.enqueue(null);
    const scheduled = await t.enqueue(null, { delayMs: 60_000 });
    assert.equal(await queued.cancel(), true);
    assert.equal(await scheduled.cancel(), true);
    assert.equal(backend.stats().ready + backend.stats().delayed, 0);
    await assert.rejects(queued.result(), CancelledError);
    const done = await t.enqueue(null);
    await app.drain();
    assert.equal(await done.cancel(), false);
    assert.equal(ran, 1);
  });

  it("replays a dead letter under the same run id with a fresh attempt budget", async () => {
    const { app } = setup();
    let broken = true;
    const t = app.task({
      name: "fixable",
      retry: { maxAttempts: 1 },
      run: () => {
        if (broken) throw new Error("down");
        return "up";
      },
    });
    const run = await t.enqueue({ id: 1 });
    await app.drain();
    assert.equal((await run.status())?.state, "failed");
    broken = false;
    const again = await app.replay(run.id);
    assert.equal(again.id, run.id);
    assert.equal((await run.status())?.state, "queued");
    await app.drain();
    assert.equal(await run.result(), "up");
    assert.equal((await app.deadLetters()).length, 0);
    await assert.rejects(app.replay("no-such-id"), /no dead letter with id no-such-id/);
  });

  it("serves queues in the given order and higher priority first", async () => {
    const { app } = setup();
    const order: string[] = [];
    const t = app.task({
      name: "record",
      input: v.string(),
      run: (s) => {
        order.push(s);
      },
    });
    await t.enqueue("low-1", { priority: 1 });
    await t.enqueue("high", { priority: 9 });
    await t.enqueue("low-2", { priority: 1 });
    await t.enqueue("other-queue", { queue: "later", priority: 9 });
    await app.drain({ queues: ["default", "later"] });
    assert.deepEqual(order, ["high", "low-1", "low-2", "other-queue"]);
  });
});

describe("idempotency", () => {
  it("returns the existing run for a key seen within its TTL and sends once", async () => {
    const { app, backend } = setup();
    let effects = 0;
    const welcome = app.task({
      name: "welcome",
      input: v.object({ to: v.string() }),
      idempotencyKey: (i) => `welcome:${i.to}`,
      run: () => ++effects,
    });
    const a = await welcome.enqueue({ to: "a@b.co" });
    const b = await welcome.enqueue({ to: "a@b.co" });
    const c = await welcome.enqueue({ to: "c@d.co" });
    assert.equal(a.id, b.id);
    assert.notEqual(a.id, c.id);
    assert.equal(backend.stats().ready, 2);
    await app.drain();
    assert.equal(effects, 2);
  });

  it("does not run a duplicate delivery of a finished run", async () => {
    const { app, backend } = setup();
    let effects = 0;
    const t = app.task({ name: "once", idempotencyKey: () => "k", run: () => ++effects });
    const run = await t.enqueue(null);
    const [delivery] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 1_000, waitMs: 0 });
    assert.ok(delivery);
    const first = await processDelivery(app, delivery);
    const second = await processDelivery(app, { ...delivery, receipt: "redelivered" });
    assert.equal(first.kind, "succeeded");
    assert.deepEqual(second, { kind: "duplicate", id: run.id, state: "succeeded" });
    assert.equal(effects, 1);
  });

  it("returns the stored result for another run holding a finished key", async () => {
    const { app, clock } = setup();
    let effects = 0;
    const t = app.task({
      name: "charge",
      idempotencyKey: () => "order-7",
      idempotencyTtlMs: 1_000,
      resultTtlMs: 60_000,
      run: () => ({ charged: ++effects }),
    });
    const first = await t.enqueue(null);
    // Another producer enqueues the same key after it left the enqueue window, before it ran.
    clock.advance(1_000);
    const second = await t.enqueue(null);
    assert.notEqual(first.id, second.id);
    await app.drain();
    assert.equal(effects, 1);
    assert.deepEqual(await second.result(), { charged: 1 });
  });

  it("never runs two deliveries of the same key at once", async () => {
    const { app, backend } = setup();
    let running = 0;
    let maxRunning = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const t = app.task({
      name: "exclusive",
      idempotencyKey: () => "same",
      run: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await gate;
        running--;
        return "done";
      },
    });
    const run = await t.enqueue(null);
    const [d] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 60_000, waitMs: 0 });
    assert.ok(d);
    const first = processDelivery(app, d);
    const second = await processDelivery(app, { ...d, receipt: "concurrent-copy" });
    assert.equal(second.kind, "deferred");
    release();
    assert.equal((await first).kind, "succeeded");
    assert.equal(maxRunning, 1);
    assert.equal(await run.result(), "done");
  });
});

describe("errorInfo", () => {
  it("carries an Error's stack, formatted when first read", () => {
    const error = new TypeError("bad thing");
    const info = errorInfo(error);
    assert.equal(info.name, "TypeError");
    assert.equal(info.message, "bad thing");
    assert.equal(info.stack, error.stack);
    assert.deepEqual(Object.keys(info), ["name", "message", "stack"]);
    assert.deepEqual(JSON.parse(JSON.stringify(info)), {
      name: "TypeError",
      message: "bad thing",
      stack: error.stack,
    });
    assert.deepEqual({ ...info }, { name: "TypeError", message: "bad thing", stack: error.stack });
    info.stack = "replaced";
    assert.equal(info.stack, "replaced");
  });

  it("hands the stack of a retried attempt to listeners and stores the final one", async () => {
    const app = createApp();
    const thrown: Error[] = [];
    const t = app.task({
      name: "twice",
      retry: { maxAttempts: 2, baseMs: 0, jitter: "none" },
      run: () => {
        const error = new Error(`attempt ${thrown.length + 1}`);
        thrown.push(error);
        throw error;
      },
    });
    const seen: (string | undefined)[] = [];
    app.on("retrying", (e) => seen.push(e.error.stack));
    const run = await t.enqueue(null);
    await app.drain();
    assert.deepEqual(seen, [thrown[0]!.stack]);
    const record = await run.status();
    assert.equal(record?.state, "failed");
    assert.equal(record?.error?.stack, thrown[1]!.stack);
  });
});
