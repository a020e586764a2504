/**
 * The end-to-end suite every handler target runs, over real HTTP only: the real
 * `@upstash/qstash` client publishes to the loopback QStash emulator, which pushes signed
 * deliveries to the handler (in workerd, edge-runtime, Deno, Bun or Node); the store is Redis
 * over the Upstash REST protocol; results are read back through the handler's own routes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { signQStashDelivery } from "../../dev/mod.ts";
import { KEYS, MAX_BODY_BYTES } from "./_app.ts";
import { envelope, type Rig, type Starter, startRig, stopRig } from "./_rig.ts";

/** Registers the shared end-to-end tests for one target. */
export function endToEnd(name: string, start: Starter): void {
  describe(name, () => {
    let rig: Rig;
    before(async () => {
      rig = await startRig(start);
    });
    after(() => stopRig(rig));

    it("runs a task enqueued through the producer API and serves its result", async () => {
      const id = await rig.enqueue("echo", { text: "hi" });
      await rig.emulator.idle();
      const record = await rig.status(id);
      assert.equal(record?.state, "succeeded");
      assert.deepEqual(record?.result, { echoed: "hi", attempt: 1 });
      const [message, ...more] = rig.messagesOf(id);
      assert.equal(more.length, 0);
      assert.equal(message?.state, "DELIVERED");
      assert.equal(message?.url, rig.deliveryUrl);
      assert.equal(message?.deduplicationId, `${id}:1`);
      assert.deepEqual(
        message?.attempts.map((a) => a.status),
        [200],
      );
    });

    it("retries by re-publishing the next attempt, answering 200 so QStash does not retry", async () => {
      const id = await rig.enqueue("flaky", { failures: 1 });
      await rig.emulator.idle();
      const waiting = await rig.status(id);
      assert.equal(waiting?.state, "retrying");
      assert.equal(waiting?.errors?.[0]?.message, "boom on attempt 1");
      const [first, second] = rig.messagesOf(id);
      assert.deepEqual(
        first?.attempts.map((a) => a.status),
        [200],
      );
      assert.equal(second?.deduplicationId, `${id}:2`);
      assert.equal(second?.state, "CREATED", "the retry waits for its backoff");
      assert.ok((second?.notBefore ?? 0) > Date.now(), "Upstash-Not-Before is in the future");

      await rig.emulator.flush();
      const done = await rig.status(id);
      assert.equal(done?.state, "succeeded");
      assert.deepEqual(done?.result, { attempts: 2 });
    });

    it("fails a run for good with 489 non-retryable and dead-letters it with the reason", async () => {
      const id = await rig.enqueue("doomed", null);
      await rig.emulator.idle();
      const record = await rig.status(id);
      assert.equal(record?.state, "failed");
      assert.equal(record?.error?.message, "account closed");
      const [message] = rig.messagesOf(id);
      assert.equal(message?.state, "FAILED");
      assert.equal(message?.attempts[0]?.status, 489);
      assert.equal(message?.attempts[0]?.responseHeaders["upstash-nonretryable-error"], "true");
      const dead = await deadLetter(rig, id);
      assert.match(dead?.reason ?? "", /non-retryable error: NonRetryableError: account closed/);
    });

    it("ends a run that keeps failing after its last attempt", async () => {
      const id = await rig.enqueue("flaky", { failures: 9 });
      await rig.emulator.idle();
      await rig.emulator.flush();
      await rig.emulator.flush();
      const record = await rig.status(id);
      assert.equal(record?.state, "failed");
      assert.equal(record?.attempt, 3);
      assert.deepEqual(
        rig.messagesOf(id).map((m) => m.attempts.map((a) => a.status)),
        [[200], [200], [489]],
      );
      assert.match((await deadLetter(rig, id))?.reason ?? "", /failed after 3 attempts/);
    });

    it("answers 401 to forged, tampered, expired, misaddressed and unsigned deliveries, running nothing", async () => {
      const now = Math.floor(Date.now() / 1000);
      const cases: [string, (body: string) => Promise<Response>][] = [
        ["forged", (body) => rig.deliver(body, { signingKey: "sig_not_ours" })],
        ["tampered", (body) => tampered(rig, body)],
        ["expired", (body) => rig.deliver(body, { exp: now - 60, nbf: now - 400, now: (now - 400) * 1000 })],
        ["another URL", (body) => rig.deliver(body, { url: "https://elsewhere.example/qstash" })],
        ["unsigned", (body) => rig.deliver(body, null)],
      ];
      for (const [label, send] of cases) {
        const { id, body } = envelope("echo", { text: "hi" });
        const res = await send(body);
        assert.equal(res.status, 401, label);
        const problem = (await res.json()) as { error: string };
        assert.equal(problem.error, "SignatureError", label);
        assert.equal(await rig.status(id), null, `${label}: nothing ran, nothing was recorded`);
      }
    });

    it("dead-letters malformed JSON and invalid envelopes with 489, never a 5xx loop", async () => {
      const bad = [
        "{not json",
        JSON.stringify({ v: 1, id: "x-shape", task: "echo" }),
        JSON.stringify({ v: 99, id: "x-v" }),
      ];
      const ids: string[] = [];
      for (const body of bad) {
        const { messageId } = await rig.client.publish({
          url: rig.deliveryUrl,
          body,
          headers: { "Content-Type": "application/json" },
        });
        ids.push(messageId);
      }
      await rig.emulator.idle();
      for (const messageId of ids) {
        const message = rig.emulator.message(messageId);
        assert.equal(message?.state, "FAILED");
        assert.deepEqual(
          message?.attempts.map((a) => a.status),
          [489],
        );
        assert.ok(message?.dlqId, "QStash's DLQ has it too");
      }
      const reasons = (await deadLetters(rig)).map((d) => d.reason).join("\n");
      assert.match(reasons, /EnvelopeError: envelope is not JSON/);
      assert.match(reasons, /EnvelopeError: envelope is malformed/);
      assert.match(reasons, /EnvelopeError: envelope version 99 is not supported/);
    });

    it("dead-letters an envelope naming an unknown task", async () => {
      const { id, body } = envelope("no.such.task", {});
      const { messageId } = await rig.client.publish({
        url: rig.deliveryUrl,
        body,
        headers: { "Content-Type": "application/json" },
      });
      await rig.emulator.idle();
      assert.equal(rig.emulator.message(messageId)?.attempts[0]?.status, 489);
      assert.equal((await rig.status(id))?.state, "failed");
      assert.match(
        (await deadLetter(rig, id))?.reason ?? "",
        /UnknownTaskError: unknown task "no.such.task"/,
      );
    });

    it("answers 413 to a body over the limit, declared or streamed", async () => {
      const { body } = envelope("echo", { text: "x".repeat(MAX_BODY_BYTES) });
      const declared = await rig.deliver(body);
      assert.equal(declared.status, 413);
      await declared.body?.cancel();
      const bytes = new TextEncoder().encode(body);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 4096) controller.enqueue(bytes.slice(i, i + 4096));
          controller.close();
        },
      });
      const streamed = await fetch(rig.deliveryUrl, {
        method: "POST",
        body: stream,
        duplex: "half",
      } as RequestInit);
      assert.equal(streamed.status, 413);
      await streamed.body?.cancel();
    });

    it("guards the producer API: 401 without or with a wrong token, 400 with issues, 404 for tasks not offered", async () => {
      const published = rig.emulator.stats.published;
      const body = JSON.stringify({ task: "echo", input: { text: "x" } });
      const none = await rig.call("/runs", { method: "POST", body, auth: false });
      assert.equal(none.status, 401);
      assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="celeriac"');
      await none.body?.cancel();
      const wrong = await rig.call("/runs", { method: "POST", body, auth: `${KEYS.producer}x` });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const statusWrong = await rig.call("/runs/anything", { auth: "nope" });
      assert.equal(statusWrong.status, 401);
      await statusWrong.body?.cancel();

      const invalid = await rig.call("/runs", {
        method: "POST",
        body: JSON.stringify({ task: "email.send", input: { to: "nope" } }),
      });
      assert.equal(invalid.status, 400);
      const problem = (await invalid.json()) as {
        error: string;
        issues: { message: string; path: string[] }[];
      };
      assert.equal(problem.error, "ValidationError");
      assert.deepEqual(problem.issues[0]?.path, ["to"]);
      assert.match(problem.issues[0]?.message ?? "", /email/i);

      const notJson = await rig.call("/runs", { method: "POST", body: "{" });
      assert.equal(notJson.status, 400);
      await notJson.body?.cancel();
      const internal = await rig.call("/runs", {
        method: "POST",
        body: JSON.stringify({ task: "internal" }),
      });
      assert.equal(internal.status, 404);
      await internal.body?.cancel();
      assert.equal(rig.emulator.stats.published, published, "nothing was published");
    });

    it("serves the dashboard: a page, its script and stylesheet, and a live event", async () => {
      const id = await rig.enqueue("echo", { text: "for the dashboard" });
      await rig.emulator.idle();
      assert.equal(
        (await rig.call("/dashboard/", { auth: false, headers: { accept: "text/html" } })).status,
        401,
      );
      const page = await rig.call(`/dashboard/runs/${encodeURIComponent(id)}`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
      const html = await page.text();
      assert.match(html, /for the dashboard/, "the run's input");
      assert.match(html, /data-field="state">succeeded</);
      const assets = [...html.matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((m) => m[1]!);
      assert.equal(assets.length, 2);
      for (const path of assets) {
        const res = await rig.call(path, { auth: false });
        assert.equal(res.status, 200, path);
        assert.ok((await res.text()).length > 1_000, `${path} has its content`);
      }
      const controller = new AbortController();
      const live = await rig.call("/dashboard/events", { signal: controller.signal });
      assert.equal(live.status, 200);
      assert.match(live.headers.get("content-type") ?? "", /^text\/event-stream/);
      const reader = live.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!/^event: \w+\ndata: /m.test(text)) {
        const { done, value } = await reader.read();
        if (done) break;
        text += value;
      }
      controller.abort();
      await reader.cancel().catch(() => {});
      assert.match(text, /^event: counts\ndata: \[/m, "the queues' counts, the stream's first event");
    });

    it("reports health: the store and QStash reachable, with latency", async () => {
      const res = await rig.call("/health", { auth: false });
      assert.equal(res.status, 200);
      const health = (await res.json()) as {
        ok: boolean;
        checks: Record<string, { ok: boolean; latencyMs: number }>;
      };
      assert.equal(health.ok, true);
      assert.equal(health.checks.store?.ok, true);
      assert.equal(typeof health.checks.store?.latencyMs, "number");
      assert.equal(health.checks.broker?.ok, true);
      assert.equal(typeof health.checks.broker?.latencyMs, "number");
    });

    it("ticks the schedules on /cron, each tick once, for a bearer token or a QStash schedule", async () => {
      const denied = await rig.call("/cron", { method: "POST", auth: false });
      assert.equal(denied.status, 401);
      await denied.body?.cancel();
      type Tick = { enqueued: { schedule: string; tick: string; runId: string }[]; errors: unknown[] };
      const first = await rig.call("/cron", { method: "POST" });
      assert.equal(first.status, 200);
      const ticked = (await first.json()) as Tick;
      assert.deepEqual(ticked.errors, []);
      assert.deepEqual(
        ticked.enqueued.map((e) => e.schedule),
        ["heartbeat"],
      );
      // A QStash schedule posting to …/cron, signed for that URL.
      const cronUrl = rig.deliveryUrl.replace(/\/qstash$/, "/cron");
      const signature = await signQStashDelivery({ signingKey: KEYS.current, url: cronUrl, body: "" });
      const again = await fetch(cronUrl, { method: "POST", headers: { "upstash-signature": signature } });
      assert.equal(again.status, 200);
      const second = (await again.json()) as Tick;
      for (const e of second.enqueued) assert.notEqual(e.tick, ticked.enqueued[0]?.tick, "a tick runs once");
      const misaddressed = await signQStashDelivery({
        signingKey: KEYS.current,
        url: rig.deliveryUrl,
        body: "",
      });
      const wrong = await fetch(cronUrl, { method: "POST", headers: { "upstash-signature": misaddressed } });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();

      await rig.emulator.idle();
      const runId = ticked.enqueued[0]?.runId ?? "";
      const run = await rig.status(runId);
      assert.equal(run?.state, "succeeded");
      assert.deepEqual(run?.result, { echoed: "tick", attempt: 1 });
    });
  });
}

/** The tampered case: a body signed as it was, delivered changed. */
async function tampered(rig: Rig, body: string): Promise<Response> {
  const signature = await signQStashDelivery({ signingKey: KEYS.current, url: rig.deliveryUrl, body });
  return fetch(rig.deliveryUrl, {
    method: "POST",
    headers: { "upstash-signature": signature, "content-type": "application/json" },
    body: body.replace('"hi"', '"ho"'),
  });
}

async function deadLetters(rig: Rig): Promise<{ id: string; reason: string }[]> {
  const res = await rig.call("/dead-letters?limit=1000");
  assert.equal(res.status, 200);
  return ((await res.json()) as { deadLetters: { id: string; reason: string }[] }).deadLetters;
}

async function deadLetter(rig: Rig, id: string): Promise<{ id: string; reason: string } | undefined> {
  return (await deadLetters(rig)).find((d) => d.id === id);
}
