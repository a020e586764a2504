import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { qstashReceiver } from "../adapters/qstash/mod.ts";
import type { Store } from "../backend.ts";
import { signQStashDelivery } from "../dev/mod.ts";
import { type App, createApp, type EventMap, manualClock, NonRetryableError } from "../mod.ts";
import { createRequestHandler } from "../src/http/mod.ts";

const T0 = Date.UTC(2030, 0, 1);
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function setup() {
  const clock = manualClock(T0);
  const backend = memory({ clock });
  const app = createApp({ broker: backend, store: backend, clock });
  return { clock, backend, app };
}

function breakerEvents(app: App): (keyof EventMap)[] {
  const seen: (keyof EventMap)[] = [];
  for (const type of ["breakerOpened", "breakerHalfOpen", "breakerClosed"] as const) {
    app.on(type, () => seen.push(type));
  }
  return seen;
}

/** A downstream that answers 503 until `outageEnds` (manual-clock time); records every call. */
function outage(app: App, clock: { now(): number }, outageEnds: number) {
  const calls: { id: string; attempt: number; at: number }[] = [];
  const task = app.task({
    name: "charge",
    retry: { maxAttempts: 8, backoff: "fixed", baseMs: 2_000, jitter: "none" },
    breaker: { failureThreshold: 3, windowMs: 10_000, cooldownMs: 10_000, halfOpenProbes: 1 },
    run: (n: number, ctx) => {
      calls.push({ id: ctx.id, attempt: ctx.attempt, at: clock.now() });
      if (clock.now() < outageEnds) throw new Error("503 from the payment provider");
      return n;
    },
  });
  return { task, calls };
}

describe("circuit breaker through a 30 s outage (manual clock)", () => {
  it("spends at most failureThreshold + probes attempts; every run succeeds after it, its attempts unspent", async () => {
    const { clock, app } = setup();
    const events = breakerEvents(app);
    const outageEnds = T0 + 30_000;
    const { task, calls } = outage(app, clock, outageEnds);
    const runs = await task.enqueueMany(Array.from({ length: 50 }, (_, i) => i));
    while (clock.now() <= T0 + 60_000) {
      await app.drain();
      clock.advance(500);
    }
    const during = calls.filter((c) => c.at < outageEnds);
    // Opened at 0 s; one probe per cooldown at 10 s and 20 s (both fail); the one at 30 s closes it.
    const probes = Math.ceil(30_000 / 10_000) - 1;
    assert.ok(during.length <= 3 + probes, `${during.length} attempts during the outage`);
    assert.equal(during.length, 3 + probes);
    assert.deepEqual(events, [
      "breakerOpened",
      "breakerHalfOpen",
      "breakerOpened",
      "breakerHalfOpen",
      "breakerOpened",
      "breakerHalfOpen",
      "breakerClosed",
    ]);
    const records = await Promise.all(runs.map((r) => r.status()));
    assert.deepEqual(new Set(records.map((r) => r?.state)), new Set(["succeeded"]), "no run was lost");
    for (const record of records) {
      const attempts = calls.filter((c) => c.id === record!.id).map((c) => c.attempt);
      assert.deepEqual(
        attempts,
        attempts.map((_, i) => i + 1),
        "each attempt ran once, in order",
      );
      assert.equal(record!.attempt, attempts.length, "deferrals used no attempt");
    }
    assert.deepEqual(await app.deadLetters(), []);
  });

  it("with a worker of 4 slots: at most failureThreshold + 3 (runs already started) + probes", async () => {
    const { clock, app } = setup();
    const outageEnds = T0 + 30_000;
    const { task, calls } = outage(app, clock, outageEnds);
    const runs = await task.enqueueMany(Array.from({ length: 40 }, (_, i) => i));
    const worker = app.worker({ concurrency: 4, pollMs: 5 }).start();
    try {
      const done = async () =>
        (await Promise.all(runs.map((r) => r.status()))).every((r) => r?.state === "succeeded");
      while (!(await done())) {
        assert.ok(clock.now() < T0 + 120_000, "every run succeeds within 90 s of the outage's end");
        clock.advance(250);
        await tick(2);
      }
    } finally {
      await worker.stop();
    }
    const during = calls.filter((c) => c.at < outageEnds).length;
    assert.ok(during <= 3 + 3 + 3, `${during} attempts during the outage`);
    for (const run of runs) {
      const attempts = calls.filter((c) => c.id === run.id).map((c) => c.attempt);
      assert.deepEqual(
        attempts,
        attempts.map((_, i) => i + 1),
      );
    }
  });
});

