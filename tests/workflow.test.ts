import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { deliverEachTwice, mathTasks } from "./support/workflow-fixtures.ts";
import { chain, chord, createApp, group, manualClock, TaskFailedError, ValidationError } from "../mod.ts";

function setup(options: { eager?: boolean } = {}) {
  const clock = manualClock(Date.UTC(2030, 0, 1));
  const backend = memory({ clock, ...options });
  const app = createApp({ broker: backend, store: backend, clock, random: () => 0 });
  const { add, double, sum } = mathTasks(app);
  return { clock, backend, app, add, double, sum };
}

describe("chain", () => {
  it("feeds each step's result to the next and ends with the last result", async () => {
    const { app, add, double } = setup();
    const run = await chain(add.with({ a: 1, b: 2 }), double.with(), double.with()).enqueue();
    assert.equal((await run.status())?.state, "active");
    await app.drain();
    assert.equal(await run.result(), 12);
    assert.equal((await run.status())?.task, "workflow.chain");
  });

  it("stops at a failed step and reports which one", async () => {
    const { app, add, double } = setup();
    let after = 0;
    const boom = app.task({
      name: "boom",
      retry: { maxAttempts: 1 },
      run: () => {
        throw new Error("disk full");
      },
    });
    const never = app.task({ name: "never", run: () => ++after });
    const run = await chain(add.with({ a: 1, b: 1 }), double.with(), boom.with(), never.with()).enqueue();
    await app.drain();
    await assert.rejects(
      run.result(),
      (e: unknown) => e instanceof TaskFailedError && /step 3 \(boom\) failed: disk full/.test(e.message),
    );
    assert.equal(after, 0);
  });

  it("fails the step whose input does not match its schema with a ValidationError", async () => {
    const { app, add } = setup();
    const wantsString = app.task({ name: "wants.string", input: v.string(), run: (s) => s.length });
    const run = await chain(add.with({ a: 1, b: 1 }), wantsString.with()).enqueue();
    await app.drain();
    await assert.rejects(run.result(), /step 2 \(wants\.string\) failed: .*Invalid type/);
    const [dl] = await app.deadLetters();
    assert.equal(dl?.task, "wants.string");
    assert.equal(dl?.error.name, "ValidationError");
  });

  it("checks explicit inputs before anything starts", async () => {
    const { app, add, double, backend } = setup();
    await assert.rejects(
      chain(double.with(), add.with({ a: 1, b: "x" } as never)).enqueue(),
      ValidationError,
    );
    assert.equal(backend.stats().ready, 0);
    void app;
  });

  it("rejects steps that are not registered on the same app at build time", () => {
    const { double } = setup();
    const other = createApp();
    const foreign = other.task({ name: "foreign", run: () => 1 });
    assert.throws(() => chain(double.with(1), foreign.with()), /different apps/);
    assert.throws(() => chain(), /at least one step/);
    assert.throws(() => group([]), /at least one member/);
  });
});

describe("group and chord", () => {
  it("returns member results in order, whatever order they finish in", async () => {
    const { app, double } = setup();
    const run = await group([1, 2, 3, 4, 5].map((n) => double.with(n))).enqueue();
    await app.drain({ concurrency: 5 });
    assert.deepEqual(await run.result(), [2, 4, 6, 8, 10]);
  });

  it("reports partial failure per member", async () => {
    const { app, double } = setup();
    const odd = app.task({
      name: "odd.only",
      input: v.number(),
      retry: { maxAttempts: 1 },
      run: (n) => {
        if (n % 2 === 0) throw new Error(`${n} is even`);
        return n;
      },
    });
    const run = await group([odd.with(1), odd.with(2), double.with(3)]).enqueue();
    await app.drain();
    await assert.rejects(run.result(), /1 of 3 failed: member 2: Error: odd\.only: 2 is even/);
    const record = await run.status();
    assert.deepEqual(
      ((record?.result ?? []) as { state: string }[]).map((m) => m.state),
      ["succeeded", "failed", "succeeded"],
    );
  });

  it("runs a chord callback exactly once with the ordered results, despite duplicates and retries", async () => {
    const { app, backend, clock, sum } = setup();
    let flakyCalls = 0;
    const flaky = app.task({
      name: "flaky",
      input: v.number(),
      retry: { maxAttempts: 3, baseMs: 10, jitter: "none" },
      run: (n) => {
        if (n === 2 && ++flakyCalls === 1) throw new Error("transient");
        return n * 10;
      },
    });
    let callbacks = 0;
    app.on("active", (e) => {
      if (e.task === "sum") callbacks++;
    });
    const run = await chord(group([flaky.with(1), flaky.with(2), flaky.with(3)]), sum.with()).enqueue();
    // Deliver every member twice, as a broker may after a lost ack.
    await deliverEachTwice(app, backend);
    clock.advance(10);
    await app.drain();
    assert.equal(await run.result(), 60);
    assert.equal(callbacks, 1);
  });

  it("retries a failing callback per its policy and never triggers it twice", async () => {
    const { app, clock, double } = setup();
    let attempts = 0;
    const cb = app.task({
      name: "callback",
      input: v.array(v.number()),
      retry: { maxAttempts: 3, baseMs: 5, jitter: "none" },
      run: (ns) => {
        if (++attempts < 3) throw new Error("not yet");
        return ns.length;
      },
    });
    const run = await chord([double.with(1), double.with(2)], cb.with()).enqueue();
    await app.drain();
    clock.advance(5);
    await app.drain();
    clock.advance(10);
    await app.drain();
    assert.equal(await run.result(), 2);
    assert.equal(attempts, 3);
  });

  it("does not run the callback when a member fails", async () => {
    const { app, double, sum } = setup();
    let ran = 0;
    app.on("active", (e) => {
      if (e.task === "sum") ran++;
    });
    const bad = app.task({
      name: "bad",
      retry: { maxAttempts: 1 },
      run: () => {
        throw new Error("nope");
      },
    });
    const run = await chord([double.with(1), bad.with(null)], sum.with()).enqueue();
    await app.drain();
    await assert.rejects(run.result(), /chord header failed, callback not run/);
    assert.equal(ran, 0);
  });
});

describe("nesting", () => {
  it("runs a chain containing a group", async () => {
    const { app, add, double, sum } = setup();
    const run = await chain(
      add.with({ a: 2, b: 3 }),
      group([double.with(), double.with()]),
      sum.with(),
    ).enqueue();
    await app.drain({ concurrency: 3 });
    assert.equal(await run.result(), 20);
  });

  it("runs a group of chains", async () => {
    const { app, add, double } = setup();
    const run = await group([
      chain(add.with({ a: 1, b: 1 }), double.with()),
      chain(add.with({ a: 2, b: 2 }), double.with(), double.with()),
    ]).enqueue();
    await app.drain({ concurrency: 4 });
    assert.deepEqual(await run.result(), [4, 16]);
  });

  it("works in eager mode", async () => {
    const { add, double, sum } = setup({ eager: true });
    const run = await chord(group([add.with({ a: 1, b: 2 }), double.with(4)]), sum.with()).enqueue();
    assert.equal(await run.result(), 11);
  });
});
