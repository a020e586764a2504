/**
 * Local development without an Upstash account: `npm run dev` starts the loopback QStash
 * emulator and the example app's handler, wired together exactly as in production — the real
 * `@upstash/qstash` client publishes, the emulator pushes signed deliveries, the handler verifies
 * them and runs the tasks.
 *
 *   npm run dev                     # Node (tsx); also: bun examples/dev.ts, deno run -A examples/dev.ts
 *   PORT=3000 QSTASH_PORT=8080 npm run dev
 *   npm run dev -- --once           # enqueue the demo tasks, print what happened, exit
 *
 * Then, from another shell:
 *
 *   curl -X POST localhost:3000/runs -H 'authorization: Bearer dev-token' \
 *        -d '{"task":"email.welcome","input":{"to":"ada@example.com"}}'
 *   curl localhost:3000/runs/<id> -H 'authorization: Bearer dev-token'
 */
import { createServer } from "node:net";
import { serve } from "@hono/node-server";
import * as v from "valibot";
import { qstash } from "celeriac/adapters/qstash";
import { createApp, NonRetryableError } from "celeriac";
import { createHandler } from "celeriac/hono";
import { startQStashEmulator } from "celeriac/dev";

const env = (
  globalThis as {
    process?: { env: Record<string, string | undefined>; argv: string[]; exit(code: number): never };
  }
).process;
const once = env?.argv.includes("--once") ?? false;
const port = once ? await freePort() : Number(env?.env.PORT ?? 3000);
const keys = { currentSigningKey: "sig_dev_current", nextSigningKey: "sig_dev_next" };
const token = "dev-token";

// QStash's own retries (after a 5xx) come back within a second instead of QStash's minutes.
const emulator = await startQStashEmulator({
  token: "dev-qstash-token",
  currentSigningKey: keys.currentSigningKey,
  nextSigningKey: keys.nextSigningKey,
  port: once ? 0 : Number(env?.env.QSTASH_PORT ?? 8080),
  backoff: (retried) => Math.min(1000 * 2 ** retried, 10_000),
});

const app = createApp({
  broker: qstash({
    token: "dev-qstash-token",
    baseUrl: emulator.url,
    url: `http://127.0.0.1:${port}/qstash`,
    ...keys,
  }),
});

const welcome = app.task({
  name: "email.welcome",
  input: v.object({ to: v.pipe(v.string(), v.email()) }),
  retry: { maxAttempts: 3, baseMs: 500, jitter: "none" },
  run: async ({ to }, ctx) => {
    if (ctx.attempt === 1 && to.endsWith("@flaky.example")) throw new Error("SMTP timeout");
    return { sent: to, attempt: ctx.attempt };
  },
});
const charge = app.task({
  name: "billing.charge",
  input: v.object({ cents: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  run: ({ cents }) => {
    if (cents > 100_000) throw new NonRetryableError("over the card limit");
    return { charged: cents };
  },
});

app.on("succeeded", (e) =>
  console.log(`✔ ${e.task} ${e.id} attempt ${e.attempt}:`, JSON.stringify(e.result)),
);
app.on("retrying", (e) =>
  console.log(
    `↻ ${e.task} ${e.id} attempt ${e.attempt} failed (${e.error.message}), retry in ${e.delayMs} ms`,
  ),
);
app.on("deadLettered", (e) => console.log(`✖ ${e.task ?? "?"} ${e.id} dead-lettered: ${e.reason}`));

const handler = createHandler(app, { token, tasks: [welcome, charge] });
const server = serve({ fetch: handler.fetch, hostname: "127.0.0.1", port });
await new Promise<void>((resolve) => server.once("listening", () => resolve()));
const origin = `http://127.0.0.1:${port}`;
console.log(`QStash emulator on ${emulator.url}, handler on ${origin} (bearer token "${token}")`);

if (once) {
  const enqueue = async (task: string, input: unknown) => {
    const res = await fetch(`${origin}/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ task, input }),
    });
    return ((await res.json()) as { id: string }).id;
  };
  const ids = [
    await enqueue("email.welcome", { to: "ada@example.com" }),
    await enqueue("email.welcome", { to: "bob@flaky.example" }),
    await enqueue("billing.charge", { cents: 500_000 }),
  ];
  await emulator.idle();
  await emulator.flush(); // the retry's backoff, without waiting for it
  for (const id of ids) {
    const res = await fetch(`${origin}/runs/${id}`, { headers: { authorization: `Bearer ${token}` } });
    const run = (await res.json()) as { task: string; state: string; attempt: number };
    console.log(`${run.task}: ${run.state} after ${run.attempt} attempt(s)`);
  }
  await emulator.close();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  (server as { closeAllConnections?: () => void }).closeAllConnections?.(); // keep-alive sockets too
  await closed;
  env?.exit(0); // done: don't wait for HTTP clients' idle keep-alive pools to time out
} else {
  console.log(`try: curl -X POST ${origin}/runs -H 'authorization: Bearer ${token}' \\`);
  console.log(`       -d '{"task":"email.welcome","input":{"to":"ada@example.com"}}'`);
}

/** A loopback port that was free a moment ago (`--once` must not collide with a running dev server). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
