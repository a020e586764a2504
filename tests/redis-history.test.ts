import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { queueTag } from "../adapters/redis/_keys.ts";
import { TRIM_EVERY } from "../adapters/redis/lua/history.ts";
import { createApp } from "../mod.ts";
import { type RedisRig, startRig } from "./support/redis-fixtures.ts";

// The Redis run history beyond the shared contract (testing/_history-contract.ts): its cap, an
// index entry whose record is gone, a record made without a message, the log written only
// while read, and `history: false`.
describe("redis run history", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.stop();
  });

  it("keeps each index to maxRuns, the newest", async () => {
    const { backend, close } = rig.backend("tcp", { history: { maxRuns: 10 } });
    try {
      const app = createApp({ broker: backend, store: backend });
      const t = app.task({ name: "capped", queue: "hc", run: (n: number) => n });
      const ids: string[] = [];
      // A call that sends the queue's 64th, 128th, … message trims to 10 as it ends.
      let expected = 0;
      for (let i = 0; i < 19; i++) {
        const runs = await t.enqueueMany(Array.from({ length: 10 }, (_, j) => ({ input: i * 10 + j })));
        ids.push(...runs.map((r) => r.id));
        const crossed = Math.floor(ids.length / TRIM_EVERY) > Math.floor((ids.length - 10) / TRIM_EVERY);
        expected = crossed ? 10 : expected + 10;
      }
      assert.ok(expected > 10, "the last calls added runs after the last trim");
      const raw = rig.tcp();
      const tag = queueTag(backend.prefix, "hc");
      assert.equal(await raw.zcard(`${tag}:h`), expected);
      assert.equal(await raw.zcard(`${tag}:ht:"capped"`), expected);
      const page = await backend.history!.list({ queues: ["hc"], limit: 500 });
      const listed = page.runs.map((r) => r.id);
      assert.deepEqual(new Set(listed), new Set(ids.slice(-listed.length)), "the newest are kept");
    } finally {
      await close();
    }
  });

  it("drops an entry whose record is gone, and indexes a record made without a message", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      const app = createApp({ broker: backend, store: backend });
      const t = app.task({ name: "gone", queue: "hg", run: (n: number) => n });
      const kept = await t.enqueue(1);
      const dropped = await t.enqueue(2);
      const raw = rig.tcp();
      const tag = queueTag(backend.prefix, "hg");
      await raw.del(`${tag}:run:${dropped.id}`);
      const page = await backend.history!.list({ queues: ["hg"], limit: 10 });
      assert.deepEqual(
        page.runs.map((r) => r.id),
        [kept.id],
      );
      assert.equal(await raw.zscore(`${tag}:h`, dropped.id), null, "the stale entry left the index");

      // A push delivery's record is written by an update, with no message in the queue.
      const now = Date.now();
      await backend.updateRun(
        "pushed-1",
        {
          id: "pushed-1",
          task: "gone",
          queue: "hg",
          state: "active",
          attempt: 1,
          maxAttempts: 3,
          enqueuedAt: now + 1,
          updatedAt: now + 1,
        },
        { ttlMs: 60_000, queue: "hg", replace: true },
      );
      const again = await backend.history!.list({ queues: ["hg"], limit: 10, task: "gone" });
      assert.deepEqual(
        again.runs.map((r) => [r.id, r.state]),
        [
          ["pushed-1", "active"],
          [kept.id, "queued"],
        ],
      );
    } finally {
      await close();
    }
  });

  it("writes the change log only while someone reads it", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      const app = createApp({ broker: backend, store: backend });
      const t = app.task({ name: "logged", queue: "hl", run: (n: number) => n });
      const raw = rig.tcp();
      const log = `${queueTag(backend.prefix, "hl")}:hl`;
      await t.enqueue(1);
      await app.drain();
      assert.equal(await raw.exists(log), 0, "nobody reads: no log");
      const start = await backend.history!.changes(["hl"], null, 10);
      const run = await t.enqueue(2);
      await app.drain();
      const seen = await backend.history!.changes(["hl"], start.cursor, 10);
      assert.deepEqual(
        seen.changes.map((c) => [c.id, c.state]),
        [
          [run.id, "queued"],
          [run.id, "active"],
          [run.id, "succeeded"],
        ],
      );
      assert.equal(await raw.xlen(log), 2, "the log holds what the index does not tell");
      await assert.rejects(backend.history!.changes(["hl"], "{not json", 10), TypeError);
    } finally {
      await close();
    }
  });

  it("with history: false keeps no index and has no history", async () => {
    const { backend, close } = rig.backend("tcp", { history: false });
    try {
      assert.equal(backend.history, undefined);
      const app = createApp({ broker: backend, store: backend });
      const t = app.task({ name: "plain", queue: "hn", run: (n: number) => n });
      await t.enqueue(1, { idempotencyKey: "k-1" });
      await app.drain();
      const keys = await rig.tcp().keys(`${queueTag(backend.prefix, "hn")}:h*`);
      assert.deepEqual(keys, []);
    } finally {
      await close();
    }
  });

  it("refuses history options it does not know or cannot use", () => {
    assert.throws(() => rig.backend("tcp", { history: { maxRuns: 0 } }), RangeError);
    assert.throws(() => rig.backend("tcp", { history: { maxRun: 10 } as never }), /maxRun/);
    assert.throws(() => rig.backend("tcp", { history: "on" as never }), TypeError);
  });
});
