// What the lock contract (testing/_lock-contract.ts, run on every backend) leaves to one backend:
// option checks, `await using`, a store that cannot renew, and the TTL of ctx.lock() with and
// without a lease.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memory } from "../adapters/memory/mod.ts";
import { processDelivery, type Store } from "../backend.ts";
import {
  CeleriacError,
  createApp,
  LockedError,
  type LockHandle,
  manualClock,
  TaskFailedError,
  TimeoutError,
} from "../mod.ts";

function setup(store?: (backend: ReturnType<typeof memory>) => Store) {
  const clock = manualClock(Date.UTC(2030, 0, 1));
  const backend = memory({ clock });
  const app = createApp({ broker: backend, store: store?.(backend) ?? backend, clock });
  return { clock, backend, app };
}

/** The memory store without `compareAndSet`, as a store written before it existed. */
function withoutCompareAndSet(backend: ReturnType<typeof memory>): Store {
  return new Proxy(backend, {
    get(target, name) {
      if (name === "compareAndSet") return undefined;
      const value = Reflect.get(target, name, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("app.lock options", () => {
  it("rejects a bad key, missing or bad options and unknown option keys, naming them", async () => {
    const { app } = setup();
    const bad = app as unknown as { lock(key: unknown, options?: unknown): Promise<LockHandle> };
    await assert.rejects(bad.lock("", { ttlMs: 1_000 }), {
      name: "TypeError",
      message: 'app.lock key must be a non-empty string, got ""',
    });
    await assert.rejects(bad.lock(42, { ttlMs: 1_000 }), TypeError);
    await assert.rejects(bad.lock("k"), {
      name: "TypeError",
      message: /options must be an object with ttlMs/,
    });
    await assert.rejects(bad.lock("k", {}), {
      name: "RangeError",
      message: /ttlMs must be a positive number/,
    });
    for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, "1000"]) {
      await assert.rejects(bad.lock("k", { ttlMs }), {
        name: "RangeError",
        message: `app.lock ttlMs must be a positive number, got ${String(ttlMs)}`,
      });
    }
    await assert.rejects(bad.lock("k", { ttlMs: 1_000, ttl: 5 }), {
      name: "TypeError",
      message: /unknown option "ttl" of app.lock/,
    });
    await assert.rejects(bad.lock("k", { ttlMs: 1_000, waitMs: -1 }), {
      name: "RangeError",
      message: /waitMs/,
    });
    await assert.rejects(bad.lock("k", { ttlMs: 1_000, retryMs: 0 }), {
      name: "RangeError",
      message: /retryMs/,
    });
    await assert.rejects(bad.lock("k", { ttlMs: 1_000, signal: "stop" }), {
      name: "TypeError",
      message: /signal/,
    });
    const lock = await app.lock("k", { ttlMs: 1_000 });
    await assert.rejects(lock.renew(0), { name: "RangeError", message: /lock.renew ttlMs/ });
    await assert.rejects(
      (app as unknown as { withLock(k: string, o: unknown): Promise<unknown> }).withLock("k2", {
        ttlMs: 1_000,
      }),
      { name: "TypeError", message: /needs a function/ },
    );
    assert.equal(await lock.release(), true, "nothing else was taken");
    assert.equal(await app.store.get("lock:k2"), null);
  });

  it("withLock resolves to fn's result and releases when fn throws", async () => {
    const { app } = setup();
    assert.equal(await app.withLock("k", { ttlMs: 1_000 }, (lock) => lock.token * 10), 10);
    await assert.rejects(
      app.withLock("k", { ttlMs: 1_000 }, () => {
        throw new Error("inside");
      }),
      /inside/,
    );
    const after = await app.lock("k", { ttlMs: 1_000 });
    assert.equal(after.token, 3, "free again after each call");
  });
});

describe("await using", () => {
  const supported = typeof (Symbol as { asyncDispose?: unknown }).asyncDispose === "symbol";
  it("releases the lock at the end of the block", {
    skip: !supported && "no Symbol.asyncDispose",
  }, async () => {
    const { app } = setup();
    let token = 0;
    {
      await using lock = await app.lock("k", { ttlMs: 60_000 });
      token = lock.token;
      await assert.rejects(app.lock("k", { ttlMs: 60_000 }), LockedError);
    }
    const next = await app.lock("k", { ttlMs: 60_000 });
    assert.ok(next.token > token);
  });
});

describe("a store without compareAndSet", () => {
  it("still grants locks one holder at a time, but cannot renew them", async () => {
    const { app } = setup(withoutCompareAndSet);
    const lock = await app.lock("k", { ttlMs: 60_000 });
    await assert.rejects(app.lock("k", { ttlMs: 60_000 }), LockedError);
    await assert.rejects(lock.renew(), {
      name: "TypeError",
      message: /cannot renew a lock: it has no compareAndSet/,
    });
    assert.equal(await lock.release(), true);
    const next = await app.lock("k", { ttlMs: 60_000 });
    assert.ok(next.token > lock.token);
  });

  it("gives ctx.lock the task's timeout as its TTL instead of following the lease", async () => {
    const { app, clock } = setup(withoutCompareAndSet);
    let ttl = 0;
    const t = app.task({
      name: "t",
      timeoutMs: 45_000,
      run: async (_input, ctx) => {
        ttl = (await ctx.lock("k")).expiresAt - clock.now();
      },
    });
    await t.enqueue(null);
    await app.drain();
    assert.equal(ttl, 45_000);
  });
});

describe("ctx.lock", () => {
  it("lives as long as the lease under a lease, and ttlMs (default: timeoutMs) without one", async () => {
    const { app, backend, clock } = setup();
    const ttls: number[] = [];
    const t = app.task({
      name: "t",
      timeoutMs: 45_000,
      run: async (input: { ttlMs?: number }, ctx) => {
        const lock = await ctx.lock("k", input.ttlMs === undefined ? {} : { ttlMs: input.ttlMs });
        ttls.push(lock.expiresAt - clock.now());
      },
    });
    await t.enqueueMany([{ ttlMs: 5_000 }, {}, { ttlMs: 5_000 }]);
    const leased = await backend.receive({ queues: ["default"], max: 3, leaseMs: 20_000, waitMs: 0 });
    assert.equal(leased.length, 3);
    const [first, second, third] = leased;
    await processDelivery(app, first!);
    // A push delivery has no lease.
    for (const delivery of [second!, third!]) {
      const { leaseMs: _, ...push } = delivery;
      await processDelivery(app, push);
    }
    assert.deepEqual(ttls, [20_000, 45_000, 5_000]);
    assert.equal((await app.lock("k", { ttlMs: 1_000 })).held, true, "each released at its attempt's end");
  });

  it("checks its options: a bad one fails the attempt with a TypeError", async () => {
    const { app } = setup();
    const t = app.task({
      name: "t",
      retry: { maxAttempts: 1 },
      run: (_input, ctx) => ctx.lock("k", { waitMs: 10, ttl: 5 } as never),
    });
    const run = await t.enqueue(null);
    await app.drain();
    await assert.rejects(run.result(), (error) => {
      assert.ok(error instanceof TaskFailedError);
      assert.equal(error.errorName, "TypeError");
      assert.match(error.message, /unknown option "ttl" of ctx.lock/);
      return true;
    });
  });

  it("stops waiting when its attempt times out, and rejects once the attempt has ended", async () => {
    const { app } = setup();
    const holder = await app.lock("k", { ttlMs: 600_000 });
    let waiting: Promise<LockHandle> | undefined;
    let late: (() => Promise<LockHandle>) | undefined;
    const t = app.task({
      name: "t",
      retry: { maxAttempts: 1 },
      timeoutMs: 100,
      run: (_input, ctx) => {
        waiting = ctx.lock("k", { waitMs: Number.POSITIVE_INFINITY, retryMs: 5 });
        late = () => ctx.lock("other");
        return waiting;
      },
    });
    const run = await t.enqueue(null);
    await app.drain();
    await assert.rejects(
      run.result(),
      (error) => error instanceof TaskFailedError && error.errorName === "TimeoutError",
    );
    await assert.rejects(waiting!, TimeoutError);
    await assert.rejects(
      late!(),
      (error) => error instanceof CeleriacError && /has ended/.test(error.message),
    );
    assert.equal(await holder.release(), true, "the holder's lock was left alone");
  });

  it("lapses with a lost lease, and its release at the end leaves the next holder's lock alone", async () => {
    const { app, clock } = setup();
    const errors: string[] = [];
    app.on("error", (e) => errors.push(e.where));
    let lock: LockHandle | undefined;
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const t = app.task({
      name: "t",
      run: async (_input, ctx) => {
        if (lock !== undefined) return "again"; // the redelivery after the lost lease
        lock = await ctx.lock("k");
        await gate;
        return "first";
      },
    });
    await t.enqueue(null);
    const worker = app.worker({ concurrency: 2, prefetch: 0, leaseMs: 300, pollMs: 20 }).start();
    try {
      while (lock === undefined) await wait(5);
      clock.advance(301); // lease and lock lapse before the next renewal
      let next: LockHandle | null = null;
      while (next === null) {
        next = await app.lock("k", { ttlMs: 60_000 }).catch(() => null);
        if (next === null) await wait(5);
      }
      // Renewals go on for the lost lease's delivery and must not touch the new lock.
      const renewedAt = lock.expiresAt;
      await wait(150);
      assert.equal(lock.expiresAt, renewedAt, "not renewed once its lease was lost");
      finish();
      while (worker.active > 0) await wait(5);
      assert.equal(next.held, true);
      await assert.rejects(app.lock("k", { ttlMs: 1_000 }), LockedError, "the next holder keeps it");
      assert.equal(await next.release(), true);
    } finally {
      finish();
      await worker.stop();
    }
    assert.deepEqual(errors, []);
  });
});
