/**
 * Plumbing of the handler suites: a server on the runtime running the test (Deno.serve,
 * Bun.serve or @hono/node-server), free loopback ports, and esbuild bundles of the test worker
 * as a deployed Worker / edge function would be built.
 *
 * @module
 */
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/** A server listening on 127.0.0.1. */
export interface Listening {
  /** `http://127.0.0.1:PORT`. */
  origin: string;
  /** Which server it is, for test names. */
  runtime: string;
  close(): Promise<void>;
}

type Fetch = (request: Request) => Response | Promise<Response>;

interface DenoLike {
  serve(
    options: { port: number; hostname: string; onListen?: () => void },
    handler: Fetch,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}
interface BunLike {
  serve(options: { port: number; hostname: string; fetch: Fetch }): {
    port: number;
    stop(force?: boolean): unknown;
  };
}

/** The runtime running this file. */
export function runtimeName(): "deno" | "bun" | "node" {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return g.Deno ? "deno" : g.Bun ? "bun" : "node";
}

/** Serves `fetch` on 127.0.0.1 with the running runtime's own HTTP server (`port` 0: a free one). */
export async function serveHere(fetch: Fetch, port = 0): Promise<Listening> {
  const g = globalThis as unknown as { Deno?: DenoLike; Bun?: BunLike };
  if (g.Deno) {
    const server = g.Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, fetch);
    return {
      origin: `http://127.0.0.1:${server.addr.port}`,
      runtime: "Deno.serve",
      close: () => server.shutdown(),
    };
  }
  if (g.Bun) {
    const server = g.Bun.serve({ port, hostname: "127.0.0.1", fetch });
    return {
      origin: `http://127.0.0.1:${server.port}`,
      runtime: "Bun.serve",
      close: async () => {
        await server.stop(true);
      },
    };
  }
  const { serve } = await import("@hono/node-server");
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch, port, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : 0;
  return {
    origin: `http://127.0.0.1:${bound}`,
    runtime: "@hono/node-server",
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/** A loopback port that was free a moment ago (for servers that must know their URL up front). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Bundles a test entry for an edge platform with esbuild, as `wrangler deploy` or Vercel would:
 * one file, browser platform, the platform's export conditions, no Node built-ins.
 */
export async function bundle(
  entry: string,
  options: { format: "esm" | "iife"; conditions: string[] },
): Promise<string> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true,
    write: false,
    format: options.format,
    platform: "browser",
    conditions: options.conditions,
    target: "es2022",
    logLevel: "silent",
  });
  const [file] = result.outputFiles;
  if (file === undefined) throw new Error(`esbuild produced nothing for ${entry}`);
  return file.text;
}
