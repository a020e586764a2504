/**
 * Benchmark (not a test): the dashboard's page weight and render time.
 *
 *   npx tsx bench/dashboard.ts
 *
 * An app on `memory()` with 10,000 runs in its history (succeeded, failed, scheduled) across two
 * queues; each page is fetched through the dashboard's Hono app (no network), and for each:
 * the HTML's bytes, gzipped, plus the script and stylesheet it loads (gzipped: what a first visit
 * downloads; the assets are cached for good after), and the median time to render it over 50
 * requests. The weight budget of a page with its assets is 150 KB gzipped.
 *
 * @module
 */
import { memory } from "../adapters/memory/mod.ts";
import { createApp } from "../mod.ts";
import { dashboard } from "../src/dashboard/mod.ts";

const backend = memory();
const app = createApp({ broker: backend, store: backend });
const ok = app.task({ name: "bench.ok", queue: "a", run: (n: number) => ({ doubled: n * 2 }) });
const bad = app.task({
  name: "bench.bad",
  queue: "b",
  retry: { maxAttempts: 1 },
  run: (n: number) => {
    throw new Error(`bad input ${n}`);
  },
});
for (let i = 0; i < 10_000; i += 100) {
  await ok.enqueueMany(Array.from({ length: 90 }, (_, j) => ({ input: i + j })));
  await bad.enqueueMany(Array.from({ length: 9 }, (_, j) => ({ input: i + j })));
  await ok.enqueue(i, { delayMs: 3_600_000, idempotencyKey: `k-${i}` });
}
await app.drain();

const token = "bench-dashboard-token";
const ops = dashboard(app, { token });
const headers = { authorization: `Bearer ${token}` };

async function gzip(text: string): Promise<number> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

const failed = (await backend.history!.list({ queues: ["b"], state: "failed", limit: 1 })).runs[0]!;
const pages = [
  ["overview", "/"],
  ["queue", "/queues/a?state=scheduled"],
  ["runs (newest 50)", "/runs"],
  ["runs, state=failed", "/runs?state=failed"],
  ["runs, idempotency key", "/runs?key=k-5000"],
  ["runs, text", "/runs?text=bad%20input%209908"],
  ["run", `/runs/${failed.id}`],
  ["dead letters", "/dead-letters"],
  ["schedules", "/schedules"],
  ["workers", "/workers"],
] as const;

const first = await (await ops.request("/", { headers })).text();
let assetsGz = 0;
let assetsRaw = 0;
for (const m of first.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
  const text = await (await ops.request(m[1]!)).text();
  assetsRaw += text.length;
  assetsGz += await gzip(text);
}
console.log(`assets (script + stylesheet): ${assetsRaw} B, ${assetsGz} B gzipped`);
console.log("| page | HTML | HTML gzipped | with assets, gzipped | render p50 |");
console.log("|---|---:|---:|---:|---:|");
for (const [name, path] of pages) {
  const html = await (await ops.request(path, { headers })).text();
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = performance.now();
    await (await ops.request(path, { headers })).text();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const gz = await gzip(html);
  console.log(
    `| ${name} | ${html.length} B | ${gz} B | ${((gz + assetsGz) / 1024).toFixed(1)} KB | ${times[25]!.toFixed(2)} ms |`,
  );
}
await app.close();
