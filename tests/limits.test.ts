import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Broker, Store } from "../backend.ts";
import { memory } from "../adapters/memory/mod.ts";
import { createApp } from "../mod.ts";
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
