/**
 * A chord of 1,000 no-op members and a callback, on the memory backend and on Redis over TCP:
 * wall time from enqueue to the callback's result, and store/Redis commands per member.
 *
 *   npx tsx bench/workflow.ts
 */
import { Redis } from "ioredis";
import { memory } from "../adapters/memory/mod.ts";
import { redis } from "../adapters/redis/mod.ts";
import type { Broker, Store } from "../backend.ts";
import { chord, createApp, group } from "../mod.ts";
import { startRedis } from "../dev/mod.ts";

const MEMBERS = 1_000;

/**
 * Wraps every method of a backend to count calls. It hides the backend's fused ledger, so every
 * step goes through the counted broker and store calls (the composed ledger).
 */
function counted<T extends object>(target: T): { backend: T; calls: () => number } {
  let calls = 0;
  const backend = new Proxy(target, {
    get(obj, key, receiver) {
      if (key === "ledger") return undefined;
      const value = Reflect.get(obj, key, receiver);
      if (typeof value !== "function" || key === "constructor") return value;
      return (...args: unknown[]) => {
        calls++;
        return (value as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
  return { backend, calls: () => calls };
}

async function runChord(backend: Broker & Store, concurrency: number): Promise<number> {
  const app = createApp({ broker: backend, store: backend });
  const member = app.task({ name: "member", run: (n: unknown) => n });
  const total = app.task({ name: "total", run: (ns: unknown) => (ns as number[]).length });
  const start = performance.now();
  const run = await chord(
    group(Array.from({ length: MEMBERS }, (_, i) => member.with(i))),
    total.with(),
  ).enqueue();
  const worker = app.worker({ concurrency }).start();
  const result = await run.result({ timeoutMs: 120_000 });
  const ms = performance.now() - start;
  await worker.stop();
  if (result !== MEMBERS) throw new Error(`callback saw ${String(result)} results`);
  return ms;
}

const rows: string[] = [];

{
  const { backend, calls } = counted(memory());
  await runChord(backend, 100); // warm-up
  const fresh = counted(memory());
  const ms = await runChord(fresh.backend, 100);
  rows.push(`| memory | ${ms.toFixed(0)} | ${(fresh.calls() / MEMBERS).toFixed(1)} store+broker calls | – |`);
  void calls;
}

const server = await startRedis();
try {
  const client = new Redis(server.url, { maxRetriesPerRequest: 3 });
  const info = async () => {
    const text = (await client.info("commandstats")) as string;
    let commands = 0;
    let scripts = 0;
    for (const m of text.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
      const n = Number(m[2]);
      if (m[1] === "evalsha" || m[1] === "eval") scripts += n;
      else if (m[1] !== "info" && m[1] !== "config") commands += n;
    }
    return { commands, scripts };
  };
  await runChord(redis({ client, prefix: "warm" }), 100);
  await client.config("RESETSTAT");
  const backend = redis({ client, prefix: "bench" });
  const ms = await runChord(backend, 100);
  const { commands, scripts } = await info();
  await backend.close();
  rows.push(
    `| Redis TCP (ioredis) | ${ms.toFixed(0)} | ${(scripts / MEMBERS).toFixed(1)} script calls | ${(commands / MEMBERS).toFixed(1)} |`,
  );
  client.disconnect();
} finally {
  await server.stop();
}

console.log(`chord of ${MEMBERS} no-op members + callback, worker concurrency 100\n`);
console.log("| backend | wall ms | calls per member | Redis commands per member (incl. inside scripts) |");
console.log("|---|---:|---:|---:|");
for (const row of rows) console.log(row);
