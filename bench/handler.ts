/**
 * Benchmark (not a test): QStash push deliveries per second through `createHandler` (signature
 * verification with `qstashVerifier`, then the executor running a no-op task on the memory
 * store), next to a bare Hono route answering 200 and a "reading" route that does the HTTP work
 * any push endpoint does (reads and parses the body, reads the QStash headers, answers a small
 * JSON body) but verifies and runs nothing; all on the same runtime and the same HTTP server.
 *
 *   npx tsx bench/handler.ts            (one run: Node, then Bun, then Deno, each in a child process)
 *   npx tsx bench/handler.ts --quick    (smoke run: fewer requests)
 *   npx tsx bench/handler.ts --runtime=node   (one runtime only: node, bun or deno)
 *   npx tsx bench/handler.ts --runtime=node --profile=DIR   (Node servers write CPU profiles)
 *
 * The load generator is this (Node) process: `CONCURRENCY` keep-alive connections writing
 * pre-built raw HTTP/1.1 requests (lean, like wrk or autocannon, so it leaves the server CPU),
 * every delivery pre-signed before the clock starts (a fresh run id each, so every one runs the
 * task; none is a duplicate). The three servers of a runtime run side by side and are loaded in
 * turn, `ROUNDS` times each; the medians are reported. Each server runs in a child process on
 * its runtime's own server (@hono/node-server, Bun.serve, Deno.serve), which also times the
 * verifier alone. The machine is shared by generator and server, so absolute figures are
 * conservative; the ratio handler / bare is the target (≥ 50%), handler / reading shows
 * what verifying and running cost on top of the unavoidable HTTP work.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { Client, Receiver } from "@upstash/qstash";
import { Hono } from "hono";
import { Redis as IoRedis } from "ioredis";
import { qstash, qstashReceiver, qstashVerifier } from "../adapters/qstash/mod.ts";
import { redis } from "../adapters/redis/mod.ts";
import { signQStashDelivery, startRedis } from "../dev/mod.ts";
import { createApp } from "../mod.ts";
import { createHandler } from "../src/hono.ts";
import { freePort, serveHere } from "../tests/edge/_support.ts";

const KEYS = { currentSigningKey: "sig_bench_current", nextSigningKey: "sig_bench_next" };
const proc = (
  globalThis as unknown as { process: { argv: string[]; execPath: string; exit(code: number): never } }
).process;
const argv = proc.argv;
const QUICK = argv.includes("--quick");
/** `--profile=DIR`: Node servers write a CPU profile (`--cpu-prof`) into DIR as they exit. */
const PROFILE = argv.find((a) => a.startsWith("--profile="))?.slice("--profile=".length);
const REQUESTS = QUICK ? 3_000 : 20_000;
const WARMUP = QUICK ? 500 : 3_000;
const CONCURRENCY = 32;
/** Alternating runs of bare and handler per runtime; medians are reported. */
const ROUNDS = QUICK ? 1 : 3;
const VERIFY_RUNS = QUICK ? 500 : 5_000;

// ---------------------------------------------------------------- child: one server

