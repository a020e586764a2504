/**
 * Internal: the program of a pool thread (a `node:worker_threads` Worker on Node, a Web Worker on
 * Deno and Bun). It imports each task module once, runs one attempt at a time and answers with
 * the result or the error, and its heap in use after each task (for `maxMemoryPerChildMb`).
 *
 * @module
 */
import type { PoolCall, ThreadContext } from "../src/pool.ts";
import type { FromThread, ThreadErrorInfo, ToThread } from "./_protocol.ts";

type Port = { post(message: FromThread): void; listen(fn: (message: ToThread) => void): void };

/** The globals a thread uses: the Web Worker scope on Deno and Bun, memory figures, Deno.exit. */
const g = globalThis as {
  Deno?: { exit(code?: number): never; memoryUsage(): { heapUsed: number } };
  Bun?: unknown;
  process?: { memoryUsage?: () => { heapUsed: number } };
  postMessage(message: FromThread): void;
  onmessage: ((e: MessageEvent<ToThread>) => void) | null;
};

async function port(): Promise<Port> {
  if (g.Deno !== undefined || g.Bun !== undefined) {
    return {
      post: (m) => g.postMessage(m),
      listen: (fn) => {
        g.onmessage = (e: MessageEvent<ToThread>) => fn(e.data);
      },
    };
  }
  const { parentPort } = await import("node:worker_threads");
  if (parentPort === null) throw new Error("celeriac's pool thread must run in a worker thread");
  return { post: (m) => parentPort.postMessage(m), listen: (fn) => parentPort.on("message", fn) };
}

function heapMb(): number | null {
  try {
    if (g.Deno !== undefined) return g.Deno.memoryUsage().heapUsed / 1_048_576;
    const usage = g.process?.memoryUsage;
    if (usage !== undefined) return usage().heapUsed / 1_048_576;
  } catch {
    // unknown: the pool then cannot recycle this thread by memory
  }
  return null;
}

function errorInfo(error: unknown): ThreadErrorInfo {
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: "Error", message: String(error), stack: undefined };
}

type Run = (input: unknown, ctx: ThreadContext) => unknown;
const modules = new Map<string, Promise<Run>>();

/** Node imports `.ts` only through a loader: register tsx's in this thread when one is installed. */
async function importModule(url: string): Promise<Record<string, unknown>> {
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== "ERR_UNKNOWN_FILE_EXTENSION" || g.Deno !== undefined || g.Bun !== undefined) throw error;
    const tsx = "tsx/esm/api";
    const { register } = (await import(tsx)) as { register(): unknown };
    register();
    return (await import(url)) as Record<string, unknown>;
  }
}

function load(url: string): Promise<Run> {
  let run = modules.get(url);
  if (run === undefined) {
    run = importModule(url).then((mod) => {
      const fn = mod.run ?? (mod.default as { run?: unknown } | undefined)?.run;
      if (typeof fn !== "function") throw new TypeError(`task module ${url} exports no run function`);
      return fn as Run;
    });
    modules.set(url, run);
    run.catch(() => modules.delete(url));
  }
  return run;
}

const io = await port();
let threadId = 0;
const aborts = new Map<number, AbortController>();

// A Deno worker that calls Deno.exit ends without an event on its Worker: say so first.
const deno = g.Deno;
if (deno !== undefined) {
  const exit = deno.exit.bind(deno);
  deno.exit = (code?: number): never => {
    io.post({ t: "exit", code: code ?? 0 });
    return exit(code);
  };
}

async function run(job: number, call: PoolCall): Promise<void> {
  const control = new AbortController();
  aborts.set(job, control);
  const ctx: ThreadContext = {
    id: call.id,
    task: call.task,
    attempt: call.attempt,
    idempotencyKey: call.idempotencyKey,
    signal: control.signal,
    threadId,
    progress: (value) => io.post({ t: "progress", job, value }),
  };
  let done: FromThread;
  try {
    const fn = await load(call.module);
    io.post({ t: "started", job });
    const value = await fn(call.input, ctx);
    done = { t: "done", job, ok: true, value, heapMb: heapMb() };
  } catch (error) {
    done = { t: "done", job, ok: false, error: errorInfo(error), heapMb: heapMb() };
  }
  aborts.delete(job);
  try {
    io.post(done);
  } catch (error) {
    // The result does not survive a structured clone (a function, a class instance with methods…).
    io.post({ t: "done", job, ok: false, error: errorInfo(error), heapMb: heapMb() });
  }
}

io.listen((m) => {
  if (m.t === "init") threadId = m.threadId;
  else if (m.t === "run") void run(m.job, m.call);
  else if (m.t === "abort") aborts.get(m.job)?.abort(new Error(m.reason));
});
io.post({ t: "ready" });
