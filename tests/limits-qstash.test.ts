// Rate and concurrency limits with different keys over QStash push: QStash takes one flow-control
// key per message, so the concurrency limit goes to QStash (parallelism) and the rate limit is
// enforced by the handler from the app's store. The QStash emulator (on the test's manual clock)
// pushes signed deliveries to the real handler; a delivery over the rate is answered 200 and
// published again for its reserved turn, using no attempt and no QStash retry.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "@upstash/redis";
import type { Store } from "../backend.ts";
import { memory } from "../adapters/memory/mod.ts";
import { qstash, qstashReceiver } from "../adapters/qstash/mod.ts";
import { redis } from "../adapters/redis/mod.ts";
import {
  type QStashEmulator,
  type RedisServer,
  startQStashEmulator,
  startRedis,
  startUpstashBridge,
  type UpstashBridge,
} from "../dev/mod.ts";
import { createApp, manualClock } from "../mod.ts";
import { createHandler } from "../src/hono.ts";
import { freePort, type Listening, serveHere } from "./edge/_support.ts";

const KEYS = { token: "limits-token", currentSigningKey: "sig_lim_current", nextSigningKey: "sig_lim_next" };
const T0 = Date.UTC(2030, 0, 1);
const RATE = { limit: 2, periodMs: 2_000 };
const STEP = RATE.periodMs / RATE.limit;
const CONCURRENCY = 2;
const HOSTS = 3;
const N = 18;

type Input = { host: string; tenant: string };

function splitLimits(name: string, makeStore: (clock: ReturnType<typeof manualClock>) => Promise<Store>) {
  describe(`a rate limit and a concurrency limit with different keys over QStash push (${name})`, () => {
    const clock = manualClock(T0);
    let emulator: QStashEmulator;
    let listening: Listening;
    let sync: {
      enqueueMany(inputs: Input[]): Promise<{ id: string; status(): Promise<{ state: string } | null> }[]>;
    };
    const starts: { id: string; attempt: number; host: string; tenant: string; at: number }[] = [];
    const running = new Map<string, number>();
    const most = new Map<string, number>();

    before(async () => {
      emulator = await startQStashEmulator({ ...KEYS, now: () => clock.now() });
      const port = await freePort();
      const url = `http://127.0.0.1:${port}/qstash`;
      const app = createApp({
        broker: qstash({ ...KEYS, url, baseUrl: emulator.url }),
        store: await makeStore(clock),
        clock,
      });
      sync = app.task({
        name: "api.sync",
        rateLimit: { ...RATE, key: (i) => (i as Input).host },
        concurrency: { limit: CONCURRENCY, key: (i) => (i as Input).tenant },
        run: async (i: Input, ctx) => {
          starts.push({ id: ctx.id, attempt: ctx.attempt, host: i.host, tenant: i.tenant, at: clock.now() });
          const now = (running.get(i.tenant) ?? 0) + 1;
          running.set(i.tenant, now);
          most.set(i.tenant, Math.max(most.get(i.tenant) ?? 0, now));
          // Long enough, in real time, for the other deliveries due now to arrive beside it.
          await new Promise((resolve) => setTimeout(resolve, 30));
          running.set(i.tenant, running.get(i.tenant)! - 1);
          return i.host;
        },
      });
      const handler = createHandler(app);
      listening = await serveHere((request) => handler.fetch(request), port);
    });

    after(async () => {
      await emulator?.close();
      await listening?.close();
    });

    it("never exceeds either limit, and runs every run once on its first attempt", {
      timeout: 120_000,
    }, async () => {
      const inputs: Input[] = Array.from({ length: N }, (_, i) => ({
        host: `h${i % HOSTS}`,
        tenant: i % 2 === 0 ? "acme" : "globex",
      }));
      const runs = await sync.enqueueMany(inputs);
      await emulator.idle();
      while (!(await Promise.all(runs.map((r) => r.status()))).every((r) => r?.state === "succeeded")) {
        assert.ok(clock.now() < T0 + 60_000, "every run succeeds within a minute");
        clock.advance(250);
        await emulator.idle();
      }

      assert.equal(starts.length, N, "every run ran once");
      assert.deepEqual(new Set(starts.map((s) => s.id)), new Set(runs.map((r) => r.id)));
      assert.deepEqual(
        starts.map((s) => s.attempt),
        starts.map(() => 1),
        "runs held back used no attempt",
      );
      for (const [tenant, n] of most) {
        assert.ok(n <= CONCURRENCY, `${tenant}: ${n} at once, over its limit of ${CONCURRENCY}`);
      }
      assert.equal(Math.max(...most.values()), CONCURRENCY, "the concurrency limit was reached");
      for (let h = 0; h < HOSTS; h++) {
        const at = starts.filter((s) => s.host === `h${h}`).map((s) => s.at - T0);
        at.sort((a, b) => a - b);
        // The rate's cell-rate guarantee: any `limit + k` starts of a key span at least k steps
        // (bursts up to `limit`, then one per step); so no window holds more than the rate allows.
        for (let i = 0; i < at.length; i++) {
          for (let j = i + RATE.limit; j < at.length; j++) {
            const k = j - i + 1 - RATE.limit;
            assert.ok(at[j]! - at[i]! >= k * STEP, `h${h} started at ${at.join(", ")} ms`);
          }
        }
        assert.equal(at.length, N / HOSTS);
        assert.equal(
          at.at(-1)! - at[0]!,
          (N / HOSTS - RATE.limit) * STEP,
          `h${h} ran at its rate, no slower`,
        );
      }
      const deliveries = emulator.messages();
      assert.ok(deliveries.length > N, "runs over the rate were published again for their turn");
      for (const m of deliveries) {
        assert.deepEqual(
          m.attempts.map((a) => [a.retried, a.status]),
          [[0, 200]],
          "every delivery answered 200 at once: no QStash retry used",
        );
        assert.equal(m.flowControl?.parallelism, CONCURRENCY, "the concurrency limit is QStash's");
        assert.equal(m.flowControl?.rate, undefined, "the rate limit is the handler's");
      }
      assert.equal(emulator.dlq().length, 0);
    });
  });
}