async function serveChild(mode: Mode, port: number, redisPort: number): Promise<void> {
  // Exit (rather than die) on SIGTERM, so `--cpu-prof` and the like can write their output.
  (globalThis as { process?: { on?(signal: string, listener: () => void): void } }).process?.on?.(
    "SIGTERM",
    () => proc.exit(0),
  );
  const url = `http://127.0.0.1:${port}/qstash`;
  let fetcher: (request: Request) => Response | Promise<Response>;
  if (mode === "bare") {
    const bare = new Hono();
    bare.post("/qstash", (c) => c.text("ok"));
    fetcher = bare.fetch;
  } else if (mode === "receiver") {
    // What a user writes without celeriac: verify with the real Receiver, parse, call the
    // function, answer. It records nothing anywhere.
    const receiver = new Receiver(KEYS);
    const task = async (_input: unknown) => null;
    const route = new Hono();
    route.post("/qstash", async (c) => {
      const body = await c.req.text();
      await receiver.verify({ signature: c.req.header("upstash-signature") ?? "", body, url });
      const envelope = JSON.parse(body) as { id: string; input: unknown };
      await task(envelope.input);
      return c.json({ outcome: "succeeded", id: envelope.id });
    });
    fetcher = route.fetch;
  } else if (mode === "handler") {
    // The handler on the memory store: verify, record the run (start, success), answer.
    const app = createApp();
    app.task({ name: "noop", run: () => null });
    fetcher = createHandler(app, { push: qstashReceiver({ ...KEYS, url }) }).fetch;
  } else {
    // The handler with a Redis store (its records outlive the request), as deployed.
    const client = new IoRedis({ host: "127.0.0.1", port: redisPort, maxRetriesPerRequest: 3 });
    const store = redis({ client });
    const broker = qstash({
      url,
      ...KEYS,
      store,
      client: new Client({ token: "t", baseUrl: "http://127.0.0.1:9", retry: false, enableTelemetry: false }),
    });
    const app = createApp({ broker });
    app.task({ name: "noop", run: () => null });
    fetcher = createHandler(app).fetch;
  }
  // The verifier alone, sequentially: the per-request cost of signature verification.
  const verify = qstashVerifier(KEYS);
  const body = envelope();
  const signature = await signQStashDelivery({ signingKey: KEYS.currentSigningKey, url, body });
  for (let i = 0; i < 200; i++) await verify({ signature, body, url });
  const started = performance.now();
  for (let i = 0; i < VERIFY_RUNS; i++) await verify({ signature, body, url });
  const verifyUs = ((performance.now() - started) * 1000) / VERIFY_RUNS;

  const server = await serveHere((req) => fetcher(req), port);
  const real = Number(new URL(server.origin).port);
  if (real !== port) throw new Error(`asked for port ${port}, got ${real}`);
  console.log(JSON.stringify({ ready: true, server: server.runtime, verifyUs }));
}

// ---------------------------------------------------------------- parent: load

function envelope(): string {
  const id = crypto.randomUUID();
  return JSON.stringify({
    v: 1,
    id,
    task: "noop",
    queue: "default",
    priority: 0,
    attempt: 1,
    enqueuedAt: Date.now(),
    input: null,
  });
}

/** One delivery as raw HTTP/1.1 bytes, signed for the handler's URL. */
type Signed = Buffer;

async function presign(count: number, url: string): Promise<Signed[]> {
  const { host } = new URL(url);
  const out: Signed[] = [];
  for (let i = 0; i < count; i++) {
    const body = envelope();
    const signature = await signQStashDelivery({
      signingKey: KEYS.currentSigningKey,
      url,
      body,
      exp: Math.floor(Date.now() / 1000) + 3600,
    });
    const head = [
      "POST /qstash HTTP/1.1",
      `host: ${host}`,
      "content-type: application/json",
      `content-length: ${Buffer.byteLength(body)}`,
      `upstash-signature: ${signature}`,
      `upstash-message-id: msg_${i}`,
      "upstash-retried: 0",
    ].join("\r\n");
    out.push(Buffer.from(`${head}\r\n\r\n${body}`));
  }
  return out;
}

/**
 * A lean keep-alive client on one socket (like wrk or autocannon): writes a pre-built request,
 * reads the response to its end (Content-Length or chunked), calls back with the status.
 */
function connection(port: number): Promise<{ send(item: Signed): Promise<number>; close(): void }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let buffer: Buffer = Buffer.alloc(0);
    let waiting: ((status: number) => void) | undefined;
    socket.on("data", (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf("\r\n\r\n");
      if (end === -1) return;
      const head = buffer.toString("latin1", 0, end);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      let total: number;
      if (length !== null) {
        total = end + 4 + Number(length[1]);
      } else {
        const last = buffer.indexOf("\r\n0\r\n\r\n", end);
        if (last === -1) return;
        total = last + 7;
      }
      if (buffer.length < total) return;
      buffer = buffer.subarray(total);
      const done = waiting;
      waiting = undefined;
      done?.(Number(head.slice(9, 12)));
    });
    socket.once("error", reject);
    socket.once("connect", () =>
      resolve({
        send: (item) =>
          new Promise<number>((done) => {
            waiting = done;
            socket.write(item);
          }),
        close: () => socket.destroy(),
      }),
    );
  });
}

