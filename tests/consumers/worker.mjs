// An edge consumer: a Cloudflare Worker on the handler with the QStash broker and a Redis store
// over REST, bundled by esbuild for workerd from the installed package.
import { Redis } from "@upstash/redis";
import { createApp } from "celeriac";
import { qstash } from "celeriac/adapters/qstash";
import { redis } from "celeriac/adapters/redis";
import { createHandler } from "celeriac/hono";

let handler;

export default {
  fetch(request, env) {
    if (handler === undefined) {
      const store = redis({ client: new Redis({ url: "http://127.0.0.1:9", token: "t" }) });
      const broker = qstash({
        token: "t",
        url: "https://tasks.example.com/qstash",
        currentSigningKey: "sig_current",
        nextSigningKey: "sig_next",
      });
      const app = createApp({ broker, store });
      app.task({ name: "hello", run: () => "world" });
      handler = createHandler(app, { token: env.TOKEN });
    }
    return handler.fetch(request, env);
  },
};
