/**
 * `celeriac inspect workers|active|queues|stats|schedules [app]`: the views of `app.inspect()`,
 * as tables for people or `--json` for scripts.
 *
 * @module
 */
import type { Command } from "commander";
import type { WorkerInfo } from "../backend.ts";
import type { ActiveRun, Percentiles, QueueInfo, ScheduleInfo, TaskStats } from "../src/ops/types.ts";
import { duration } from "./_args.ts";
import { type AppOptions, appOption, type Ctx, jsonOption, withApp } from "./_context.ts";
import { APP_HELP, type CliApp } from "./_load.ts";
import { type Column, clip, formatInterval, formatMs, formatWhen, json, table } from "./_output.ts";

interface Options extends AppOptions {
  json?: boolean;
  window?: number;
  dashboard?: string;
}

type View<T> = {
  description: string;
  read(app: CliApp, options: Options): Promise<T[]>;
  columns(now: number): Column<T>[];
  /** The row's page on the dashboard, below its URL. */
  link(row: T): string;
};

const enc = encodeURIComponent;

/** The dashboard's URL: `--dashboard`, else `$CELERIAC_DASHBOARD_URL`; without a trailing slash. */
function dashboardUrl(options: Options): string | undefined {
  const url = options.dashboard ?? process.env.CELERIAC_DASHBOARD_URL;
  if (url === undefined || url === "") return undefined;
  if (!/^https?:\/\//.test(url)) throw new TypeError(`--dashboard must be an http(s) URL, got ${url}`);
  return url.replace(/\/+$/, "");
}

const ms = (v: number | null) => (v === null ? "-" : formatMs(v));
const p = (x: Percentiles) => `${ms(x.p50)} / ${ms(x.p90)} / ${ms(x.p99)}`;

/** A worker's thread pool: busy/size threads, and how many were recycled (or "-" without one). */
function poolCell(w: WorkerInfo): string {
  const pool = w.pool;
  if (pool === undefined) return "-";
  const r = pool.recycled;
  const recycled = r.tasks + r.memory + r.timeout + r.aborted + r.crashed;
  return `${pool.busy}/${pool.size} (max ${pool.max}, ${recycled} recycled)`;
}

const workers: View<WorkerInfo> = {
  description: "live workers (and push instances): queues, concurrency, counters, thread pool, last beat",
  read: (app) => app.inspect().workers(),
  columns: (now) => [
    { header: "ID", cell: (w) => w.id },
    { header: "KIND", cell: (w) => w.kind },
    { header: "HOST", cell: (w) => w.hostname ?? "-" },
    { header: "PID", cell: (w) => (w.pid === null ? "-" : String(w.pid)), right: true },
    { header: "RUNTIME", cell: (w) => w.runtime },
    { header: "QUEUES", cell: (w) => clip(w.queues.join(","), 30) },
    { header: "ACTIVE", cell: (w) => `${w.active.length}/${w.concurrency}`, right: true },
    { header: "PROCESSED", cell: (w) => String(w.counters.processed), right: true },
    { header: "FAILED", cell: (w) => String(w.counters.failed), right: true },
    { header: "POOL", cell: (w) => poolCell(w) },
    { header: "STATE", cell: (w) => w.state },
    { header: "UP", cell: (w) => formatMs(now - w.startedAt) },
    { header: "BEAT", cell: (w) => formatWhen(w.beatAt, now) },
  ],
  link: () => "/workers",
};

const active: View<ActiveRun> = {
  description: "runs running now, by worker",
  read: (app) => app.inspect().active(),
  columns: (now) => [
    { header: "ID", cell: (r) => r.id },
    { header: "TASK", cell: (r) => r.task ?? "-" },
    { header: "QUEUE", cell: (r) => r.queue },
    { header: "WORKER", cell: (r) => r.worker },
    { header: "ATTEMPT", cell: (r) => (r.attempt === null ? "-" : String(r.attempt)), right: true },
    { header: "RUNNING", cell: (r) => formatMs(now - r.since) },
    {
      header: "PROGRESS",
      cell: (r) => (r.progress === undefined ? "-" : clip(JSON.stringify(r.progress), 30)),
    },
  ],
  link: (r) => `/runs/${enc(r.id)}?queue=${enc(r.queue)}`,
};

const queues: View<QueueInfo> = {
  description: "per queue: waiting, delayed, limited, active and dead-lettered counts, oldest wait, workers",
  read: (app) => app.inspect().queues(),
  columns: () => [
    { header: "QUEUE", cell: (q) => q.queue },
    { header: "WAITING", cell: (q) => String(q.waiting), right: true },
    { header: "SCHEDULED", cell: (q) => String(q.scheduled), right: true },
    { header: "RETRYING", cell: (q) => String(q.retrying), right: true },
    { header: "LIMITED", cell: (q) => String(q.limited), right: true },
    { header: "ACTIVE", cell: (q) => String(q.active), right: true },
    { header: "DEAD", cell: (q) => String(q.deadLetters), right: true },
    { header: "OLDEST", cell: (q) => ms(q.oldestWaitingAgeMs) },
    { header: "WORKERS", cell: (q) => String(q.workers), right: true },
    { header: "PAUSED", cell: (q) => (q.paused ? "paused" : "-") },
  ],
  link: (q) => `/queues/${enc(q.queue)}`,
};

const stats: View<TaskStats> = {
  description: "per task: outcomes and runtime / wait percentiles (p50 / p90 / p99) over a window",
  read: (app, options) =>
    app.inspect().stats(options.window === undefined ? {} : { windowMs: options.window }),
  columns: () => [
    { header: "TASK", cell: (s) => s.task },
    { header: "QUEUE", cell: (s) => s.queue },
    { header: "OK", cell: (s) => String(s.succeeded), right: true },
    { header: "FAILED", cell: (s) => String(s.failed), right: true },
    { header: "RETRIED", cell: (s) => String(s.retried), right: true },
    { header: "REJECTED", cell: (s) => String(s.rejected), right: true },
    { header: "RUNTIME p50/p90/p99", cell: (s) => p(s.runtime) },
    { header: "WAIT p50/p90/p99", cell: (s) => p(s.wait) },
  ],
  link: (s) => `/runs?task=${enc(s.task)}&queue=${enc(s.queue)}`,
};

const schedules: View<ScheduleInfo> = {
  description: "every schedule, in code and stored, with its next and last tick",
  read: (app) => app.inspect().schedules(),
  columns: (now) => [
    { header: "ID", cell: (s) => s.id },
    { header: "SOURCE", cell: (s) => s.source },
    { header: "TASK", cell: (s) => s.task },
    {
      header: "WHEN",
      cell: (s) => s.cron ?? (s.everyMs === null ? "-" : `every ${formatInterval(s.everyMs)}`),
    },
    { header: "PAUSED", cell: (s) => (s.paused ? "paused" : "-") },
    { header: "NEXT", cell: (s) => formatWhen(s.next, now) },
    { header: "LAST", cell: (s) => formatWhen(s.last, now) },
  ],
  link: () => "/schedules",
};

/** Registers `inspect` and its subcommands on the program. */
export function inspectCommand(program: Command, ctx: Ctx, done: (code: number) => void): void {
  const inspect = program
    .command("inspect")
    .description("look at workers, running tasks, queues, task statistics and schedules")
    .addHelpText("after", `\n${APP_HELP}\n\nExample:\n  celeriac inspect queues ./app.ts --json`);
  const views = { workers, active, queues, stats, schedules } as Record<string, View<unknown>>;
  for (const [name, view] of Object.entries(views)) {
    const command = inspect
      .command(name)
      .description(view.description)
      .argument("[app]", "the app module (or --app, or $CELERIAC_APP)");
    appOption(command);
    if (name === "stats")
      command.option("--window <duration>", "the statistics window (default: 15m)", duration);
    command.option(
      "--dashboard <url>",
      "the dashboard's URL: each row gets a link to its page (default: $CELERIAC_DASHBOARD_URL)",
    );
    jsonOption(command).action(async (argument: string | undefined, options: Options) => {
      done(
        await withApp(argument, options, async (app) => {
          const base = dashboardUrl(options);
          const rows = await view.read(app, options);
          const columns = view.columns(Date.now());
          if (base !== undefined) columns.push({ header: "LINK", cell: (r) => `${base}${view.link(r)}` });
          const out =
            base === undefined
              ? rows
              : rows.map((r) => ({ ...(r as object), url: `${base}${view.link(r)}` }));
          ctx.out.write(options.json === true ? json(out) : table(rows, columns, ctx.po));
          return 0;
        }),
      );
    });
  }
}
