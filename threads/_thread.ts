/**
 * Internal: the program of a pool thread (a `node:worker_threads` Worker on Node, a Web Worker on
 * Bun, a child process on Deno: see `_spawn.ts`). It imports each task module once, runs one attempt at a time and answers with
 * the result or the error, and its heap in use after each task (for `maxMemoryPerChildMb`).
 *
 * @module
 */
import { moduleRun, type PoolCall, type ThreadContext } from "../src/pool.ts";
import { FRAME, type FromThread, type ThreadErrorInfo, type ToThread } from "./_protocol.ts";

type Port = { post(message: FromThread): void; listen(fn: (message: ToThread) => void): void };

/** The globals a thread uses: the Web Worker scope on Bun, memory figures, Deno.exit. */
const g = globalThis as {
  Deno?: {
    exit(code?: number): never;
    memoryUsage(): { heapUsed: number };
    args: string[];
    stdin: { readable: ReadableStream<Uint8Array> };
    stdout: { writeSync(data: Uint8Array): number };
  };
  Bun?: unknown;
  process?: { memoryUsage?: () => { heapUsed: number } };
  postMessage(message: FromThread): void;
  onmessage: ((e: MessageEvent<ToThread>) => void) | null;
};

/** A Deno child process: JSON lines in on stdin, frames out on stdout (the task's own output to stderr). */
function processPort(deno: NonNullable<typeof g.Deno>): Port {
  const encoder = new TextEncoder();
  const write = (text: string) => {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length; ) at += deno.stdout.writeSync(bytes.subarray(at));
  };
  for (const level of ["log", "info", "debug"] as const) console[level] = console.error;
  return {
    post: (m) => {
      // As a worker's structured clone would: a value that cannot cross is an error here too.
      structuredClone(m);
      write(`${FRAME}${JSON.stringify(m)}\n`);
    },
    listen: (fn) => {
      void (async () => {
        let buffer = "";
        const decoder = new TextDecoder();
        const reader = deno.stdin.readable.getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          buffer += decoder.decode(r.value, { stream: true });
          for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
            fn(JSON.parse(buffer.slice(0, i)) as ToThread);
            buffer = buffer.slice(i + 1);
          }
        }
        // The pool went away: so does this process.
        deno.exit(0);
      })();
    },
  };
}

async function port(): Promise<Port> {
  if (g.Deno?.args.includes("--celeriac-pool-process")) return processPort(g.Deno);
  if (g.Bun !== undefined) {
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

const io = await port();
let threadId = 0;
let heap = false;
const loaded = new Set<string>();
const aborts = new Map<number, AbortController>();

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
    const fn = await moduleRun(call.module, importModule);
    // Only a first load took time the pool's limit should not count (a cached one takes none).
    if (!loaded.has(call.module)) {
      loaded.add(call.module);
      io.post({ t: "started", job });
    }
    const value = await fn(call.input as never, ctx);
    done = { t: "done", job, ok: true, value, heapMb: heap ? heapMb() : null };
  } catch (error) {
    done = { t: "done", job, ok: false, error: errorInfo(error), heapMb: heap ? heapMb() : null };
  }
  aborts.delete(job);
  try {
    io.post(done);
  } catch (error) {
    // The result does not survive a structured clone (a function, a class instance with methods…).
    io.post({ t: "done", job, ok: false, error: errorInfo(error), heapMb: heap ? heapMb() : null });
  }
}

io.listen((m) => {
  if (m.t === "init") {
    threadId = m.threadId;
    heap = m.heap;
  } else if (m.t === "run") void run(m.job, m.call);
  else if (m.t === "abort") aborts.get(m.job)?.abort(new Error(m.reason));
});
io.post({ t: "ready" });