describe("circuit breaker costs", () => {
  /** The memory backend as a store, counting the calls a run makes to its plain keys. */
  function counted() {
    const clock = manualClock(T0);
    const backend = memory({ clock });
    const counts = { get: 0, writes: 0 };
    const store = new Proxy(backend, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        if (prop === "get") counts.get++;
        if (["set", "setIfAbsent", "compareAndSet", "compareAndDelete", "incr"].includes(prop as string)) {
          counts.writes++;
        }
        return (value as (...args: unknown[]) => unknown).bind(target);
      },
    }) as Store;
    const app = createApp({ broker: backend, store, clock });
    return { app, counts };
  }

  it("a task without a breaker reads nothing for it; one with a closed breaker reads one key per run and writes none", async () => {
    const { app, counts } = counted();
    const plain = app.task({ name: "plain", run: (n: number) => n });
    const guarded = app.task({ name: "guarded", breaker: { failureThreshold: 2 }, run: (n: number) => n });
    await plain.enqueueMany([1, 2, 3, 4, 5]);
    Object.assign(counts, { get: 0, writes: 0 });
    await app.drain();
    assert.deepEqual(counts, { get: 0, writes: 0 });
    await guarded.enqueueMany([1, 2, 3, 4, 5]);
    Object.assign(counts, { get: 0, writes: 0 });
    await app.drain();
    assert.deepEqual(counts, { get: 5, writes: 0 });
  });
});

describe("what a breaker counts", () => {
  it("counts a timeout and a NonRetryableError; not input that fails its schema nor a result that is not JSON", async () => {
    const { app, backend } = setup();
    let mode: "hang" | "non-retryable" | "bigint" = "bigint";
    const task = app.task({
      name: "counted",
      input: v.number(),
      timeoutMs: 20,
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 2 },
      run: (_n: number, ctx) => {
        if (mode === "hang") return new Promise((_, reject) => ctx.signal.addEventListener("abort", reject));
        if (mode === "non-retryable") throw new NonRetryableError("400 bad request");
        return 10n as unknown as number;
      },
    });
    const failures = async () => (await app.inspect().breakers())[0]?.failures;
    await task.enqueue(1);
    await app.drain();
    assert.equal(await failures(), 0, "a result that is not JSON is the task's fault, not the downstream's");
    const body = JSON.stringify({
      v: 1,
      id: "bad-input",
      task: "counted",
      queue: "default",
      priority: 0,
      attempt: 1,
      enqueuedAt: T0,
      input: "not a number",
    });
    await backend.send([{ id: "bad-input", queue: "default", priority: 0, body }]);
    await app.drain();
    assert.equal((await app.getRun("bad-input").status())?.state, "failed");
    assert.equal(await failures(), 0, "input that fails its schema never reached the downstream");
    mode = "hang";
    await task.enqueue(2);
    await app.drain();
    assert.equal(await failures(), 1, "a timeout counts");
    mode = "non-retryable";
    await task.enqueue(3);
    await app.drain();
    const [info] = await app.inspect().breakers();
    assert.equal(info?.state, "open", "a NonRetryableError counts");
    assert.equal(info?.failures, 2);
  });
});

