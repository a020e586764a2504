import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memory } from "../adapters/memory/mod.ts";
import { qstashReceiver } from "../adapters/qstash/mod.ts";
import { decodeEnvelope, EnvelopeError, encodeEnvelope, type Envelope, processDelivery } from "../backend.ts";
import {
  chain,
  chord,
  createApp,
  ExpiredError,
  group,
  manualClock,
  type RunRecord,
  TaskFailedError,
} from "../mod.ts";
import { signQStashDelivery } from "../dev/mod.ts";
import { createRequestHandler } from "../src/http/mod.ts";

const START = Date.UTC(2030, 0, 1);

function setup() {
  const clock = manualClock(START);
  const backend = memory({ clock });
  const app = createApp({ broker: backend, store: backend, clock, random: () => 0.5 });
  return { clock, backend, app };
}

function envelope(over: Partial<Envelope> = {}): Envelope {
  return {
    v: 1,
    id: "r1",
    task: "t",
    queue: "default",
    priority: 0,
    attempt: 1,
    enqueuedAt: START,
    input: null,
    ...over,
  };
}

describe("expiry", () => {
  it("validates expiresAt and expiresInMs at enqueue and at definition, naming the option", async () => {
    const { app } = setup();
    const t = app.task({ name: "t", run: () => 1 });
    await assert.rejects(t.enqueue(null, { expiresAt: START + 1, expiresInMs: 1 }), {
      name: "TypeError",
      message: "enqueue: give expiresAt or expiresInMs, not both",
    });
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, "10" as unknown as number]) {
      await assert.rejects(t.enqueue(null, { expiresInMs: bad }), {
        name: "RangeError",
        message: `enqueue: expiresInMs must be a positive number of ms, got ${String(bad)}`,
      });
    }
    await assert.rejects(t.enqueue(null, { expiresAt: new Date("nope") }), {
      name: "RangeError",
      message: /^enqueue: expiresAt must be a valid Date or epoch ms, got Invalid Date/,
    });
    await assert.rejects(t.enqueue(null, { expiresAt: "tomorrow" as unknown as number }), RangeError);
    await assert.rejects(t.enqueueMany([null], { expiresInMs: -5 }), RangeError);
    assert.throws(() => app.task({ name: "u", expiresInMs: 0, run: () => 1 }), {
      name: "RangeError",
      message: 'task "u": expiresInMs must be a positive number of ms, got 0',
    });
    assert.throws(
      () => app.task({ name: "w", deadLetterExpired: "yes" as unknown as boolean, run: () => 1 }),
      { name: "TypeError", message: 'task "w": deadLetterExpired must be a boolean, got "yes"' },
    );
    assert.equal((await app.deadLetters()).length, 0, "nothing was sent");
  });

  it("takes the enqueue's expiry over the task's default, counted from the enqueue", async () => {
    const { app, clock } = setup();
    const t = app.task({ name: "t", expiresInMs: 60_000, run: () => 1 });
    const plain = app.task({ name: "plain", run: () => 1 });
    const byDefault = await t.enqueue(null);
    const longer = await t.enqueue(null, { expiresInMs: 600_000 });
    const at = await t.enqueue(null, { expiresAt: new Date(START + 5_000) });
    const delayed = await t.enqueue(null, { delayMs: 10_000 });
    const never = await plain.enqueue(null);
    assert.equal(t.options.expiresInMs, 60_000);
    assert.equal((await byDefault.status())?.expiresAt, START + 60_000);
    assert.equal((await longer.status())?.expiresAt, START + 600_000);
    assert.equal((await at.status())?.expiresAt, START + 5_000);
    assert.equal(
      (await delayed.status())?.expiresAt,
      START + 60_000,
      "counted from the enqueue, not the delay",
    );
    assert.equal((await never.status())?.expiresAt, undefined);
    clock.advance(10_000);
    await app.drain();
    assert.equal((await at.status())?.state, "expired");
    for (const run of [byDefault, longer, delayed, never])
      assert.equal((await run.status())?.state, "succeeded");
  });

  it("expires a run picked up at its expiry, and runs one picked up a millisecond before", async () => {
    const { app, clock } = setup();
    let calls = 0;
    const t = app.task({ name: "t", run: () => ++calls });
    const early = await t.enqueue(null, { expiresInMs: 1_000 });
    clock.advance(999);
    await app.drain();
    assert.equal(await early.result(), 1);
    const onTime = await t.enqueue(null, { expiresInMs: 1_000 });
    clock.advance(1_000);
    await app.drain();
    assert.equal((await onTime.status())?.state, "expired");
    assert.equal(calls, 1);
  });

  it("expires in eager mode too, where enqueue resolves with the run ended", async () => {
    const clock = manualClock(START);
    const app = createApp({ broker: memory({ eager: true, propagate: true, clock }), clock });
    let calls = 0;
    const t = app.task({ name: "t", run: () => ++calls });
    const run = await t.enqueue(null, { expiresAt: START - 1 });
    assert.equal((await run.status())?.state, "expired");
    await assert.rejects(run.result(), ExpiredError);
    assert.equal(await (await t.enqueue(null, { expiresInMs: 1 })).result(), 1);
    assert.equal(calls, 1);
  });

  it("fails a chain whose step expired, as a failed step does, and runs nothing after it", async () => {
    const { app, clock } = setup();
    const ran: string[] = [];
    const step = (name: string) => (n: number) => {
      ran.push(name);
      return n + 1;
    };
    const first = app.task({ name: "first", run: step("first") });
    const second = app.task({ name: "second", expiresInMs: 1_000, run: step("second") });
    const third = app.task({ name: "third", run: step("third") });
    const run = await chain(first.with(1), second.with(), third.with()).enqueue();
    // The first step runs and enqueues the second, which expires 1 s later.
    const [step1] = await app.broker.receive!({ queues: ["default"], max: 1, leaseMs: 60_000, waitMs: 0 });
    assert.equal((await processDelivery(app, step1!)).kind, "succeeded");
    clock.advance(1_000);
    await app.drain();
    assert.deepEqual(ran, ["first"]);
    const record = (await run.status()) as RunRecord;
    assert.equal(record.state, "failed");
    assert.equal(record.error?.name, "ExpiredError");
    assert.match(
      record.error?.message ?? "",
      /^step 2 \(second\) failed: run .* expired at .* before it started$/,
    );
    await assert.rejects(run.result(), (error: unknown) => {
      assert.ok(error instanceof TaskFailedError);
      assert.equal(error.errorName, "ExpiredError");
      return true;
    });
  });

  it("fails a chord whose member expired: its callback does not run", async () => {
    const { app, clock } = setup();
    let callbacks = 0;
    const member = app.task({ name: "member", run: (n: number) => n });
    const sum = app.task({
      name: "sum",
      run: (ns: number[]) => {
        callbacks++;
        return ns.length;
      },
    });
    const run = await chord(group([member.with(1), member.with(2)]), sum.with()).enqueue();
    // Expire one member before it runs: its envelope's expiry is in the past.
    const [d1, d2] = await app.broker.receive!({ queues: ["default"], max: 2, leaseMs: 60_000, waitMs: 0 });
    assert.ok(d1 && d2);
    const stale = { ...decodeEnvelope(d2.body), expiresAt: START - 1 };
    await processDelivery(app, d1);
    assert.equal((await processDelivery(app, { ...d2, body: encodeEnvelope(stale) })).kind, "expired");
    clock.advance(1);
    await app.drain();
    assert.equal(callbacks, 0);
    const record = await run.status();
    assert.equal(record?.state, "failed");
    assert.match(record?.error?.message ?? "", /chord header failed, callback not run: .*ExpiredError/);
  });

  it("ends an expired push delivery (no lease) expired, and defers a copy of a run another copy runs", async () => {
    const { app } = setup();
    let calls = 0;
    app.task({ name: "t", run: () => ++calls });
    const body = encodeEnvelope(envelope({ id: "push-1", expiresAt: START - 1 }));
    const outcome = await processDelivery(app, {
      id: "push-1",
      queue: "default",
      body,
      receipt: "m1",
      deliveries: 1,
    });
    assert.deepEqual(outcome, { kind: "expired", id: "push-1", expiresAt: START - 1 });
    const record = await app.getRun("push-1").status();
    assert.equal(record?.state, "expired", "created from the delivery when missing");
    assert.equal(record?.task, "t");

    // Another copy started before the expiry and is running: this copy neither runs nor clobbers it.
    await app.store.updateRun(
      "push-2",
      {
        id: "push-2",
        task: "t",
        queue: "default",
        state: "active",
        attempt: 1,
        maxAttempts: 3,
        enqueuedAt: START,
        updatedAt: START,
        startedAt: START,
      },
      { ttlMs: 60_000 },
    );
    const copy = encodeEnvelope(envelope({ id: "push-2", expiresAt: START - 1 }));
    const deferred = await processDelivery(app, {
      id: "push-2",
      queue: "default",
      body: copy,
      receipt: "m2",
      deliveries: 1,
    });
    assert.equal(deferred.kind, "deferred");
    assert.equal((await app.getRun("push-2").status())?.state, "active");
    assert.equal(calls, 0);
  });

  it("answers a signed QStash push of an expired run 200, runs nothing and dead-letters nothing", async () => {
    const url = "https://tasks.example.com/qstash";
    const keys = { currentSigningKey: "sig_current", nextSigningKey: "sig_next" };
    const app = createApp();
    let calls = 0;
    app.task({ name: "t", run: () => ++calls });
    const handle = createRequestHandler(app, { push: qstashReceiver({ ...keys, url }) });
    const expiresAt = Date.now() - 1;
    const body = encodeEnvelope(envelope({ id: "q1", enqueuedAt: Date.now(), expiresAt }));
    const signature = await signQStashDelivery({ signingKey: keys.currentSigningKey, url, body });
    const res = await handle(
      new Request(url, {
        method: "POST",
        body,
        headers: { "upstash-signature": signature, "upstash-message-id": "msg_1" },
      }),
    );
    assert.equal(res.status, 200, "QStash must not deliver it again");
    assert.deepEqual(await res.json(), { outcome: "expired", id: "q1", expiresAt });
    assert.equal(calls, 0);
    assert.equal((await app.getRun("q1").status())?.state, "expired");
    assert.deepEqual(await app.deadLetters(), []);
  });

  it("takes expiresAt and expiresInMs on POST /runs", async () => {
    const { app } = setup();
    app.task({ name: "t", run: () => 1 });
    const handler = createRequestHandler(app, { token: "tok" });
    const post = (body: unknown) =>
      handler(
        new Request("http://x/runs", {
          method: "POST",
          headers: { authorization: "Bearer tok" },
          body: JSON.stringify(body),
        }),
      );
    const inMs = await post({ task: "t", input: null, expiresInMs: 5_000 });
    assert.equal(inMs.status, 202);
    const { id } = (await inMs.json()) as { id: string };
    assert.equal((await app.getRun(id).status())?.expiresAt, START + 5_000);
    const iso = await post({ task: "t", input: null, expiresAt: new Date(START + 7_000).toISOString() });
    const { id: id2 } = (await iso.json()) as { id: string };
    assert.equal((await app.getRun(id2).status())?.expiresAt, START + 7_000);
    assert.equal((await post({ task: "t", input: null, expiresInMs: 0 })).status, 400);
    assert.equal((await post({ task: "t", input: null, expiresInMs: 1, expiresAt: START })).status, 400);
  });

  it("decodes envelopes written before expiry existed, and rejects a malformed expiry", () => {
    const old = JSON.stringify(envelope());
    assert.equal(decodeEnvelope(old).expiresAt, undefined);
    assert.equal(decodeEnvelope(encodeEnvelope(envelope({ expiresAt: 42 }))).expiresAt, 42);
    assert.throws(
      () => decodeEnvelope(JSON.stringify({ ...envelope(), expiresAt: "soon" })),
      (error: unknown) => error instanceof EnvelopeError && /at expiresAt/.test(error.message),
    );
  });
});
