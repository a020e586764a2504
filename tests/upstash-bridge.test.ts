import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { Redis } from "@upstash/redis";
import { Redis as TcpRedis } from "ioredis";
import { type RedisServer, startRedis, startUpstashBridge, type UpstashBridge } from "../dev/mod.ts";

const TOKEN = "test-token-0123";

/** Runs `fn` with a short-lived TCP client, closed afterwards. */
async function withTcp<T>(url: string, fn: (client: TcpRedis) => Promise<T>): Promise<T> {
  const client = new TcpRedis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

interface Answer {
  status: number;
  body: unknown;
}

async function call(
  bridge: UpstashBridge,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${bridge.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${bridge.token}`, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function client(bridge: UpstashBridge, extra: { token?: string } = {}): Redis {
  return new Redis({
    url: bridge.url,
    token: extra.token ?? bridge.token,
    enableTelemetry: false,
    retry: false,
  });
}

const b64 = (text: string): string => Buffer.from(text).toString("base64");

describe("startRedis", () => {
  const servers: RedisServer[] = [];
  after(async () => {
    for (const server of servers) await server.stop();
  });

  it("serves a loopback url on a free port", async () => {
    const server = await startRedis();
    servers.push(server);
    assert.equal(server.url, `redis://127.0.0.1:${server.port}`);
    assert.ok(server.running);
    assert.equal(await withTcp(server.url, (c) => c.ping()), "PONG");
  });

  it("keeps data across a graceful restart on the same port when appendonly is on", async () => {
    const server = await startRedis({ appendonly: true });
    servers.push(server);
    const port = server.port;
    await withTcp(server.url, (c) => c.set("survives", "restart"));
    await server.restart();
    assert.equal(server.port, port);
    assert.equal(await withTcp(server.url, (c) => c.get("survives")), "restart");
  });

  it("keeps acknowledged writes across a SIGKILL crash when appendonly is on", async () => {
    const server = await startRedis({ appendonly: true });
    servers.push(server);
    await withTcp(server.url, (c) => c.set("crash", "proof"));
    await server.kill();
    assert.equal(server.running, false);
    await server.start();
    assert.equal(await withTcp(server.url, (c) => c.get("crash")), "proof");
  });

  it("forgets data on restart without appendonly", async () => {
    const server = await startRedis();
    servers.push(server);
    await withTcp(server.url, (c) => c.set("volatile", "1"));
    await server.restart();
    assert.equal(await withTcp(server.url, (c) => c.get("volatile")), null);
  });

  it("stop removes its directory, is idempotent, and refuses to start again", async () => {
    const server = await startRedis({ appendonly: true });
    assert.ok(existsSync(server.dir));
    await server.stop();
    await server.stop();
    assert.equal(server.running, false);
    assert.equal(existsSync(server.dir), false);
    await assert.rejects(server.start(), /was stopped/);
  });
});

