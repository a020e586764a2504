import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Client, QstashError, Receiver, SignatureError } from "@upstash/qstash";
import { type QStashEmulator, signQStashDelivery, startQStashEmulator } from "../dev/mod.ts";

const TOKEN = "test-token";
const CURRENT = "sig_current_key_for_tests";
const NEXT = "sig_next_key_for_tests";

type Received = { path: string; method: string; headers: Record<string, string>; body: string };
type Reply = { status: number; headers?: Record<string, string>; body?: string };

/** A loopback destination: records every request, answers with scripted replies per path (200 once exhausted). */
const received: Received[] = [];
const scripts = new Map<string, Reply[]>();
let destination: Server;
let destUrl = "";

let clock = Date.now();
const backoffCalls: number[] = [];
let emulator: QStashEmulator;
let client: Client;
const receiver = new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT, devMode: false });

function script(path: string, ...replies: Reply[]): string {
  scripts.set(path, replies);
  return `${destUrl}${path}`;
}
function at(path: string): Received[] {
  return received.filter((r) => r.path === path);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return (server.address() as AddressInfo).port;
}
async function shut(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections?.();
  await closed;
}

before(async () => {
  destination = createServer((req: IncomingMessage, res: ServerResponse) => {
    const decoder = new TextDecoder();
    let body = "";
    req.on("data", (chunk: Uint8Array) => {
      body += decoder.decode(chunk, { stream: true });
    });
    req.on("end", () => {
      body += decoder.decode();
      const path = req.url ?? "/";
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      received.push({ path, method: req.method ?? "", headers, body });
      const reply = scripts.get(path)?.shift() ?? { status: 200, body: "ok" };
      res.writeHead(reply.status, reply.headers ?? {});
      res.end(reply.body ?? "");
    });
  });
  destUrl = `http://127.0.0.1:${await listen(destination)}`;
  emulator = await startQStashEmulator({
    token: TOKEN,
    currentSigningKey: CURRENT,
    nextSigningKey: NEXT,
    now: () => clock,
    backoff: (retried) => {
      backoffCalls.push(retried);
      return 0;
    },
  });
  client = new Client({
    baseUrl: emulator.url,
    token: TOKEN,
    devMode: false,
    enableTelemetry: false,
  });
});

after(async () => {
  await emulator.close();
  await shut(destination);
});

describe("qstash emulator: publishing", () => {
  test("publishJSON delivers a signed POST that the real Receiver verifies", async () => {
    const url = script("/single");
    const res = await client.publishJSON({
      url,
      body: { hello: "world" },
      headers: { "X-Trace": "t1" },
    });
    assert.match(res.messageId, /^msg_/);
    assert.equal(res.url, url);
    await emulator.idle();

    const [got, ...rest] = at("/single");
    assert.ok(got);
    assert.equal(rest.length, 0);
    assert.equal(got.method, "POST");
    assert.equal(got.body, '{"hello":"world"}');
    assert.equal(got.headers["content-type"], "application/json");
    assert.equal(got.headers["x-trace"], "t1");
    assert.equal(got.headers["upstash-message-id"], res.messageId);
    assert.equal(got.headers["upstash-retried"], "0");
    assert.equal(got.headers["upstash-schedule-id"], undefined);
    const signature = got.headers["upstash-signature"] ?? "";
    assert.equal(await receiver.verify({ signature, body: got.body, url }), true);

    const message = emulator.message(res.messageId);
    assert.equal(message?.state, "DELIVERED");
    assert.deepEqual(
      message?.attempts.map((a) => a.status),
      [200],
    );
  });

  test("publish honours Upstash-Method and forwards raw bodies", async () => {
    const url = script("/put");
    await client.publish({
      url,
      body: "plain text",
      method: "PUT",
      headers: { "Content-Type": "text/plain" },
    });
    await emulator.idle();
    const [got] = at("/put");
    assert.equal(got?.method, "PUT");
    assert.equal(got?.body, "plain text");
    assert.equal(got?.headers["content-type"], "text/plain");
  });

  test("batchJSON publishes every entry and answers one result per entry", async () => {
    const a = script("/batch-a");
    const b = script("/batch-b");
    const results = await client.batchJSON([
      { url: a, body: { n: 1 } },
      { url: b, body: { n: 2 }, retries: 0 },
    ]);
    assert.equal(results.length, 2);
    const ids = results.map((r) => r.messageId);
    assert.equal(new Set(ids).size, 2);
    await emulator.idle();
    for (const [path, url, body] of [
      ["/batch-a", a, '{"n":1}'],
      ["/batch-b", b, '{"n":2}'],
    ] as const) {
      const [got] = at(path);
      assert.equal(got?.body, body);
      assert.equal(got?.headers["content-type"], "application/json");
      assert.equal(
        await receiver.verify({ signature: got?.headers["upstash-signature"] ?? "", body, url }),
        true,
      );
    }
    assert.equal(emulator.message(ids[1] ?? "")?.maxRetries, 0);
  });

  test("a wrong token is refused with 401", async () => {
    const bad = new Client({
      baseUrl: emulator.url,
      token: "nope",
      devMode: false,
      enableTelemetry: false,
    });
    const publishedBefore = emulator.stats.published;
    await assert.rejects(
      bad.publishJSON({ url: script("/never"), body: {} }),
      (error: unknown) =>
        error instanceof QstashError && error.status === 401 && /Unauthorized/.test(error.message),
    );
    assert.equal(emulator.stats.published, publishedBefore);
  });
});

