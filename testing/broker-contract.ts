/**
 * The behaviour every pull broker + store must have, as one suite run against each backend
 * (memory, Redis over TCP, Redis over REST) so adapters cannot drift apart.
 *
 * Time: a backend with a manual clock gets its time moved by `clock.advance`; a backend on real
 * time (Redis) gets small real delays, and the tests wait for the time to pass or poll for a
 * condition with a deadline — never a bare sleep standing in for a condition.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createApp, NonRetryableError } from "../mod.ts";
import { debounceContract } from "./_debounce-contract.ts";
import { breakerContract } from "./_breaker-contract.ts";
import { type ContractSubject, DEADLINE_MS, dead, type Env, env, ids, msg, record } from "./_env.ts";
import { limitsContract } from "./_limits-contract.ts";
import { expiryContract } from "./_expiry-contract.ts";
import { historyContract } from "./_history-contract.ts";
import { lockContract } from "./_lock-contract.ts";
import { opsStoreContract } from "./_ops-store-contract.ts";
import { queueOpsContract } from "./_queue-ops-contract.ts";

export type { ContractClock, ContractSubject } from "./_env.ts";

/**
 * Registers a `describe(name)` block with the broker and store contract tests. `make` builds a
 * fresh, empty backend for each test.
 *
 * @example
 * ```ts
 * brokerContract("memory", async () => {
 *   const clock = manualClock(Date.UTC(2030, 0, 1));
 *   return { backend: memory({ clock }), clock, close: async () => {} };
 * });
 * ```
 */
