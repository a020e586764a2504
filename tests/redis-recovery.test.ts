import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import type { Redis as IoRedis } from "ioredis";
import { type App, createApp } from "../mod.ts";
import { freshPrefix, type RedisRig, startRig, waitFor } from "./support/redis-fixtures.ts";

const CHILD = fileURLToPath(new URL("./support/redis-crash-worker.ts", import.meta.url));

/** The current runtime, running a TypeScript file as a script. */
function command(script: string, args: string[]): [string, string[]] {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Bun !== undefined) return [process.execPath, [script, ...args]];
  if (g.Deno !== undefined) return [process.execPath, ["run", "-A", script, ...args]];
  return [process.execPath, ["--import", "tsx", script, ...args]];
}

interface Child {
  process: ChildProcess;
  /** Resolves with the first output line matching `pattern`. */
  line(pattern: RegExp, ms?: number): Promise<string>;
  exited: Promise<void>;
}

function startChild(args: string[]): Child {
  const [file, argv] = command(CHILD, args);
  const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let partial = "";
  let err = "";
  const listeners = new Set<() => void>();
  child.stdout!.on("data", (chunk: Buffer) => {
    partial += chunk.toString("utf8");
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
    for (const listener of listeners) listener();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    err = (err + chunk.toString("utf8")).slice(-2_000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    process: child,
    exited,
    line(pattern, ms = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find((l) => pattern.test(l));
          if (found === undefined) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`child printed no line matching ${pattern} in ${ms} ms; stderr:\n${err}`));
        }, ms);
        listeners.add(check);
        check();
      });
    },
  };
}

/** A task that applies its effect once per execution: a fresh token dedupes transport resends. */
const EFFECT = `if redis.call('SET', KEYS[1], '1', 'NX', 'PX', 600000) then
  return redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end return 0`;

function effect(client: IoRedis, prefix: string, field: string): Promise<unknown> {
  return client.eval(EFFECT, 2, `${prefix}:token:${crypto.randomUUID()}`, `${prefix}:effects`, field);
}

