import { EdgeRuntime, runServer } from "edge-runtime";
import { endToEnd } from "./_e2e.ts";
import { bundle, freePort } from "./_support.ts";

// The handler bundled for Vercel's Edge runtime (`edge-light`), served by Vercel's edge-runtime.
endToEnd("handler in Vercel edge-runtime", async (envFor) => {
  const initialCode = await bundle("./_edge-entry.ts", {
    format: "iife",
    conditions: ["edge-light", "worker", "browser"],
  });
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const env = envFor(origin);
  const runtime = new EdgeRuntime({
    initialCode,
    extend: (context) => Object.assign(context, { CELERIAC_ENV: env }),
  });
  const server = await runServer({ runtime, host: "127.0.0.1", port });
  return { origin, close: () => server.close() };
});
