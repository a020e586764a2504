import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Delivery, Outcome, PushReceiver } from "../backend.ts";
import { SignatureError } from "../backend.ts";
import { createApp } from "../mod.ts";
import { createRequestHandler } from "../src/http/mod.ts";

const encoder = new TextEncoder();

async function hmac(secret: string, body: string | Uint8Array): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const data = typeof body === "string" ? encoder.encode(body) : body;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, data as Uint8Array<ArrayBuffer>));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A second push provider written outside the core, as a user would: a webhook signed with
 * HMAC-SHA256 in `x-signature`, whose sender retries anything but 2xx and 422.
 */
function webhookReceiver(secret: string): PushReceiver {
  return {
    path: "/webhook",
    signs: (request) => request.headers.has("x-signature"),
    async verify(request, body) {
      const signature = request.headers.get("x-signature");
      if (signature === null || signature !== (await hmac(secret, body))) {
        throw new SignatureError("bad webhook signature");
      }
    },
    delivery(request, body): Delivery {
      const id = request.headers.get("x-delivery-id") ?? crypto.randomUUID();
      const queue = (JSON.parse(body) as { queue?: string }).queue ?? "default";
      return { id, queue, body, receipt: id, deliveries: 1 };
    },
    respond(outcome: Outcome) {
      const status = outcome.kind === "failed" || outcome.kind === "rejected" ? 422 : 200;
      return Response.json({ kind: outcome.kind }, { status });
    },
    failed: () => new Response("try again", { status: 503 }),
  };
}

function envelope(task: string, input: unknown): string {
  const id = crypto.randomUUID();
  return JSON.stringify({
    v: 1,
    id,
    task,
    queue: "default",
    priority: 0,
    attempt: 1,
    enqueuedAt: Date.now(),
    input,
  });
}

describe("createRequestHandler (celeriac/handler)", () => {
  it("serves a push provider the core knows nothing of, through the one executor", async () => {
    const app = createApp();
    const seen: unknown[] = [];
    app.task({ name: "hook", run: (input) => seen.push(input) });
    const handle = createRequestHandler(app, { push: webhookReceiver("s3cret"), basePath: "/tasks" });
    const body = envelope("hook", { n: 1 });
    const post = async (signature: string, text = body) =>
      await handle(
        new Request("https://app.example/tasks/webhook", {
          method: "POST",
          body: text,
          headers: { "x-signature": signature },
        }),
      );
    const forged = await post("00");
    assert.equal(forged.status, 401);
    assert.deepEqual(seen, [], "a forged push runs nothing");
    const ok = await post(await hmac("s3cret", body));
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { kind: "succeeded" });
    assert.deepEqual(seen, [{ n: 1 }]);
    const unknown = envelope("nope", null);
    const rejected = await post(await hmac("s3cret", unknown), unknown);
    assert.equal(rejected.status, 422, "the receiver words the answer");
    // The provider's signature also authorizes the cron route.
    const cron = await handle(
      new Request("https://app.example/tasks/cron", {
        method: "POST",
        headers: { "x-signature": await hmac("s3cret", "") },
      }),
    );
    assert.equal(cron.status, 200);
  });

  it("answers 404 outside its base path and validates its options up front", async () => {
    const app = createApp();
    const handle = createRequestHandler(app, { basePath: "/tasks" });
    assert.equal((await handle(new Request("https://app.example/other/health"))).status, 404);
    assert.equal((await handle(new Request("https://app.example/tasks/health"))).status, 200);
    assert.throws(() => createRequestHandler(app, { basePath: "tasks" }), /basePath must be/);
    assert.throws(
      () => createRequestHandler(app, { push: { ...webhookReceiver("s"), path: "/runs" } }),
      /\/runs is a route of the handler itself/,
    );
    assert.throws(
      () => createRequestHandler(app, { push: [webhookReceiver("a"), webhookReceiver("b")] }),
      /two receivers on the same path \/webhook/,
    );
    assert.throws(
      () => createRequestHandler(app, { push: {} as PushReceiver }),
      /push must be push receivers/,
    );
  });
});
