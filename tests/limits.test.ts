import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Broker, Store } from "../backend.ts";
import { memory } from "../adapters/memory/mod.ts";
import { createApp, FlowKeyError } from "../mod.ts";
import { type RedisRig, startRig } from "./support/redis-fixtures.ts";

function hotAndCold(name: string, make: () => Promise<{ backend: Broker & Store; close(): Promise<void> }>) {
  it(`${name}: 10,000 runs of one hot key do not hold back 100 cold keys`, { timeout: 120_000 }, async () => {
    const { backend, close } = await make();
    try {
      const app = createApp({ broker: backend, store: backend });
      const done = new Map<string, number>();
      let coldDone = 0;
      let hotWhenColdDone = -1;
      const t = app.task({
        name: "keyed",
        rateLimit: { limit: 10, periodMs: 3_600_000, key: (i) => (i as { k: string }).k },
        run: (i: unknown) => {
          const k = (i as { k: string }).k;
          done.set(k, (done.get(k) ?? 0) + 1);
          if (k !== "hot" && ++coldDone === 1_000) hotWhenColdDone = done.get("hot") ?? 0;
        },
      });
      for (let b = 0; b < 10; b++) await t.enqueueMany(Array.from({ length: 1_000 }, () => ({ k: "hot" })));
      await t.enqueueMany(Array.from({ length: 1_000 }, (_, i) => ({ k: `cold${i % 100}` })));
      await app.drain({ concurrency: 50 });
      assert.equal(coldDone, 1_000, "every cold run ran (10 per cold key: within its limit)");
      assert.equal(hotWhenColdDone, 10, "the hot key ran only its limit; its other 9,990 wait their turn");
      assert.equal(done.get("hot"), 10);
    } finally {
      await close();
    }
  });
}

describe("limits at scale", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.stop();
  });
  hotAndCold("memory", async () => {
    const backend = memory();
    return { backend, close: () => backend.close() };
  });
  hotAndCold("redis over TCP", async () => rig.backend("tcp"));
});

describe("limit keys", () => {
  for (const option of ["rateLimit", "concurrency"] as const) {
    const limit = (key: (i: unknown) => string) =>
      option === "rateLimit"
        ? { rateLimit: { limit: 5, periodMs: 1_000, key } }
        : { concurrency: { limit: 1, key } };

    it(`a ${option}.key that throws fails the enqueue with FlowKeyError, and nothing is sent`, async () => {
      const backend = memory();
      try {
        const app = createApp({ broker: backend, store: backend });
        const t = app.task({
          name: "badkey",
          ...limit(() => {
            throw new Error("no key here");
          }),
          run: () => 1,
        });
        const thrown = await t.enqueue({ k: "a" }).catch((e: unknown) => e);
        assert.ok(thrown instanceof FlowKeyError, `got ${String(thrown)}`);
        assert.equal(thrown.option, `${option}.key`);
        assert.match(thrown.message, /badkey.*threw: no key here/);
        assert.ok(thrown.cause instanceof Error && thrown.cause.message === "no key here");
        await assert.rejects(t.enqueueMany([{ k: "a" }, { k: "b" }]), FlowKeyError);
        assert.deepEqual(backend.stats(), { ready: 0, delayed: 0, leased: 0 }, "nothing was sent");
      } finally {
        await backend.close();
      }
    });

    it(`a ${option}.key that returns a number fails the enqueue with FlowKeyError, and nothing is sent`, async () => {
      const backend = memory();
      try {
        const app = createApp({ broker: backend, store: backend });
        const t = app.task({
          name: "numkey",
          ...limit((i) => (i as { k: unknown }).k as string),
          run: () => 1,
        });
        await assert.rejects(
          t.enqueue({ k: 7 }),
          (e: unknown) =>
            e instanceof FlowKeyError &&
            e.option === `${option}.key` &&
            /non-empty string, got 7/.test(e.message),
        );
        await assert.rejects(t.enqueueMany([{ k: "fine" }, { k: 7 }]), FlowKeyError);
        await assert.rejects(t.enqueue({ k: "" }), FlowKeyError);
        assert.deepEqual(backend.stats(), { ready: 0, delayed: 0, leased: 0 }, "nothing was sent");
      } finally {
        await backend.close();
      }
    });
  }
});
