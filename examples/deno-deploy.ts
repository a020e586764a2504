/**
 * A Deno Deploy entry (also `deno serve -A examples/deno-deploy.ts` locally): QStash pushes tasks
 * to it, Upstash Redis keeps results. Set QSTASH_TOKEN, QSTASH_CURRENT_SIGNING_KEY,
 * QSTASH_NEXT_SIGNING_KEY, CELERIAC_DELIVERY_URL (https://<project>.deno.dev/qstash),
 * CELERIAC_TOKEN, UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN in the project settings.
 */
import { Redis } from "@upstash/redis";
import * as v from "valibot";
import { fromEnv } from "celeriac/adapters/qstash";
import { redis } from "celeriac/adapters/redis";
import { createApp } from "celeriac";
import { createHandler } from "celeriac/hono";

declare const Deno: { env: { toObject(): Record<string, string> } };
const env = Deno.env.toObject();

const store = redis({
  client: new Redis({ url: env.UPSTASH_REDIS_REST_URL!, token: env.UPSTASH_REDIS_REST_TOKEN! }),
});
const app = createApp({ broker: fromEnv(env), store });
const thumbnail = app.task({
  name: "image.thumbnail",
  input: v.object({ url: v.pipe(v.string(), v.url()), width: v.pipe(v.number(), v.integer()) }),
  run: async ({ url, width }) => ({ thumbnail: `${url}?w=${width}` }), // the real work goes here
});

export default createHandler(app, { token: env.CELERIAC_TOKEN, tasks: [thumbnail] });
