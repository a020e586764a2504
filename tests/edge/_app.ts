/**
 * The app every end-to-end handler suite runs: the same module on Node, Deno, Bun, and bundled
 * into workerd and edge-runtime — QStash (the emulator) as broker, the Redis store over the
 * Upstash REST protocol (a real redis-server behind the loopback bridge). Configuration comes
 * from an env object (Workers' `env`), so the bundle has no hidden globals.
 *
 * @module
 */
import { Redis } from "@upstash/redis";
import * as v from "valibot";
import { fromEnv } from "../../adapters/qstash/mod.ts";
import { redis } from "../../adapters/redis/mod.ts";
import type { Store } from "../../backend.ts";
import { type App, createApp, NonRetryableError } from "../../mod.ts";
import { dashboard } from "../../src/dashboard/mod.ts";
import { createHandler } from "../../src/hono.ts";

/** What the handler under test is configured with (all strings, as Workers bindings are). */
export interface TestEnv {
  QSTASH_TOKEN: string;
  /** The QStash API: the emulator. */
  QSTASH_URL: string;
  QSTASH_CURRENT_SIGNING_KEY: string;
  QSTASH_NEXT_SIGNING_KEY: string;
  /** The handler's own public delivery URL (`…/qstash`). */
  CELERIAC_DELIVERY_URL: string;
  /** Bearer token of the producer API. */
  CELERIAC_TOKEN: string;
  /** Body limit of the handler, in bytes. */
  MAX_BODY_BYTES: string;
  /** The store: Redis through the Upstash REST bridge (`@upstash/redis`), under this prefix. */
  REDIS_REST_URL: string;
  REDIS_REST_TOKEN: string;
  REDIS_PREFIX: string;
}

/** The test's signing keys and tokens. */
export const KEYS = {
  token: "qstash-test-token",
  current: "sig_current_edge_tests",
  next: "sig_next_edge_tests",
  producer: "producer-secret-token",
  redis: "redis-rest-token",
} as const;

/** Body limit of the handler under test. */
export const MAX_BODY_BYTES = 16_384;

/** Calls of each task in this isolate (in-process suites read it to prove nothing ran). */
export const calls: Record<string, number> = {};

/** The Redis store over REST, as an edge deployment pairs it with QStash. */
export function restStore(env: TestEnv): Store {
  const client = new Redis({ url: env.REDIS_REST_URL, token: env.REDIS_REST_TOKEN, enableTelemetry: false });
  return redis({ client, prefix: env.REDIS_PREFIX });
}

/** Builds the app and its handler from an env; `store` replaces the Redis store. */
export function buildApp(
  env: TestEnv,
  store?: Store,
): { app: App; handler: ReturnType<typeof createHandler> } {
  const app = createApp({
    broker: fromEnv(env, { url: env.CELERIAC_DELIVERY_URL }),
    store: store ?? restStore(env),
  });
  const count = (name: string) => {
    calls[name] = (calls[name] ?? 0) + 1;
  };
  const echo = app.task({
    name: "echo",
    input: v.object({ text: v.string() }),
    run: ({ text }, ctx) => {
      count("echo");
      return { echoed: text, attempt: ctx.attempt };
    },
  });
  const flaky = app.task({
    name: "flaky",
    input: v.object({ failures: v.pipe(v.number(), v.integer()) }),
    retry: { maxAttempts: 3, backoff: "fixed", baseMs: 1_000, jitter: "none" },
    run: ({ failures }, ctx) => {
      count("flaky");
      if (ctx.attempt <= failures) throw new Error(`boom on attempt ${ctx.attempt}`);
      return { attempts: ctx.attempt };
    },
  });
  const doomed = app.task({
    name: "doomed",
    run: () => {
      count("doomed");
      throw new NonRetryableError("account closed");
    },
  });
  const email = app.task({
    name: "email.send",
    input: v.object({ to: v.pipe(v.string(), v.email()) }),
    run: ({ to }) => {
      count("email.send");
      return { sent: to };
    },
  });
  // Ticked through POST /cron (a platform cron or a QStash schedule).
  app.schedule("heartbeat", { cron: "* * * * *", task: echo, input: { text: "tick" } });
  // Registered, but not offered to producers over HTTP.
  app.task({ name: "internal", run: () => count("internal") });
  const handler = createHandler(app, {
    token: env.CELERIAC_TOKEN,
    tasks: [echo, flaky, doomed, email],
    maxBodyBytes: Number(env.MAX_BODY_BYTES),
    dashboard: dashboard(app, { token: env.CELERIAC_TOKEN }),
  });
  return { app, handler };
}
