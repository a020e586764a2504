/**
 * The contract of distributed locks on a store (`app.lock()`, `ctx.lock()`): one holder at a
 * time with growing fencing tokens, expiry, compare-and-delete release and compare-and-set
 * renewal, waiting and aborting, and locks of tasks that follow their attempt's lease.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { type App, createApp, LockedError, type LockHandle, TaskFailedError } from "../mod.ts";
import { DEADLINE_MS, type Env, tick } from "./_env.ts";
import type { ContractTest } from "./_queue-ops-contract.ts";

const app = (e: Env): App =>
  createApp({ broker: e.b, store: e.b, ...(e.clock === undefined ? {} : { clock: e.clock }) });

/** The lock, or null while another holder has it. */
const tryLock = (a: App, key: string, ttlMs = 60_000): Promise<LockHandle | null> =>
  a.lock(key, { ttlMs }).catch((error: unknown) => {
    if (error instanceof LockedError) return null;
    throw error;
  });

const isLocked = (error: unknown, key: string): boolean => error instanceof LockedError && error.key === key;

/** Tracks whether a promise has settled (for checks that it is still waiting). */
function watch(promise: Promise<unknown>): { readonly settled: boolean } {
  const state = { settled: false };
  promise.then(
    () => {
      state.settled = true;
    },
    () => {
      state.settled = true;
    },
  );
  return state;
}

