import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { qstashReceiver } from "../adapters/qstash/mod.ts";
import { signQStashDelivery } from "../dev/mod.ts";
import { createApp } from "../mod.ts";
import { createRequestHandler } from "../src/http/mod.ts";

const KEYS = { currentSigningKey: "sig_push_current", nextSigningKey: "sig_push_next" };
const URL_ = "https://tasks.example.com/qstash";

function envelope(task: string, input: unknown, id = crypto.randomUUID()) {
  return {
    id,
    body: JSON.stringify({
      v: 1,
      id,
      task,
      queue: "default",
      priority: 0,
      attempt: 1,
      enqueuedAt: Date.now(),
      input,
    }),
  };
}

async function delivery(
  body: string | Uint8Array,
  messageId = `msg_${crypto.randomUUID()}`,
): Promise<Request> {
  const signature = await signQStashDelivery({ signingKey: KEYS.currentSigningKey, url: URL_, body });
  return new Request(URL_, {
    method: "POST",
    body: body as unknown as BodyInit,
    headers: {
      "upstash-signature": signature,
      "upstash-message-id": messageId,
      "content-type": "application/json",
    },
  });
}

function setup() {
  const app = createApp();
  const calls: unknown[] = [];
  app.task({ name: "echo", run: (input) => calls.push(input) });
  const handle = createRequestHandler(app, { push: qstashReceiver({ ...KEYS, url: URL_ }), token: "tok" });
  return { app, calls, handle };
}

describe("push deliveries are verified over the raw bytes", () => {
  it("dead-letters (489) a correctly signed body that starts with a UTF-8 BOM, instead of answering 401", async () => {
    const { app, calls, handle } = setup();
    const { body } = envelope("echo", { n: 1 });
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(body)]);
    const res = await handle(await delivery(bytes));
    assert.equal(res.status, 489);
    assert.equal(res.headers.get("upstash-nonretryable-error"), "true");
    assert.deepEqual(calls, []);
    assert.equal((await app.deadLetters()).length, 1);
  });

  it("dead-letters (489) a correctly signed body that is not valid UTF-8", async () => {
    const { app, calls, handle } = setup();
    const { body } = envelope("echo", { n: "\u00e9" });
    const text = new TextEncoder().encode(body);
    // Replace the two bytes of "é" with a lone continuation byte and a stray 0xff.
    const at = text.indexOf(0xc3);
    const bytes = new Uint8Array([...text.slice(0, at), 0x80, 0xff, ...text.slice(at + 2)]);
    const res = await handle(await delivery(bytes));
    assert.equal(res.status, 489);
    assert.deepEqual(calls, [], "nothing runs with an input the sender did not send");
    const [dead] = await app.deadLetters();
    assert.match(dead?.reason ?? "", /not valid UTF-8/);
  });

  it("still rejects a tampered body with 401", async () => {
    const { calls, handle } = setup();
    const { body } = envelope("echo", { n: 2 });
    const signed = await delivery(body);
    const tampered = new Request(URL_, {
      method: "POST",
      body: body.replace("2", "3"),
      headers: signed.headers,
    });
    assert.equal((await handle(tampered)).status, 401);
    assert.deepEqual(calls, []);
  });
});

describe("push verification needs the public URL", () => {
  it("fails at createHandler without a configured URL, naming the option", () => {
    const app = createApp();
    assert.throws(
      () => createRequestHandler(app, { push: qstashReceiver({ ...KEYS }) }),
      /qstashReceiver needs url: the public URL QStash delivers to/,
    );
  });
});

describe("concurrent duplicate push deliveries of one run", () => {
  it("run it once: copies arriving while it runs are deferred, not run beside it", {
    timeout: 10_000,
  }, async () => {
    const app = createApp();
    let running = 0;
    let ran = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    app.task({
      name: "slow",
      async run() {
        running++;
        ran++;
        await gate;
        running--;
      },
    });
    const handle = createRequestHandler(app, { push: qstashReceiver({ ...KEYS, url: URL_ }) });
    const { body } = envelope("slow", null);
    const answers = [handle(await delivery(body, "msg_1"))];
    // The first copy is running; four more arrive at once.
    while (running === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    for (let i = 2; i <= 5; i++) answers.push(handle(await delivery(body, `msg_${i}`)));
    const later = await Promise.all(answers.slice(1));
    for (const res of later) {
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { outcome: string }).outcome, "deferred");
    }
    release();
    assert.equal((await answers[0]!).status, 200);
    assert.equal(ran, 1);
  });
});

describe("GET /dead-letters?limit=", () => {
  it("accepts decimal integers only", async () => {
    const { handle } = setup();
    const get = (limit: string) =>
      handle(
        new Request(`https://tasks.example.com/dead-letters?limit=${limit}`, {
          headers: { authorization: "Bearer tok" },
        }),
      );
    for (const limit of ["1e3", "0x10", " 5", "5.0", "+5", ""]) {
      assert.equal((await get(encodeURIComponent(limit))).status, 400, JSON.stringify(limit));
    }
    assert.equal((await get("5")).status, 200);
  });
});

describe("a push delivery of a run left active by a dead process", () => {
  it("starts it again once the run's timeout has passed (and defers it before)", async () => {
    const { manualClock } = await import("../mod.ts");
    const { memory } = await import("../adapters/memory/mod.ts");
    const clock = manualClock(Date.now());
    const backend = memory({ clock });
    const app = createApp({ broker: backend, store: backend, clock });
    let ran = 0;
    app.task({ name: "job", timeoutMs: 1_000, run: () => ++ran });
    const handle = createRequestHandler(app, { push: qstashReceiver({ ...KEYS, url: URL_ }) });
    const { id, body } = envelope("job", null);
    // The run's record says active: a copy is running somewhere, or its process died.
    await backend.updateRun(
      id,
      {
        id,
        task: "job",
        queue: "default",
        state: "active",
        attempt: 1,
        maxAttempts: 3,
        enqueuedAt: clock.now(),
        startedAt: clock.now(),
        updatedAt: clock.now(),
      },
      { ttlMs: 60_000 },
    );
    const early = await handle(await delivery(body, "msg_early"));
    assert.equal(((await early.json()) as { outcome: string }).outcome, "deferred");
    assert.equal(ran, 0);
    clock.advance(10_000); // past the timeout and its margin: the copy that held it is gone
    const late = await handle(await delivery(body, "msg_late"));
    assert.equal(((await late.json()) as { outcome: string }).outcome, "succeeded");
    assert.equal(ran, 1);
  });
});