describe("qstash emulator: timing (injected clock, no sleeping)", () => {
  test("delay holds a message until the clock reaches it", async () => {
    const { messageId } = await client.publishJSON({ url: script("/delay"), body: {}, delay: 10 });
    await emulator.idle();
    assert.equal(at("/delay").length, 0);
    assert.equal(emulator.message(messageId)?.state, "CREATED");
    const viaApi = await client.messages.get(messageId);
    assert.equal(viaApi.notBefore, clock + 10_000);

    clock += 9_999;
    await emulator.idle();
    assert.equal(at("/delay").length, 0);
    clock += 1;
    await emulator.idle();
    assert.equal(at("/delay").length, 1);
  });

  test("a string delay and notBefore are honoured; flush() delivers early", async () => {
    const { messageId: later } = await client.publishJSON({
      url: script("/delay-5m"),
      body: {},
      delay: "5m",
    });
    const notBefore = Math.floor(clock / 1000) + 3_600;
    const { messageId: absolute } = await client.publishJSON({
      url: script("/not-before"),
      body: {},
      notBefore,
    });
    assert.equal(emulator.message(later)?.nextAttemptAt, clock + 300_000);
    assert.equal(emulator.message(absolute)?.notBefore, notBefore * 1000);
    await emulator.idle();
    assert.equal(at("/delay-5m").length + at("/not-before").length, 0);

    await emulator.flush();
    assert.equal(at("/delay-5m").length, 1);
    assert.equal(at("/not-before").length, 1);
  });

  test("a cancelled message is never delivered and is gone from the API", async () => {
    const { messageId } = await client.publishJSON({ url: script("/cancel"), body: {}, delay: 60 });
    assert.deepEqual(await client.messages.cancel(messageId), { cancelled: 1 });
    await emulator.flush();
    assert.equal(at("/cancel").length, 0);
    assert.equal(emulator.message(messageId)?.state, "CANCELLED");
    await assert.rejects(
      client.messages.get(messageId),
      (e: unknown) => e instanceof QstashError && e.status === 404,
    );
  });
});

