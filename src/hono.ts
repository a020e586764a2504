/**
 * celeriac/hono: `createHandler(app)` returns a Hono app over the framework-free handler core
 * (`celeriac/handler`): push deliveries and a small producer API. Use it as `export default` on
 * Cloudflare Workers, Deno Deploy and Bun, with `@hono/node-server` on Node, or mount it in a
 * larger Hono app with `site.route("/tasks", handler)`.
 *
 * Routes, relative to where the handler is mounted:
 *
 * | route | what | answers |
 * | --- | --- | --- |
 * | `POST /qstash` (each push receiver's path) | a push delivery, verified by its receiver (QStash: `Upstash-Signature`) | 200, 401, 413, 489, 500 |
 * | `POST /runs` | enqueue `{ task, input, delayMs?, at?, priority?, queue?, idempotencyKey?, id? }` (bearer token) | 202 `{ id }`, 400, 401, 404, 413, 503 |
 * | `GET /runs/:id` | the run's record: state, attempt, progress, result, error (bearer token; `?queue=` optional) | 200, 401, 404 |
 * | `GET /dead-letters?limit=` | dead letters, newest first, with the reason (bearer token) | 200, 400, 401 |
 * | `GET /health` | store and broker reachable, with latency | 200, 503 |
 * | `POST /cron` (or `GET`) | one tick of `app.schedule()` schedules, for a platform cron or a QStash schedule (a push receiver's signature, or bearer `token`/`cronSecret`) | 200, 401, 500 |
 *
 * What a push delivery answers is the receiver's to say; for QStash see `qstashReceiver`.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { fromEnv } from "celeriac/adapters/qstash";
 * import { createHandler } from "celeriac/hono";
 *
 * const app = createApp({ broker: fromEnv(env, { url: "https://tasks.example.com/qstash" }) });
 * app.task({ name: "hello", run: () => "world" });
 * export default createHandler(app, { token: env.CELERIAC_TOKEN });
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import { basePath } from "hono/route";
import type { App } from "./app.ts";
import { createCore } from "./http/handler.ts";
import type { HandlerOptions } from "./http/options.ts";

export type { EnqueueableTask, HandlerOptions } from "./http/options.ts";

/**
 * Options of {@link createHandler}: the handler's, and a dashboard to mount.
 *
 * @example
 * ```ts
 * import { dashboard } from "celeriac/dashboard";
 * createHandler(app, { token: env.CELERIAC_TOKEN, dashboard: dashboard(app, { token: env.DASHBOARD_TOKEN }) });
 * ```
 */
export interface CreateHandlerOptions extends HandlerOptions {
  /** A dashboard from `celeriac/dashboard`, served at `/dashboard` below the handler's mount point. */
  dashboard?: Hono | undefined;
}

/**
 * Creates the HTTP handler of an app: a Hono app with the routes listed in this module's docs.
 * Options are validated here (a bad option throws at once, naming it). Push deliveries are
 * verified by their receiver over the raw body, then the app's one executor runs the task.
 *
 * @example
 * ```ts
 * // Cloudflare Workers, Deno Deploy, Bun: the Hono app is the default export.
 * export default createHandler(app, { token: env.CELERIAC_TOKEN });
 *
 * // Mounted under a path of a larger Hono app (the broker's url then ends in /tasks/qstash).
 * const site = new Hono();
 * site.route("/tasks", createHandler(app));
 * ```
 */
export function createHandler(app: App, options: CreateHandlerOptions = {}): Hono {
  const { dashboard, ...rest } = options;
  if (dashboard !== undefined && !(dashboard instanceof Hono)) {
    throw new TypeError("dashboard must be the Hono app dashboard(app, options) returns");
  }
  const core = createCore(app, rest);
  const hono = new Hono();
  if (dashboard !== undefined) hono.route("/dashboard", dashboard);
  // Every request under the mount point goes to the core, with its path below the mount point.
  hono.all("*", (c) => {
    const base = basePath(c);
    const path = base === "/" || base === "" ? c.req.path : c.req.path.slice(base.length);
    return core(c.req.raw, path, executionContext(c));
  });
  return hono;
}

/** The platform's execution context (Workers, Vercel), or undefined where Hono has none. */
function executionContext(c: { executionCtx: { waitUntil(p: Promise<unknown>): void } }) {
  try {
    return c.executionCtx; // a getter that throws outside such platforms
  } catch {
    return undefined;
  }
}
