import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis as UpstashRedis } from "@upstash/redis";
import { Redis as IoRedis } from "ioredis";
import { queueKeys, runKey } from "../adapters/redis/_keys.ts";
import { redis } from "../adapters/redis/mod.ts";
import { BackendError, createApp } from "../mod.ts";
import { freePort as closedPort } from "./edge/_support.ts";
import { type RedisRig, startRig, type Transport, waitFor } from "./support/redis-fixtures.ts";

async function rejectsWithin(work: Promise<unknown>, ms: number, pattern: RegExp): Promise<BackendError> {
  const started = Date.now();
  const error = await work.then(
    () => assert.fail("expected a failure"),
    (e: unknown) => e,
  );
  const took = Date.now() - started;
  assert.ok(error instanceof BackendError, `expected a BackendError, got ${String(error)}`);
  assert.match(error.message, pattern);
  assert.ok(error.cause !== undefined || /did not answer/.test(error.message), "keeps the cause");
  assert.ok(took < ms, `took ${took} ms`);
  return error;
}

describe("redis backend on bad input", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.stop();
  });

  it("fails enqueue with a BackendError within the command timeout when Redis is unreachable (TCP)", async () => {
    const port = await closedPort();
    for (const options of [{ maxRetriesPerRequest: 1, connectTimeout: 500 }, {}]) {
      const client = new IoRedis(`redis://127.0.0.1:${port}`, options);
      client.on("error", () => {});
      const backend = redis({ client, commandTimeoutMs: 1_000 });
      const app = createApp({ broker: backend, store: backend });
      const task = app.task({ name: "t", run: () => null });
      try {
        await rejectsWithin(task.enqueue(1), 3_000, /redis/);
      } finally {
        client.disconnect();
      }
    }
  });

  it("fails enqueue with a BackendError within the command timeout when Redis is unreachable (REST)", async () => {
    const port = await closedPort();
    const client = new UpstashRedis({ url: `http://127.0.0.1:${port}`, token: "t", enableTelemetry: false });
    const backend = redis({ client, commandTimeoutMs: 1_000 });
    const app = createApp({ broker: backend, store: backend });
    const task = app.task({ name: "t", run: () => null });
    await rejectsWithin(task.enqueue(1), 3_000, /redis/);
  });

  it("says clearly that a REST token was rejected", async () => {
    const backend = redis({ client: rig.rest({ token: "wrong-token" }) });
    const error = await rejectsWithin(backend.ping(), 3_000, /rejected the token \(401 Unauthorized\)/);
    assert.doesNotMatch(error.message, /command was/, "no arguments leak into the message");
    const app = createApp({ broker: backend, store: backend });
    await rejectsWithin(app.task({ name: "t", run: () => null }).enqueue(1), 3_000, /401/);
  });

  it("surfaces a Redis error reply as a BackendError with its cause", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      await rig.tcp().hset(`${backend.prefix}:kv:h`, "f", "v");
      const error = await rejectsWithin(backend.get("h"), 3_000, /WRONGTYPE/);
      assert.ok(error.cause instanceof Error);
      await backend.set("word", "abc");
      await rejectsWithin(backend.incr("word"), 3_000, /not a number/);
    } finally {
      await close();
    }
  });

  for (const kind of ["tcp", "rest"] as Transport[]) {
    it(`dead-letters corrupted envelopes written straight into Redis and keeps going (${kind})`, async () => {
      const { backend, close } = rig.backend(kind);
      const raw = rig.tcp();
      const app = createApp({ broker: backend, store: backend });
      const echo = app.task({ name: "echo", run: (n: number) => n });
      try {
        const victim = await echo.enqueue(1);
        const [ready] = queueKeys(backend.prefix, "default");
        // Overwrite the body of a stored message, and add one that has a body and nothing else.
        await raw.hset(runKey(backend.prefix, "default", victim.id), ".b", '{"v":1,"id":');
        await raw.hset(runKey(backend.prefix, "default", "stray"), ".b", "\u0000 not a message at all");
        await raw.zadd(ready!, 0, "stray");
        const worker = app.worker({ concurrency: 2, pollMs: 500 }).start();
        try {
          const runs = await echo.enqueueMany([2, 3, 4]);
          assert.deepEqual(await Promise.all(runs.map((r) => r.result({ timeoutMs: 5_000 }))), [2, 3, 4]);
          await waitFor(async () => (await app.deadLetters()).length >= 2, 5_000, "two dead letters");
          assert.ok(worker.running);
        } finally {
          await worker.stop();
        }
        const dead = await app.deadLetters();
        const byId = new Map(dead.map((d) => [d.id, d]));
        assert.equal(byId.get(victim.id)?.body, '{"v":1,"id":');
        assert.match(byId.get(victim.id)?.reason ?? "", /EnvelopeError: envelope is not JSON/);
        assert.equal(byId.get("stray")?.body, "\u0000 not a message at all");
        assert.match(byId.get("stray")?.reason ?? "", /EnvelopeError/);
      } finally {
        await close();
      }
    });
  }

  it("gives a worker left running on a closed backend errors to back off on, not empty answers to spin on", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      const app = createApp({ broker: backend, store: backend });
      app.task({ name: "noop", run: () => null });
      const errors: unknown[] = [];
      app.on("error", (e) => errors.push(e.error));
      const worker = app.worker({ pollMs: 50 }).start();
      await backend.close();
      await waitFor(() => errors.length > 0, 5_000, "an error event from the worker");
      const first = errors[0];
      assert.ok(first instanceof BackendError, String(first));
      assert.match(first.message, /closed/);
      // The worker backs off (100 ms, then doubling) instead of asking again at once.
      const seen = errors.length;
      await waitFor(() => errors.length >= seen + 1, 5_000, "a second error after the back-off");
      assert.ok(errors.length <= seen + 2, `${errors.length - seen} errors right after the first`);
      await worker.stop();
      await assert.rejects(
        backend.receive({ queues: ["default"], max: 1, leaseMs: 1_000, waitMs: 0 }),
        BackendError,
      );
    } finally {
      await close();
    }
  });

  it("refuses a client it does not know and bad options, naming them", () => {
    assert.throws(() => redis({ client: {} as never }), TypeError);
    assert.throws(
      () => redis({ client: rig.rest(), commandTimeoutMs: 0 }),
      /commandTimeoutMs must be a positive number, got 0/,
    );
    assert.throws(() => redis({ client: rig.rest(), pollMinMs: 100, pollMaxMs: 10 }), RangeError);
    assert.throws(() => redis({ client: rig.rest(), prefix: "{x}" }), TypeError);
  });
});
