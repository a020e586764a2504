/**
 * Internal: the runtime shim of the pool — starting a thread running `_thread.ts`: a
 * `node:worker_threads` Worker on Node (with V8's heap limit when a memory cap is set), a Web
 * Worker on Deno and Bun. Everything else in the pool is the same on every runtime.
 *
 * @module
 */
import type { FromThread, ToThread } from "./_protocol.ts";

/** How a thread ended when nobody asked it to. */
export interface ThreadEnd {
  reason: "exit" | "crash" | "memory";
  detail: string;
}

/** A started thread. */
export interface Thread {
  post(message: ToThread): void;
  /** Stops it now (its `ended` is not called). */
  terminate(): void;
}

/** What a thread tells its pool. */
export interface ThreadEvents {
  message(message: FromThread): void;
  /** Called once, when the thread ended on its own (exit, crash, out of memory). */
  ended(end: ThreadEnd): void;
}

/** The globals this shim looks at: Web Workers on Deno and Bun, cores where the runtime says. */
const g = globalThis as {
  Deno?: unknown;
  Bun?: unknown;
  Worker?: new (url: string, options: { type: "module" }) => Worker;
  navigator?: { hardwareConcurrency?: unknown };
};

/** The thread program next to this file, in the same form (.ts from source, .js when built). */
function entry(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith(".ts") ? "./_thread.ts" : "./_thread.js", here);
}

/** True on Deno and Bun, which run Web Workers as modules (Node 20 has none). */
const webWorkers = g.Deno !== undefined || g.Bun !== undefined;

/** Starts one thread; `memoryMb` caps its heap where the runtime can (Node's resourceLimits). */
export async function spawnThread(events: ThreadEvents, memoryMb: number | undefined): Promise<Thread> {
  let over = false;
  const end = (e: ThreadEnd) => {
    if (over) return;
    over = true;
    events.ended(e);
  };
  if (webWorkers) {
    const worker = new g.Worker!(entry().href, { type: "module" });
    worker.onmessage = (e: MessageEvent<FromThread>) => {
      if (e.data.t === "exit") end({ reason: "exit", detail: `the thread exited with code ${e.data.code}` });
      else events.message(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      end({ reason: "crash", detail: `the thread crashed: ${e.message}` });
    };
    // Bun tells of a worker's exit (process.exit inside it) with a close event.
    worker.addEventListener("close", (e) => {
      const code = (e as Event & { code?: number }).code ?? 0;
      end({ reason: "exit", detail: `the thread exited with code ${code}` });
    });
    return {
      post: (m) => worker.postMessage(m),
      terminate: () => {
        over = true;
        worker.terminate();
      },
    };
  }
  const { Worker } = await import("node:worker_threads");
  const limits = memoryMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: memoryMb } };
  const program = entry();
  const worker = program.pathname.endsWith(".ts")
    ? new Worker(tsEntry(program), { eval: true, ...limits })
    : new Worker(program, limits);
  let error: unknown;
  worker.on("message", (m: FromThread) => events.message(m));
  worker.on("error", (e) => {
    error = e;
  });
  worker.on("exit", (code) => {
    const oom = (error as { code?: unknown } | undefined)?.code === "ERR_WORKER_OUT_OF_MEMORY";
    if (oom) end({ reason: "memory", detail: `the thread ran out of memory (limit ${memoryMb} MB)` });
    else if (error !== undefined) end({ reason: "crash", detail: `the thread crashed: ${String(error)}` });
    else end({ reason: "exit", detail: `the thread exited with code ${code}` });
  });
  return {
    post: (m) => worker.postMessage(m),
    terminate: () => {
      over = true;
      void worker.terminate();
    },
  };
}

/**
 * Node runs the thread program from source (.ts, as in this repository's tests) only through a
 * loader, which a thread does not inherit: a small script registers tsx's in the thread first.
 */
function tsEntry(program: URL): string {
  const api = import.meta.resolve("tsx/esm/api");
  return `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(program.href)}); });`;
}

/** Cores this process may use: the default size limit of a pool. */
export async function availableCores(): Promise<number> {
  const n = g.navigator?.hardwareConcurrency;
  if (typeof n === "number" && n > 0) return n;
  const os = await import("node:os");
  return os.availableParallelism();
}
