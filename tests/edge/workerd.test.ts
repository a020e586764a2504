import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Miniflare } from "miniflare";
import { endToEnd } from "./_e2e.ts";
import { type Rig, startRig, stopRig } from "./_rig.ts";
import { bundle, freePort } from "./_support.ts";

/** Runs a bundled module worker in workerd on a known loopback port. */
async function workerd(script: string, bindings: Record<string, string>, port: number): Promise<Miniflare> {
  const mf = new Miniflare({
    // One module given as is (as wrangler uploads it): no dependency walk, which would reject
    // @upstash/qstash's guarded dynamic import of its Node-only dev server.
    modules: [{ type: "ESModule", path: "worker.mjs", contents: script }],
    compatibilityDate: "2025-07-18", // no nodejs_compat: Web APIs only
    bindings,
    host: "127.0.0.1",
    port,
  });
  await mf.ready;
  return mf;
}

const WORKERD = ["workerd", "worker", "browser"];

// The handler bundled as `wrangler deploy` would bundle it, running in workerd.
endToEnd("handler in workerd (miniflare)", async (envFor) => {
  const script = await bundle("./_worker.ts", { format: "esm", conditions: WORKERD });
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const mf = await workerd(script, { ...envFor(origin) }, port);
  return { origin, close: () => mf.dispose() };
});

describe("examples/cloudflare/worker.ts in workerd", () => {
  let rig: Rig;
  let mf: Miniflare;
  before(async () => {
    rig = await startRig(async (envFor) => {
      const script = await bundle("../../examples/cloudflare/worker.ts", {
        format: "esm",
        conditions: WORKERD,
      });
      const port = await freePort();
      const origin = `http://127.0.0.1:${port}`;
      const env = envFor(origin);
      mf = await workerd(
        script,
        {
          QSTASH_TOKEN: env.QSTASH_TOKEN,
          QSTASH_URL: env.QSTASH_URL,
          QSTASH_CURRENT_SIGNING_KEY: env.QSTASH_CURRENT_SIGNING_KEY,
          QSTASH_NEXT_SIGNING_KEY: env.QSTASH_NEXT_SIGNING_KEY,
          CELERIAC_DELIVERY_URL: env.CELERIAC_DELIVERY_URL,
          CELERIAC_TOKEN: env.CELERIAC_TOKEN,
          UPSTASH_REDIS_REST_URL: env.REDIS_REST_URL,
          UPSTASH_REDIS_REST_TOKEN: env.REDIS_REST_TOKEN,
        },
        port,
      );
      return { origin, close: () => mf.dispose() };
    });
  });
  after(() => stopRig(rig));

  it("runs a task enqueued over HTTP and serves its result", async () => {
    const id = await rig.enqueue("email.welcome", { to: "ada@example.com" });
    await rig.emulator.idle();
    const record = await rig.status(id);
    assert.equal(record?.state, "succeeded");
    assert.deepEqual(record?.result, { sent: "ada@example.com" });
  });

  it("answers its Cron Trigger", async () => {
    // The Fetcher's `scheduled()`: typed loosely here (no @cloudflare/workers-types).
    const worker = (await mf.getWorker()) as unknown as {
      scheduled(options: { cron: string }): Promise<{ outcome: string }>;
    };
    const result = await worker.scheduled({ cron: "* * * * *" });
    assert.equal(result.outcome, "ok");
  });
});