/** Sends every item with CONCURRENCY connections busy; resolves with requests/s. Every answer must be 200. */
async function load(port: number, items: Signed[]): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: CONCURRENCY }, () => connection(port)));
  let next = 0;
  let bad = 0;
  const started = performance.now();
  await Promise.all(
    sockets.map(async (socket) => {
      while (next < items.length) {
        const item = items[next++] as Signed;
        if ((await socket.send(item)) !== 200) bad++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const socket of sockets) socket.close();
  if (bad > 0) throw new Error(`${bad} of ${items.length} requests did not answer 200`);
  return items.length / seconds;
}

function start(
  runtime: string,
  mode: string,
  port: number,
  redisPort: number,
): Promise<{ child: ChildProcess; info: { server: string; verifyUs: number } }> {
  const file = fileURLToPath(import.meta.url);
  const args = ["--serve", mode, String(port), String(redisPort)];
  const [cmd, base] =
    runtime === "node"
      ? [
          proc.execPath,
          [
            ...(PROFILE === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE}`]),
            "--import",
            "tsx",
            file,
          ],
        ]
      : runtime === "bun"
        ? [bin("bun"), [file]]
        : [bin("deno"), ["run", "-A", file]];
  const child = spawn(cmd, [...base, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line !== undefined) resolve({ child, info: JSON.parse(line) });
    });
    child.once("exit", (code) => reject(new Error(`${runtime} ${mode} server exited with ${code}`)));
  });
}

function bin(name: string): string {
  return fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
}

/**
 * What a child serves: a bare route, the hand-written Receiver route, or the handler on the
 * memory store or on a Redis store.
 */
type Mode = "bare" | "receiver" | "handler" | "handler-redis";
const MODES: readonly Mode[] = ["bare", "receiver", "handler", "handler-redis"];

interface Row {
  server: string;
  rps: Record<Mode, number>;
  verifyUs: number;
}

/** The servers up side by side; ROUNDS alternating runs of each; medians. */
async function measure(runtime: string, redisPort: number): Promise<Row> {
  const ports = await Promise.all(MODES.map(() => freePort()));
  // Every server is sent deliveries signed for its own URL, fresh for every run (a repeated run
  // id would be a cheaper duplicate).
  const batches = await Promise.all(
    MODES.map((_, m) =>
      Promise.all(
        Array.from({ length: ROUNDS + 1 }, (_, i) =>
          presign(i === 0 ? WARMUP : REQUESTS, `http://127.0.0.1:${ports[m]}/qstash`),
        ),
      ),
    ),
  );
  const servers = [];
  for (const [m, mode] of MODES.entries()) servers.push(await start(runtime, mode, ports[m]!, redisPort));
  try {
    for (const [m] of MODES.entries()) await load(ports[m]!, batches[m]![0]!);
    const runs = MODES.map(() => [] as number[]);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [m] of MODES.entries()) runs[m]!.push(await load(ports[m]!, batches[m]![round]!));
    }
    const rps = Object.fromEntries(MODES.map((mode, m) => [mode, median(runs[m]!)])) as Record<Mode, number>;
    return { server: servers[2]!.info.server, rps, verifyUs: servers[2]!.info.verifyUs };
  } finally {
    for (const server of servers) server.child.kill("SIGTERM");
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const serveAt = argv.indexOf("--serve");
  if (serveAt !== -1) {
    await serveChild(argv[serveAt + 1] as Mode, Number(argv[serveAt + 2]), Number(argv[serveAt + 3]));
    return;
  }
  console.log(
    `push deliveries/s: a bare Hono route, the hand-written Receiver route, and createHandler on the memory and on a Redis store; ${REQUESTS} requests, ${CONCURRENCY} in flight\n`,
  );
  console.log(
    "| runtime | server | bare route | Receiver route | handler (memory) | handler (Redis) | memory / Receiver | Redis / Receiver | verify µs/op |",
  );
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  const only = argv.find((a) => a.startsWith("--runtime="))?.slice("--runtime=".length);
  const redisServer = await startRedis();
  try {
    for (const runtime of ["node", "bun", "deno"].filter((r) => only === undefined || r === only)) {
      const row = await measure(runtime, redisServer.port);
      const { rps } = row;
      const x = (n: number) => `${(n / rps.receiver).toFixed(2)}×`;
      console.log(
        `| ${runtime} | ${row.server} | ${rps.bare.toFixed(0)} | ${rps.receiver.toFixed(0)} | ${rps.handler.toFixed(0)} | ${rps["handler-redis"].toFixed(0)} | ${x(rps.handler)} | ${x(rps["handler-redis"])} | ${row.verifyUs.toFixed(1)} |`,
      );
    }
  } finally {
    await redisServer.stop();
  }
}

await main();
