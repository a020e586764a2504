/**
 * Starts a real Redis Cluster for tests and benchmarks: `masters` redis-server processes with
 * `--cluster-enabled yes` on free loopback ports, joined by `redis-cli --cluster create`, ready
 * once every node reports `cluster_state:ok`. The same `redis-server` package as a single node.
 *
 * @module
 */
import { execFile } from "node:child_process";
import { type RedisServer, startRedis } from "./redis-server.ts";

/** Options for {@linkcode startRedisCluster}. */
export interface StartRedisClusterOptions {
  /** Master nodes (no replicas). @default 3 */
  masters?: number;
  /** How long to wait for the cluster to be ready, in milliseconds. @default 30000 */
  readyTimeoutMs?: number;
}

/** A running Redis Cluster owned by this process. */
export interface RedisCluster {
  /** The nodes, for a cluster client's startup list (`new Cluster(cluster.nodes)`). */
  readonly nodes: readonly { host: string; port: number }[];
  /** The servers themselves. */
  readonly servers: readonly RedisServer[];
  /** Stops every node and deletes their directories. Idempotent. */
  stop(): Promise<void>;
}

function cli(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("redis-cli", [...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        reject(
          new Error("redis-cli not found on PATH; install redis-server (apt-get install -y redis-server)"),
        );
      } else reject(new Error(`redis-cli ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`));
    });
  });
}

/**
 * Starts a Redis Cluster of `masters` nodes on loopback and waits until it serves every slot.
 *
 * @example
 * ```ts
 * import { Cluster } from "ioredis";
 * const cluster = await startRedisCluster({ masters: 3 });
 * const client = new Cluster([...cluster.nodes]);
 * await client.set("{tag}:k", "v");
 * client.disconnect();
 * await cluster.stop();
 * ```
 */
export async function startRedisCluster(options: StartRedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  if (!Number.isSafeInteger(masters) || masters < 3) {
    throw new RangeError(
      `masters must be an integer of at least 3 (Redis Cluster's minimum), got ${masters}`,
    );
  }
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(
        await startRedis({
          extraArgs: [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
          ],
        }),
      );
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    await cli(
      ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
      readyTimeoutMs,
    );
    const deadline = Date.now() + readyTimeoutMs;
    for (const server of servers) {
      for (;;) {
        const info = await cli(["-p", String(server.port), "cluster", "info"], 5_000);
        if (/cluster_state:ok/.test(info) && /cluster_slots_assigned:16384/.test(info)) break;
        if (Date.now() > deadline) throw new Error(`cluster node ${server.port} not ready: ${info}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes: servers.map((s) => ({ host: "127.0.0.1", port: s.port })),
    servers,
    stop,
  };
}
