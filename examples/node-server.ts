/**
 * The handler on Node with @hono/node-server: `npx tsx examples/node-server.ts`. QStash pushes
 * tasks to http(s)://<host>/qstash; Upstash Redis keeps results. Configure with the QSTASH_*,
 * CELERIAC_DELIVERY_URL, CELERIAC_TOKEN and UPSTASH_REDIS_REST_* variables.
 */
import { serve } from "@hono/node-server";
import { Redis } from "@upstash/redis";
import * as v from "valibot";
import { fromEnv } from "celeriac/adapters/qstash";
import { redis } from "celeriac/adapters/redis";
import { createApp } from "celeriac";
import { createHandler } from "celeriac/hono";

const env = process.env;
const store = redis({
  client: new Redis({ url: env.UPSTASH_REDIS_REST_URL!, token: env.UPSTASH_REDIS_REST_TOKEN! }),
});
const app = createApp({ broker: fromEnv(env), store });
const deliver = app.task({
  name: "webhook.deliver",
  input: v.object({ url: v.pipe(v.string(), v.url()), payload: v.unknown() }),
  retry: { maxAttempts: 8, baseMs: 5_000, maxMs: 3_600_000 },
  run: async ({ url, payload }) => {
    const res = await fetch(url, { method: "POST", body: JSON.stringify(payload) });
    if (!res.ok) throw new Error(`webhook answered ${res.status}`);
    return { status: res.status };
  },
});

const handler = createHandler(app, { token: env.CELERIAC_TOKEN, tasks: [deliver] });
serve({ fetch: handler.fetch, port: Number(env.PORT ?? 3000) }, (info) => {
  console.log(`celeriac handler on http://localhost:${info.port} (QStash delivers to /qstash)`);
});
