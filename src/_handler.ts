/**
 * The handler core: one `(request) => Promise<Response>` function with every route of
 * `createHandler`, built on Web APIs only. Hono (and any runtime entry point) only adapts to it.
 *
 * @module
 */
import { type HandlerOptions, resolveOptions } from "./_handler-options.ts";
import { json, notAllowed, problem, readBody, TOO_LARGE } from "./_handler-http.ts";
import { cron, deadLetters, enqueue, health, status } from "./_handler-routes.ts";
import type { App } from "./app.ts";
import type { Delivery } from "./contracts.ts";
import type { Outcome } from "./executor.ts";

/** The core: answers one request. `path` is the path below the mount point (default: the URL's). */
export type HandlerCore = (request: Request, path?: string) => Promise<Response>;

const NON_RETRYABLE = { "Upstash-NonRetryable-Error": "true" };

/** Builds the core from validated options; throws `TypeError`/`RangeError` for bad ones. */
export function createCore(app: App, options: HandlerOptions = {}): HandlerCore {
  const config = resolveOptions(app, options);
  const { push, maxBodyBytes } = config;

  /** `POST /qstash`: verify the raw body, then the one executor runs the delivery. */
  async function deliver(request: Request): Promise<Response> {
    if (push === undefined) return problem(404, "NotFound", "QStash delivery is not enabled on this handler");
    const body = await readBody(request, maxBodyBytes);
    if (body === TOO_LARGE) return problem(413, "PayloadTooLarge", `body is over ${maxBodyBytes} bytes`);
    try {
      const signature = request.headers.get("upstash-signature");
      await push.verify({ signature, body, url: push.url ?? request.url });
    } catch (error) {
      return problem(401, "SignatureError", (error as Error).message);
    }
    let outcome: Outcome;
    try {
      outcome = await app.executor.process(toDelivery(body, request.headers));
    } catch (error) {
      // The outcome was not recorded: a 5xx makes QStash deliver again (its retry is the safety net).
      app.events.emit("error", { error, where: "QStash delivery" });
      const name = error instanceof Error ? error.name : "Error";
      return problem(500, name, error instanceof Error ? error.message : String(error));
    }
    return answer(outcome);
  }

  return async (request, path) => {
    const route = (path ?? new URL(request.url).pathname).replace(/\/+$/, "") || "/";
    const method = request.method.toUpperCase();
    const read = method === "GET" || method === "HEAD";
    if (route === "/qstash") return method === "POST" ? deliver(request) : notAllowed("POST");
    if (route === "/runs") return method === "POST" ? enqueue(config, request) : notAllowed("POST");
    if (route.startsWith("/runs/") && route.indexOf("/", 6) === -1) {
      if (!read) return notAllowed("GET, HEAD");
      let id: string;
      try {
        id = decodeURIComponent(route.slice(6));
      } catch {
        return problem(400, "InvalidRequest", "run id is not valid percent-encoding");
      }
      return status(app, config, request, id);
    }
    if (route === "/dead-letters") return read ? deadLetters(app, config, request) : notAllowed("GET, HEAD");
    if (route === "/health") return read ? health(app) : notAllowed("GET, HEAD");
    if (route === "/cron") {
      return method === "GET" || method === "POST" ? cron(app, config, request) : notAllowed("GET, POST");
    }
    return problem(404, "NotFound", `no route ${method} ${route}`);
  };
}

/** Status codes toward QStash: 2xx unless the run failed for good or could not run at all. */
function answer(outcome: Outcome): Response {
  switch (outcome.kind) {
    case "succeeded":
      return json(200, { outcome: outcome.kind, id: outcome.id });
    case "retrying":
    case "deferred":
      // Our own retry was re-published: QStash must not retry on top of it.
      return json(200, { outcome: outcome.kind, id: outcome.id, delayMs: outcome.delayMs });
    case "duplicate":
      return json(200, { outcome: outcome.kind, id: outcome.id, state: outcome.state });
    case "failed":
      return json(489, { outcome: outcome.kind, id: outcome.id, error: outcome.error }, NON_RETRYABLE);
    case "rejected":
      return json(489, { outcome: outcome.kind, id: outcome.id, reason: outcome.reason }, NON_RETRYABLE);
  }
}

/** A push delivery has no lease: the message id is the receipt, `Upstash-Retried` counts deliveries. */
export function toDelivery(body: string, headers: Headers): Delivery {
  const messageId = headers.get("upstash-message-id") ?? "";
  const retried = Number(headers.get("upstash-retried") ?? "0");
  let id = "";
  let queue = "default";
  try {
    // The executor decodes and validates the envelope; this only routes the delivery.
    const peek = JSON.parse(body) as { id?: unknown; queue?: unknown } | null;
    if (typeof peek?.id === "string") id = peek.id;
    if (typeof peek?.queue === "string" && peek.queue.length > 0) queue = peek.queue;
  } catch {
    // undecodable: the executor rejects it with the reason
  }
  return {
    id: id || messageId,
    queue,
    body,
    receipt: messageId || crypto.randomUUID(),
    deliveries: Number.isSafeInteger(retried) && retried >= 0 ? retried + 1 : 1,
  };
}
