/**
 * The test worker, bundled by esbuild and run in workerd (miniflare) exactly as a deployed
 * Cloudflare Worker would run: configuration arrives as `env` bindings on the first request.
 *
 * @module
 */
import { buildApp, type TestEnv } from "./_app.ts";

let handler: ReturnType<typeof buildApp>["handler"] | undefined;

export default {
  fetch(request: Request, env: TestEnv, ctx: unknown): Response | Promise<Response> {
    handler ??= buildApp(env).handler;
    return handler.fetch(request, env, ctx as never);
  },
};
