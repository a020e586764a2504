import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memory } from "../adapters/memory/mod.ts";
import { qstashReceiver } from "../adapters/qstash/mod.ts";
import { signQStashDelivery } from "../dev/mod.ts";
import { createApp } from "../mod.ts";
import { createRequestHandler } from "../src/http/mod.ts";
import { waitFor } from "./support/redis-fixtures.ts";

const get = (path: string, token?: string) =>
  new Request(
    `https://ops.example.com${path}`,
    token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } },
  );

describe("GET /metrics", () => {
  it("serves the app's metrics to a bearer of token or metricsToken, and nobody else", async () => {
    const app = createApp();
    const hello = app.task({ name: "hello", run: () => "hi" });
    await hello.enqueue(undefined);
    await app.drain();
    const handle = createRequestHandler(app, { token: "producer", metricsToken: "scraper" });
    for (const token of ["producer", "scraper"]) {
      const res = await handle(get("/metrics", token));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
      assert.match(
        await res.text(),
        /^celeriac_tasks_total\{task="hello",queue="default",outcome="succeeded"\} 1$/m,
      );
    }
    assert.equal((await handle(get("/metrics"))).status, 401);
    assert.equal((await handle(get("/metrics", "wrong"))).status, 401);
    assert.equal(
      (await handle(new Request("https://ops.example.com/metrics", { method: "POST" }))).status,
      405,
    );
    assert.equal((await createRequestHandler(app)(get("/metrics", "producer"))).status, 404, "no token: off");
    const off = createRequestHandler(app, { token: "producer", metrics: false });
    assert.equal((await off(get("/metrics", "producer"))).status, 404);
    assert.throws(() => createRequestHandler(app, { metricsToken: "" }), TypeError);
    assert.throws(() => createRequestHandler(app, { reportMs: 0 }), RangeError);
  });
});

describe("GET /health with workers", () => {
  it("answers 503 while a queue has waiting work and no live worker, 200 once one serves it", async () => {
    const backend = memory();
    const app = createApp({ broker: backend, store: backend });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const job = app.task({ name: "job", queue: "jobs", run: () => gate });
    await job.enqueue(undefined);
    await job.enqueue(undefined);
    const handle = createRequestHandler(app);
    const down = await handle(get("/health"));
    assert.equal(down.status, 503);
    const body = (await down.json()) as {
      ok: boolean;
      checks: { workers: { ok: boolean; error: string } };
      queues: { queue: string; waiting: number; workers: number; oldestWaitingAgeMs: number }[];
    };
    assert.equal(body.ok, false);
    assert.match(body.checks.workers.error, /jobs/);
    const jobs = body.queues.find((q) => q.queue === "jobs");
    assert.equal(jobs?.waiting, 2);
    assert.equal(jobs?.workers, 0);
    assert.ok((jobs?.oldestWaitingAgeMs ?? -1) >= 0);
    assert.equal((await createRequestHandler(app, { requireWorkers: false })(get("/health"))).status, 200);

    await app.control.pause("jobs");
    assert.equal((await handle(get("/health"))).status, 200, "a paused queue is not stranded");
    await app.control.resume("jobs");

    const worker = app.worker({ queues: ["jobs"], concurrency: 1, heartbeatMs: 50 }).start();
    await waitFor(async () => (await handle(get("/health"))).status === 200, 10_000, "health to recover");
    const up = (await (await handle(get("/health"))).json()) as {
      workers: number;
      queues: { queue: string; workers: number }[];
    };
    assert.equal(up.workers, 1);
    assert.equal(up.queues.find((q) => q.queue === "jobs")?.workers, 1);
    release();
    await worker.stop();
    await app.close();
  });
});

describe("push handler instances in the registry", () => {
  it("reports the instance after the deliveries it served, with its counters and statistics", async () => {
    const KEYS = { currentSigningKey: "sig_ops_current", nextSigningKey: "sig_ops_next" };
    const url = "https://tasks.example.com/qstash";
    const app = createApp();
    app.task({ name: "echo", queue: "io", run: (input) => input });
    const handle = createRequestHandler(app, { push: qstashReceiver({ ...KEYS, url }), reportMs: 60_000 });
    assert.deepEqual(await app.inspect().workers(), []);
    for (let i = 0; i < 3; i++) {
      const id = crypto.randomUUID();
      const body = JSON.stringify({
        v: 1,
        id,
        task: "echo",
        queue: "io",
        priority: 0,
        attempt: 1,
        enqueuedAt: Date.now(),
        input: i,
      });
      const signature = await signQStashDelivery({ signingKey: KEYS.currentSigningKey, url, body });
      const res = await handle(
        new Request(url, {
          method: "POST",
          body,
          headers: { "upstash-signature": signature, "upstash-message-id": `m${i}` },
        }),
      );
      assert.equal(res.status, 200);
    }
    await waitFor(async () => (await app.inspect().workers()).length === 1, 5_000, "the instance to report");
    const [w] = await app.inspect().workers();
    assert.equal(w?.kind, "push");
    assert.deepEqual(w?.queues, ["io"]);
    assert.equal(w?.heartbeatMs, 60_000);
    assert.ok((w?.counters.succeeded ?? 0) >= 1, "the first delivery's report counts it");
    const [stats] = await app.inspect().stats();
    assert.deepEqual({ task: stats?.task, succeeded: stats?.succeeded }, { task: "echo", succeeded: 3 });
    assert.match(await app.metrics(), /^celeriac_workers\{kind="push"\} 1$/m);
  });
});