export function brokerContract(name: string, make: () => Promise<ContractSubject>): void {
  const test = (title: string, body: (e: Env) => Promise<void>) =>
    it(title, { timeout: 30_000 }, async () => {
      const subject = await make();
      try {
        await body(env(subject));
      } finally {
        await subject.close();
      }
    });

  describe(name, () => {
    queueOpsContract(test);
    opsStoreContract(test);
    limitsContract(test);
    expiryContract(test);
    breakerContract(test);
    lockContract(test);
    debounceContract(test);
    historyContract(test);
    describe("broker", () => {
      test("delivers a sent message with its body intact and forgets it after ack", async (e) => {
        const m = msg("a");
        await e.b.send([m]);
        const [d, ...rest] = await e.receive(["q"], { leaseMs: 100 });
        assert.equal(rest.length, 0);
        assert.ok(d);
        assert.deepEqual(
          { id: d.id, queue: d.queue, body: d.body, deliveries: d.deliveries },
          {
            id: "a",
            queue: "q",
            body: m.body,
            deliveries: 1,
          },
        );
        assert.equal(typeof d.receipt, "string");
        await e.b.ack!([d]);
        await e.advance(150);
        assert.deepEqual(await e.receive(["q"]), [], "an acked message does not come back after its lease");
      });

      test("hands out higher priorities first and keeps FIFO within a priority", async (e) => {
        await e.b.send([msg("a", "q", 0), msg("b", "q", 5), msg("c", "q", 5), msg("d", "q", 9)]);
        await e.b.send([msg("e", "q", 0), msg("f", "q", 5)]);
        assert.deepEqual(ids(await e.receive(["q"])), ["d", "b", "c", "f", "a", "e"]);
      });

      test("serves queues in the given order and never more than max", async (e) => {
        await e.b.send([msg("a1", "qa"), msg("a2", "qa"), msg("b1", "qb"), msg("b2", "qb")]);
        assert.deepEqual(ids(await e.receive(["qb", "qa"], { max: 3 })), ["b1", "b2", "a1"]);
        assert.deepEqual(ids(await e.receive(["qb", "qa"], { max: 3 })), ["a2"]);
        await e.b.send([msg("c1", "qc"), msg("c2", "qc"), msg("c3", "qc")]);
        assert.deepEqual(ids(await e.receive(["qc"], { max: 1 })), ["c1"]);
        assert.deepEqual(ids(await e.receive(["qc"], { max: 1 })), ["c2"]);
      });

      test("does not deliver a delayed message before notBefore, and delivers it after", async (e) => {
        const notBefore = e.now() + 400;
        await e.b.send([msg("later", "q", 0, notBefore), msg("now")]);
        assert.deepEqual(ids(await e.receive(["q"], { max: 1 })), ["now"]);
        const got = await e.withheldUntil(notBefore, () => e.receive(["q"]), "the delayed message");
        assert.deepEqual(ids(got), ["later"]);
      });

      test("redelivers a message whose lease expired, counting deliveries", async (e) => {
        await e.b.send([msg("a")]);
        const leasedAt = e.now();
        const [first] = await e.receive(["q"], { leaseMs: 400 });
        assert.equal(first?.deliveries, 1);
        const [second] = await e.withheldUntil(
          leasedAt + 400,
          () => e.receive(["q"], { leaseMs: 30_000 }),
          "the redelivery",
        );
        assert.equal(second?.id, "a");
        assert.equal(second?.deliveries, 2);
        assert.notEqual(second?.receipt, first?.receipt);
      });

      test("ignores ack, renew and release with a stale receipt", async (e) => {
        await e.b.send([msg("a")]);
        const [stale] = await e.receive(["q"], { leaseMs: 100 });
        await e.advance(100);
        const [current] = await e.eventually(
          () => e.receive(["q"], { leaseMs: 30_000 }),
          (ds) => ds.length > 0,
          "the redelivery",
        );
        assert.ok(stale && current);
        await e.b.ack!([stale]);
        await e.b.release!([stale]);
        await e.b.renew!([stale], 60_000);
        assert.deepEqual(await e.receive(["q"]), [], "a stale release must not return it");
        await e.b.release!([current]);
        const [again] = await e.receive(["q"]);
        assert.equal(again?.id, "a", "a stale ack must not remove it");
        assert.equal(again?.deliveries, 3);
      });

      test("keeps a renewed lease invisible past its first expiry", async (e) => {
        await e.b.send([msg("a")]);
        const [d] = await e.receive(["q"], { leaseMs: 100 });
        assert.ok(d);
        await e.b.renew!([d], 30_000);
        await e.advance(200);
        assert.deepEqual(await e.receive(["q"]), []);
        await e.b.ack!([d]);
      });

      test("release returns a delivery to its queue at once, ahead of the others", async (e) => {
        await e.b.send([msg("a"), msg("b")]);
        const [a] = await e.receive(["q"], { max: 1 });
        assert.equal(a?.id, "a");
        await e.b.release!([a!]);
        const got = await e.receive(["q"]);
        assert.deepEqual(ids(got), ["a", "b"]);
        assert.equal(got[0]?.deliveries, 2);
      });

      test("cancel removes a message that was not delivered yet", async (e) => {
        await e.b.send([msg("a"), msg("b", "q", 0, e.now() + 100), msg("c")]);
        assert.equal(await e.b.cancel!("a", "q"), true);
        assert.equal(await e.b.cancel!("b", "q"), true);
        assert.equal(await e.b.cancel!("a", "q"), false);
        assert.equal(await e.b.cancel!("nope", "q"), false);
        const [c] = await e.receive(["q"]);
        assert.equal(c?.id, "c");
        assert.equal(await e.b.cancel!("c", "q"), false, "a leased message is not cancelled");
        await e.advance(150);
        assert.deepEqual(await e.receive(["q"]), []);
      });

      test("a waiting receive wakes up on send", async (e) => {
        const started = Date.now();
        const waiting = e.receive(["w"], { waitMs: 10_000 });
        await e.b.send([msg("x", "w")]);
        assert.deepEqual(ids(await waiting), ["x"]);
        assert.ok(Date.now() - started < 5_000, "woke up well before waitMs");
      });

      test("a waiting receive wakes up when a delayed message comes due", async (e) => {
        await e.b.send([msg("x", "w", 0, e.now() + 200)]);
        const started = Date.now();
        const waiting = e.receive(["w"], { waitMs: 10_000 });
        await e.advance(200);
        assert.deepEqual(ids(await waiting), ["x"]);
        assert.ok(Date.now() - started < 5_000, "woke up well before waitMs");
      });

      test("aborting a waiting receive returns no deliveries", async (e) => {
        const controller = new AbortController();
        const started = Date.now();
        const waiting = e.receive(["w"], { waitMs: 10_000, signal: controller.signal });
        controller.abort();
        assert.deepEqual(await waiting, []);
        assert.ok(Date.now() - started < 5_000);
      });
    });

    describe("store", () => {
      test("creates, merges, guards and replaces run records", async (e) => {
        const created = await e.b.updateRun("r1", record("r1"), { ttlMs: 60_000, onlyIf: ["missing"] });
        assert.deepEqual(created, { applied: true, record: record("r1") });
        assert.deepEqual(await e.b.getRun("r1"), record("r1"));
        assert.deepEqual(await e.b.getRun("r1", "q"), record("r1"));
        assert.equal(await e.b.getRun("nope"), null);

        const merged = await e.b.updateRun(
          "r1",
          { state: "active", progress: { done: [1, 2], ratio: 0.1 + 0.2 } },
          { ttlMs: 60_000, onlyIf: ["queued"], queue: "q" },
        );
        const active = {
          ...record("r1"),
          state: "active" as const,
          progress: { done: [1, 2], ratio: 0.1 + 0.2 },
        };
        assert.deepEqual(merged, { applied: true, record: active });

        const refused = await e.b.updateRun(
          "r1",
          { state: "succeeded" },
          { ttlMs: 60_000, onlyIf: ["queued"] },
        );
        assert.deepEqual(refused, { applied: false, record: active });
        const again = await e.b.updateRun("r1", record("r1"), { ttlMs: 60_000, onlyIf: ["missing"] });
        assert.equal(again.applied, false);

        const replaced = await e.b.updateRun("r1", record("r1", "q", "queued"), {
          ttlMs: 60_000,
          replace: true,
          queue: "q",
        });
        assert.deepEqual(replaced, { applied: true, record: record("r1") });
        assert.deepEqual(await e.b.getRun("r1", "q"), record("r1"));
      });

      test("expires run records after their TTL", async (e) => {
        await e.b.updateRun("r2", record("r2"), { ttlMs: 100, queue: "q" });
        assert.notEqual(await e.b.getRun("r2", "q"), null);
        await e.advance(100);
        await e.eventually(
          () => e.b.getRun("r2", "q"),
          (r) => r === null,
          "the record to expire",
        );
      });

      test("sets if absent, compares and deletes, counts, and expires keys", async (e) => {
        assert.equal(await e.b.setIfAbsent("k", "v1"), null);
        assert.equal(await e.b.setIfAbsent("k", "v2"), "v1");
        assert.equal(await e.b.get("k"), "v1");
        assert.equal(await e.b.compareAndDelete("k", "v2"), false);
        assert.equal(await e.b.compareAndDelete("k", "v1"), true);
        assert.equal(await e.b.get("k"), null);

        await e.b.set("json", '{"a":1}');
        assert.equal(await e.b.get("json"), '{"a":1}', "values come back as the exact strings");
        await e.b.set("num", "42");
        assert.equal(await e.b.get("num"), "42");
        await e.b.delete("num");
        assert.equal(await e.b.get("num"), null);

        assert.equal(await e.b.incr("n"), 1);
        assert.equal(await e.b.incr("n", 5), 6);
        assert.equal(await e.b.incr("n", -2), 4);

        await e.b.set("short", "x", 300);
        assert.equal(await e.b.setIfAbsent("lock", "me", 300), null);
        const createdAt = e.now();
        assert.equal(await e.b.incr("counter", 1, 300), 1);
        const second = await e.b.incr("counter", 1, 300);
        // A slow machine may see the first counter expire before the second call: only check in time.
        if (e.now() - createdAt < 300) assert.equal(second, 2);
        await e.advance(300);
        await e.eventually(
          async () => [await e.b.get("short"), await e.b.get("lock"), await e.b.get("counter")],
          (values) => values.every((v) => v === null),
          "the keys to expire",
        );
        assert.equal(await e.b.setIfAbsent("lock", "you"), null);
        assert.equal(await e.b.incr("counter"), 1);
      });

      test("keeps dead letters, lists them newest first and takes them by id", async (e) => {
        await e.b.addDeadLetter(dead("d1", "qa", 1));
        await e.b.addDeadLetter(dead("d2", "qb", 2));
        await e.b.addDeadLetter(dead("d3", "qa", 3));
        assert.deepEqual(
          (await e.b.listDeadLetters()).map((d) => d.id),
          ["d3", "d2", "d1"],
        );
        assert.deepEqual(
          (await e.b.listDeadLetters({ limit: 2 })).map((d) => d.id),
          ["d3", "d2"],
        );
        assert.deepEqual(await e.b.takeDeadLetter("d2"), dead("d2", "qb", 2));
        assert.equal(await e.b.takeDeadLetter("d2"), null);
        assert.deepEqual(
          (await e.b.listDeadLetters()).map((d) => d.id),
          ["d3", "d1"],
        );
      });

      test("deletes a dead letter by id and purges them all, when the store can", async (e) => {
        if (e.b.deleteDeadLetter === undefined || e.b.purgeDeadLetters === undefined) return;
        await e.b.addDeadLetter(dead("d1", "qa", 1));
        await e.b.addDeadLetter(dead("d2", "qb", 2));
        await e.b.addDeadLetter(dead("d3", "qa", 3));
        assert.equal(await e.b.deleteDeadLetter("d2"), true);
        assert.equal(await e.b.deleteDeadLetter("d2"), false);
        assert.deepEqual(
          (await e.b.listDeadLetters()).map((d) => d.id),
          ["d3", "d1"],
        );
        assert.equal(await e.b.purgeDeadLetters(), 2);
        assert.deepEqual(await e.b.listDeadLetters(), []);
        assert.equal(await e.b.purgeDeadLetters(), 0);
      });
    });

    describe("ledger through an app", () => {
      const app = (e: Env) =>
        createApp({ broker: e.b, store: e.b, ...(e.clock === undefined ? {} : { clock: e.clock }) });

      test("runs an enqueued task to success and keeps its result", async (e) => {
        const a = app(e);
        const add = a.task({ name: "add", run: (input: { x: number; y: number }) => input.x + input.y });
        const run = await add.enqueue({ x: 2, y: 3 });
        assert.equal((await run.status())?.state, "queued");
        assert.equal(await a.drain(), 1);
        const status = await run.status();
        assert.equal(status?.state, "succeeded");
        assert.equal(status?.result, 5);
        assert.equal(await run.result(), 5);
      });

      test("an idempotent enqueue returns the same run and sends one message", async (e) => {
        const a = app(e);
        let runs = 0;
        const once = a.task({
          name: "once",
          idempotencyKey: (input) => (input as { k: string }).k,
          run: () => ++runs,
        });
        const first = await once.enqueue({ k: "same" });
        const second = await once.enqueue({ k: "same" });
        const batch = await once.enqueueMany([{ k: "b" }, { k: "b" }]);
        assert.equal(second.id, first.id);
        assert.equal(batch[1]?.id, batch[0]?.id);
        assert.equal(await a.drain(), 2);
        assert.equal(runs, 2);
      });

      test("scopes idempotency keys per task and queue", async (e) => {
        const a = app(e);
        const ran: string[] = [];
        const keyed = (name: string) =>
          a.task({
            name,
            idempotencyKey: (input) => (input as { k: string }).k,
            run: (input: { k: string }, ctx) => {
              ran.push(`${name}@${ctx.id}`);
              return `${name}:${input.k}`;
            },
          });
        const alpha = keyed("alpha");
        const beta = keyed("beta");
        const first = await alpha.enqueue({ k: "same" });
        // Another task with the same key is another run, with its own result.
        const other = await beta.enqueue({ k: "same" });
        assert.notEqual(other.id, first.id);
        // The same task on another queue (an override at enqueue) is another run too.
        const elsewhere = await alpha.enqueue({ k: "same" }, { queue: "elsewhere" });
        assert.notEqual(elsewhere.id, first.id);
        assert.notEqual(elsewhere.id, other.id);
        // The same task, key and queue is the same run.
        assert.equal((await alpha.enqueue({ k: "same" })).id, first.id);
        assert.equal((await alpha.enqueue({ k: "same" }, { queue: "elsewhere" })).id, elsewhere.id);
        assert.equal(await a.drain({ queues: ["default", "elsewhere"] }), 3);
        assert.equal(ran.length, 3);
        assert.equal(await first.result(), "alpha:same");
        assert.equal(await other.result(), "beta:same");
        assert.equal(await elsewhere.result(), "alpha:same");
        assert.equal((await other.status())?.task, "beta");
      });

      test("retries a failed attempt after its backoff and then succeeds", async (e) => {
        const a = app(e);
        let attempts = 0;
        const flaky = a.task({
          name: "flaky",
          retry: { maxAttempts: 3, backoff: "fixed", baseMs: 500, jitter: "none" },
          run: () => {
            if (++attempts === 1) throw new Error("first try fails");
            return "ok";
          },
        });
        const run = await flaky.enqueue(undefined);
        assert.equal(await a.drain(), 1);
        const retrying = await run.status();
        assert.equal(retrying?.state, "retrying");
        assert.equal(retrying?.errors?.[0]?.message, "first try fails");
        await e.advance(500);
        await e.eventually(
          async () => {
            await a.drain();
            return (await run.status())?.state;
          },
          (state) => state === "succeeded",
          "the retry to succeed",
        );
        assert.equal(attempts, 2);
        assert.equal((await run.status())?.attempt, 2);
      });

      test("dead-letters a failed run with its reason and replays it", async (e) => {
        const a = app(e);
        let calls = 0;
        const picky = a.task({
          name: "picky",
          run: () => {
            if (++calls === 1) throw new NonRetryableError("not today");
            return "replayed";
          },
        });
        const run = await picky.enqueue({ n: 1 });
        await a.drain();
        assert.equal((await run.status())?.state, "failed");
        const [entry, ...more] = await a.deadLetters();
        assert.equal(more.length, 0);
        assert.equal(entry?.id, run.id);
        assert.match(entry?.reason ?? "", /non-retryable error: NonRetryableError: not today/);
        await a.replay(run.id);
        assert.deepEqual(await a.deadLetters(), []);
        const fresh = await run.status();
        assert.equal(fresh?.state, "queued");
        assert.equal(fresh?.error, undefined, "the replayed run starts from a fresh record");
        await a.drain();
        assert.equal(await run.result(), "replayed");
      });

      test("dead-letters an undecodable message with the reason", async (e) => {
        const a = app(e);
        a.task({ name: "noop", run: () => null });
        await e.b.send([{ id: "bad", queue: "default", priority: 0, body: "{not json" }]);
        assert.equal(await a.drain(), 1);
        const [entry] = await a.deadLetters();
        assert.equal(entry?.body, "{not json");
        assert.match(entry?.reason ?? "", /EnvelopeError: envelope is not JSON/);
      });

      test("cancels a scheduled run before it is delivered", async (e) => {
        const a = app(e);
        const later = a.task({ name: "later", run: () => "ran" });
        const run = await later.enqueue(null, { delayMs: 100 });
        assert.equal((await run.status())?.state, "scheduled");
        assert.equal(await run.cancel(), true);
        await e.advance(150);
        assert.equal(await a.drain(), 0);
        assert.equal((await run.status())?.state, "cancelled");
      });

      test("a worker runs many tasks concurrently to completion", async (e) => {
        const a = app(e);
        const double = a.task({ name: "double", run: async (n: number) => n * 2 });
        const runs = await double.enqueueMany(Array.from({ length: 30 }, (_, i) => i));
        const worker = a.worker({ concurrency: 5, pollMs: 1_000 }).start();
        try {
          const results = await Promise.all(runs.map((r) => r.result({ timeoutMs: DEADLINE_MS })));
          assert.deepEqual(
            results,
            Array.from({ length: 30 }, (_, i) => i * 2),
          );
        } finally {
          await worker.stop();
        }
      });
    });
  });
}
