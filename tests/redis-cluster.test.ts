import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Cluster } from "ioredis";
import { redis } from "../adapters/redis/mod.ts";
import { type RedisCluster, startRedisCluster } from "../dev/mod.ts";
import { createApp, manualClock } from "../mod.ts";
import { brokerContract, scheduleStoreContract } from "../testing/mod.ts";
import { freshPrefix } from "./support/redis-fixtures.ts";
import { storedSchedulesScenario } from "./support/schedules-scenario.ts";

describe("redis backend on a 3-master Redis Cluster (ioredis Cluster)", () => {
  let cluster: RedisCluster;
  const clients = new Set<Cluster>();
  const client = () => {
    const c = new Cluster([...cluster.nodes], {
      redisOptions: { maxRetriesPerRequest: 3, connectTimeout: 2_000 },
    });
    c.on("error", () => {});
    clients.add(c);
    return c;
  };
  before(async () => {
    cluster = await startRedisCluster({ masters: 3 });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.stop();
  });

  const onCluster = async () => {
    const c = client();
    const backend = redis({ client: c, prefix: freshPrefix() });
    return {
      backend,
      close: async () => {
        await backend.close();
        c.disconnect();
        clients.delete(c);
      },
    };
  };
  brokerContract("contract on the cluster", onCluster);
  scheduleStoreContract("schedule store on the cluster", onCluster);

  it("fires each stored schedule's tick once across three replicas on the cluster", {
    timeout: 60_000,
  }, async () => {
    const prefix = freshPrefix();
    const handles = [client(), client(), client()].map((c) => ({ c, backend: redis({ client: c, prefix }) }));
    try {
      await storedSchedulesScenario(
        handles.map((h) => h.backend),
        manualClock(0),
      );
    } finally {
      for (const h of handles) {
        await h.backend.close();
        h.c.disconnect();
        clients.delete(h.c);
      }
    }
  });

  it("an idle worker picks up at once, with a worker on queues in other slots beside it", {
    timeout: 60_000,
  }, async () => {
    const prefix = freshPrefix();
    // Producer and workers on separate backends (as separate processes are): a pickup is a
    // wake-up through Redis, not a local one.
    const producer = redis({ client: client(), prefix });
    const backend = redis({ client: client(), prefix });
    const sender = createApp({ broker: producer, store: producer });
    const app = createApp({ broker: backend, store: backend });
    const started = new Map<string, number>();
    app.on("active", (e) => started.set(e.id, performance.now()));
    for (const queue of ["solo", "alpha", "beta"]) app.task({ name: queue, queue, run: () => queue });
    const one = sender.task({ name: "solo", queue: "solo", run: () => "solo" });
    const many = sender.task({ name: "beta", queue: "beta", run: () => "beta" });
    // A worker on two queues (their hash tags are in different slots) and one on a single queue.
    const multi = app.worker({ queues: ["alpha", "beta"], concurrency: 1, pollMs: 5_000 }).start();
    const single = app.worker({ queues: ["solo"], concurrency: 1, pollMs: 5_000 }).start();
    try {
      const latencies = async (task: typeof one) => {
        const out: number[] = [];
        for (let i = 0; i < 20; i++) {
          const sent = performance.now();
          const run = await task.enqueue(null);
          await run.result({ timeoutMs: 10_000 });
          out.push((started.get(run.id) ?? Number.NaN) - sent);
          // Idle again: the workers go back to waiting before the next one.
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        return out.sort((a, b) => a - b);
      };
      for (const [name, task] of [
        ["single-queue worker", one],
        ["two-queue worker", many],
      ] as const) {
        const sorted = await latencies(task);
        const p50 = sorted[Math.floor(sorted.length * 0.5)]!;
        const p90 = sorted[Math.floor(sorted.length * 0.9)]!;
        const all = sorted.map((x) => x.toFixed(1)).join(", ");
        // Blocking picks up in a few ms; a poller (what a multi-queue worker made of every worker
        // before) takes tens to thousands. The p90 bound leaves room for a loaded machine.
        assert.ok(p50 < 20, `${name}: pickup p50 ${p50.toFixed(1)} ms (all: ${all})`);
        assert.ok(p90 < 50, `${name}: pickup p90 ${p90.toFixed(1)} ms (all: ${all})`);
      }
    } finally {
      await multi.stop();
      await single.stop();
      await backend.close();
      await producer.close();
    }
  });
});
