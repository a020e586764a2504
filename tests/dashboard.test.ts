import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Hono } from "hono";
import { memory } from "../adapters/memory/mod.ts";
import { type App, chain, createApp } from "../mod.ts";
import { dashboard } from "../src/dashboard/mod.ts";
import { createHandler } from "../src/hono.ts";

const TOKEN = "dashboard-token-1";
const ORIGIN = "https://ops.example.com";

function setup(options: Parameters<typeof dashboard>[1] = { token: TOKEN }) {
  const backend = memory();
  const app = createApp({ broker: backend, store: backend });
  const ok = app.task({ name: "demo.ok", queue: "mail", run: (n: { to: string }) => ({ sent: n.to }) });
  const site = new Hono();
  site.route("/ops", dashboard(app, options));
  const request = async (path: string, init: RequestInit = {}) => site.request(`${ORIGIN}${path}`, init);
  return { app, backend, ok, site, request };
}

const bearer = { authorization: `Bearer ${TOKEN}` };

/** Signs in with the form; the session cookie, the CSRF cookie and the page's CSRF token. */
async function signIn(request: (path: string, init?: RequestInit) => Promise<Response>, page = "/ops/") {
  const login = await request("/ops/login", { method: "POST", body: new URLSearchParams({ token: TOKEN }) });
  assert.equal(login.status, 303);
  const session = /celeriac_session=([^;]+)/.exec(login.headers.get("set-cookie") ?? "")?.[1];
  assert.ok(session, "a session cookie");
  assert.match(login.headers.get("set-cookie") ?? "", /HttpOnly; SameSite=Strict; Secure/);
  const res = await request(page, { headers: { cookie: `celeriac_session=${session}` } });
  assert.equal(res.status, 200);
  const nonce = /celeriac_csrf=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1];
  assert.ok(nonce, "a CSRF nonce cookie");
  const html = await res.text();
  const csrf = /name="_csrf" value="([0-9a-f]+)"/.exec(html)?.[1];
  return { cookie: `celeriac_session=${session}; celeriac_csrf=${nonce}`, csrf, html };
}

async function gzipSize(text: string): Promise<number> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