splitLimits("memory store", async (clock) => memory({ clock }));

describe("limits over QStash push with the Redis store (REST)", () => {
  let server: RedisServer;
  let bridge: UpstashBridge;
  before(async () => {
    server = await startRedis();
    bridge = await startUpstashBridge({ redisUrl: server.url, token: "bridge-token" });
  });
  after(async () => {
    await bridge?.close();
    await server?.stop();
  });
  splitLimits("Redis store", async () =>
    redis({
      client: new Redis({ url: bridge.url, token: "bridge-token", enableTelemetry: false }),
      prefix: `lim${Date.now().toString(36)}`,
    }),
  );
});

describe("limits that share their key over QStash push", () => {
  const clock = manualClock(T0);
  let emulator: QStashEmulator;
  let listening: Listening;

  before(async () => {
    emulator = await startQStashEmulator({ ...KEYS, now: () => clock.now() });
  });
  after(async () => {
    await emulator?.close();
    await listening?.close();
  });

  it("stay QStash's flow control, both of them: the handler holds nothing back", {
    timeout: 60_000,
  }, async () => {
    const port = await freePort();
    const app = createApp({
      broker: qstash({ ...KEYS, url: `http://127.0.0.1:${port}/qstash`, baseUrl: emulator.url }),
      store: memory({ clock }),
      clock,
    });
    const starts: number[] = [];
    const t = app.task({
      name: "same",
      rateLimit: { ...RATE, key: (i) => (i as Input).host },
      concurrency: { limit: 1, key: (i) => (i as Input).host },
      run: (_: Input, ctx) => {
        starts.push(clock.now() - T0);
        return ctx.attempt;
      },
    });
    const handler = createHandler(app);
    listening = await serveHere((request) => handler.fetch(request), port);
    const runs = await t.enqueueMany(Array.from({ length: 6 }, () => ({ host: "h", tenant: "acme" })));
    await emulator.idle();
    while (starts.length < 6) {
      assert.ok(clock.now() < T0 + 60_000, "every run starts within a minute");
      clock.advance(250);
      await emulator.idle();
    }
    assert.deepEqual(starts, [0, 0, 2_000, 2_000, 4_000, 4_000], "QStash's rate: 2 per 2 s window");
    assert.equal(emulator.messages().length, 6, "nothing was held back and published again");
    for (const m of emulator.messages()) {
      assert.deepEqual(m.flowControl, { key: "same%3Ah", rate: 2, periodMs: 2_000, parallelism: 1 });
    }
    for (const r of runs) assert.equal((await r.result()) as number, 1);
  });
});

describe("which limits the QStash handler enforces", () => {
  const receiver = qstashReceiver({ ...KEYS, url: "https://tasks.example.com/qstash" });
  const deliver = (limits: unknown) =>
    receiver.delivery(
      new Request("https://tasks.example.com/qstash", { method: "POST" }),
      JSON.stringify({ v: 1, id: "r1", task: "t", queue: "default", attempt: 1, meta: { limits } }),
    );
  const rate = { key: "t:a", limit: 2, periodMs: 1_000 };

  it("a rate limit whose key differs from the concurrency limit's, and nothing QStash holds itself", () => {
    assert.deepEqual(deliver({ rate, concurrency: { key: "t:b", limit: 1 } }).rateLimit, rate);
    assert.equal(deliver({ rate, concurrency: { key: "t:a", limit: 1 } }).rateLimit, undefined);
    assert.equal(deliver({ rate }).rateLimit, undefined);
    assert.equal(deliver({ concurrency: { key: "t:b", limit: 1 } }).rateLimit, undefined);
    assert.equal(deliver(undefined).rateLimit, undefined);
  });
});