describe("qstash emulator: flow control", () => {
  /** A destination that holds every call open until the test lets it answer. */
  async function holding() {
    /** Every call that arrived, in order (answered or still held). */
    const held: { path: string; release: () => void }[] = [];
    let inFlight = 0;
    let most = 0;
    const waiters: { n: number; resolve: () => void }[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on("end", () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        let open = true;
        held.push({
          path: req.url ?? "/",
          release: () => {
            if (!open) return;
            open = false;
            inFlight -= 1;
            res.writeHead(200);
            res.end("ok");
          },
        });
        for (const w of waiters.splice(0))
          if (held.length >= w.n) w.resolve();
          else waiters.push(w);
      });
    });
    const url = `http://127.0.0.1:${await listen(server)}`;
    return {
      url,
      held,
      most: () => most,
      /** Resolves once `n` calls have arrived in all. */
      arrived: (n: number) =>
        held.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })),
      close: () => shut(server),
    };
  }

  test("parallelism holds a key's calls in flight to its limit, and other keys flow past", async () => {
    const dest = await holding();
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const flowControl = { key: "pair", parallelism: 2 };
        ids.push(
          (await client.publishJSON({ url: `${dest.url}/p${i}`, body: { i }, flowControl })).messageId,
        );
      }
      const other = await client.publishJSON({
        url: `${dest.url}/other`,
        body: {},
        flowControl: { key: "other", parallelism: 1 },
      });
      await dest.arrived(3);
      assert.deepEqual(dest.held.map((h) => h.path).sort(), ["/other", "/p0", "/p1"]);
      assert.equal(emulator.message(ids[2]!)?.state, "CREATED", "the third waits for a place");
      assert.deepEqual(emulator.message(ids[0]!)?.flowControl, {
        key: "pair",
        parallelism: 2,
        periodMs: 1_000,
      });
      dest.held.find((h) => h.path === "/p0")!.release();
      await dest.arrived(4);
      assert.equal(dest.held[3]?.path, "/p2", "a place freed: the next in publish order is called");
      // Answered one by one as they come, every call is made in the end.
      for (let n = 1; n <= 6; n++) {
        await dest.arrived(n);
        dest.held[n - 1]!.release();
      }
      await emulator.idle();
      for (const id of [...ids, other.messageId]) {
        assert.equal(emulator.message(id)?.state, "DELIVERED");
        assert.deepEqual(
          emulator.message(id)?.attempts.map((a) => a.retried),
          [0],
          "held back, never retried",
        );
      }
      assert.equal(dest.most(), 3, "two of the pair and the other key, at most");
    } finally {
      for (const h of dest.held) h.release();
      await dest.close();
    }
  });

  test("rate and period hold a key's calls to `rate` per window on the emulator clock", async () => {
    const url = script("/rated");
    const flowControl = { key: "rated", rate: 2, period: "10s" as const };
    for (let i = 0; i < 5; i++) await client.publishJSON({ url, body: { i }, flowControl });
    // The calls of one window go out together, so they may arrive in either order: each window
    // holds the next ones in publish order.
    const arrived = () => at("/rated").map((r) => JSON.parse(r.body).i as number);
    const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
    await emulator.idle();
    assert.deepEqual(sorted(arrived()), [0, 1], "the first window's two");
    clock += 9_999;
    await emulator.idle();
    assert.equal(arrived().length, 2, "the window has not ended");
    clock += 1;
    await emulator.idle();
    assert.deepEqual(sorted(arrived().slice(2)), [2, 3], "the next window's two, in publish order");
    clock += 10_000;
    await emulator.idle();
    assert.deepEqual(arrived().slice(4), [4], "then the last");
  });

  test("an invalid flow-control value is refused with 400", async () => {
    const publish = (headers: Record<string, string>) =>
      fetch(`${emulator.url}/v2/publish/${script("/bad-flow")}`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, ...headers },
        body: "{}",
      });
    for (const headers of [
      { "upstash-flow-control-key": "k", "upstash-flow-control-value": "rate=many" },
      { "upstash-flow-control-key": "k", "upstash-flow-control-value": "period=1s" },
      { "upstash-flow-control-key": "k", "upstash-flow-control-value": "burst=2" },
      { "upstash-flow-control-value": "parallelism=1" },
    ]) {
      const res = await publish(headers);
      assert.equal(res.status, 400, JSON.stringify(headers));
      assert.match(((await res.json()) as { error: string }).error, /Flow-Control/);
    }
  });
});

describe("qstash emulator: deduplication", () => {
  test("the same deduplication id answers the first messageId and publishes once", async () => {
    const url = script("/dedup");
    const first = await client.publishJSON({ url, body: { n: 1 }, deduplicationId: "order-1" });
    const second = await client.publishJSON({ url, body: { n: 2 }, deduplicationId: "order-1" });
    assert.equal(second.messageId, first.messageId);
    assert.equal(second.deduplicated, true);
    assert.equal(first.deduplicated, undefined);
    await emulator.idle();
    assert.equal(at("/dedup").length, 1);
  });

  test("content-based deduplication keys on destination, body and forwarded headers", async () => {
    const url = script("/content-dedup");
    const a = await client.publishJSON({
      url,
      body: { same: true },
      contentBasedDeduplication: true,
    });
    const b = await client.publishJSON({
      url,
      body: { same: true },
      contentBasedDeduplication: true,
    });
    const c = await client.publishJSON({
      url,
      body: { same: false },
      contentBasedDeduplication: true,
    });
    assert.equal(b.messageId, a.messageId);
    assert.notEqual(c.messageId, a.messageId);
    await emulator.idle();
    assert.equal(at("/content-dedup").length, 2);
  });
});