describe("a breaker's stored state", () => {
  it("reads a record it cannot parse as closed, and replaces it with the next failure", async () => {
    const { app, backend } = setup();
    let calls = 0;
    const task = app.task({
      name: "garbled",
      retry: { maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      run: () => {
        calls++;
        throw new Error("down");
      },
    });
    await backend.set("breaker:garbled", "{not json");
    await task.enqueue(null);
    await app.drain();
    assert.equal(calls, 1, "it ran: the breaker reads as closed");
    assert.equal((await app.inspect().breakers())[0]?.state, "open");
  });
});

describe("breakers shared by name", () => {
  it("opens for every task that names it", async () => {
    const { app } = setup();
    const ran: string[] = [];
    const breaker = { name: "geo-api", failureThreshold: 2, cooldownMs: 5_000 };
    const lookup = app.task({
      name: "geo.lookup",
      breaker,
      retry: { maxAttempts: 1 },
      run: () => {
        ran.push("lookup");
        throw new Error("geo api down");
      },
    });
    const reverse = app.task({ name: "geo.reverse", breaker, run: () => ran.push("reverse") });
    await lookup.enqueueMany([1, 2]);
    await app.drain();
    const run = await reverse.enqueue(null);
    await app.drain();
    assert.deepEqual(ran, ["lookup", "lookup"], "the other task's run waits");
    const [info] = await app.inspect().breakers();
    assert.deepEqual(
      { name: info?.name, tasks: info?.tasks, state: info?.state },
      { name: "geo-api", tasks: ["geo.lookup", "geo.reverse"], state: "open" },
    );
    assert.equal((await run.status())?.state, "scheduled");
  });

  it("rejects tasks that share a name with other options, naming both", () => {
    const { app } = setup();
    app.task({ name: "a", breaker: { name: "shared", failureThreshold: 2 }, run: () => null });
    assert.throws(
      () => app.task({ name: "b", breaker: { name: "shared", failureThreshold: 3 }, run: () => null }),
      (e: unknown) => e instanceof TypeError && /breaker "shared" is shared with task "a"/.test(e.message),
    );
  });
});

describe("breaker options", () => {
  it("fills in defaults and rejects bad values, naming the option", () => {
    const { app } = setup();
    const t = app.task({ name: "defaults", breaker: {}, run: () => null });
    assert.deepEqual(
      { ...t.options.breaker },
      { name: "defaults", failureThreshold: 5, windowMs: 60_000, cooldownMs: 30_000, halfOpenProbes: 1 },
    );
    const bad: [unknown, RegExp, ErrorConstructor][] = [
      [5, /task "x": breaker must be an object, got 5/, TypeError],
      [{ failureThreshold: 0 }, /breaker.failureThreshold must be a positive integer, got 0/, RangeError],
      [{ windowMs: -1 }, /breaker.windowMs must be a positive integer, got -1/, RangeError],
      [{ cooldownMs: 1.5 }, /breaker.cooldownMs must be a positive integer, got 1.5/, RangeError],
      [{ halfOpenProbes: "2" }, /breaker.halfOpenProbes must be a positive integer, got 2/, RangeError],
      [{ name: "" }, /breaker.name must be a non-empty string, got ""/, TypeError],
      [{ threshold: 3 }, /unknown option "threshold" of task "x": breaker/, TypeError],
    ];
    for (const [breaker, message, type] of bad) {
      assert.throws(
        () => app.task({ name: "x", breaker: breaker as never, run: () => null }),
        (e: unknown) => e instanceof type && message.test((e as Error).message),
        JSON.stringify(breaker),
      );
    }
  });
});

describe("breakers in eager mode", () => {
  it("collapses the cooldown like any delay: the next run probes at once, and nothing hangs", async () => {
    const app = createApp({ broker: memory({ eager: true }) });
    const events = breakerEvents(app);
    let down = true;
    const task = app.task({
      name: "eager",
      retry: { maxAttempts: 2, backoff: "fixed", baseMs: 60_000, jitter: "none" },
      breaker: { failureThreshold: 1, cooldownMs: 3_600_000 },
      run: () => {
        if (down) throw new Error("down");
        return "up";
      },
    });
    const failed = await task.enqueue(null);
    assert.equal((await failed.status())?.state, "failed", "its retry was the probe, and failed");
    down = false;
    const ok = await task.enqueue(null);
    assert.equal(await ok.result(), "up");
    assert.deepEqual(events, [
      "breakerOpened",
      "breakerHalfOpen",
      "breakerOpened",
      "breakerHalfOpen",
      "breakerClosed",
    ]);
  });
});

describe("breakers and push deliveries", () => {
  const KEYS = { currentSigningKey: "sig_breaker_current", nextSigningKey: "sig_breaker_next" };
  const URL_ = "https://tasks.example.com/qstash";

  async function push(handle: (r: Request) => Promise<Response>, id: string) {
    const body = JSON.stringify({
      v: 1,
      id,
      task: "remote",
      queue: "default",
      priority: 0,
      attempt: 1,
      enqueuedAt: T0,
      input: null,
    });
    const signature = await signQStashDelivery({ signingKey: KEYS.currentSigningKey, url: URL_, body });
    const res = await handle(
      new Request(URL_, {
        method: "POST",
        body,
        headers: { "upstash-signature": signature, "upstash-message-id": `msg_${id}` },
      }),
    );
    return { status: res.status, body: (await res.json()) as { outcome: string; delayMs?: number } };
  }

  it("answers a delivery for an open breaker 200 'deferred' (sent again for after the cooldown), running nothing", async () => {
    const { app, clock } = setup();
    let calls = 0;
    app.task({
      name: "remote",
      breaker: { failureThreshold: 1, cooldownMs: 20_000 },
      run: () => {
        calls++;
        throw new Error("down");
      },
    });
    const handle = createRequestHandler(app, { push: qstashReceiver({ ...KEYS, url: URL_ }) });
    assert.equal((await push(handle, "first")).body.outcome, "retrying");
    const answer = await push(handle, "second");
    assert.deepEqual(answer, { status: 200, body: { outcome: "deferred", id: "second", delayMs: 20_000 } });
    assert.equal(calls, 1);
    const waiting = await app.getRun("second").status();
    assert.equal(waiting?.state, "scheduled");
    assert.equal(waiting?.notBefore, clock.now() + 20_000);
  });
});
