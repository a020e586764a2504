import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Client } from "@upstash/qstash";
import { Hono } from "hono";
import { qstash, qstashReceiver } from "../adapters/qstash/mod.ts";
import type { Store } from "../backend.ts";
import { BackendError, createApp } from "../mod.ts";
import { createHandler } from "../src/hono.ts";
import { buildApp, calls, KEYS, restStore } from "./edge/_app.ts";
import { endToEnd } from "./edge/_e2e.ts";
import { envelope, type Rig, startRig, stopRig } from "./edge/_rig.ts";
import { freePort, runtimeName, serveHere } from "./edge/_support.ts";
import { signQStashDelivery } from "../dev/mod.ts";

// The handler on this runtime's own server: Deno.serve, Bun.serve or @hono/node-server.
const server = { deno: "Deno.serve", bun: "Bun.serve", node: "@hono/node-server" }[runtimeName()];

endToEnd(`handler on ${server}`, async (envFor) => {
  let handler: Hono | undefined;
  const listening = await serveHere(
    (request) => handler?.fetch(request) ?? new Response("starting", { status: 503 }),
  );
  handler = buildApp(envFor(listening.origin)).handler;
  return listening;
});

/** A store whose next `failures.left` attempts to mark a run active throw, as a Redis outage would. */
function flaky(store: Store, failures: { left: number }): Store {
  const updateRun = store.updateRun.bind(store);
  store.updateRun = (id, patch, options) => {
    if (failures.left > 0 && patch.state === "active") {
      failures.left--;
      return Promise.reject(new BackendError("store unreachable"));
    }
    return updateRun(id, patch, options);
  };
  return store;
}

describe(`handler on ${server}: in-process checks`, () => {
  let rig: Rig;
  const failures = { left: 0 };
  before(async () => {
    rig = await startRig(async (envFor) => {
      let handler: Hono | undefined;
      const listening = await serveHere(
        (request) => handler?.fetch(request) ?? new Response("starting", { status: 503 }),
      );
      const env = envFor(listening.origin);
      handler = buildApp(env, flaky(restStore(env), failures)).handler;
      return listening;
    });
  });
  after(() => stopRig(rig));

  it("runs nothing for a delivery that fails verification", async () => {
    const before = calls.echo ?? 0;
    const { body } = envelope("echo", { text: "hi" });
    const res = await rig.deliver(body, { signingKey: "sig_forged" });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    assert.equal(calls.echo ?? 0, before);
  });

  it("verifies with the next signing key after a rotation", async () => {
    const { id, body } = envelope("echo", { text: "rotated" });
    const res = await rig.deliver(body, { signingKey: KEYS.next });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { outcome: "succeeded", id });
  });

  it("answers 500 when the outcome could not be recorded, and QStash's retry runs the task", async () => {
    failures.left = 1;
    const id = await rig.enqueue("echo", { text: "again" });
    await rig.emulator.idle();
    const [message] = rig.messagesOf(id);
    assert.deepEqual(
      message?.attempts.map((a) => a.status),
      [500, 200],
    );
    assert.equal((await rig.status(id))?.state, "succeeded");
  });

  it("answers 200 to a duplicate delivery of a finished run without running it again", async () => {
    const { id, body } = envelope("echo", { text: "once" });
    assert.equal((await rig.deliver(body)).status, 200);
    const before = calls.echo ?? 0;
    const again = await rig.deliver(body);
    assert.equal(again.status, 200);
    assert.deepEqual(await again.json(), { outcome: "duplicate", id, state: "succeeded" });
    assert.equal(calls.echo ?? 0, before);
  });

  it("answers 405 to the wrong method and 404 off its routes", async () => {
    const get = await rig.call("/qstash");
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    await get.body?.cancel();
    const off = await rig.call("/nope");
    assert.equal(off.status, 404);
    await off.body?.cancel();
  });
});

