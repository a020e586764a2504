// Workflows over QStash push with the Redis store (REST): every step is published to the QStash
// emulator, pushed back signed to the real handler, and continued from there.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "@upstash/redis";
import { qstash } from "../adapters/qstash/mod.ts";
import { redis } from "../adapters/redis/mod.ts";
import { chain, chord, createApp, group } from "../mod.ts";
import { createHandler } from "../src/hono.ts";
import { freePort, type Listening, serveHere } from "./edge/_support.ts";
import { mathTasks } from "./support/workflow-fixtures.ts";
import {
  type QStashEmulator,
  type RedisServer,
  startQStashEmulator,
  startRedis,
  startUpstashBridge,
  type UpstashBridge,
} from "../dev/mod.ts";

const KEYS = { token: "wf-qstash-token", currentSigningKey: "sig_wf_current", nextSigningKey: "sig_wf_next" };

describe("workflows over QStash push with the Redis store", () => {
  let emulator: QStashEmulator;
  let server: RedisServer;
  let bridge: UpstashBridge;
  let listening: Listening;
  let app: ReturnType<typeof createApp>;
  let tasks: ReturnType<typeof mathTasks>;

  before(async () => {
    emulator = await startQStashEmulator({ ...KEYS, backoff: () => 10 });
    server = await startRedis();
    bridge = await startUpstashBridge({ redisUrl: server.url, token: "bridge-token" });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/qstash`;
    const store = redis({
      client: new Redis({ url: bridge.url, token: "bridge-token", enableTelemetry: false }),
      prefix: `wf${Date.now().toString(36)}`,
    });
    app = createApp({ broker: qstash({ ...KEYS, url, baseUrl: emulator.url }), store });
    tasks = mathTasks(app);
    const handler = createHandler(app);
    listening = await serveHere((request) => handler.fetch(request), port);
  });

  after(async () => {
    await emulator?.close();
    await listening?.close();
    await bridge?.close();
    await server?.stop();
  });

  it("runs a chain containing a group, step by step through push deliveries", async () => {
    const { add, double, sum } = tasks;
    const run = await chain(
      add.with({ a: 2, b: 3 }),
      group([double.with(), double.with()]),
      sum.with(),
    ).enqueue();
    await emulator.idle();
    assert.equal(await run.result({ timeoutMs: 10_000 }), 20);
  });

  it("runs a chord callback once with the ordered results", async () => {
    const { double, sum } = tasks;
    let callbacks = 0;
    const off = app.on("active", (e) => {
      if (e.task === "sum") callbacks++;
    });
    const run = await chord(group([1, 2, 3, 4, 5].map((n) => double.with(n))), sum.with()).enqueue();
    await emulator.idle();
    off();
    assert.equal(await run.result({ timeoutMs: 10_000 }), 30);
    assert.equal(callbacks, 1);
  });

  it("shows the handler instance, its statistics and metrics; queue counts are QStash's own", async () => {
    const { double } = tasks;
    const run = await double.enqueue(21);
    await emulator.idle();
    assert.equal(await run.result({ timeoutMs: 10_000 }), 42);
    const inspect = app.inspect();
    const workers = await inspect.workers();
    assert.equal(workers.length, 1, "one handler instance served every delivery");
    assert.equal(workers[0]?.kind, "push");
    assert.ok(workers[0]?.queues.includes("default"));
    const stats = await inspect.stats();
    assert.ok((stats.find((s) => s.task === "double")?.succeeded ?? 0) >= 1);
    assert.match(await app.metrics(), /^celeriac_workers\{kind="push"\} 1$/m);
    await assert.rejects(inspect.queues(), /no queue ops/);
    await assert.rejects(app.control.pause("default"), /no queue ops/);
  });
});