/** The locks tests, for `brokerContract`. */
export function lockContract(test: ContractTest): void {
  describe("locks", () => {
    test("compareAndSet sets a key only over the expected value, with its TTL afresh", async (e) => {
      const cas = e.b.compareAndSet?.bind(e.b);
      if (cas === undefined) return;
      assert.equal(await cas("k", "v1", "v2", 300), false, "a missing key equals nothing");
      assert.equal(await e.b.get("k"), null);
      await e.b.set("k", "v1", 300);
      assert.equal(await cas("k", "other", "v2", 300), false);
      assert.equal(await e.b.get("k"), "v1");
      assert.equal(await cas("k", "v1", "v2", 60_000), true);
      assert.equal(await e.b.get("k"), "v2");
      await e.advance(400);
      assert.equal(await e.b.get("k"), "v2", "kept past its first TTL");
      assert.equal(await cas("k", "v2", "v3", 300), true);
      await e.advance(300);
      await e.eventually(
        () => e.b.get("k"),
        (v) => v === null,
        "the key to expire",
      );
      assert.equal(await cas("k", "v3", "v4"), false, "an expired key equals nothing");
      await e.b.set("p", "a", 300);
      assert.equal(await cas("p", "a", "b"), true);
      await e.advance(400);
      assert.equal(await e.b.get("p"), "b", "no TTL given: the key stays");
    });

    test("grants a key to one holder at a time, with fencing tokens that grow with every holder", async (e) => {
      const a = app(e);
      let inside = 0;
      let most = 0;
      const tokens: number[] = [];
      const contend = async () => {
        for (let round = 0; round < 2; round++) {
          await a.withLock("shared", { ttlMs: 60_000, waitMs: 60_000, retryMs: 2 }, async (lock) => {
            inside++;
            most = Math.max(most, inside);
            tokens.push(lock.token);
            await tick(1);
            inside--;
          });
        }
      };
      await Promise.all(Array.from({ length: 6 }, contend));
      assert.equal(most, 1, "never two holders at once");
      assert.equal(tokens.length, 12);
      for (let i = 1; i < tokens.length; i++) {
        assert.ok(tokens[i]! > tokens[i - 1]!, `tokens in the order of their holders: ${tokens.join(", ")}`);
      }
      assert.ok(tokens.every((t) => Number.isSafeInteger(t) && t > 0));
    });

    test("fails at once with LockedError while another holder has the key; other keys are free", async (e) => {
      const a = app(e);
      const held = await a.lock("busy", { ttlMs: 60_000 });
      assert.equal(held.key, "busy");
      assert.equal(held.held, true);
      assert.ok(held.expiresAt > e.now() && held.expiresAt <= e.now() + 60_000);
      await assert.rejects(a.lock("busy", { ttlMs: 60_000 }), (error) => isLocked(error, "busy"));
      const other = await a.lock("free", { ttlMs: 60_000 });
      assert.equal(other.held, true);
      assert.equal(await held.release(), true);
      assert.equal(held.held, false);
      assert.equal(await held.release(), false, "a second release frees nothing");
      const again = await a.lock("busy", { ttlMs: 60_000 });
      assert.ok(again.token > held.token);
      assert.equal(await again.release(), true);
      assert.equal(await other.release(), true);
    });

    test("keeps trying for waitMs, then fails with LockedError", async (e) => {
      const a = app(e);
      await a.lock("busy", { ttlMs: 60_000 });
      const startedAt = e.now();
      const waiting = a.lock("busy", { ttlMs: 60_000, waitMs: 300, retryMs: 5 });
      const state = watch(waiting);
      if (e.clock !== undefined) {
        await tick(30);
        assert.equal(state.settled, false, "still waiting while the clock stands still");
      }
      await e.advance(300);
      await assert.rejects(
        waiting,
        (error) => isLocked(error, "busy") && /after waiting 300 ms/.test(String(error)),
      );
      assert.ok(e.now() - startedAt >= 300, "not before waitMs");
    });

    test("a waiting lock is granted once its holder releases it", async (e) => {
      const a = app(e);
      const first = await a.lock("k", { ttlMs: 60_000 });
      const waiting = a.lock("k", { ttlMs: 60_000, waitMs: 60_000, retryMs: 5 });
      const state = watch(waiting);
      await tick(20);
      assert.equal(state.settled, false, "waits while the lock is held");
      assert.equal(await first.release(), true);
      const second = await waiting;
      assert.equal(second.held, true);
      assert.ok(second.token > first.token);
      assert.equal(await second.release(), true);
    });

    test("an expired lock lets the next holder in; the expired holder can neither renew nor release it", async (e) => {
      const a = app(e);
      const oldA = await a.lock("a", { ttlMs: 300 });
      const oldB = await a.lock("b", { ttlMs: 300 });
      await e.advance(300);
      assert.equal(oldA.held, false, "past its expiry on the app's clock");
      const nextA = await e.eventually(
        () => tryLock(a, "a"),
        (l) => l !== null,
        "lock a to expire",
      );
      const nextB = await e.eventually(
        () => tryLock(a, "b"),
        (l) => l !== null,
        "lock b to expire",
      );
      assert.ok(nextA!.token > oldA.token && nextB!.token > oldB.token);
      assert.equal(await oldA.renew(60_000), false, "an expired holder cannot renew");
      assert.equal(await oldB.release(), false, "an expired holder cannot release");
      assert.equal(oldA.held, false);
      await assert.rejects(
        a.lock("a", { ttlMs: 1_000 }),
        (error) => isLocked(error, "a"),
        "a's new lock stays",
      );
      await assert.rejects(
        a.lock("b", { ttlMs: 1_000 }),
        (error) => isLocked(error, "b"),
        "b's new lock stays",
      );
      assert.equal(await nextA!.release(), true);
      assert.equal(await nextB!.release(), true);
    });

    test("renew keeps a lock past its first TTL, while it is this holder's", async (e) => {
      const a = app(e);
      const lock = await a.lock("k", { ttlMs: 500 });
      const renewedAt = e.now();
      assert.equal(await lock.renew(60_000), true);
      assert.ok(lock.expiresAt >= renewedAt + 60_000 && lock.expiresAt <= e.now() + 60_000);
      await e.advance(600);
      await assert.rejects(a.lock("k", { ttlMs: 1_000 }), (error) => isLocked(error, "k"));
      assert.equal(lock.held, true);
      assert.equal(await lock.renew(), true, "renews to its last TTL");
      assert.equal(await lock.release(), true);
      assert.equal(await lock.renew(), false, "a released lock is not renewed");
      assert.notEqual(await tryLock(a, "k"), null);
    });

    test("aborting the signal stops a wait, and the waiter takes nothing", async (e) => {
      const a = app(e);
      await assert.rejects(
        a.lock("free", { ttlMs: 60_000, signal: AbortSignal.abort(new Error("no")) }),
        /no/,
      );
      assert.notEqual(await tryLock(a, "free"), null, "an aborted call took nothing");
      const holder = await a.lock("k", { ttlMs: 60_000 });
      const controller = new AbortController();
      const waiting = a.lock("k", { ttlMs: 60_000, waitMs: Infinity, retryMs: 5, signal: controller.signal });
      await tick(20);
      controller.abort(new Error("enough"));
      await assert.rejects(waiting, /enough/);
      assert.equal(await holder.release(), true);
      const next = await tryLock(a, "k");
      assert.notEqual(next, null, "the aborted waiter holds nothing");
    });

    test("[Symbol.asyncDispose] releases the lock", async (e) => {
      const a = app(e);
      const dispose = (Symbol as { asyncDispose?: symbol }).asyncDispose ?? Symbol.for("Symbol.asyncDispose");
      const lock = await a.lock("k", { ttlMs: 60_000 });
      const disposable = lock as unknown as Record<symbol, () => Promise<void>>;
      assert.equal(typeof disposable[dispose], "function");
      await disposable[dispose]!();
      assert.equal(lock.held, false);
      assert.notEqual(await tryLock(a, "k"), null);
    });

    test("ctx.lock is renewed with the lease while its task runs and released when it ends", async (e) => {
      const a = app(e);
      const leaseMs = 300;
      let lock: LockHandle | undefined;
      let finish!: () => void;
      const gate = new Promise<void>((resolve) => {
        finish = resolve;
      });
      const t = a.task({
        name: "locked",
        run: async (_input, ctx) => {
          lock = await ctx.lock("job");
          await gate;
          return lock.token;
        },
      });
      const run = await t.enqueue(null);
      const worker = a.worker({ concurrency: 1, leaseMs, pollMs: 50 }).start();
      try {
        await e.eventually(
          async () => lock,
          (l) => l !== undefined,
          "the task to take its lock",
        );
        const held = lock!;
        assert.ok(held.expiresAt <= e.now() + leaseMs, "the lock lives as long as the lease");
        // Several lease periods pass; each time the lock is renewed with the lease.
        for (let i = 0; i < 8; i++) {
          const before = held.expiresAt;
          await e.advance(leaseMs / 2);
          await e.eventually(
            async () => held.expiresAt,
            (at) => at > before,
            "a renewal of the lock",
          );
        }
        assert.equal(held.held, true);
        await assert.rejects(a.lock("job", { ttlMs: 1_000 }), (error) => isLocked(error, "job"));
        finish();
        assert.equal(await run.result({ timeoutMs: DEADLINE_MS }), held.token);
        await e.eventually(
          () => tryLock(a, "job"),
          (l) => l !== null,
          "the lock's release at the end",
        );
        assert.equal(held.held, false);
      } finally {
        finish();
        await worker.stop();
      }
    });

    test("ctx.lock is released when its attempt fails, times out or is cancelled", async (e) => {
      const a = app(e);
      let started!: () => void;
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      const fails = a.task({
        name: "fails",
        retry: { maxAttempts: 1 },
        run: async (_input, ctx) => {
          await ctx.lock("f");
          throw new Error("boom");
        },
      });
      const hangs = a.task({
        name: "hangs",
        retry: { maxAttempts: 1 },
        timeoutMs: 200,
        run: async (_input, ctx) => {
          await ctx.lock("t");
          await new Promise(() => {}); // ignores its signal
        },
      });
      const cancels = a.task({
        name: "cancels",
        run: async (_input, ctx) => {
          await ctx.lock("c");
          started();
          await new Promise((_resolve, reject) =>
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
          );
        },
      });
      const failed = await fails.enqueue(null);
      const timedOut = await hangs.enqueue(null);
      const cancelled = await cancels.enqueue(null);
      const worker = a.worker({ concurrency: 3, leaseMs: 300, pollMs: 50 }).start();
      try {
        await assert.rejects(failed.result({ timeoutMs: DEADLINE_MS }), TaskFailedError);
        assert.notEqual(await tryLock(a, "f"), null, "free after the failure");
        await assert.rejects(timedOut.result({ timeoutMs: DEADLINE_MS }), /timed out/);
        assert.notEqual(await tryLock(a, "t"), null, "free after the timeout, the handler still hanging");
        await running;
        assert.equal(await tryLock(a, "c"), null, "held while it runs");
        assert.equal(await cancelled.cancel(), true);
        await e.eventually(
          () => tryLock(a, "c"),
          (l) => l !== null,
          "the lock's release after the cancel",
        );
      } finally {
        await worker.stop();
      }
    });
  });
}
