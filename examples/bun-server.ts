/**
 * The handler on Bun's own server: `bun examples/bun-server.ts` (Bun serves the default export).
 * QStash pushes tasks to http(s)://<host>/qstash; Upstash Redis keeps results. Configure with the
 * QSTASH_*, CELERIAC_DELIVERY_URL, CELERIAC_TOKEN and UPSTASH_REDIS_REST_* variables.
 */
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
const render = app.task({
  name: "report.render",
  input: v.object({ month: v.pipe(v.string(), v.regex(/^\d{4}-\d{2}$/)) }),
  timeoutMs: 60_000,
  run: async ({ month }) => ({ url: `https://reports.example.com/${month}.pdf` }),
});

const handler = createHandler(app, { token: env.CELERIAC_TOKEN, tasks: [render] });
export default { port: Number(env.PORT ?? 3000), fetch: handler.fetch };
