import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RedisLedger } from "../adapters/redis/mod.ts";
import { idempotencyKey, type Message, processDelivery } from "../backend.ts";
import { createApp } from "../mod.ts";
import { brokerContract, scheduleStoreContract } from "../testing/mod.ts";
import { type RedisRig, startRig, subject, TRANSPORTS, waitFor } from "./support/redis-fixtures.ts";

describe("redis backend", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.stop();
  });

  brokerContract(
    "contract over TCP (ioredis)",
    subject(() => rig, "tcp"),
  );
  brokerContract(
    "contract over REST (@upstash/redis)",
    subject(() => rig, "rest"),
  );
  if (TRANSPORTS.includes("bun"))
    brokerContract(
      "contract over Bun's RedisClient",
      subject(() => rig, "bun"),
    );
  for (const kind of TRANSPORTS) {
    scheduleStoreContract(
      `schedule store over ${kind}`,
      subject(() => rig, kind),
    );
  }

  it("drops a prefetched run whose lease lapsed while the loop was blocked, instead of running it twice", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      const app = createApp({ broker: backend, store: backend });
      const counts = new Map<string, number>();
      const t = app.task({
        name: "t",
        run: (input: string) => {
          counts.set(input, (counts.get(input) ?? 0) + 1);
          if (input === "A") {
            const until = performance.now() + 1_000;
            while (performance.now() < until) {
              // a CPU-bound task holds the loop
            }
          }
        },
      });
      const runs = await t.enqueueMany(["A", "B"]);
      const worker = app.worker({ concurrency: 1, prefetch: 1, leaseMs: 200, pollMs: 50 }).start();
      try {
        for (const run of runs) await run.result({ timeoutMs: 10_000 });
      } finally {
        await worker.stop();
      }
      assert.deepEqual(Object.fromEntries(counts), { A: 1, B: 1 });
    } finally {
      await close();
    }
  });

  it("cancels a running task: its signal aborts at the next renewal and its success is not recorded", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      const app = createApp({ broker: backend, store: backend });
      let started!: () => void;
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      let aborted: unknown;
      const t = app.task({
        name: "long",
        run: (_input, ctx) =>
          new Promise((resolve) => {
            started();
            ctx.signal.addEventListener("abort", () => {
              aborted = ctx.signal.reason;
              resolve("finished anyway");
            });
          }),
      });
      const worker = app.worker({ leaseMs: 300 }).start();
      try {
        const run = await t.enqueue(null);
        await running;
        assert.equal(await run.cancel(), true);
        await waitFor(() => aborted !== undefined, 5_000, "the task's signal to abort");
        assert.equal((aborted as Error).name, "CancelledError");
        await waitFor(async () => worker.active === 0, 5_000, "the task to end");
        assert.equal((await run.status())?.state, "cancelled", "the late success is not recorded");
      } finally {
        await worker.stop();
      }
    } finally {
      await close();
    }
  });

  for (const kind of TRANSPORTS.filter((k) => k !== "rest")) {
    it(`announces a watched run's end to a waiter in another process, without polling (${kind})`, async () => {
      const producer = rig.backend(kind);
      const consumer = rig.backend(kind, { prefix: producer.backend.prefix });
      try {
        const sender = createApp({ broker: producer.backend, store: producer.backend });
        const worker = createApp({ broker: consumer.backend, store: consumer.backend });
        const slow = (app: typeof sender) =>
          app.task({
            name: "slow",
            run: async (ms: number) => {
              await new Promise((resolve) => setTimeout(resolve, ms));
              return ms;
            },
          });
        const task = slow(sender);
        slow(worker);
        const running = worker.worker({ concurrency: 1, pollMs: 10_000 }).start();
        try {
          // The first wait makes this process listen; runs enqueued after it are watched from the start.
          assert.equal(await (await task.enqueue(1)).result({ timeoutMs: 10_000 }), 1);
          const before = (await rig.commandStats()).get("publish") ?? 0;
          const started = performance.now();
          const run = await task.enqueue(300);
          assert.equal(await run.result({ timeoutMs: 10_000 }), 300);
          const tookMs = performance.now() - started;
          // Polling from 2 ms doubling would look again only at ~510 ms.
          assert.ok(tookMs < 450, `woken ${Math.round(tookMs)} ms after enqueue`);
          assert.equal((await rig.commandStats()).get("publish"), before + 1, "one announcement");
        } finally {
          await running.stop();
        }
      } finally {
        await producer.close();
        await consumer.close();
      }
    });
  }

  it("expires dead letters after deadLetterTtlMs", async () => {
    const { backend, close } = rig.backend("tcp", { deadLetterTtlMs: 200 });
    try {
      const entry = (id: string) => ({
        id,
        queue: "q",
        reason: "r",
        error: { name: "E", message: "m" },
        errors: [],
        body: "{}",
        at: 1,
      });
      await backend.addDeadLetter(entry("old"));
      await waitFor(
        async () => {
          await backend.addDeadLetter(entry("new"));
          return (await backend.listDeadLetters()).every((d) => d.id !== "old");
        },
        5_000,
        "the old dead letter to expire",
      );
      assert.deepEqual(
        (await backend.listDeadLetters()).map((d) => d.id),
        ["new"],
      );
    } finally {
      await close();
    }
  });

  for (const kind of TRANSPORTS) {
    describe(`over ${kind}`, () => {
      it("a worker runs tasks enqueued through another client, woken without delay", async () => {
        const producer = rig.backend(kind);
        const consumer = rig.backend(kind, { prefix: producer.backend.prefix, pollMaxMs: 200 });
        try {
          const worker = createApp({ broker: consumer.backend, store: consumer.backend });
          worker.task({ name: "echo", run: (text: string) => `echo ${text}` });
          const running = worker.worker({ concurrency: 4, pollMs: 10_000 }).start();
          const app = createApp({ broker: producer.backend, store: producer.backend });
          const echo = app.task({ name: "echo", run: (text: string) => text });
          try {
            for (const text of ["a", "b", "c"]) {
              const started = Date.now();
              const run = await echo.enqueue(text);
              assert.equal(await run.result({ timeoutMs: 5_000 }), `echo ${text}`);
              assert.ok(Date.now() - started < 5_000, `${text} took ${Date.now() - started} ms`);
            }
          } finally {
            await running.stop();
          }
        } finally {
          await producer.close();
          await consumer.close();
        }
      });

      it("hands back bodies exactly, even ones that look like JSON", async () => {
        const { backend, close } = rig.backend(kind);
        try {
          const bodies = [
            "123",
            "null",
            "true",
            '"text"',
            "[1,2]",
            '{"a":1}',
            "",
            "~tilde",
            "a:b:c",
            "ünï ☃ 😀",
          ];
          const messages: Message[] = bodies.map((body, i) => ({
            id: `m${i}`,
            queue: "q",
            priority: 0,
            body,
          }));
          await backend.send(messages);
          const got = await backend.receive({ queues: ["q"], max: 20, leaseMs: 30_000, waitMs: 0 });
          assert.deepEqual(
            got.map((d) => d.body),
            bodies,
          );
          for (const value of ["123", "true", "null", '{"a":1}', "~x"]) {
            await backend.set(`k:${value}`, value);
            assert.equal(await backend.get(`k:${value}`), value);
          }
        } finally {
          await close();
        }
      });

      it("recovers after SCRIPT FLUSH by sending the script again", async () => {
        const { backend, close } = rig.backend(kind);
        try {
          await backend.send([{ id: "a", queue: "q", priority: 0, body: "x" }]);
          await rig.tcp().call("SCRIPT", "FLUSH");
          const [d] = await backend.receive({ queues: ["q"], max: 1, leaseMs: 30_000, waitMs: 0 });
          assert.equal(d?.id, "a");
          await rig.tcp().call("SCRIPT", "FLUSH");
          assert.equal(await backend.setIfAbsent("k", "v"), null);
        } finally {
          await close();
        }
      });

      it("a stopping worker sends its prefetched tasks back at once; another runs each of them once", async () => {
        const { backend, close } = rig.backend(kind);
        try {
          const app = createApp({ broker: backend, store: backend });
          let release!: () => void;
          const gate = new Promise<void>((resolve) => {
            release = resolve;
          });
          let first!: () => void;
          const started = new Promise<void>((resolve) => {
            first = resolve;
          });
          const runs = new Map<number, number>();
          const t = app.task({
            name: "held",
            run: async (n: number) => {
              runs.set(n, (runs.get(n) ?? 0) + 1);
              first();
              await gate;
            },
          });
          const handles = await t.enqueueMany([1, 2, 3, 4, 5]);
          const a = app.worker({ concurrency: 1, prefetch: 2 }).start();
          await started;
          assert.equal(a.active, 1);
          await waitFor(() => a.prefetched === 2, 5_000, "two prefetched tasks");
          const stopped = a.stop();
          release();
          await stopped;
          // One ran; the two waiting went back to the ready set with the two never taken.
          assert.equal(runs.size, 1);
          const b = app.worker({ concurrency: 2, prefetch: 0, leaseMs: 60_000 }).start();
          const states = await Promise.all(
            handles.map(async (h) => {
              // Released at once, not left to their leases (30 s): they finish well within this.
              await h.result({ timeoutMs: 10_000 });
              return (await h.status())?.state;
            }),
          );
          await b.stop();
          assert.deepEqual(states, ["succeeded", "succeeded", "succeeded", "succeeded", "succeeded"]);
          assert.deepEqual([...runs.values()], [1, 1, 1, 1, 1]);
        } finally {
          await close();
        }
      });
    });
  }

  it("an idle TCP worker blocks instead of polling", { timeout: 20_000 }, async () => {
    const { backend, close } = rig.backend("tcp");
    const app = createApp({ broker: backend, store: backend });
    app.task({ name: "idle", run: () => null });
    const worker = app.worker({ pollMs: 1_000 }).start();
    try {
      await waitFor(
        async () => ((await rig.commandStats()).get("bzpopmin") ?? 0) > 0,
        5_000,
        "a blocking wait",
      );
      await rig.resetStats();
      const since = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 2_000)); // measuring an idle period
      const stats = await rig.commandStats();
      const seconds = (Date.now() - since) / 1000;
      const scripts = (stats.get("evalsha") ?? 0) + (stats.get("eval") ?? 0);
      const waits = stats.get("bzpopmin") ?? 0;
      // One receive script and one blocking wait per pollMs (1 s) of idleness.
      assert.ok(scripts <= seconds + 1, `${scripts} script calls in ${seconds} s`);
      assert.ok(waits <= seconds + 1, `${waits} blocking waits in ${seconds} s`);
    } finally {
      await worker.stop();
      await close();
    }
  });

  it("an idle REST worker stays under one request per second", { timeout: 20_000 }, async () => {
    const { backend, close } = rig.backend("rest");
    const app = createApp({ broker: backend, store: backend });
    app.task({ name: "idle", run: () => null });
    const worker = app.worker({ pollMs: 5_000 }).start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 2_000)); // let the backoff reach its cap
      const before = rig.bridge.requests;
      const since = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 4_000)); // measuring an idle period
      const perSecond = (rig.bridge.requests - before) / ((Date.now() - since) / 1000);
      assert.ok(perSecond < 1, `${perSecond.toFixed(2)} requests/s`);
    } finally {
      await worker.stop();
      await close();
    }
  });

  it("fuses a task cycle (enqueue, receive, start, succeed) into four script calls", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      const app = createApp({ broker: backend, store: backend });
      const task = app.task({ name: "cycle", run: (n: number) => n + 1 });
      await task.enqueue(0);
      await app.drain(); // warm up: queue registered, scripts cached
      await rig.resetStats();
      const run = await task.enqueue(1);
      const [delivery] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.ok(delivery);
      const outcome = await processDelivery(app, delivery);
      assert.equal(outcome.kind, "succeeded");
      const stats = await rig.commandStats();
      stats.delete("info");
      stats.delete("config|resetstat");
      assert.equal(stats.get("evalsha"), 4);
      const inner = [...stats].filter(([name]) => name !== "evalsha").reduce((sum, [, n]) => sum + n, 0);
      assert.ok(inner <= 21, `${inner} commands inside the scripts: ${JSON.stringify([...stats])}`);
      assert.equal(await run.result(), 2);
    } finally {
      await close();
    }
  });

  it("succeedAndReceive records success, acks and leases the next task in one call", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      const ledger = backend.ledger(backend) as RedisLedger;
      await backend.send([
        { id: "a", queue: "q", priority: 0, body: "A" },
        { id: "b", queue: "q", priority: 0, body: "B" },
      ]);
      const [a] = await backend.receive({ queues: ["q"], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.ok(a);
      await backend.updateRun("a", { id: "a", state: "active" }, { ttlMs: 60_000, queue: "q" });
      const next = await ledger.succeedAndReceive(
        a,
        "a",
        { at: Date.now() },
        60_000,
        { key: idempotencyKey("q", "t", "ka"), ttlMs: 60_000 },
        { max: 1, leaseMs: 30_000 },
      );
      assert.ok(Array.isArray(next), "not cancelled: the deliveries taken");
      assert.deepEqual(
        next.map((d) => [d.id, d.body, d.deliveries]),
        [["b", "B", 1]],
      );
      assert.equal((await backend.getRun("a", "q"))?.state, "succeeded");
      assert.equal(await ledger.idempotencyOwner(idempotencyKey("q", "t", "ka")), "a");
      assert.deepEqual(await backend.receive({ queues: ["q"], max: 5, leaseMs: 30_000, waitMs: 0 }), []);
    } finally {
      await close();
    }
  });
});
