import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Client } from "@upstash/qstash";
import {
  deduplicationId,
  fromEnv,
  type QStashBroker,
  qstash,
  qstashVerifier,
} from "../adapters/qstash/mod.ts";
import { memory } from "../adapters/memory/mod.ts";
import type { Message } from "../backend.ts";
import { BackendError, createApp, SignatureError } from "../mod.ts";
import { signQStashDelivery, startQStashEmulator, type QStashEmulator } from "../dev/mod.ts";

const TOKEN = "qstash-broker-token";
const CURRENT = "sig_broker_current";
const NEXT = "sig_broker_next";

/** A loopback server: records requests, answers 200 with `{ messageId }` (a destination, or a QStash API). */
interface Recorder {
  url: string;
  requests: { path: string; headers: Record<string, string>; body: string }[];
  close(): Promise<void>;
}

async function recorder(): Promise<Recorder> {
  const requests: Recorder["requests"] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      requests.push({ path: req.url ?? "/", headers, body });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ messageId: `msg_${requests.length}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

function message(id: string, attempt: number, extra: Partial<Message> = {}, meta?: unknown): Message {
  const envelope = {
    v: 1,
    id,
    task: "t",
    queue: "default",
    priority: 0,
    attempt,
    enqueuedAt: 1,
    input: null,
    meta,
  };
  return { id, queue: "default", priority: 0, body: JSON.stringify(envelope), ...extra };
}

describe("qstash broker", () => {
  let emulator: QStashEmulator;
  let destination: Recorder;
  let batches: number[];
  let broker: QStashBroker;

  before(async () => {
    emulator = await startQStashEmulator({ token: TOKEN, currentSigningKey: CURRENT, nextSigningKey: NEXT });
    destination = await recorder();
    batches = [];
    const client = new Client({
      baseUrl: emulator.url,
      token: TOKEN,
      devMode: false,
      enableTelemetry: false,
    });
    const batch = client.batch.bind(client);
    client.batch = (requests) => {
      batches.push(requests.length);
      return batch(requests);
    };
    broker = qstash({ client, url: `${destination.url}/qstash`, retries: 5, batchSize: 2 });
  });
  after(async () => {
    await emulator.close();
    await destination.close();
  });

  it("publishes an envelope with runId:attempt dedup, Upstash-Retries and JSON content type", async () => {
    await broker.send([message("run-a", 2)]);
    await emulator.idle();
    const [sent] = emulator.messages().filter((m) => m.body.includes('"run-a"'));
    assert.equal(sent?.deduplicationId, "run-a:2");
    assert.equal(sent?.maxRetries, 5);
    assert.equal(sent?.headers["content-type"], "application/json");
    assert.equal(sent?.url, `${destination.url}/qstash`);
    assert.equal(sent?.state, "DELIVERED");
    const delivered = destination.requests.find((r) => r.body.includes('"run-a"'));
    assert.ok(delivered?.headers["upstash-signature"], "delivered signed");
  });

  it("never delivers the same attempt twice, while the next attempt goes through", async () => {
    const before = emulator.stats;
    await broker.send([message("run-b", 1)]);
    await broker.send([message("run-b", 1)]);
    await broker.send([message("run-b", 2)]);
    await emulator.idle();
    assert.equal(emulator.stats.published - before.published, 2);
    assert.equal(emulator.stats.deduplicated - before.deduplicated, 1);
  });

  it("turns notBefore into Upstash-Not-Before, rounded up to the second", async () => {
    const notBefore = Date.now() + 3_600_500;
    await broker.send([message("run-c", 1, { notBefore })]);
    const [sent] = emulator.messages().filter((m) => m.body.includes('"run-c"'));
    assert.equal(sent?.notBefore, Math.ceil(notBefore / 1000) * 1000);
    assert.equal(sent?.state, "CREATED", "waiting");
  });

  it("sends many messages through the batch endpoint, batchSize at a time", async () => {
    batches.length = 0;
    await broker.send(["d1", "d2", "d3", "d4", "d5"].map((id) => message(id, 1)));
    assert.deepEqual(batches, [2, 2, 1]);
    const ids = emulator.messages().map((m) => m.deduplicationId);
    for (const id of ["d1", "d2", "d3", "d4", "d5"]) assert.ok(ids.includes(`${id}:1`), id);
  });

  it("wraps QStash errors in BackendError, and pings through the API", async () => {
    await broker.ping();
    const denied = qstash({ token: "wrong", baseUrl: emulator.url, url: `${destination.url}/qstash` });
    await assert.rejects(denied.send([message("run-e", 1)]), (error: unknown) => {
      assert.ok(error instanceof BackendError);
      assert.match(error.message, /QStash publish failed/);
      return true;
    });
    await assert.rejects(denied.ping(), BackendError);
  });

  it("sends QStash flow control when configured, chosen per message", async () => {
    const api = await recorder();
    try {
      const flowing = qstash({
        token: TOKEN,
        baseUrl: api.url,
        url: "https://tasks.example.com/qstash",
        flowControl: (m) =>
          m.queue === "slow" ? { key: "slow", parallelism: 2, rate: 10, period: 60 } : undefined,
      });
      await flowing.send([message("f1", 1, { queue: "slow" })]);
      await flowing.send([message("f2", 1)]);
      const [slow, fast] = api.requests;
      assert.equal(slow?.path, "/v2/publish/https://tasks.example.com/qstash");
      assert.equal(slow?.headers["upstash-flow-control-key"], "slow");
      assert.equal(slow?.headers["upstash-flow-control-value"], "parallelism=2, rate=10, period=60s");
      assert.equal(fast?.headers["upstash-flow-control-key"], undefined);
      assert.equal(fast?.headers["upstash-deduplication-id"], "f2:1");
      assert.equal(fast?.headers["upstash-telemetry-sdk"], undefined, "telemetry off");
    } finally {
      await api.close();
    }
  });

  it("translates a task's rate and concurrency limits into QStash flow control, the concurrency limit's when their keys differ", async () => {
    const api = await recorder();
    try {
      const limited = qstash({ token: TOKEN, baseUrl: api.url, url: "https://tasks.example.com/qstash" });
      const app = createApp({ broker: limited });
      const both = app.task({
        name: "api.call",
        rateLimit: { limit: 30, periodMs: 60_000, key: (i) => (i as { host: string }).host },
        concurrency: { limit: 3, key: (i) => (i as { host: string }).host },
        run: () => 1,
      });
      const rate = app.task({ name: "ping", rateLimit: { limit: 5, periodMs: 500 }, run: () => 1 });
      const split = app.task({
        name: "split",
        rateLimit: "10/s",
        concurrency: { limit: 1, key: (i) => String(i) },
        run: () => 1,
      });
      await both.enqueue({ host: "api.example.com" });
      await rate.enqueue(null);
      const [a, b] = api.requests;
      assert.equal(a?.headers["upstash-flow-control-key"], encodeURIComponent("api.call:api.example.com"));
      assert.equal(a?.headers["upstash-flow-control-value"], "parallelism=3, rate=30, period=60s");
      assert.equal(b?.headers["upstash-flow-control-key"], "ping");
      assert.equal(
        b?.headers["upstash-flow-control-value"],
        "rate=10, period=1s",
        "5 per 500 ms is 10 per second",
      );
      await split.enqueue(7);
      const c = api.requests[2];
      // QStash takes one key per message: the concurrency limit's; the handler enforces the rate.
      assert.equal(c?.headers["upstash-flow-control-key"], "split%3A7");
      assert.equal(c?.headers["upstash-flow-control-value"], "parallelism=1");
      assert.equal(api.requests.length, 3);
    } finally {
      await api.close();
    }
  });

  it("is a push broker: an app on it has no pull worker to drain", async () => {
    const app = createApp({ broker });
    await assert.rejects(app.drain(), /pull broker/);
  });
});

describe("deduplicationId", () => {
  it("is runId:attempt, with replay and deferral counters when a producer sets them", () => {
    assert.equal(deduplicationId(message("r", 3)), "r:3");
    assert.equal(deduplicationId(message("r", 1, {}, { replays: 2 })), "r:1:r2");
    assert.equal(deduplicationId(message("r", 1, {}, { deferrals: 1 })), "r:1:d1");
    assert.throws(() => deduplicationId({ id: "x", queue: "q", priority: 0, body: "nope" }), /JSON envelope/);
    assert.throws(
      () => deduplicationId({ id: "x", queue: "q", priority: 0, body: "{}" }),
      /no valid attempt/,
    );
  });
});

describe("qstash options", () => {
  it("validates up front, naming the option and the value", () => {
    const url = "https://tasks.example.com/qstash";
    assert.throws(
      () => qstash({ token: "t", url: "/relative" }),
      /url must be an absolute http\(s\) URL, got "\/relative"/,
    );
    assert.throws(() => qstash({ url }), /token must be a non-empty string, got undefined/);
    assert.throws(
      () => qstash({ token: "t", url, retries: -1 }),
      /retries must be a non-negative integer, got -1/,
    );
    assert.throws(
      () => qstash({ token: "t", url, batchSize: 0 }),
      /batchSize must be a positive integer, got 0/,
    );
    assert.throws(() => qstash({ token: "t", url, currentSigningKey: "a" }), /must be given together/);
    assert.throws(() => qstash({ token: "t", url, baseUrl: "nope" }), /baseUrl must be an absolute URL/);
    assert.throws(() => qstash({ token: "t", url, store: {} as never }), /store must be a celeriac store/);
  });

  it("records runs in the store it is given: an app on it needs no store of its own", async () => {
    const url = "https://tasks.example.com/qstash";
    const shared = memory();
    const app = createApp({ broker: qstash({ token: "t", url, store: shared }) });
    assert.equal(app.store, shared);
    const own = memory();
    assert.equal(createApp({ broker: qstash({ token: "t", url, store: shared }), store: own }).store, own);
    await shared.updateRun("r1", { id: "r1", state: "succeeded", result: 7 }, { ttlMs: 60_000 });
    assert.equal((await app.getRun("r1").status())?.result, 7);
  });

  it("fromEnv reads the QSTASH_* variables explicitly", () => {
    const env = {
      QSTASH_TOKEN: "tok",
      QSTASH_URL: "http://127.0.0.1:1234",
      QSTASH_CURRENT_SIGNING_KEY: "cur",
      QSTASH_NEXT_SIGNING_KEY: "nxt",
      CELERIAC_DELIVERY_URL: "https://tasks.example.com/qstash",
      OTHER_BINDING: { a: 1 },
    };
    const broker = fromEnv(env);
    assert.equal(broker.url, "https://tasks.example.com/qstash");
    assert.deepEqual(broker.signingKeys, { currentSigningKey: "cur", nextSigningKey: "nxt" });
    assert.equal(fromEnv(env, { url: "https://other.example/q" }).url, "https://other.example/q");
    assert.throws(() => fromEnv({ QSTASH_TOKEN: "t" }), /CELERIAC_DELIVERY_URL/);
    assert.throws(() => fromEnv({ CELERIAC_DELIVERY_URL: "https://x.example/q" }), /QSTASH_TOKEN is missing/);
    assert.throws(() => fromEnv({ ...env, QSTASH_TOKEN: 42 }), /QSTASH_TOKEN must be a string, got number/);
  });
});

describe("qstashVerifier", () => {
  const url = "https://tasks.example.com/qstash";
  const verify = qstashVerifier({ currentSigningKey: CURRENT, nextSigningKey: NEXT });
  const sign = (body: string, extra: Partial<Parameters<typeof signQStashDelivery>[0]> = {}) =>
    signQStashDelivery({ signingKey: CURRENT, url, body, ...extra });

  it("accepts a delivery signed with the current or the next key", async () => {
    await verify({ signature: await sign("{}"), body: "{}", url });
    await verify({ signature: await sign("{}", { signingKey: NEXT }), body: "{}", url });
  });

  it("rejects with SignatureError: forged, tampered, expired, another URL, missing", async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, () => Promise<void>][] = [
      [
        "forged",
        async () => verify({ signature: await sign("{}", { signingKey: "sig_x" }), body: "{}", url }),
      ],
      ["tampered", async () => verify({ signature: await sign("{}"), body: "{ }", url })],
      [
        "expired",
        async () =>
          verify({
            signature: await sign("{}", { exp: now - 10, now: (now - 400) * 1000 }),
            body: "{}",
            url,
          }),
      ],
      [
        "another URL",
        async () =>
          verify({ signature: await sign("{}", { url: "https://evil.example/qstash" }), body: "{}", url }),
      ],
      [
        "wrong issuer",
        async () => verify({ signature: await sign("{}", { iss: "Someone" }), body: "{}", url }),
      ],
      ["missing", async () => verify({ signature: null, body: "{}", url })],
    ];
    for (const [label, attempt] of cases) {
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof SignatureError, label);
        return true;
      });
    }
  });

  it("validates its keys up front", () => {
    assert.throws(
      () => qstashVerifier({ currentSigningKey: "", nextSigningKey: "n" }),
      /currentSigningKey must be a non-empty string/,
    );
    assert.throws(
      () => qstashVerifier({ currentSigningKey: "c", nextSigningKey: "n", clockToleranceSec: -1 }),
      /clockToleranceSec must be a non-negative number, got -1/,
    );
  });
});
