// The workflow suite's core cases, on Redis over TCP and REST (and Bun's client on Bun): group
// slots, the atomic counter and continuations go through the Redis store and fused ledger.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as v from "valibot";
import { chain, chord, createApp, group } from "../mod.ts";
import { deliverEachTwice, mathTasks } from "./support/workflow-fixtures.ts";
import { type RedisRig, startRig, TRANSPORTS } from "./support/redis-fixtures.ts";

describe("workflows on redis", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.stop();
  });

  function setup(kind: (typeof TRANSPORTS)[number]) {
    const { backend, close } = rig.backend(kind);
    const app = createApp({ broker: backend, store: backend });
    const { add, double, sum } = mathTasks(app);
    return { app, backend, close, add, double, sum };
  }

  for (const kind of TRANSPORTS) {
    describe(`over ${kind}`, () => {
      it("runs a chain containing a group", async () => {
        const { app, close, add, double, sum } = setup(kind);
        try {
          const run = await chain(
            add.with({ a: 2, b: 3 }),
            group([double.with(), double.with()]),
            sum.with(),
          ).enqueue();
          await app.drain({ concurrency: 3 });
          assert.equal(await run.result(), 20);
        } finally {
          await close();
        }
      });

      it("runs a chord callback once with ordered results despite duplicate deliveries", async () => {
        const { app, backend, close, double, sum } = setup(kind);
        try {
          let callbacks = 0;
          app.on("active", (e) => {
            if (e.task === "sum") callbacks++;
          });
          const run = await chord(group([1, 2, 3, 4].map((n) => double.with(n))), sum.with()).enqueue();
          await deliverEachTwice(app, backend);
          assert.equal(await run.result(), 20);
          assert.equal(callbacks, 1);
        } finally {
          await close();
        }
      });

      it("stops a chain at a failed step and reports it", async () => {
        const { app, close, add } = setup(kind);
        try {
          const wantsString = app.task({ name: "wants.string", input: v.string(), run: (s) => s.length });
          const run = await chain(add.with({ a: 1, b: 1 }), wantsString.with()).enqueue();
          await app.drain();
          await assert.rejects(run.result(), /step 2 \(wants\.string\) failed/);
        } finally {
          await close();
        }
      });
    });
  }
});
