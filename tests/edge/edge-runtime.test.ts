import { createServer } from "node:http";
import { createHandler, EdgeRuntime } from "edge-runtime";
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
  // edge-runtime's own server (runServer) waits on close for every keep-alive connection to end,
  // which some clients hold open for as long as they like: this one drops them.
  const { handler, waitUntil } = createHandler({ runtime });
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    origin,
    close: async () => {
      await waitUntil();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
});
