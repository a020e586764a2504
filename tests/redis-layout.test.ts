import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { queueKeys, runKey } from "../adapters/redis/_keys.ts";
import { OP, QUEUE_SCRIPT } from "../adapters/redis/lua/mod.ts";
import { processDelivery } from "../backend.ts";
import type { RedisLedger } from "../adapters/redis/mod.ts";
import { createApp } from "../mod.ts";
import { type RedisRig, startRig } from "./support/redis-fixtures.ts";

/** Commands run inside scripts (and the script calls) since the last reset. */
async function counted(rig: RedisRig): Promise<{ inner: number; scripts: number; all: Map<string, number> }> {
  const stats = await rig.commandStats();
  stats.delete("info");
  stats.delete("config|resetstat");
  const scripts = (stats.get("evalsha") ?? 0) + (stats.get("eval") ?? 0);
  const inner = [...stats]
    .filter(([name]) => name !== "evalsha" && name !== "eval")
    .reduce((s, [, n]) => s + n, 0);
  return { inner, scripts, all: stats };
}

describe("redis backend: one hash per run, message and record together", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.stop();
  });

  /** Runs n no-op tasks through a worker (concurrency 10); the commands they took. */
  async function cycle(n: number, options: Parameters<RedisRig["backend"]>[1]) {
    const { backend, close } = rig.backend("tcp", options);
    try {
      const app = createApp({ broker: backend, store: backend });
      const noop = app.task({ name: "noop", run: () => null });
      await noop.enqueue(null);
      await app.drain(); // warm up: queue registered, scripts cached
      await rig.resetStats();
      const runs = await noop.enqueueMany(Array.from({ length: n }, () => null));
      let done = 0;
      const all = new Promise<void>((resolve) => {
        app.on("succeeded", () => {
          if (++done === n) resolve();
        });
      });
      const worker = app.worker({ concurrency: 10 }).start();
      await all;
      await worker.stop();
      const stats = await counted(rig);
      assert.equal((await runs[n - 1]!.status())?.state, "succeeded");
      return stats;
    } finally {
      await close();
    }
  }

  it("runs a task cycle in 6 commands per task plus a few per script call", async () => {
    {
      const n = 300;
      const { inner, scripts, all: stats } = await cycle(n, { history: false });
      const shown = JSON.stringify([...stats]);
      // 6 per task (HSET at enqueue; HMGET, HSET to take and start; ZREM, HSET, PEXPIRE to
      // finish), plus once per script call however many tasks it takes: TIME, the timers head
      // (ZRANGE), one ZPOPMIN and one ZADD for all the leases it hands out.
      assert.equal(stats.get("hmget"), n, shown);
      // The worker's heartbeats (one SET each in the ops script) add a PEXPIRE per statistics
      // minute they touch: none is per task.
      const beats = stats.get("set") ?? 0;
      assert.ok(beats <= 3, `heartbeats: ${shown}`);
      const pexpire = stats.get("pexpire") ?? 0;
      assert.ok(pexpire >= n && pexpire <= n + 2 * beats, `PEXPIRE per task: ${shown}`);
      for (const perCall of ["zrange", "zpopmin"]) {
        assert.ok((stats.get(perCall) ?? 0) <= scripts, `${perCall} more than once per call: ${shown}`);
      }
      assert.ok(inner / n >= 6, `${inner / n} commands per task: fewer than the cycle needs? ${shown}`);
      assert.ok(inner / n <= 9, `${inner / n} commands per task: ${shown}`);
    }
  });

  it("keeps the run history for a ZADD per index per script call and an EXISTS per call", async () => {
    const n = 300;
    const off = await cycle(n, { history: false });
    const on = await cycle(n, {});
    const shown = JSON.stringify([...on.all]);
    // Each call writes what its ops add to an index in one ZADD: the queue's and the task's at
    // enqueue, the ended state's at the end — at most 3 a call, fewer than one a task here. The
    // rest of the ZADDs are per call too (the leases, the wake-up marker), and the two runs split
    // the work into calls a little differently: they differ by less than a call each.
    const extra = (on.all.get("zadd") ?? 0) - (off.all.get("zadd") ?? 0);
    assert.ok(extra > 0 && extra <= 3 * on.scripts + on.scripts + off.scripts, `${extra} ZADDs: ${shown}`);
    // A ZADD per run and index would be 3n more.
    assert.ok(extra < n, `${extra} ZADDs, fewer than one a task: ${shown}`);
    // Is the change log read? Once per call that changed a state; nobody reads it: no XADD.
    assert.ok((on.all.get("exists") ?? 0) <= on.scripts, shown);
    assert.equal(on.all.get("xadd"), undefined, shown);
    // Trimmed by a call that sends a 64th message: here the one call of enqueueMany, once — the
    // queue's index, the task's, and the four ended states'.
    assert.equal(on.all.get("zremrangebyrank"), 6, shown);
  });

  it("keeps no TTL on a run's key while its message is pending, then the record's own", async () => {
    const { backend, close } = rig.backend("tcp");
    const raw = rig.tcp();
    try {
      const app = createApp({ broker: backend, store: backend });
      const ttlMs = 3_600_000;
      let calls = 0;
      const flaky = app.task({
        name: "flaky",
        resultTtlMs: ttlMs,
        retry: { maxAttempts: 3, baseMs: 60_000, jitter: "none" },
        run: () => {
          if (++calls === 1) throw new Error("first attempt fails");
          return "ok";
        },
      });
      const ttl = (id: string) => raw.pttl(runKey(backend.prefix, "default", id));

      const queued = await flaky.enqueue(null, { delayMs: 60_000 });
      assert.equal(await ttl(queued.id), -1, "scheduled: no TTL");
      assert.equal(await queued.cancel(), true);
      const cancelled = await ttl(queued.id);
      assert.ok(cancelled > 0 && cancelled <= ttlMs, `cancelled: TTL ${cancelled}`);

      const run = await flaky.enqueue(null);
      assert.equal(await ttl(run.id), -1, "queued: no TTL");
      const [first] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.ok(first);
      assert.equal((await processDelivery(app, first)).kind, "retrying");
      assert.equal(await ttl(run.id), -1, "retrying, next attempt pending: no TTL");
      assert.equal((await run.status())?.state, "retrying");

      // Bring the next attempt forward, then let it succeed.
      const [again] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.equal(again, undefined, "the retry waits out its delay");
      await raw.zadd(`{${backend.prefix}:default}:t`, 0, run.id);
      const [second] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.ok(second);
      assert.equal(second.id, run.id);
      assert.equal((await processDelivery(app, second)).kind, "succeeded");
      const finished = await ttl(run.id);
      assert.ok(finished > 0 && finished <= ttlMs, `succeeded: TTL ${finished}`);
      const record = await run.status();
      assert.equal(record?.state, "succeeded");
      assert.equal(record?.attempt, 2);
      assert.equal(
        Object.keys(record ?? {}).some((name) => name.startsWith(".")),
        false,
        "no message field leaks into the record",
      );
    } finally {
      await close();
    }
  });

  it("a retry acks, records the attempt, sends the next and leases another task in one call", async () => {
    const { backend, close } = rig.backend("tcp");
    try {
      const ledger = backend.ledger(backend) as RedisLedger;
      await backend.send([
        { id: "a", queue: "q", priority: 0, body: "A1", attempt: 1 },
        { id: "b", queue: "q", priority: 0, body: "B1", attempt: 1 },
      ]);
      await backend.updateRun("a", { id: "a", state: "queued" }, { ttlMs: 60_000, queue: "q" });
      const [a] = await backend.receive({ queues: ["q"], max: 1, leaseMs: 30_000, waitMs: 0 });
      assert.ok(a);
      await rig.resetStats();
      const next = await ledger.retry(
        a,
        "a",
        { state: "retrying" },
        60_000,
        { id: "a", queue: "q", priority: 0, body: "A2", attempt: 2 },
        { max: 1, leaseMs: 30_000 },
      );
      const { scripts } = await counted(rig);
      assert.equal(scripts, 1);
      assert.ok(Array.isArray(next), "not cancelled: the deliveries taken");
      assert.deepEqual(
        next.map((d) => [d.id, d.body, d.deliveries]),
        [["b", "B1", 1]],
      );
      assert.equal((await backend.getRun("a", "q"))?.state, "retrying");
      // The next attempt of "a" is queued behind "b", with its new body and a fresh count.
      const [retried] = await backend.receive({ queues: ["q"], max: 5, leaseMs: 30_000, waitMs: 0 });
      assert.deepEqual([retried?.id, retried?.body, retried?.deliveries], ["a", "A2", 1]);
      // The old lease is gone: acking with it does nothing.
      await backend.ack([a]);
      assert.deepEqual(await backend.receive({ queues: ["q"], max: 5, leaseMs: 30_000, waitMs: 0 }), []);
    } finally {
      await close();
    }
  });
  it("records a plain success through the short op exactly as the general one would", async () => {
    const { backend, close } = rig.backend("tcp");
    const raw = rig.tcp();
    try {
      const ledger = backend.ledger(backend) as RedisLedger;
      const ids = ["plain", "no-result", "extra"];
      await backend.send(
        ids.map((id) => ({ id, queue: "q", priority: 0, body: `body of ${id}`, attempt: 1 })),
      );
      for (const id of ids)
        await backend.updateRun(id, { id, state: "queued" }, { ttlMs: 60_000, queue: "q" });
      const leased = await backend.receive({ queues: ["q"], max: 3, leaseMs: 30_000, waitMs: 0 });
      const byId = new Map(leased.map((d) => [d.id, d]));
      const at = 1_764_000_000_123;
      await rig.resetStats();
      await ledger.succeed(byId.get("plain")!, "plain", { at, result: { ok: [1, "two"] } }, 60_000);
      await ledger.succeed(byId.get("no-result")!, "no-result", { at }, 60_000);
      // The general path: a record update, then an ack settles the message.
      await backend.updateRun(
        "extra",
        { state: "succeeded", finishedAt: at, updatedAt: at + 1, result: null },
        { ttlMs: 60_000, queue: "q" },
      );
      await backend.ack([byId.get("extra")!]);
      assert.deepEqual(await backend.getRun("plain", "q"), {
        id: "plain",
        state: "succeeded",
        finishedAt: at,
        updatedAt: at,
        result: { ok: [1, "two"] },
      });
      assert.deepEqual(await backend.getRun("no-result", "q"), {
        id: "no-result",
        state: "succeeded",
        finishedAt: at,
        updatedAt: at,
      });
      assert.deepEqual(await backend.getRun("extra", "q"), {
        id: "extra",
        state: "succeeded",
        finishedAt: at,
        updatedAt: at + 1,
        result: null,
      });
      // Acked and settled alike: nothing leased, the message fields cleared, the record's TTL set.
      for (const id of ids) {
        const key = runKey(backend.prefix, "q", id);
        assert.deepEqual(await raw.hmget(key, ".q", ".r"), ["", ""], id);
        assert.ok((await raw.pttl(key)) > 0, id);
      }
      assert.deepEqual(await backend.receive({ queues: ["q"], max: 5, leaseMs: 30_000, waitMs: 0 }), []);
    } finally {
      await close();
    }
  });

  it("shares one pop among a call's receive ops and puts back what none of them took", async () => {
    const { backend, close } = rig.backend("tcp");
    const raw = rig.tcp();
    try {
      const send = (ids: string[]) =>
        backend.send(ids.map((id) => ({ id, queue: "q", priority: 0, body: `body of ${id}` })));
      await send(["m1", "m2", "m3", "m4"]);
      const keys = queueKeys(backend.prefix, "q");
      const ready = () => raw.zrange(keys[0]!, 0, -1, "WITHSCORES");
      const call = async (want: number, ...maxes: number[]) => {
        const ops = maxes.flatMap((max) => [OP.receive, String(max), "30000", "", "1"]);
        const reply = (await raw.eval(
          QUEUE_SCRIPT.source,
          keys.length,
          ...keys,
          String(want),
          ...ops,
        )) as unknown[][];
        // Each receive op's ids (every sixth item after the due time).
        return reply.map((r) => r.filter((_, i) => i % 6 === 1));
      };
      // Two receive ops (1 and 2 messages) share one ZPOPMIN; the call says it wants 3 in all.
      const before = await ready();
      await rig.resetStats();
      assert.deepEqual(await call(3, 1, 2), [["~m1"], ["~m2", "~m3"]]);
      assert.equal((await counted(rig)).all.get("zpopmin"), 1);
      assert.deepEqual(await ready(), before.slice(6));
      // A call that says it wants more than its receive ops take puts the rest back, in place.
      await send(["m5", "m6"]);
      const rest = await ready();
      assert.deepEqual(await call(5, 1), [["~m4"]]);
      assert.deepEqual(await ready(), rest.slice(2));
      assert.deepEqual(await call(1, 1, 1, 1), [["~m5"], ["~m6"], []]);
      assert.deepEqual(await ready(), []);
    } finally {
      await close();
    }
  });
});