describe("Upstash bridge: REST protocol", () => {
  let server: RedisServer;
  let bridge: UpstashBridge;
  before(async () => {
    server = await startRedis();
    bridge = await startUpstashBridge({ redisUrl: server.url, token: TOKEN });
  });
  after(async () => {
    await bridge?.close();
    await server?.stop();
  });

  it("runs a JSON command posted to / and answers {result}", async () => {
    assert.deepEqual(await call(bridge, "/", ["SET", "raw:k", "v", "EX", 100]), {
      status: 200,
      body: { result: "OK" },
    });
    assert.deepEqual((await call(bridge, "/", ["GET", "raw:k"])).body, { result: "v" });
    assert.deepEqual((await call(bridge, "/", ["INCR", "raw:n"])).body, { result: 1 });
    assert.deepEqual((await call(bridge, "/", ["GET", "raw:missing"])).body, { result: null });
    assert.deepEqual((await call(bridge, "/", ["MGET", "raw:k", "raw:missing"])).body, {
      result: ["v", null],
    });
  });

  it("answers 401 with an error body for a missing or wrong token", async () => {
    const missing = await fetch(bridge.url, { method: "POST", body: '["PING"]' });
    assert.equal(missing.status, 401);
    assert.deepEqual(await missing.json(), { error: "Unauthorized" });
    const wrong = await call(bridge, "/", ["PING"], { authorization: "Bearer nope" });
    assert.deepEqual(wrong, { status: 401, body: { error: "Unauthorized" } });
    const viaQuery = await fetch(`${bridge.url}/?_token=${TOKEN}`, {
      method: "POST",
      body: '["PING"]',
    });
    assert.deepEqual(await viaQuery.json(), { result: "PONG" });
  });

  it("answers 400 with the Redis error message when a command fails", async () => {
    await call(bridge, "/", ["SET", "raw:text", "abc"]);
    const failed = await call(bridge, "/", ["INCR", "raw:text"]);
    assert.equal(failed.status, 400);
    assert.match((failed.body as { error: string }).error, /^ERR value is not an integer/);
    const unknown = await call(bridge, "/", ["NOSUCHCOMMAND"]);
    assert.equal(unknown.status, 400);
    assert.match((unknown.body as { error: string }).error, /^ERR unknown command/);
    const malformed = await call(bridge, "/", "{not json");
    assert.equal(malformed.status, 400);
    assert.deepEqual(Object.keys(malformed.body as object), ["error"]);
  });

  it("base64-encodes every string but a top-level OK when asked to", async () => {
    const h = { "upstash-encoding": "base64" };
    assert.deepEqual((await call(bridge, "/", ["SET", "raw:b", "héllo"], h)).body, {
      result: "OK",
    });
    assert.deepEqual((await call(bridge, "/", ["GET", "raw:b"], h)).body, { result: b64("héllo") });
    assert.deepEqual((await call(bridge, "/", ["PING"], h)).body, { result: b64("PONG") });
    assert.deepEqual((await call(bridge, "/", ["INCR", "raw:bn"], h)).body, { result: 1 });
    const nested = await call(bridge, "/", ["EVAL", "return {1, 'OK', {'x', false}}", 0], h);
    assert.deepEqual(nested.body, { result: [1, b64("OK"), [b64("x"), null]] });
  });

  it("is binary-safe for values that are not UTF-8", async () => {
    const script = "redis.call('SET', KEYS[1], string.char(0, 255, 128, 10)) return 1";
    await call(bridge, "/", ["EVAL", script, 1, "raw:bin"]);
    const encoded = await call(bridge, "/", ["GET", "raw:bin"], { "Upstash-Encoding": "base64" });
    const bytes = Buffer.from((encoded.body as { result: string }).result, "base64");
    assert.deepEqual([...bytes], [0, 255, 128, 10]);
    const plain = await call(bridge, "/", ["GET", "raw:bin"]);
    assert.deepEqual(plain.body, { result: "\u0000\uFFFD\uFFFD\n" });
  });

  it("runs /pipeline in order with one {result} or {error} per command", async () => {
    const answer = await call(bridge, "/pipeline", [
      ["SET", "pipe:k", "x"],
      ["INCR", "pipe:k"],
      ["SETEX", "pipe:e", 13, "y"],
      ["ZADD", "pipe:z", 11, "a", 22, "b"],
    ]);
    assert.equal(answer.status, 200);
    const [first, second, third, fourth] = answer.body as Array<Record<string, unknown>>;
    assert.deepEqual(first, { result: "OK" });
    assert.match(String(second?.error), /^ERR value is not an integer/);
    assert.deepEqual(third, { result: "OK" });
    assert.deepEqual(fourth, { result: 2 });
  });

  it("runs /multi-exec atomically and discards it as a whole on a queueing error", async () => {
    const answer = await call(
      bridge,
      "/multi-exec",
      [
        ["SET", "tx:k", "1"],
        ["INCR", "tx:k"],
        ["HGET", "tx:k", "f"],
        ["GET", "tx:k"],
      ],
      { "Upstash-Encoding": "base64" },
    );
    assert.equal(answer.status, 200);
    const [set, incr, wrongType, get] = answer.body as Array<Record<string, unknown>>;
    assert.deepEqual([set, incr, get], [{ result: "OK" }, { result: 2 }, { result: b64("2") }]);
    assert.match(String(wrongType?.error), /^WRONGTYPE/);

    const aborted = await call(bridge, "/multi-exec", [["SET", "tx:other", "1"], ["NOSUCH"]]);
    assert.equal(aborted.status, 400);
    assert.match((aborted.body as { error: string }).error, /^EXECABORT.*unknown command/);
    assert.deepEqual((await call(bridge, "/", ["EXISTS", "tx:other"])).body, { result: 0 });
  });

  it("supports path-style commands with a POST body as the last argument", async () => {
    const get = await fetch(`${bridge.url}/set/path:k/bar`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.deepEqual(await get.json(), { result: "OK" });
    const post = await fetch(`${bridge.url}/set/path:j?EX=100`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: '{"a":1}',
    });
    assert.deepEqual(await post.json(), { result: "OK" });
    assert.deepEqual((await call(bridge, "/", ["GET", "path:j"])).body, { result: '{"a":1}' });
    const ttl = (await call(bridge, "/", ["TTL", "path:j"])).body as { result: number };
    assert.ok(ttl.result > 0 && ttl.result <= 100);
  });

  it("rejects blocking commands, other methods and other response formats", async () => {
    const blocking = await call(bridge, "/", ["BLPOP", "q", 0]);
    assert.equal(blocking.status, 400);
    assert.match((blocking.body as { error: string }).error, /blocking command 'blpop'/);
    const xread = await call(bridge, "/", ["XREAD", "BLOCK", 0, "STREAMS", "s", "$"]);
    assert.equal(xread.status, 400);
    const del = await fetch(bridge.url, {
      method: "DELETE",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(del.status, 405);
    await del.body?.cancel();
    const resp2 = await call(bridge, "/", ["PING"], { "Upstash-Response-Format": "resp2" });
    assert.equal(resp2.status, 400);
  });

  it("counts the HTTP requests it serves", async () => {
    const before = bridge.requests;
    await call(bridge, "/", ["PING"]);
    await call(bridge, "/", ["PING"], { authorization: "Bearer wrong" });
    assert.equal(bridge.requests, before + 2);
  });
});

describe("Upstash bridge: @upstash/redis client", () => {
  let server: RedisServer;
  let bridge: UpstashBridge;
  let redis: Redis;
  before(async () => {
    server = await startRedis({ appendonly: true });
    bridge = await startUpstashBridge({ redisUrl: server.url, token: TOKEN });
    redis = client(bridge);
  });
  after(async () => {
    await bridge?.close();
    await server?.stop();
  });

  it("sets and gets strings, JSON values and integers", async () => {
    assert.equal(await redis.set("c:s", "plain"), "OK");
    assert.equal(await redis.get("c:s"), "plain");
    await redis.set("c:obj", { a: 1, b: ["x"] });
    assert.deepEqual(await redis.get("c:obj"), { a: 1, b: ["x"] });
    assert.equal(await redis.incr("c:n"), 1);
    assert.equal(await redis.incrby("c:n", 41), 42);
    assert.equal(await redis.get("c:n"), 42, "numeric strings come back as numbers");
    assert.equal(await redis.get("c:missing"), null);
  });

  it("reads and writes hashes", async () => {
    assert.equal(await redis.hset("c:h", { name: "celeriac", tries: 3 }), 2);
    assert.equal(await redis.hget("c:h", "name"), "celeriac");
    assert.deepEqual(await redis.hgetall("c:h"), { name: "celeriac", tries: 3 });
    assert.equal(await redis.hincrby("c:h", "tries", 1), 4);
  });

  it("runs Lua through eval with keys and arguments", async () => {
    const script = "redis.call('SET', KEYS[1], ARGV[1]) return {redis.call('GET', KEYS[1]), 7}";
    assert.deepEqual(await redis.eval(script, ["c:lua"], ["from-lua"]), ["from-lua", 7]);
  });

  it("falls back from EVALSHA to EVAL after SCRIPT FLUSH", async () => {
    const script = redis.createScript<number>("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    assert.equal(await script.exec(["c:script"], ["5"]), 5);
    assert.equal(await script.evalsha(["c:script"], ["1"]), 6, "loaded by the EVAL fallback");
    assert.equal(await redis.scriptFlush(), "OK");
    await assert.rejects(script.evalsha(["c:script"], ["1"]), /NOSCRIPT/);
    assert.equal(await script.exec(["c:script"], ["1"]), 7);
  });

  it("runs pipelines and transactions", async () => {
    const results = await redis.pipeline().set("c:p", 1).incr("c:p").get("c:p").exec();
    assert.deepEqual(results, ["OK", 2, 2]);
    const tx = await redis.multi().set("c:t", "a").append("c:t", "b").get("c:t").exec();
    assert.deepEqual(tx, ["OK", 2, "ab"]);
  });

  it("reports Redis errors as UpstashError with the Redis message", async () => {
    await redis.set("c:text", "abc");
    await assert.rejects(redis.incr("c:text"), (error: Error) => {
      assert.equal(error.name, "UpstashError");
      assert.match(error.message, /ERR value is not an integer/);
      return true;
    });
  });

  it("fails with a clear Unauthorized error for a wrong token", async () => {
    const intruder = client(bridge, { token: "wrong" });
    await assert.rejects(intruder.get("c:s"), (error: Error) => {
      assert.equal(error.name, "UpstashError");
      assert.match(error.message, /Unauthorized/);
      return true;
    });
  });

  it("keeps serving across a restart of redis-server", async () => {
    await redis.set("c:durable", "yes");
    await server.restart();
    assert.equal(await redis.get("c:durable"), "yes");
    assert.equal(await redis.incr("c:after-restart"), 1);
  });
});

describe("Upstash bridge while redis-server is down", () => {
  let server: RedisServer;
  let bridge: UpstashBridge;
  before(async () => {
    server = await startRedis({ appendonly: true });
    bridge = await startUpstashBridge({ redisUrl: server.url, token: TOKEN, timeoutMs: 300 });
  });
  after(async () => {
    await bridge?.close();
    await server?.stop();
  });

  it("answers 503 within the timeout instead of hanging, then recovers", async () => {
    await call(bridge, "/", ["SET", "down:k", "v"]);
    await server.kill();
    const started = Date.now();
    const answer = await call(bridge, "/", ["GET", "down:k"]);
    assert.equal(answer.status, 503);
    assert.match((answer.body as { error: string }).error, /redis unavailable/);
    assert.ok(Date.now() - started < 2_000, "bounded by timeoutMs");
    const viaClient = client(bridge);
    await assert.rejects(viaClient.get("down:k"), /redis unavailable/);
    await server.start();
    assert.deepEqual((await call(bridge, "/", ["GET", "down:k"])).body, { result: "v" });
    assert.equal(await viaClient.get("down:k"), "v");
  });
});