describe("dashboard", () => {
  it("refuses options that would leave it open or are unknown", () => {
    const app = createApp();
    assert.throws(() => dashboard(app, {}), /needs token or authorize/);
    assert.throws(() => dashboard(app, { token: "short" }), TypeError);
    assert.throws(() => dashboard(app, { token: TOKEN, colour: "red" } as never), /colour/);
    assert.throws(() => dashboard(app, { token: TOKEN, pollMs: 1 }), RangeError);
    assert.throws(() => createHandler(app, { dashboard: {} as never }), TypeError);
  });

  it("lets in a bearer, a signed-in browser or the authorize hook, and nobody else", async () => {
    const { request } = setup();
    const anon = await request("/ops/", { headers: { accept: "text/html" } });
    assert.equal(anon.status, 401);
    assert.match(await anon.text(), /name="token"/, "a browser gets the sign-in form");
    const api = await request("/ops/api/live");
    assert.equal(api.status, 401);
    assert.equal((await api.json()).error, "Unauthorized");
    assert.equal((await request("/ops/", { headers: { authorization: "Bearer wrong-token" } })).status, 401);
    const bad = await request("/ops/login", {
      method: "POST",
      body: new URLSearchParams({ token: "nope-nope" }),
    });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers.get("set-cookie"), null);
    const forged = await request("/ops/", {
      headers: { cookie: "celeriac_session=00000000000000000000000000000000.abcd" },
    });
    assert.equal(forged.status, 401, "a session cookie not signed with the secret");
    assert.equal((await request("/ops/", { headers: bearer })).status, 200);
    await signIn(request);

    const hooked = setup({ authorize: (req) => req.headers.get("x-user") === "ops" });
    assert.equal((await hooked.request("/ops/", { headers: { "x-user": "ops" } })).status, 200);
    assert.equal((await hooked.request("/ops/", { headers: { "x-user": "eve" } })).status, 401);
  });

  it("serves pages under a strict CSP with its own hashed assets, well under the weight budget", async () => {
    const { request, ok } = setup();
    await ok.enqueue({ to: "a@example.com" });
    const res = await request("/ops/", { headers: bearer });
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, "no inline script");
    assert.doesNotMatch(html, /\sstyle="/, "no inline style");
    const assets = [...html.matchAll(/(?:src|href)="(\/ops\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.equal(assets.length, 2);
    let weight = await gzipSize(html);
    for (const path of assets) {
      const a = await request(path);
      assert.equal(a.status, 200, `${path} needs no sign-in`);
      assert.match(a.headers.get("cache-control") ?? "", /immutable/);
      weight += await gzipSize(await a.text());
    }
    assert.ok(weight < 150 * 1024, `page weight ${weight} B gzipped`);
    assert.equal((await request("/ops/assets/app.0000.js")).status, 404);
    for (const path of [
      "/ops/queues/mail",
      "/ops/runs",
      "/ops/dead-letters",
      "/ops/schedules",
      "/ops/workers",
      "/ops",
    ]) {
      const page = await request(path, { headers: bearer });
      assert.equal(page.status, 200, path);
      const text = await page.text();
      assert.match(text, /<h1>/);
      // Its own icon, inline: a browser asks the site's /favicon.ico otherwise, which a mounted
      // dashboard does not serve (a 404 in the console of every fresh browser).
      assert.match(text, /<link rel="icon" href="data:image\/svg\+xml,[^"]+">/, path);
    }
    const login = await (await request("/ops/", { headers: { accept: "text/html" } })).text();
    assert.match(login, /<link rel="icon" href="data:/, "the sign-in page too");
    assert.equal((await request("/ops/no-such-page", { headers: bearer })).status, 404);
    assert.equal((await request("/ops/runs/no-such-run", { headers: bearer })).status, 404);
  });

  it("finds a run by idempotency key, task and state, and links every filter", async () => {
    const { app, request, ok } = setup();
    const keyed = await ok.enqueue({ to: "k@example.com" }, { idempotencyKey: "order-42" });
    await ok.enqueue({ to: "other@example.com" });
    await app.drain();
    const html = await (await request("/ops/runs?key=order-42", { headers: bearer })).text();
    const rows = [...html.matchAll(/<tr data-run="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(rows, [keyed.id]);
    assert.match(html, /name="key" value="order-42"/, "the filter stays in the form");
    const byState = await (
      await request("/ops/runs?state=succeeded&task=demo.ok", { headers: bearer })
    ).text();
    assert.equal([...byState.matchAll(/<tr data-run=/g)].length, 2);
    const jump = await request(`/ops/runs?id=${keyed.id}`, { headers: bearer });
    assert.equal(jump.status, 302);
    assert.equal(jump.headers.get("location"), `/ops/runs/${keyed.id}`);
    const run = await (await request(`/ops/runs/${keyed.id}?queue=mail`, { headers: bearer })).text();
    assert.match(run, /k@example\.com/, "the input");
    assert.match(run, /&quot;sent&quot;: &quot;k@example\.com&quot;/, "the result, escaped");
  });

  it("acts only on a POST with the CSRF token of its cookie, from its own origin", async () => {
    const { app, request } = setup();
    const { cookie, csrf } = await signIn(request, "/ops/queues/mail");
    assert.ok(csrf);
    const post = (headers: Record<string, string>, fields: Record<string, string>) =>
      request("/ops/queues/mail/pause", { method: "POST", headers, body: new URLSearchParams(fields) });
    assert.equal((await post({ cookie }, {})).status, 403, "no token");
    assert.equal((await post({ cookie }, { _csrf: "0".repeat(64) })).status, 403, "a wrong token");
    assert.equal(
      (await post({ cookie, origin: "https://evil.example" }, { _csrf: csrf })).status,
      403,
      "another origin",
    );
    assert.equal((await post({ cookie, "sec-fetch-site": "cross-site" }, { _csrf: csrf })).status, 403);
    assert.equal((await app.inspect().queues()).find((q) => q.queue === "mail")?.paused ?? false, false);
    const done = await post({ cookie, origin: ORIGIN }, { _csrf: csrf });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("location"), "/ops/queues/mail");
    assert.equal((await app.inspect().queues()).find((q) => q.queue === "mail")?.paused, true);
    const notice = /celeriac_flash=([^;]+)/.exec(done.headers.get("set-cookie") ?? "")?.[1];
    assert.equal(decodeURIComponent(notice ?? ""), "Queue mail paused.");
    const fetched = await request("/ops/queues/mail/resume", {
      method: "POST",
      headers: { ...bearer, "x-celeriac-fetch": "1" },
    });
    assert.deepEqual(await fetched.json(), {
      ok: true,
      message: "Queue mail resumed.",
      back: "/queues/mail",
    });
  });

  it("in read-only mode shows no action and refuses every POST", async () => {
    const { app, request } = setup({ token: TOKEN, readOnly: true });
    const { cookie, html } = await signIn(request, "/ops/queues/mail");
    assert.doesNotMatch(html, /data-action=/);
    const res = await request("/ops/queues/mail/pause", { method: "POST", headers: { cookie, ...bearer } });
    assert.equal(res.status, 403);
    assert.equal((await app.inspect().queues()).find((q) => q.queue === "mail")?.paused ?? false, false);
    await app.schedules.add("nightly", {
      task: "demo.ok",
      input: { to: "n@example.com" },
      cron: "0 2 * * *",
    });
    const schedules = await (await request("/ops/schedules", { headers: bearer })).text();
    assert.match(schedules, /<tr data-schedule="nightly">/);
    assert.doesNotMatch(
      schedules,
      /Add a stored schedule|<form[^>]*method="post"/,
      "no form, nor its heading",
    );
  });

  it("shows inputs, results and errors through the redact function", async () => {
    const { app, request, ok } = setup({
      token: TOKEN,
      redact: (value, { field }) => (field === "input" ? { to: "[hidden]" } : value),
    });
    const run = await ok.enqueue({ to: "secret@example.com" });
    await app.drain();
    const html = await (await request(`/ops/runs/${run.id}`, { headers: bearer })).text();
    assert.match(html, /\[hidden\]/);
    assert.doesNotMatch(
      html.replace(/&quot;sent&quot;: &quot;secret@example\.com&quot;/, ""),
      /secret@example\.com/,
    );
  });

  it("pushes a run's state changes over Server-Sent Events", async () => {
    const { app, request, ok } = setup();
    const controller = new AbortController();
    const res = await request("/ops/events", { headers: bearer, signal: controller.signal });
    assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const read = async (until: (t: string) => boolean) => {
      while (!until(text)) {
        const { done, value } = await reader.read();
        if (done) break;
        text += value;
      }
    };
    await read((t) => t.includes("event: counts"));
    const run = await ok.enqueue({ to: "live@example.com" });
    await app.drain();
    await read((t) => t.includes(`"state":"succeeded"`));
    const events = text
      .split("\n\n")
      .filter((b) => b.startsWith("event: run"))
      .map((b) => JSON.parse(b.slice(b.indexOf("data: ") + 6)) as { id: string; state: string });
    assert.deepEqual(
      events.filter((e) => e.id === run.id).map((e) => e.state),
      ["queued", "active", "succeeded"],
    );
    controller.abort();
    await reader.cancel().catch(() => {});
    const poll = await (await request("/ops/api/live", { headers: bearer })).json();
    assert.ok(poll.counts.some((c: { queue: string }) => c.queue === "mail"));
    assert.equal(typeof poll.cursor, "string");
  });

  it("shows a run's attempts with their errors, and a workflow step with its siblings", async () => {
    const { app, request } = setup();
    const flaky = app.task({
      name: "demo.flaky",
      queue: "mail",
      retry: { maxAttempts: 2, backoff: "fixed", baseMs: 1, jitter: "none" },
      run: (_: unknown, ctx) => {
        if (ctx.attempt === 1) throw new Error("first attempt fails");
        return "second works";
      },
    });
    const run = await flaky.enqueue({});
    const one = app.task({ name: "demo.one", queue: "mail", run: (n: number) => n + 1 });
    const two = app.task({ name: "demo.two", queue: "mail", run: (n: number) => n * 2 });
    const flow = await chain(one.with(1), two.with()).enqueue();
    for (let i = 0; i < 50 && (await flow.status())?.state !== "succeeded"; i++) await app.drain();
    for (let i = 0; i < 50 && (await run.status())?.state !== "succeeded"; i++) await app.drain();
    const html = await (await request(`/ops/runs/${run.id}`, { headers: bearer })).text();
    assert.match(html, /<li data-attempt="1" class="t-fail"><b>Attempt 1<\/b> failed/);
    assert.match(html, /first attempt fails/);
    assert.match(html, /<li data-attempt="2" class="t-succeeded">/);
    const workflow = await (await request(`/ops/runs/${flow.id}`, { headers: bearer })).text();
    const steps = [...workflow.matchAll(/<tr data-run="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(steps, [`${flow.id}.0`, `${flow.id}.1`]);
    const step = await (await request(`/ops/runs/${flow.id}.1`, { headers: bearer })).text();
    assert.match(step, new RegExp(`Step of <a href="[^"]*${flow.id}`));
  });

  it("is mounted by createHandler at /dashboard beside the handler's routes", async () => {
    const app: App = createApp();
    const handler = createHandler(app, { dashboard: dashboard(app, { token: TOKEN }) });
    assert.equal((await handler.request("/dashboard/", { headers: bearer })).status, 200);
    assert.equal((await handler.request("/dashboard/workers", { headers: bearer })).status, 200);
    assert.equal((await handler.request("/health")).status, 200);
  });
});
