/**
 * `celeriac worker [app]`: runs `app.worker({ ... }).start()` in the foreground, logs each
 * finished run to stderr, and stops gracefully on SIGINT/SIGTERM.
 *
 * @module
 */
import type { Command } from "commander";
import { hostname } from "node:os";
import process from "node:process";
import type { TaskPool, WorkerOptions } from "../mod.ts";
import { type ThreadPoolOptions, threads } from "../threads/mod.ts";
import { duration, integer, list } from "./_args.ts";
import { type AppOptions, appOption, type Ctx } from "./_context.ts";
import { UsageError } from "./_exit.ts";
import { APP_HELP, appPath, type CliApp, loadApp } from "./_load.ts";
import { formatMs } from "./_output.ts";
import { serve } from "./_serve.ts";

interface Options extends AppOptions {
  queues?: string[];
  concurrency?: number;
  prefetch?: number;
  shutdownGrace?: number;
  heartbeat?: number;
  quiet?: boolean;
  pool?: string;
  poolMin?: number;
  poolMax?: number;
  maxTasksPerChild?: number;
  maxMemoryPerChild?: number;
}

/** Registers `worker` on the program. */
export function workerCommand(program: Command, ctx: Ctx, done: (code: number) => void): void {
  const command = program
    .command("worker")
    .description("run a worker: take tasks from the app's queues and run them until SIGINT or SIGTERM")
    .argument("[app]", "the app module (or --app, or $CELERIAC_APP)");
  appOption(command)
    .option(
      "-q, --queues <names>",
      "queues to serve, comma-separated, earlier first (default: every queue the app's tasks use)",
      list,
    )
    .option("-c, --concurrency <n>", "tasks run at once (default: 10)", integer(1))
    .option(
      "--prefetch <n>",
      "tasks leased ahead of the running ones; 0 for long tasks (default: the concurrency)",
      integer(0),
    )
    .option(
      "--shutdown-grace <duration>",
      "on stop, how long running tasks may finish (default: 10s)",
      duration,
    )
    .option(
      "--heartbeat <duration>",
      "how often it reports to `inspect workers` and takes control commands (default: 5s)",
      duration,
    )
    .option("--quiet", "no log line per finished run (errors are still shown)")
    .option("--pool <kind>", 'run the tasks defined with `module` in a thread pool: "threads"')
    .option("--pool-min <n>", "threads kept when idle (default: 0)", integer(0))
    .option("--pool-max <n>", "threads at most (default: the available cores)", integer(1))
    .option("--max-tasks-per-child <n>", "replace a thread after this many tasks", integer(1))
    .option("--max-memory-per-child <mb>", "replace a thread whose heap passed this many MB", integer(1))
    .addHelpText(
      "after",
      `
On SIGINT or SIGTERM the worker stops taking tasks, waits for the running ones (up to the
grace period), closes the app and exits 0. A second signal exits at once (130, or 143 for
SIGTERM); the tasks it was running return to their queue when their leases lapse.

${APP_HELP}

Examples:
  celeriac worker ./app.ts --queues emails,default --concurrency 20
  celeriac worker ./app.ts --pool threads --max-tasks-per-child 1000`,
    )
    .action(async (argument: string | undefined, options: Options) => {
      done(await runWorker(argument, options, ctx));
    });
}

