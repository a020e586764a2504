/**
 * Shared fixtures of the Redis backend suites: a real redis-server (plus the Upstash REST bridge
 * in front of it), clients for both transports, and command counting from INFO commandstats.
 *
 * @module
 */
import { Redis as UpstashRedis } from "@upstash/redis";
import { Redis as IoRedis, type RedisOptions as IoRedisOptions } from "ioredis";
import { type RedisBackend, type RedisOptions, redis } from "../../adapters/redis/mod.ts";
import type { ContractSubject } from "../../testing/mod.ts";
import {
  type RedisServer,
  type StartRedisOptions,
  startRedis,
  startUpstashBridge,
  type UpstashBridge,
} from "../../dev/mod.ts";

export const TOKEN = "celeriac-test-token";

/** A redis-server with the REST bridge in front of it. */
export interface RedisRig {
  server: RedisServer;
  bridge: UpstashBridge;
  /** Clients opened through the rig; closed by `stop()`. */
  tcp(options?: IoRedisOptions): IoRedis;
  rest(options?: { token?: string; url?: string }): UpstashRedis;
  /** A fresh backend over TCP or REST with a prefix of its own. */
  backend(
    kind: Transport,
    options?: Partial<RedisOptions>,
    client?: IoRedisOptions,
  ): { backend: RedisBackend; close(): Promise<void> };
  /** Calls per Redis command since the last reset (from INFO commandstats). */
  commandStats(): Promise<Map<string, number>>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

/** How a backend talks to Redis: ioredis, @upstash/redis through the bridge, or Bun's client. */
export type Transport = "tcp" | "rest" | "bun";

/** Bun's built-in Redis client, when running on Bun. */
const BunRedis = (globalThis as { Bun?: { RedisClient?: new (url: string) => BunClient } }).Bun?.RedisClient;

interface BunClient {
  send(command: string, args: string[]): Promise<unknown>;
  duplicate(): Promise<BunClient>;
  close(): void;
}

/** The transports this runtime can test: Bun's own client only on Bun. */
export const TRANSPORTS: Transport[] = BunRedis === undefined ? ["tcp", "rest"] : ["tcp", "rest", "bun"];

let prefixes = 0;

/** A prefix no other test uses. */
export function freshPrefix(): string {
  return `t${Date.now().toString(36)}${(++prefixes).toString(36)}`;
}

/** Options of an ioredis client that fail fast while Redis is away and reconnect quickly. */
export const TCP_OPTIONS: IoRedisOptions = {
  maxRetriesPerRequest: 20,
  connectTimeout: 2_000,
  retryStrategy: () => 50,
};

/** Starts a redis-server and the bridge. */
export async function startRig(options: StartRedisOptions = {}): Promise<RedisRig> {
  const server = await startRedis(options);
  const bridge = await startUpstashBridge({ redisUrl: server.url, token: TOKEN });
  const open = new Set<IoRedis>();
  const tcp = (extra: IoRedisOptions = {}) => {
    const client = new IoRedis(server.url, { ...TCP_OPTIONS, ...extra });
    client.on("error", () => {});
    open.add(client);
    return client;
  };
  const rest = (extra: { token?: string; url?: string } = {}) =>
    new UpstashRedis({ url: extra.url ?? bridge.url, token: extra.token ?? TOKEN, enableTelemetry: false });
  const bun = (): BunClient => {
    if (BunRedis === undefined) throw new Error("Bun's RedisClient is only available on Bun");
    return new BunRedis(server.url);
  };
  const admin = tcp();
  return {
    server,
    bridge,
    tcp,
    rest,
    backend(kind, options = {}, clientOptions = {}) {
      const client = kind === "tcp" ? tcp(clientOptions) : kind === "rest" ? rest() : bun();
      const backend = redis({ client, prefix: freshPrefix(), ...options });
      return {
        backend,
        async close() {
          await backend.close();
          if (client instanceof IoRedis) {
            client.disconnect();
            open.delete(client);
          } else if (kind === "bun") {
            (client as BunClient).close();
          }
        },
      };
    },
    async commandStats() {
      const info = String(await admin.info("commandstats"));
      const out = new Map<string, number>();
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        out.set(match[1]!, Number(match[2]));
      }
      return out;
    },
    async resetStats() {
      await admin.config("RESETSTAT");
    },
    async stop() {
      for (const client of open) client.disconnect();
      open.clear();
      await bridge.close();
      await server.stop();
    },
  };
}

/** A contract subject over one transport of a rig started later (by a `before` hook). */
export function subject(rig: () => RedisRig, kind: Transport): () => Promise<ContractSubject> {
  return () => Promise.resolve(rig().backend(kind));
}

/** Resolves once `check` holds, polling every 10 ms, or fails after `ms`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
