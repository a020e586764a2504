/**
 * A Cloudflare Worker running celeriac tasks that QStash pushes to it; results, idempotency and
 * schedules live in Upstash Redis (REST). No long-lived process anywhere.
 *
 *   cd examples/cloudflare
 *   npx wrangler secret put QSTASH_TOKEN               # and the other secrets in wrangler.toml
 *   npx wrangler deploy
 *   curl -X POST https://celeriac-tasks.<you>.workers.dev/runs -H "authorization: Bearer $CELERIAC_TOKEN" \
 *        -d '{"task":"email.welcome","input":{"to":"ada@example.com"}}'
 *
 * Bundled as wrangler bundles it, this file runs in workerd in the test suite (tests/edge).
 */
import { Redis } from "@upstash/redis";
import type { ExecutionContext, Hono } from "hono";
import * as v from "valibot";
import { fromEnv } from "celeriac/adapters/qstash";
import { redis } from "celeriac/adapters/redis";
import { type App, createApp, cronTrigger } from "celeriac";
import { createHandler } from "celeriac/hono";

/** Bindings: [vars] and secrets of wrangler.toml. */
export interface Env {
  QSTASH_TOKEN: string;
  QSTASH_CURRENT_SIGNING_KEY: string;
  QSTASH_NEXT_SIGNING_KEY: string;
  /** Optional: another QStash API (a region, or a local emulator). */
  QSTASH_URL?: string;
  /** This Worker's public delivery URL: https://<name>.<you>.workers.dev/qstash */
  CELERIAC_DELIVERY_URL: string;
  /** Bearer token of the enqueue/status API. */
  CELERIAC_TOKEN: string;
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
}

function build(env: Env): { app: App; handler: Hono } {
  const store = redis({
    client: new Redis({ url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN }),
  });
  const app = createApp({ broker: fromEnv(env), store });
  const welcome = app.task({
    name: "email.welcome",
    input: v.object({ to: v.pipe(v.string(), v.email()) }),
    retry: { maxAttempts: 5, baseMs: 10_000 },
    idempotencyKey: ({ to }) => `welcome:${to}`,
    run: async ({ to }) => ({ sent: to }), // call your email API here
  });
  app.schedule("digest", { cron: "0 8 * * *", task: welcome, input: { to: "team@example.com" } });
  return { app, handler: createHandler(app, { token: env.CELERIAC_TOKEN, tasks: [welcome] }) };
}

let built: { app: App; handler: Hono } | undefined;

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    built ??= build(env);
    return built.handler.fetch(request, env, ctx);
  },
  // Cron Triggers (wrangler.toml): each tick enqueues the schedules that are due, exactly once.
  scheduled(event: unknown, env: Env, ctx: ExecutionContext): Promise<void> {
    built ??= build(env);
    return cronTrigger(built.app)(event, env, ctx);
  },
};