describe("redis backend recovery", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig({ appendonly: true });
  });
  after(async () => {
    await rig?.stop();
  });

  it("a per-key concurrency slot held by a SIGKILLed worker frees within about two leases", {
    timeout: 60_000,
  }, async () => {
    const prefix = freshPrefix();
    const leaseMs = 500;
    const children = [0, 1, 2].map(() => startChild([rig.server.url, prefix, "limited", String(leaseMs)]));
    const { backend, close } = rig.backend("tcp", { prefix });
    try {
      await Promise.all(children.map((c) => c.line(/^ready$/)));
      const app = createApp({ broker: backend, store: backend });
      const task = app.task({
        name: "effect",
        concurrency: { limit: 1, key: (input) => (input as { key: string }).key },
        run: () => {},
      });
      await task.enqueue({ key: "k" });
      await task.enqueue({ key: "k" });
      const holder = await Promise.any(children.map((c, i) => c.line(/^started /).then(() => i)));
      // Only one run of the key starts while its holder lives.
      const others = children.filter((_, i) => i !== holder);
      const early = await Promise.race([
        Promise.any(others.map((c) => c.line(/^started /, 2 * leaseMs))).then(
          () => true,
          () => false,
        ),
      ]);
      assert.equal(early, false, "a second run of the key started while the first held its slot");
      children[holder]!.process.kill("SIGKILL");
      await children[holder]!.exited;
      const killedAt = Date.now();
      await Promise.any(others.map((c) => c.line(/^started /, 10_000)));
      const waited = Date.now() - killedAt;
      assert.ok(waited <= 2 * leaseMs + 1_000, `the next run of the key started ${waited} ms after the kill`);
    } finally {
      for (const c of children) c.process.kill("SIGKILL");
      await Promise.all(children.map((c) => c.exited));
      await close();
    }
  });

  it("drops a SIGKILLed worker from the registry within three heartbeats", { timeout: 60_000 }, async () => {
    const prefix = freshPrefix();
    const beatMs = 400;
    const child = startChild([rig.server.url, prefix, "hang", "300", String(beatMs)]);
    const { backend, close } = rig.backend("tcp", { prefix });
    try {
      await child.line(/^ready$/);
      const app = createApp({ broker: backend, store: backend });
      await waitFor(
        async () => (await app.inspect().workers()).some((w) => w.pid === child.process.pid),
        20_000,
        "the child worker to register",
      );
      const [w] = await app.inspect().workers();
      assert.equal(w?.heartbeatMs, beatMs);
      child.process.kill("SIGKILL");
      await child.exited;
      const killedAt = Date.now();
      await waitFor(
        async () => (await app.inspect().workers()).length === 0,
        3 * beatMs + 2_000,
        "it to disappear",
      );
      const gone = Date.now() - killedAt;
      assert.ok(gone <= 3 * beatMs + 500, `gone after ${gone} ms (beats of ${beatMs} ms)`);
    } finally {
      child.process.kill("SIGKILL");
      await child.exited;
      await close();
    }
  });

  it("completes a task whose worker process was SIGKILLed mid-task, with its effect once", {
    timeout: 60_000,
  }, async () => {
    const prefix = freshPrefix();
    const child = startChild([rig.server.url, prefix]);
    const { backend, close } = rig.backend("tcp", { prefix });
    const counter = rig.tcp();
    try {
      await child.line(/^ready$/);
      const app = createApp({ broker: backend, store: backend });
      const task = app.task({
        name: "effect",
        idempotencyKey: (input) => (input as { key: string }).key,
        timeoutMs: 1_000,
        async run(input: { key: string }) {
          await counter.incr(`${prefix}:started`);
          await effect(counter, prefix, input.key);
          return "done";
        },
      });
      const run = await task.enqueue({ key: "k1" });
      assert.equal(await child.line(/^started /), `started ${run.id}`);
      child.process.kill("SIGKILL");
      await child.exited;

      assert.equal((await task.enqueue({ key: "k1" })).id, run.id, "the key still maps to the same run");
      const worker = app.worker({ concurrency: 2, leaseMs: 300, pollMs: 500 }).start();
      try {
        assert.equal(await run.result({ timeoutMs: 30_000 }), "done");
      } finally {
        await worker.stop();
      }
      assert.equal(
        await counter.get(`${prefix}:started`),
        "2",
        "started by the dead worker, then by this one",
      );
      assert.deepEqual(await counter.hgetall(`${prefix}:effects`), { k1: "1" });
      assert.equal((await task.enqueue({ key: "k1" })).id, run.id);
      assert.equal(await app.drain(), 0, "nothing left to run");
    } finally {
      child.process.kill("SIGKILL");
      await child.exited;
      await close();
    }
  });

  it("finishes a keyed task within ~2 leases after its worker was SIGKILLed (the claim follows the lease)", {
    timeout: 60_000,
  }, async () => {
    const prefix = freshPrefix();
    const leaseMs = 500;
    const child = startChild([rig.server.url, prefix, "hang-long", String(leaseMs)]);
    const { backend, close } = rig.backend("tcp", { prefix });
    try {
      await child.line(/^ready$/);
      const app = createApp({ broker: backend, store: backend });
      const task = app.task({
        name: "effect",
        idempotencyKey: (input) => (input as { key: string }).key,
        run: () => "done", // the default timeout: 300 s
      });
      // This worker starts once the child runs the task, so the child is the one that holds it.
      const worker = app.worker({ concurrency: 1, leaseMs, pollMs: 5_000 });
      try {
        const run = await task.enqueue({ key: "long" });
        assert.equal(await child.line(/^started /), `started ${run.id}`);
        worker.start();
        child.process.kill("SIGKILL");
        await child.exited;
        const killed = performance.now();
        assert.equal(await run.result({ timeoutMs: 20_000 }), "done");
        const tookMs = performance.now() - killed;
        assert.ok(tookMs < 2 * leaseMs + 500, `finished ${Math.round(tookMs)} ms after the kill`);
      } finally {
        await worker.stop();
      }
    } finally {
      child.process.kill("SIGKILL");
      await child.exited;
      await close();
    }
  });

  it("dead-letters a delivery whose worker is lost maxDeliveries times, instead of redelivering it forever", {
    timeout: 90_000,
  }, async () => {
    const prefix = freshPrefix();
    const { backend, close } = rig.backend("tcp", { prefix });
    const counter = rig.tcp();
    try {
      const app = createApp({ broker: backend, store: backend });
      const task = app.task({
        name: "effect",
        idempotencyKey: (input) => (input as { key: string }).key,
        run: () => "never",
      });
      const run = await task.enqueue({ key: "poison" });
      // Each worker process takes it and crashes (process.exit) mid-task, as OOM would.
      for (let lost = 1; lost <= 5; lost++) {
        const child = startChild([rig.server.url, prefix, "exit", "300"]);
        try {
          assert.equal(await child.line(/^started /), `started ${run.id}`);
          await child.exited;
        } finally {
          child.process.kill("SIGKILL");
        }
      }
      assert.equal(await counter.get(`${prefix}:started`), "5");
      // The sixth delivery is not run: it is dead-lettered with the reason.
      const child = startChild([rig.server.url, prefix, "exit", "300"]);
      try {
        await child.line(/^ready$/);
        await waitFor(async () => (await run.status())?.state === "failed", 20_000, "the run to fail");
      } finally {
        child.process.kill("SIGKILL");
        await child.exited;
      }
      assert.equal(await counter.get(`${prefix}:started`), "5", "not started a sixth time");
      const record = await run.status();
      assert.match(record?.error?.message ?? "", /worker lost 5 times/);
      const [dead] = await app.deadLetters();
      assert.equal(dead?.id, run.id);
      assert.match(dead?.reason ?? "", /worker lost 5 times/);
    } finally {
      await close();
    }
  });

  it("loses nothing across a redis-server restart: 5,000 tasks, each effect once", {
    timeout: 90_000,
  }, async () => {
    const N = 5_000;
    const prefix = freshPrefix();
    // While Redis restarts, commands wait for the reconnection (no retry cap), bounded by the
    // backend's command timeout: generous, as a restart on a loaded machine can take seconds.
    const patient = { maxRetriesPerRequest: null };
    const effects = rig.tcp(patient);
    const sides = [0, 1].map(() => rig.backend("tcp", { prefix, commandTimeoutMs: 30_000 }, patient));
    const errors: unknown[] = [];
    const apps: App[] = sides.map(({ backend }) => {
      const app = createApp({ broker: backend, store: backend });
      app.on("error", (e) => errors.push(e.error));
      return app;
    });
    const tasks = apps.map((app) =>
      app.task({
        name: "work",
        idempotencyKey: (n) => `w${n as number}`,
        retry: { maxAttempts: 20, backoff: "fixed", baseMs: 100, jitter: "none" },
        async run(n: number) {
          await effect(effects, prefix, String(n));
          return n;
        },
      }),
    );
    const inputs = Array.from({ length: N }, (_, i) => i);
    const runs = [];
    for (let i = 0; i < N; i += 500) runs.push(...(await tasks[0]!.enqueueMany(inputs.slice(i, i + 500))));
    const workers = apps.map((app) => app.worker({ concurrency: 50, leaseMs: 5_000, pollMs: 1_000 }).start());
    const done = async () => await effects.hlen(`${prefix}:effects`);
    try {
      await waitFor(async () => (await done()) >= N / 5, 30_000, "a fifth of the tasks");
      await rig.server.restart();
      const again = [];
      for (let i = 0; i < N; i += 500) again.push(...(await tasks[1]!.enqueueMany(inputs.slice(i, i + 500))));
      assert.deepEqual(
        again.map((r) => r.id),
        runs.map((r) => r.id),
        "enqueueing the same keys again returns the same runs",
      );
      await waitFor(async () => (await done()) >= N, 60_000, "every effect");
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
    const states = await Promise.all(runs.map(async (r) => (await r.status())?.state ?? "missing"));
    const succeeded = states.filter((s) => s === "succeeded").length;
    assert.equal(
      N - succeeded,
      0,
      `lost ${N - succeeded}: ${JSON.stringify(states.filter((s) => s !== "succeeded").slice(0, 5))}`,
    );
    const counts = Object.values(await effects.hgetall(`${prefix}:effects`));
    assert.equal(counts.length, N);
    assert.deepEqual(
      counts.filter((c) => c !== "1"),
      [],
      "every effect exactly once",
    );
    for (const side of sides) await side.close();
  });
});