describe("qstash emulator: retries and dead letters", () => {
  test("a 500 is retried with backoff until a 2xx, with Upstash-Retried counting up", async () => {
    backoffCalls.length = 0;
    const url = script("/flaky", { status: 500 }, { status: 502 });
    const { messageId } = await client.publishJSON({ url, body: {}, retries: 3 });
    await emulator.idle();
    assert.deepEqual(
      at("/flaky").map((r) => r.headers["upstash-retried"]),
      ["0", "1", "2"],
    );
    assert.deepEqual(backoffCalls, [0, 1]);
    const message = emulator.message(messageId);
    assert.equal(message?.state, "DELIVERED");
    assert.deepEqual(
      message?.attempts.map((a) => a.status),
      [500, 502, 200],
    );
    for (const got of at("/flaky")) {
      assert.equal(
        await receiver.verify({
          signature: got.headers["upstash-signature"] ?? "",
          body: got.body,
          url,
        }),
        true,
      );
    }
  });

  test("Retry-After takes precedence over backoff", async () => {
    const url = script("/retry-after", { status: 503, headers: { "Retry-After": "30" } });
    const { messageId } = await client.publishJSON({ url, body: {} });
    await emulator.idle();
    const message = emulator.message(messageId);
    assert.equal(message?.state, "RETRY");
    assert.equal(message?.nextAttemptAt, (message?.attempts[0]?.finishedAt ?? 0) + 30_000);
    clock += 29_999;
    await emulator.idle();
    assert.equal(at("/retry-after").length, 1);
    clock += 1;
    await emulator.idle();
    assert.equal(at("/retry-after").length, 2);
    assert.equal(message?.state, "DELIVERED");
  });

  test("an Upstash-Retry-Delay expression replaces the backoff", async () => {
    const url = script("/retry-delay", { status: 500 }, { status: 500 });
    const { messageId } = await client.publishJSON({
      url,
      body: {},
      retryDelay: "1000 * (1 + retried)",
    });
    await emulator.idle();
    const message = emulator.message(messageId);
    assert.equal(message?.nextAttemptAt, (message?.attempts[0]?.finishedAt ?? 0) + 1_000);
    clock += 1_000;
    await emulator.idle();
    assert.equal(message?.nextAttemptAt, (message?.attempts[1]?.finishedAt ?? 0) + 2_000);
    clock += 2_000;
    await emulator.idle();
    assert.equal(message?.state, "DELIVERED");
  });

  test("489 with Upstash-NonRetryable-Error goes straight to the DLQ", async () => {
    const url = script("/fatal", {
      status: 489,
      headers: { "Upstash-NonRetryable-Error": "true" },
      body: "bad payload",
    });
    const { messageId } = await client.publishJSON({ url, body: {}, retries: 3 });
    await emulator.idle();
    assert.equal(at("/fatal").length, 1);
    const message = emulator.message(messageId);
    assert.equal(message?.state, "FAILED");
    assert.ok(emulator.dlq().some((m) => m.messageId === messageId));
    const { messages } = await client.dlq.listMessages();
    const listed = messages.find((m) => m.messageId === messageId);
    assert.equal(listed?.responseStatus, 489);
    assert.equal(listed?.responseBody, "bad payload");
    assert.equal(listed?.url, url);
  });

  test("489 without the header is an ordinary retryable failure", async () => {
    const url = script("/489-plain", { status: 489 });
    const { messageId } = await client.publishJSON({ url, body: {} });
    await emulator.idle();
    assert.deepEqual(
      emulator.message(messageId)?.attempts.map((a) => a.status),
      [489, 200],
    );
  });

  test("exhausted retries dead-letter the message; the failure callback is told", async () => {
    const url = script("/down", { status: 500 }, { status: 500 }, { status: 500 });
    const failureCallback = script("/failure-callback");
    const { messageId } = await client.publishJSON({
      url,
      body: { job: 1 },
      retries: 2,
      failureCallback,
    });
    await emulator.idle();
    const message = emulator.message(messageId);
    assert.equal(message?.attempts.length, 3);
    assert.equal(message?.state, "FAILED");
    const dlqId = message?.dlqId ?? "";
    assert.ok(dlqId);

    const [callback] = at("/failure-callback");
    const payload = JSON.parse(callback?.body ?? "{}");
    assert.equal(payload.sourceMessageId, messageId);
    assert.equal(payload.status, 500);
    assert.equal(payload.dlqId, dlqId);
    assert.equal(atob(payload.sourceBody), '{"job":1}');
    const signature = callback?.headers["upstash-signature"] ?? "";
    assert.equal(
      await receiver.verify({ signature, body: callback?.body ?? "", url: failureCallback }),
      true,
    );

    await client.dlq.delete(dlqId);
    assert.ok(!emulator.dlq().some((m) => m.messageId === messageId));
  });

  test("network errors are retried and recorded", async () => {
    const closed = createServer();
    const port = await listen(closed);
    await shut(closed);
    const { messageId } = await client.publishJSON({
      url: `http://127.0.0.1:${port}/gone`,
      body: {},
      retries: 1,
    });
    await emulator.idle();
    const message = emulator.message(messageId);
    assert.equal(message?.state, "FAILED");
    assert.equal(message?.attempts.length, 2);
    assert.ok(message?.attempts.every((a) => a.status === undefined && typeof a.error === "string"));
  });

  test("a success callback receives the destination's response", async () => {
    const url = script("/with-callback", { status: 200, body: "result-42" });
    const callback = script("/callback");
    const { messageId } = await client.publishJSON({ url, body: {}, callback });
    await emulator.idle();
    const payload = JSON.parse(at("/callback")[0]?.body ?? "{}");
    assert.equal(payload.sourceMessageId, messageId);
    assert.equal(payload.status, 200);
    assert.equal(atob(payload.body), "result-42");
  });

  test("default backoff is QStash's min(86400, e^(2.5n)) seconds", async () => {
    let fake = Date.now();
    const plain = await startQStashEmulator({
      token: TOKEN,
      currentSigningKey: CURRENT,
      nextSigningKey: NEXT,
      now: () => fake,
    });
    try {
      const local = new Client({
        baseUrl: plain.url,
        token: TOKEN,
        devMode: false,
        enableTelemetry: false,
      });
      const url = script("/default-backoff", { status: 500 }, { status: 500 });
      const { messageId } = await local.publishJSON({ url, body: {}, retries: 2 });
      await plain.idle();
      const message = plain.message(messageId);
      assert.equal(message?.nextAttemptAt, (message?.attempts[0]?.finishedAt ?? 0) + 1_000);
      fake += 1_000;
      await plain.idle();
      const wait = (message?.nextAttemptAt ?? 0) - (message?.attempts[1]?.finishedAt ?? 0);
      assert.ok(Math.abs(wait - Math.exp(2.5) * 1000) < 0.01, `waited ${wait}ms`);
      fake += wait;
      await plain.idle();
      assert.equal(message?.state, "DELIVERED");
      assert.equal(plain.stats.deliveries, 3);
    } finally {
      await plain.close();
    }
  });
});

