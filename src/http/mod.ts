/**
 * celeriac/handler: the HTTP handler without a framework — one `(request) => Promise<Response>`
 * function with every route of `createHandler` (push delivery, the producer API, health, cron),
 * for a Next.js route handler, `Deno.serve`, `Bun.serve` or a Worker's `fetch`. `celeriac/hono`
 * wraps the same core in a Hono app.
 *
 * @example
 * ```ts
 * import { createRequestHandler } from "celeriac/handler";
 * const handle = createRequestHandler(app, { token: process.env.CELERIAC_TOKEN, basePath: "/api/tasks" });
 * Deno.serve(handle);
 * // Next.js (app/api/tasks/[...path]/route.ts): export const POST = handle; export const GET = handle;
 * ```
 *
 * @module
 */
import type { App } from "../app.ts";
import { createCore } from "./handler.ts";
import type { HandlerOptions } from "./options.ts";

export type { EnqueueableTask, HandlerOptions } from "./options.ts";

/**
 * Options of {@link createRequestHandler}: the handler's options and where it is mounted.
 *
 * @example
 * ```ts
 * const options: RequestHandlerOptions = { token: "…", basePath: "/tasks" };
 * ```
 */
export interface RequestHandlerOptions extends HandlerOptions {
  /** The path the routes are mounted under (`/tasks` serves `/tasks/runs`, …). @default "" */
  basePath?: string;
}

/**
 * Creates the framework-free handler of an app; options are validated here (a bad option throws
 * at once, naming it). A request outside `basePath` answers 404.
 *
 * @example
 * ```ts
 * const handle = createRequestHandler(app, { token: env.CELERIAC_TOKEN });
 * export default { fetch: handle };
 * ```
 */
export function createRequestHandler(
  app: App,
  options: RequestHandlerOptions = {},
): (request: Request) => Promise<Response> {
  const { basePath = "", ...rest } = options;
  if (typeof basePath !== "string" || (basePath !== "" && !/^\/\S*[^/]$/.test(basePath))) {
    throw new TypeError(`basePath must be "" or a path like "/tasks", got ${JSON.stringify(basePath)}`);
  }
  const core = createCore(app, rest);
  return (request) => {
    const path = new URL(request.url).pathname;
    if (basePath === "") return core(request, path);
    if (path !== basePath && !path.startsWith(`${basePath}/`)) {
      return Promise.resolve(
        Response.json({ error: "NotFound", message: `no route below ${basePath}` }, { status: 404 }),
      );
    }
    return core(request, path.slice(basePath.length) || "/");
  };
}
