/**
 * The QStash push receiver: what `createHandler` serves on `POST /qstash`. It verifies the
 * `Upstash-Signature` over the raw body (see `qstashVerifier`), turns the request into a delivery
 * (a push delivery has no lease: the message id is its receipt, `Upstash-Retried` counts
 * deliveries), and maps the executor's outcome to what QStash understands: 2xx for done (a
 * success, celeriac's own retry re-published, a duplicate), 489 with
 * `Upstash-NonRetryable-Error: true` for a run that failed for good or cannot run at all, 500
 * when the outcome was not recorded (QStash's retry is the safety net). A run whose rate limit
 * QStash does not hold (its concurrency limit has another key and took the message's one
 * flow-control key) carries it in the delivery (`rateLimit`), for the executor to enforce.
 *
 * @module
 */
import { type Delivery, limitsOf, type Outcome, type PushReceiver, type PushRoute } from "../../backend.ts";
import { rateAtDelivery } from "./_flow.ts";
import { qstashVerifier, type VerifierOptions } from "./_verify.ts";

/**
 * Options of {@link qstashReceiver}.
 *
 * @example
 * ```ts
 * const options: QStashReceiverOptions = { currentSigningKey, nextSigningKey, url: "https://tasks.example.com/qstash" };
 * ```
 */
export interface QStashReceiverOptions extends VerifierOptions {
  /**
   * The public URL QStash delivers to; the signature's `sub` claim must equal it exactly. A
   * QStash schedule calling `/cron` is checked against the sibling URL ending in `/cron`. Required:
   * the incoming request's own URL comes from its Host header, which the sender chooses.
   */
  url?: string | undefined;
  /** The route below the handler's mount point. @default "/qstash" */
  path?: string;
}

const JSON_HEADERS: HeadersInit = { "content-type": "application/json; charset=utf-8" };
const FAILED_HEADERS: HeadersInit = { ...JSON_HEADERS, "Upstash-NonRetryable-Error": "true" };

function json(status: number, body: string, headers: HeadersInit = JSON_HEADERS): Response {
  return new Response(body, { status, headers });
}

/**
 * A push receiver for QStash deliveries, to pass as `createHandler(app, { push })` (a `qstash()`
 * broker with signing keys makes one by itself).
 *
 * @example
 * ```ts
 * import { qstashReceiver } from "celeriac/adapters/qstash";
 * import { createHandler } from "celeriac/hono";
 * export default createHandler(app, {
 *   push: qstashReceiver({ currentSigningKey, nextSigningKey, url: "https://tasks.example.com/qstash" }),
 * });
 * ```
 */
export function qstashReceiver(options: QStashReceiverOptions): PushReceiver {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("qstashReceiver options must be an object");
  }
  const { url, path = "/qstash" } = options;
  // The token's `sub` must name this endpoint; the request's own URL (from its Host header) is
  // the sender's to choose, so it never stands in for the configured one.
  if (url === undefined) {
    throw new TypeError(
      "qstashReceiver needs url: the public URL QStash delivers to (the signature's sub claim must equal it)",
    );
  }
  if (!URL.canParse(url)) {
    throw new TypeError(`qstash url must be an absolute URL, got ${JSON.stringify(url)}`);
  }
  const keys = { currentSigningKey: options.currentSigningKey, nextSigningKey: options.nextSigningKey };
  const tolerance = options.clockToleranceSec;
  const verify = qstashVerifier(tolerance === undefined ? keys : { ...keys, clockToleranceSec: tolerance });
  const cronUrl = new URL("cron", url).href;
  return {
    path,
    signs: (request) => request.headers.has("upstash-signature"),
    verify(request: Request, body: Uint8Array, route: PushRoute) {
      const signature = request.headers.get("upstash-signature");
      return verify({ signature, body, url: route === "cron" ? cronUrl : url });
    },
    delivery: (request, body) => toDelivery(body, request.headers),
    respond: answer,
    failed(error) {
      const name = error instanceof Error ? error.name : "Error";
      return json(
        500,
        JSON.stringify({ error: name, message: error instanceof Error ? error.message : String(error) }),
      );
    },
  };
}

/**
 * Status codes toward QStash: 2xx unless the run failed for good or could not run at all. The
 * bodies are small JSON texts built directly (this is the answer to every delivery).
 */
function answer(outcome: Outcome): Response {
  const id = JSON.stringify(outcome.id);
  switch (outcome.kind) {
    case "succeeded":
      return json(200, `{"outcome":"succeeded","id":${id}}`);
    case "retrying":
    case "deferred":
      // Our own retry was re-published: QStash must not retry on top of it.
      return json(200, `{"outcome":"${outcome.kind}","id":${id},"delayMs":${outcome.delayMs}}`);
    case "duplicate":
      return json(200, `{"outcome":"duplicate","id":${id},"state":${JSON.stringify(outcome.state)}}`);
    case "expired":
      // Ended for good without running: QStash must not deliver it again.
      return json(200, `{"outcome":"expired","id":${id},"expiresAt":${outcome.expiresAt}}`);
    case "failed":
      return json(
        489,
        JSON.stringify({ outcome: outcome.kind, id: outcome.id, error: outcome.error }),
        FAILED_HEADERS,
      );
    case "rejected":
      return json(
        489,
        JSON.stringify({ outcome: outcome.kind, id: outcome.id, reason: outcome.reason }),
        FAILED_HEADERS,
      );
  }
}

/**
 * A push delivery has no lease: the message id is the receipt, `Upstash-Retried` counts
 * deliveries. A rate limit that QStash's flow control does not hold is the executor's to enforce.
 */
function toDelivery(body: string, headers: Headers): Delivery {
  const messageId = headers.get("upstash-message-id") ?? "";
  const retried = Number(headers.get("upstash-retried") ?? "0");
  let id = "";
  let queue = "default";
  let parsed: unknown;
  let meta: Record<string, unknown> | undefined;
  try {
    // Parsed once, here, to route the delivery; the executor validates this value.
    parsed = JSON.parse(body);
    const peek = parsed as { id?: unknown; queue?: unknown; meta?: unknown } | null;
    if (typeof peek?.id === "string") id = peek.id;
    if (typeof peek?.queue === "string" && peek.queue.length > 0) queue = peek.queue;
    if (typeof peek?.meta === "object" && peek.meta !== null) meta = peek.meta as Record<string, unknown>;
  } catch {
    // undecodable: the executor rejects it with the reason (it parses `body` itself)
  }
  const delivery: Delivery = {
    id: id || messageId,
    queue,
    body,
    receipt: messageId || crypto.randomUUID(),
    deliveries: Number.isSafeInteger(retried) && retried >= 0 ? retried + 1 : 1,
  };
  if (parsed !== undefined) delivery.parsed = parsed;
  // The rate limit QStash did not take (it took the concurrency limit's key): the handler's.
  const rate = rateAtDelivery(limitsOf(meta));
  if (rate !== undefined) delivery.rateLimit = rate;
  return delivery;
}
