/**
 * Internal: the runtime shim of the pool — starting a thread running `_thread.ts`: a
 * `node:worker_threads` Worker on Node (with V8's heap limit when a memory cap is set), a Web
 * Worker on Bun, and on Deno a child process (`deno run` of the same program, talking JSON lines
 * over its stdin and stdout): Deno's workers, Web or `node:worker_threads`, keep running when
 * terminated inside a JavaScript endless loop (a busy core and a process that cannot exit;
 * denoland/deno#35657), and a task the pool gave up on must stop. Everything else in the pool is
 * the same on every runtime.
 *
 * @module
 */
import { FRAME, type FromThread, type ToThread } from "./_protocol.ts";

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
  Deno?: DenoApi;
  Bun?: unknown;
  Worker?: new (url: string, options: { type: "module" }) => Worker;
  navigator?: { hardwareConcurrency?: unknown };
};

/** The thread program next to this file, in the same form (.ts from source, .js when built). */
function entry(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith(".ts") ? "./_thread.ts" : "./_thread.js", here);
}

/** Bun runs Web Workers as modules (Node 20 has none; Deno's, see above). */
const webWorkers = g.Bun !== undefined;

/** What the Deno transport uses of Deno's API. */
interface DenoApi {
  execPath(): string;
  permissions: { querySync(p: { name: string }): { state: string } };
  Command: new (
    cmd: string,
    o: { args: string[]; stdin: "piped"; stdout: "piped"; stderr: "inherit" },
  ) => {
    spawn(): {
      stdin: WritableStream<Uint8Array>;
      stdout: ReadableStream<Uint8Array>;
      status: Promise<{ code: number; signal: string | null }>;
      kill(signal: string): void;
    };
  };
}

/** The permissions the child gets: those this process holds whole (never more). */
function denoPermissions(deno: DenoApi): string[] {
  const kinds = ["read", "write", "net", "env", "run", "ffi", "sys", "import"];
  return kinds
    .filter((name) => deno.permissions.querySync({ name }).state === "granted")
    .map((k) => `--allow-${k}`);
}

function denoChild(deno: DenoApi, events: ThreadEvents, end: (e: ThreadEnd) => void): Thread {
  const child = new deno.Command(deno.execPath(), {
    args: ["run", "--quiet", ...denoPermissions(deno), entry().href, "--celeriac-pool-process"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let over = false;
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  void (async () => {
    let buffer = "";
    const decoder = new TextDecoder();
    const reader = child.stdout.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      buffer += decoder.decode(r.value, { stream: true });
      for (let i = buffer.indexOf("\n"); i >= 0; i = buffer.indexOf("\n")) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        if (line.startsWith(FRAME) && !over)
          events.message(JSON.parse(line.slice(FRAME.length)) as FromThread);
      }
    }
  })().catch(() => {});
  void child.status.then((s) => {
    if (!over) end({ reason: "exit", detail: `the thread exited with code ${s.code}` });
  });
  return {
    post: (m) => {
      writer.write(encoder.encode(`${JSON.stringify(m)}\n`)).catch(() => {});
    },
    terminate: () => {
      over = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}

/** Starts one thread; `memoryMb` caps its heap where the runtime can (Node's resourceLimits). */
export async function spawnThread(events: ThreadEvents, memoryMb: number | undefined): Promise<Thread> {
  let over = false;
  const end = (e: ThreadEnd) => {
    if (over) return;
    over = true;
    events.ended(e);
  };
  if (g.Deno !== undefined) {
    const thread = denoChild(g.Deno, events, end);
    return {
      post: thread.post,
      terminate: () => {
        over = true;
        thread.terminate();
      },
    };
  }
  if (webWorkers) {
    const worker = new g.Worker!(entry().href, { type: "module" });
    worker.onmessage = (e: MessageEvent<FromThread>) => events.message(e.data);
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
