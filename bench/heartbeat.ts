/**
 * Benchmark (not a test): what the worker registry costs Redis. 100 workers (one process, one
 * connection each, as 100 worker processes would have) report every 5 s, each with a worker's
 * report and a minute of statistics for one task; the script calls, the commands run inside them
 * and Redis CPU over 15 s, from INFO deltas.
 *
 *   npx tsx bench/heartbeat.ts [workers] [heartbeatMs] [seconds]
 *
 * @module
 */
import { Redis as IoRedis } from "ioredis";
import { redis } from "../adapters/redis/mod.ts";
import { startRedis } from "../dev/mod.ts";
import { createApp } from "../mod.ts";
import { int, Probe, scriptCalls, totalCalls } from "./_redis-probe.ts";

const [workers = 100, beatMs = 5_000, seconds = 15] = process.argv.slice(2).map(Number);
const server = await startRedis();
const admin = new IoRedis(server.url);
const probe = new Probe(admin);
const clients: IoRedis[] = [];
const stops: (() => Promise<void>)[] = [];
for (let i = 0; i < workers; i++) {
  const client = new IoRedis(server.url);
  clients.push(client);
  const backend = redis({ client, prefix: "hb" });
  const app = createApp({ broker: backend, store: backend });
  app.task({ name: "noop", run: () => 1 });
  // Idle workers: what remains is the heartbeat (and the idle poll, counted apart below).
  const worker = app.worker({ heartbeatMs: beatMs, pollMs: 5_000 }).start();
  stops.push(async () => {
    await worker.stop();
    await app.close();
  });
}
await new Promise((resolve) => setTimeout(resolve, beatMs + 500)); // every worker has beaten once
await probe.flush();
const { delta } = await probe.measure(() => new Promise((resolve) => setTimeout(resolve, seconds * 1_000)));
const perSecond = (n: number) => (n * 1_000) / delta.ms;
const heartbeats = delta.calls.get("evalsha") ?? 0;
const blocking = (delta.calls.get("bzpopmin") ?? 0) + (delta.calls.get("bzmpop") ?? 0);
console.log(
  `| workers | heartbeat | script calls/s | commands/s (incl. inside scripts) | idle polls/s | Redis CPU |`,
);
console.log(`|---:|---:|---:|---:|---:|---:|`);
console.log(
  `| ${workers} | ${beatMs / 1_000} s | ${perSecond(scriptCalls(delta)).toFixed(1)} | ${perSecond(totalCalls(delta) - blocking).toFixed(1)} | ${perSecond(blocking).toFixed(1)} | ${(delta.redisUs / delta.ms / 10).toFixed(2)} % of a core (${int(delta.redisUs / Math.max(1, heartbeats))} µs per script call) |`,
);
for (const stop of stops) await stop();
for (const c of clients) c.disconnect();
admin.disconnect();
await server.stop();