describe("createHandler", () => {
  // A QStash API on a loopback port nobody listens on: "connection refused" at once.
  const broker = async () =>
    qstash({
      client: new Client({
        baseUrl: `http://127.0.0.1:${await freePort()}`,
        token: "t",
        retry: false,
        devMode: false,
        enableTelemetry: false,
      }),
      url: "https://tasks.example.com/jobs/qstash",
      currentSigningKey: KEYS.current,
      nextSigningKey: KEYS.next,
    });

  it("works mounted under a path of a larger Hono app", async () => {
    const app = createApp({ broker: await broker() });
    app.task({ name: "hello", run: () => "world" });
    const site = new Hono();
    site.route("/jobs", createHandler(app, { token: "tok", tasks: [] }));
    const health = await site.request("/jobs/health");
    assert.equal(health.status, 503, "QStash is unreachable, the store is fine");
    const body = (await health.json()) as { checks: { store: { ok: boolean }; broker: { ok: boolean } } };
    assert.equal(body.checks.store.ok, true);
    assert.equal(body.checks.broker.ok, false);
    const { id, body: envelopeBody } = envelope("hello", null);
    const signature = await signQStashDelivery({
      signingKey: KEYS.current,
      url: "https://tasks.example.com/jobs/qstash",
      body: envelopeBody,
    });
    const res = await site.request("/jobs/qstash", {
      method: "POST",
      body: envelopeBody,
      headers: { "upstash-signature": signature },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { outcome: "succeeded", id });
  });

  it("validates its options up front, naming the option", () => {
    const app = createApp({ broker: qstash({ token: "t", url: "https://x.example/qstash" }) });
    assert.throws(() => createHandler(app), /needs both signing keys/);
    assert.doesNotThrow(() => createHandler(app, { push: false }));
    assert.throws(
      () => createHandler(app, { push: false, maxBodyBytes: 0 }),
      /maxBodyBytes must be a positive integer, got 0/,
    );
    assert.throws(() => createHandler(app, { push: false, token: "" }), /token must be a non-empty string/);
    const plain = createApp();
    assert.doesNotThrow(() => createHandler(plain), "no QStash broker, no delivery route");
    assert.throws(
      () =>
        createHandler(plain, {
          push: qstashReceiver({ currentSigningKey: "a", nextSigningKey: "b", url: "nope" }),
        }),
      /qstash.url must be an absolute URL/,
    );
    const other = createApp();
    const foreign = other.task({ name: "foreign", run: () => 1 });
    assert.throws(
      () => createHandler(plain, { token: "t", tasks: [foreign] }),
      /"foreign" is not a task of this app/,
    );
  });

  it("enqueues any task of the app by name when no allowlist is given", {
    skip: !("enqueue" in createApp()),
  }, async () => {
    const app = createApp();
    app.task({ name: "any", run: () => 1 });
    const handler = createHandler(app, { token: "tok" });
    const res = await handler.request("/runs", {
      method: "POST",
      headers: { authorization: "Bearer tok" },
      body: JSON.stringify({ task: "any", input: null }),
    });
    assert.equal(res.status, 202);
  });
});

describe("npm run dev", () => {
  it("runs the example app against the QStash emulator (--once)", async () => {
    const file = fileURLToPath(new URL("../examples/dev.ts", import.meta.url));
    const g = globalThis as { Deno?: { execPath(): string }; Bun?: unknown };
    const [cmd, args] = g.Deno
      ? [g.Deno.execPath(), ["run", "-A", file]]
      : g.Bun
        ? [process.execPath, [file]]
        : [process.execPath, ["--import", "tsx", file]];
    const out = await new Promise<string>((resolve, reject) => {
      execFile(cmd, [...args, "--once"], { timeout: 60_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stdout}${stderr}`)) : resolve(stdout),
      );
    });
    assert.match(out, /email\.welcome: succeeded after 1 attempt/);
    assert.match(out, /email\.welcome: succeeded after 2 attempt/);
    assert.match(out, /billing\.charge: failed after 1 attempt/);
  });
});
