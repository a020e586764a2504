import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { createApp, SerializationError, TaskFailedError } from "../mod.ts";

describe("eager mode", () => {
  it("runs the task to its end before enqueue resolves", async () => {
    const app = createApp({ broker: memory({ eager: true }) });
    const double = app.task({ name: "double", input: v.number(), run: (n) => n * 2 });
    const run = await double.enqueue(21);
    assert.equal((await run.status())?.state, "succeeded");
    assert.equal(await run.result(), 42);
  });

  it("goes through retries with delays collapsed to 0 by default", async () => {
    const app = createApp({ broker: memory({ eager: true }) });
    let calls = 0;
    const flaky = app.task({
      name: "flaky",
      retry: { maxAttempts: 3, baseMs: 3_600_000 },
      run: () => {
        if (++calls < 3) throw new Error("not yet");
        return calls;
      },
    });
    const started = Date.now();
    const run = await flaky.enqueue(null);
    assert.equal(await run.result(), 3);
    assert.ok(Date.now() - started < 1_000);
  });

  it("waits out real delays when asked to", async () => {
    const app = createApp({ broker: memory({ eager: true, honorDelays: true }) });
    let calls = 0;
    const flaky = app.task({
      name: "flaky",
      retry: { maxAttempts: 2, baseMs: 30, jitter: "none" },
      run: () => {
        if (++calls < 2) throw new Error("not yet");
        return "done";
      },
    });
    const started = Date.now();
    const run = await flaky.enqueue(null);
    assert.equal(await run.result(), "done");
    assert.ok(Date.now() - started >= 29, "the 30 ms backoff was waited out");
  });

  it("fails exactly as production does: JSON round trip on input, errors on result()", async () => {
    const app = createApp({ broker: memory({ eager: true }) });
    let received: unknown;
    const t = app.task({
      name: "echo",
      run: (input) => {
        received = input;
        return input;
      },
    });
    await assert.rejects(t.enqueue({ f: () => 1 }), SerializationError);
    await t.enqueue({ at: new Date(Date.UTC(2030, 0, 1)), skip: undefined });
    assert.deepEqual(received, { at: "2030-01-01T00:00:00.000Z" });
    const failing = app.task({
      name: "failing",
      retry: { maxAttempts: 1 },
      run: () => {
        throw new Error("kaput");
      },
    });
    const run = await failing.enqueue(null);
    await assert.rejects(run.result(), TaskFailedError);
  });

  it("runs tasks enqueued by tasks (nested) before the outer enqueue resolves", async () => {
    const app = createApp({ broker: memory({ eager: true }) });
    const log: string[] = [];
    const child = app.task({
      name: "child",
      input: v.string(),
      run: (s) => {
        log.push(`child ${s}`);
      },
    });
    const parent = app.task({
      name: "parent",
      run: async () => {
        log.push("parent start");
        await child.enqueue("a");
        log.push("parent end");
      },
    });
    await parent.enqueue(null);
    assert.deepEqual(log, ["parent start", "child a", "parent end"]);
  });
});
