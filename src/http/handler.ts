/**
 * The handler core: one `(request) => Promise<Response>` function with every route of
 * `createHandler`, built on Web APIs only. Hono (and any runtime entry point) only adapts to it.
 * Push delivery is whatever push receivers the handler has (see `PushReceiver`): the core reads
 * the body once, lets the receiver verify it, runs the delivery and answers what the receiver
 * says; it knows nothing of any provider.
 *
 * @module
 */
import { type App, internals } from "../app.ts";
import type { PushReceiver } from "../contracts.ts";
import { notAllowed, problem, readBody, TOO_LARGE, utf8 } from "./_http.ts";
import { type HandlerOptions, resolveOptions } from "./options.ts";
import { cron, deadLetters, enqueue, health, status } from "./routes.ts";
import { metrics } from "./_ops-routes.ts";
import { PushReporter, type WaitUntil } from "./_push-report.ts";

/**
 * The core: answers one request. `path` is the path below the mount point (default: the URL's);
 * `ctx` the platform's execution context, when it has `waitUntil`.
 */
export type HandlerCore = (request: Request, path?: string, ctx?: WaitUntil) => Promise<Response>;

/** Builds the core from validated options; throws `TypeError`/`RangeError` for bad ones. */
export function createCore(app: App, options: HandlerOptions = {}): HandlerCore {
  const config = resolveOptions(app, options);
  const { maxBodyBytes } = config;
  const { executor, events, stats } = internals(app);
  const ops = app.store.ops;
  const reporter =
    ops === undefined || config.push.size === 0
      ? undefined
      : new PushReporter(ops, app.clock, events, stats, config.reportMs);

  /** A push delivery: verify the raw body, then the one executor runs it. */
  async function deliver(receiver: PushReceiver, request: Request, ctx?: WaitUntil): Promise<Response> {
    const body = await readBody(request, maxBodyBytes);
    if (body === TOO_LARGE) return problem(413, "PayloadTooLarge", `body is over ${maxBodyBytes} bytes`);
    try {
      await receiver.verify(request, body, "delivery");
    } catch (error) {
      return problem(401, "SignatureError", (error as Error).message);
    }
    // Verified over the raw bytes; a body that is not UTF-8 is dead-lettered, never run.
    const { text, valid } = utf8(body);
    const delivery = receiver.delivery(request, text);
    if (!valid) delivery.malformed = "the body is not valid UTF-8";
    try {
      const outcome = await executor.process(delivery);
      reporter?.served(delivery.queue, outcome, ctx);
      return receiver.respond(outcome);
    } catch (error) {
      // The outcome was not recorded: the receiver answers so that the provider delivers again.
      events.emit("error", { error, where: `push delivery (${receiver.path})` });
      return receiver.failed(error);
    }
  }

  return async (request, path, ctx) => {
    const route = (path ?? new URL(request.url).pathname).replace(/\/+$/, "") || "/";
    const method = request.method.toUpperCase();
    const read = method === "GET" || method === "HEAD";
    const receiver = config.push.get(route);
    if (receiver !== undefined)
      return method === "POST" ? deliver(receiver, request, ctx) : notAllowed("POST");
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
    if (route === "/health") return read ? health(app, config) : notAllowed("GET, HEAD");
    if (route === "/metrics") return read ? metrics(app, config, request) : notAllowed("GET, HEAD");
    if (route === "/cron") {
      return method === "GET" || method === "POST" ? cron(app, config, request) : notAllowed("GET, POST");
    }
    return problem(404, "NotFound", `no route ${method} ${route}`);
  };
}
