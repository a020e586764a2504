/**
 * Starts a real `redis-server` process for tests, benchmarks and local development: loopback
 * only, on a free port, in a fresh temporary directory, with helpers to restart it gracefully,
 * crash it, and clean it up.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Options for {@linkcode startRedis}. */
export interface StartRedisOptions {
  /**
   * Turn the append-only file on, so data survives `restart()` and `kill()`.
   * @default false
   */
  appendonly?: boolean;
  /**
   * fsync policy of the append-only file. `always` makes crash tests deterministic.
   * @default "always"
   */
  appendfsync?: "always" | "everysec" | "no";
  /**
   * Extra `--name value` arguments passed to `redis-server` as they are.
   * @default []
   */
  extraArgs?: readonly string[];
  /**
   * How long to wait for the server to answer PING after a start, in milliseconds.
   * @default 10000
   */
  readyTimeoutMs?: number;
}

/** A running `redis-server` owned by this process. */
export interface RedisServer {
  /** The loopback port; stays the same across restarts. */
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** The server's working directory (append-only files live here). */
  readonly dir: string;
  /** Whether the process is currently alive. */
  readonly running: boolean;
  /** Starts the process again after `kill()`, on the same port and dir; no-op when running. */
  start(): Promise<void>;
  /** Stops the process gracefully (SIGTERM, so the append-only file is flushed) and starts it again. */
  restart(): Promise<void>;
  /** Kills the process with SIGKILL, as a crash would, and waits until it is gone. */
  kill(): Promise<void>;
  /** Stops the process gracefully and deletes its directory. Idempotent. */
  stop(): Promise<void>;
}

const NOT_FOUND = "redis-server not found on PATH; install it (apt-get install -y redis-server)";
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 5;

const live = new Set<ChildProcess>();
const failedToSpawn = new WeakSet<ChildProcess>();
const liveDirs = new Set<string>();
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
let hooked = false;

function killAllSync(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const dir of liveDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  liveDirs.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAllSync();
  unhookExit();
  // Let the default behaviour of the signal happen now that our children are gone.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAllSync);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function unhookExit(): void {
  if (!hooked) return;
  hooked = false;
  process.off("exit", killAllSync);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

function isAlive(child: ChildProcess | undefined): boolean {
  return (
    child !== undefined && !failedToSpawn.has(child) && child.exitCode === null && child.signalCode === null
  );
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (!isAlive(child)) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

/** One PING over a raw socket; true when the server answers +PONG. */
function ping(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString("latin1");
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}

class StartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = "StartError";
  }
}

interface Spawned {
  child: ChildProcess;
  output: () => string;
}

function spawnServer(port: number, dir: string, options: StartRedisOptions): Spawned {
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    options.appendonly === true ? "yes" : "no",
    "--appendfsync",
    options.appendfsync ?? "always",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--logfile",
    "",
    ...(options.extraArgs ?? []),
  ];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  const collect = (chunk: Buffer): void => {
    tail = (tail + chunk.toString("utf8")).slice(-4_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  live.add(child);
  child.once("exit", () => live.delete(child));
  child.once("error", () => {
    failedToSpawn.add(child);
    live.delete(child);
  });
  return { child, output: () => tail };
}

async function waitReady(spawned: Spawned, port: number, timeoutMs: number): Promise<void> {
  const { child } = spawned;
  let spawnError: Error | undefined;
  child.once("error", (error) => {
    spawnError = error;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawnError !== undefined) {
      const code = (spawnError as NodeJS.ErrnoException).code;
      throw code === "ENOENT" ? new Error(NOT_FOUND, { cause: spawnError }) : spawnError;
    }
    if (!isAlive(child)) {
      const out = spawned.output();
      throw new StartError(
        `redis-server exited during startup (code ${child.exitCode ?? child.signalCode}):\n${out}`,
        /address already in use/i.test(out),
      );
    }
    if (await ping(port, 250)) return;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await waitForExit(child);
      throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
}

/**
 * Starts a real `redis-server` bound to 127.0.0.1 on a free port, in a fresh temp dir, with
 * `--save ""`, and resolves once it answers PING. Throws a clear error when `redis-server` is
 * not installed. The process is killed when this process exits (or gets SIGINT/SIGTERM/SIGHUP).
 *
 * @example
 * ```ts
 * const server = await startRedis({ appendonly: true });
 * // new Redis(server.url) ...
 * await server.restart(); // data written before is still there
 * await server.stop();
 * ```
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  const dir = mkdtempSync(join(tmpdir(), "celeriac-redis-"));
  liveDirs.add(dir);
  hookExit();

  let child: ChildProcess | undefined;
  let port = 0;
  let stopped = false;

  const cleanupDir = (): void => {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    if (live.size === 0 && liveDirs.size === 0) unhookExit();
  };

  const launch = async (): Promise<void> => {
    const spawned = spawnServer(port, dir, options);
    child = spawned.child;
    await waitReady(spawned, port, readyTimeoutMs);
  };

  const terminate = async (signal: "SIGTERM" | "SIGKILL"): Promise<void> => {
    const current = child;
    if (current === undefined || !isAlive(current)) return;
    const exited = waitForExit(current);
    current.kill(signal);
    if (signal === "SIGTERM") {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
      });
      const late = await Promise.race([exited.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) current.kill("SIGKILL");
    }
    await exited;
  };

  try {
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await launch();
        break;
      } catch (error) {
        // Another process grabbed the port between probing and binding: pick a new one.
        if (!(error instanceof StartError && error.portInUse) || attempt >= PORT_ATTEMPTS) {
          throw error;
        }
      }
    }
  } catch (error) {
    await terminate("SIGKILL");
    cleanupDir();
    throw error;
  }

  const ensureUsable = (): void => {
    if (stopped) throw new Error(`redis-server on port ${port} was stopped`);
  };

  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    dir,
    get running() {
      return isAlive(child);
    },
    async start() {
      ensureUsable();
      if (isAlive(child)) return;
      await launch();
    },
    async restart() {
      ensureUsable();
      await terminate("SIGTERM");
      await launch();
    },
    async kill() {
      ensureUsable();
      await terminate("SIGKILL");
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate("SIGTERM");
      cleanupDir();
    },
  };
}