describe("qstash emulator: signatures and the real Receiver", () => {
  const url = "https://example.test/api/task";
  const body = '{"task":"x"}';

  test("rejects a tampered body and a different url", async () => {
    const signature = await signQStashDelivery({ signingKey: CURRENT, url, body });
    assert.equal(await receiver.verify({ signature, body, url }), true);
    await assert.rejects(receiver.verify({ signature, body: '{"task":"y"}', url }), SignatureError);
    await assert.rejects(
      receiver.verify({ signature, body, url: "https://evil.test/api/task" }),
      (e: unknown) => e instanceof SignatureError && /invalid subject/.test(e.message),
    );
  });

  test("rejects a token signed with an unknown key", async () => {
    const signature = await signQStashDelivery({ signingKey: "sig_someone_else", url, body });
    await assert.rejects(receiver.verify({ signature, body, url }), SignatureError);
  });

  test("rejects an expired token and a token from another issuer", async () => {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const stale = { url, body, nbf: nowSeconds - 600, exp: nowSeconds - 300 };
    const expired = await signQStashDelivery({ signingKey: CURRENT, ...stale });
    await assert.rejects(receiver.verify({ signature: expired, body, url }), SignatureError);
    // The Receiver reports the error of its last try (the next key), so sign with that key to see "exp".
    const expiredNext = await signQStashDelivery({ signingKey: NEXT, ...stale });
    await assert.rejects(
      receiver.verify({ signature: expiredNext, body, url }),
      (e: unknown) => e instanceof SignatureError && /"exp" claim/.test(e.message),
    );
    const foreign = await signQStashDelivery({ signingKey: NEXT, url, body, iss: "Someone" });
    await assert.rejects(
      receiver.verify({ signature: foreign, body, url }),
      (e: unknown) => e instanceof SignatureError && /"iss" claim/.test(e.message),
    );
  });

  test("accepts a token signed with the next key (key rotation)", async () => {
    const signature = await signQStashDelivery({ signingKey: NEXT, url, body });
    assert.equal(await receiver.verify({ signature, body, url }), true);
  });

  test("the emulator signs with the current key only", async () => {
    const onlyNext = new Receiver({
      currentSigningKey: NEXT,
      nextSigningKey: NEXT,
      devMode: false,
    });
    await client.publish({ url: script("/signed-current"), body: "x" });
    await emulator.idle();
    const [got] = at("/signed-current");
    assert.ok(got);
    assert.equal(
      await receiver.verify({ signature: got.headers["upstash-signature"] ?? "", body: got.body }),
      true,
    );
    await assert.rejects(
      onlyNext.verify({ signature: got.headers["upstash-signature"] ?? "", body: got.body }),
      SignatureError,
    );
  });
});
