/**
 * celeriac/dev: the loopback servers that `npm run dev`, the benchmarks and celeriac's own tests
 * run against, so an app can be developed and tested without an Upstash account or a network:
 *
 * - {@linkcode startQStashEmulator}: a QStash v2 API on 127.0.0.1 that the real `@upstash/qstash`
 *   `Client` publishes to, and that pushes signed deliveries (with retries, backoff, callbacks and
 *   a dead-letter queue) on an injectable clock; {@linkcode signQStashDelivery} signs a request
 *   the way QStash does.
 * - {@linkcode startUpstashBridge}: the Upstash Redis REST protocol on 127.0.0.1, forwarding every
 *   command to a real `redis-server`, for the `@upstash/redis` client.
 * - {@linkcode startRedis}: launches a throwaway `redis-server` (loopback, free port, temp dir)
 *   that can be restarted, crashed and cleaned up.
 *
 * Node-only tooling: it uses `node:http`, `node:net` and `node:child_process` (Deno and Bun
 * implement them, so it runs there too, but not on edge runtimes). The core never imports it and
 * `celeriac`'s root entry does not re-export it. The bridge needs the optional peer dependency
 * `ioredis`; `startRedis` needs `redis-server` on the PATH.
 *
 * @example
 * ```ts
 * import { startRedis, startUpstashBridge } from "celeriac/dev";
 * import { Redis } from "@upstash/redis";
 *
 * const server = await startRedis();
 * const bridge = await startUpstashBridge({ redisUrl: server.url, token: "dev-token" });
 * const redis = new Redis({ url: bridge.url, token: bridge.token });
 * await redis.set("greeting", "hello");
 * await bridge.close();
 * await server.stop();
 * ```
 *
 * @module
 */
export { type QStashEmulator, type QStashEmulatorOptions, startQStashEmulator } from "./qstash/emulator.ts";
export { type SignQStashDeliveryArgs, signQStashDelivery } from "./qstash/sign.ts";
export type {
  EmulatorAttempt,
  EmulatorFlowControl,
  EmulatorMessage,
  EmulatorMessageState,
  EmulatorStats,
} from "./qstash/types.ts";
export { type RedisServer, type StartRedisOptions, startRedis } from "./redis-server.ts";
export { startUpstashBridge, type UpstashBridge, type UpstashBridgeOptions } from "./upstash-bridge.ts";
export { type RedisCluster, type StartRedisClusterOptions, startRedisCluster } from "./redis-cluster.ts";