async function runWorker(argument: string | undefined, options: Options, ctx: Ctx): Promise<number> {
  const app = await loadApp(appPath(argument, options.app));
  const workerOptions: WorkerOptions = { hostname: hostname() };
  if (options.queues !== undefined) workerOptions.queues = options.queues;
  if (options.concurrency !== undefined) workerOptions.concurrency = options.concurrency;
  if (options.prefetch !== undefined) workerOptions.prefetch = options.prefetch;
  if (options.shutdownGrace !== undefined) workerOptions.shutdownGraceMs = options.shutdownGrace;
  if (options.heartbeat !== undefined) workerOptions.heartbeatMs = options.heartbeat;
  const pool = poolOf(options);
  if (pool !== undefined) workerOptions.pool = pool;
  let worker: ReturnType<CliApp["worker"]>;
  try {
    worker = app.worker(workerOptions);
  } catch (error) {
    await app.close();
    if (error instanceof RangeError || error instanceof TypeError) throw new UsageError(error.message);
    throw error;
  }
  const off = logEvents(app, ctx, options.quiet === true);
  const { err, pe } = ctx;
  const graceMs = options.shutdownGrace ?? 10_000;
  const text = {
    what: "worker",
    stopping: () => `waiting up to ${formatMs(graceMs)} for ${worker.active} running task(s)`,
    forced: () => `${worker.active} running task(s) return to their queue when their leases lapse`,
  };
  try {
    return await serve(app, ctx, text, () => {
      worker.start();
      const queues = options.queues ?? app.queues();
      const prefetch = options.prefetch ?? worker.concurrency;
      err.write(
        `${pe.green("celeriac worker")} ${pe.bold(worker.id)} started` +
          ` · queues ${pe.cyan(queues.join(", "))} · concurrency ${worker.concurrency} · prefetch ${prefetch}` +
          (pool === undefined ? "" : ` · pool threads (max ${options.poolMax ?? "cores"})`) +
          ` · pid ${process.pid}\n`,
      );
      return worker;
    });
  } finally {
    off();
  }
}

/** Logs finished runs (unless quiet) and errors to stderr; returns a function that stops it. */
function logEvents(app: CliApp, ctx: Ctx, quiet: boolean): () => void {
  const { err, pe } = ctx;
  const time = () => pe.dim(new Date().toISOString().slice(11, 23));
  const offs = [
    app.on("error", (e) => {
      const error = e.error as { message?: string } | undefined;
      err.write(`${time()} ${pe.red("error")} ${e.where}: ${error?.message ?? String(e.error)}\n`);
    }),
  ];
  if (!quiet) {
    offs.push(
      app.on("succeeded", (e) => {
        err.write(`${time()} ${pe.green("✔")} ${e.task} ${pe.dim(e.id)} ${formatMs(e.durationMs)}\n`);
      }),
      app.on("retrying", (e) => {
        err.write(
          `${time()} ${pe.yellow("↻")} ${e.task} ${pe.dim(e.id)} attempt ${e.attempt}: ${e.error.message}` +
            ` (again in ${formatMs(e.delayMs)})\n`,
        );
      }),
      app.on("failed", (e) => {
        err.write(
          `${time()} ${pe.red("✖")} ${e.task} ${pe.dim(e.id)} attempt ${e.attempt}: ${e.error.message}\n`,
        );
      }),
    );
  }
  return () => {
    for (const off of offs) off();
  };
}

/** The thread pool the options ask for; the pool options without --pool are a usage error. */
function poolOf(options: Options): TaskPool | undefined {
  const tuned =
    options.poolMin !== undefined ||
    options.poolMax !== undefined ||
    options.maxTasksPerChild !== undefined ||
    options.maxMemoryPerChild !== undefined;
  if (options.pool === undefined) {
    if (tuned) throw new UsageError("the pool options need --pool threads");
    return undefined;
  }
  if (options.pool !== "threads") throw new UsageError(`--pool must be "threads", got "${options.pool}"`);
  const o: ThreadPoolOptions = {};
  if (options.poolMin !== undefined) o.min = options.poolMin;
  if (options.poolMax !== undefined) o.max = options.poolMax;
  if (options.maxTasksPerChild !== undefined) o.maxTasksPerChild = options.maxTasksPerChild;
  if (options.maxMemoryPerChild !== undefined) o.maxMemoryPerChildMb = options.maxMemoryPerChild;
  try {
    return threads(o);
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(error.message);
    throw error;
  }
}
