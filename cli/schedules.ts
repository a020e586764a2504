/**
 * `celeriac schedules list|add|pause|resume|remove`: the stored schedules of `app.schedules`,
 * shared through the store by every scheduler on it (schedules in code are listed too).
 *
 * @module
 */
import { type Command, Option } from "commander";
import type { StoredSchedule } from "../mod.ts";
import { integer, jsonValue, time } from "./_args.ts";
import { type AppOptions, appOption, type Ctx, jsonOption, withApp } from "./_context.ts";
import { UsageError } from "./_exit.ts";
import { APP_HELP } from "./_load.ts";
import { formatInterval, formatWhen, json, table } from "./_output.ts";

interface AddOptions extends AppOptions {
  task: string;
  input?: unknown;
  cron?: string;
  every?: string;
  timezone?: string;
  queue?: string;
  priority?: number;
  startAt?: number;
  stopAt?: number;
  overlap: boolean;
  catchUp?: "none" | "latest" | "all";
  paused?: boolean;
  json?: boolean;
}

/** Registers `schedules` and its subcommands on the program. */
export function schedulesCommand(program: Command, ctx: Ctx, done: (code: number) => void): void {
  const schedules = program
    .command("schedules")
    .description("list, add, pause, resume and remove stored schedules (app.schedules)")
    .addHelpText(
      "after",
      `
Stored schedules live in the app's store: every scheduler on it fires them, and a stored
schedule with the id of one in code replaces it until removed.

${APP_HELP}`,
    );

  const list = schedules.command("list").description("list every schedule, stored and in code");
  appOption(list);
  jsonOption(list).action(async (options: AppOptions & { json?: boolean }) => {
    done(
      await withApp(undefined, options, async (app) => {
        const rows = await app.schedules.list();
        if (options.json === true) {
          ctx.out.write(json(rows));
          return 0;
        }
        const now = Date.now();
        ctx.out.write(
          table(
            rows,
            [
              { header: "ID", cell: (s) => s.id },
              { header: "SOURCE", cell: (s) => s.source },
              { header: "TASK", cell: (s) => s.task },
              {
                header: "WHEN",
                cell: (s) =>
                  s.cron === null
                    ? s.every === null
                      ? "-"
                      : `every ${formatInterval(s.every)}`
                    : `${s.cron}${s.timezone === null ? "" : ` (${s.timezone})`}`,
              },
              { header: "PAUSED", cell: (s) => (s.paused ? "paused" : "-") },
              { header: "NEXT", cell: (s) => formatWhen(s.nextRuns[0] ?? null, now) },
              { header: "LAST", cell: (s) => formatWhen(s.lastTick, now) },
              {
                header: "LAST RUN",
                cell: (s) => (s.lastRun === null ? "-" : `${s.lastRun.id} ${s.lastRun.state ?? ""}`),
              },
              { header: "ERROR", cell: (s) => s.error ?? "" },
            ],
            ctx.po,
          ),
        );
        return 0;
      }),
    );
  });

  const add = schedules
    .command("add")
    .description("add a stored schedule, or replace the stored one with this id")
    .argument("<id>", "the schedule's id");
  appOption(add)
    .requiredOption("--task <name>", "the task to enqueue on each tick")
    .option("--input <json>", "each run's input, as JSON", jsonValue)
    .option("--cron <pattern>", 'a cron pattern: "0 2 * * *"')
    .option("--every <interval>", "a fixed interval instead of --cron: 30s, 5m, 1h30m")
    .option("--timezone <zone>", "the IANA time zone of --cron (default: UTC)")
    .option("--queue <name>", "the queue each run goes to (default: the task's)")
    .option("--priority <n>", "the priority of each run (0-9)", integer(0))
    .option(
      "--start-at <time>",
      "no tick before this time (ISO 8601 or epoch ms); the anchor of --every",
      time,
    )
    .option("--stop-at <time>", "no tick at or after this time (ISO 8601 or epoch ms)", time)
    .option("--no-overlap", "skip a tick while the previous run has not ended")
    .addOption(
      new Option("--catch-up <policy>", "ticks missed while no scheduler ran (default: latest)").choices([
        "none",
        "latest",
        "all",
      ]),
    )
    .option("--paused", "add it paused");
  jsonOption(add)
    .addHelpText(
      "after",
      `
Give exactly one of --cron and --every.

Examples:
  celeriac schedules add nightly --task reports.build --cron "0 2 * * *" --timezone Europe/Berlin
  celeriac schedules add heartbeat --task ping --every 30s --input '{"from":"cli"}'`,
    )
    .action(async (id: string, options: AddOptions) => {
      if ((options.cron === undefined) === (options.every === undefined)) {
        throw new UsageError("give exactly one of --cron and --every");
      }
      if (options.timezone !== undefined && options.cron === undefined) {
        throw new UsageError("--timezone goes with --cron");
      }
      const definition: StoredSchedule = { task: options.task };
      if (options.input !== undefined) definition.input = options.input;
      if (options.cron !== undefined) definition.cron = options.cron;
      if (options.every !== undefined) definition.every = options.every;
      if (options.timezone !== undefined) definition.timezone = options.timezone;
      if (options.queue !== undefined) definition.queue = options.queue;
      if (options.priority !== undefined) definition.priority = options.priority;
      if (options.startAt !== undefined) definition.startAt = options.startAt;
      if (options.stopAt !== undefined) definition.stopAt = options.stopAt;
      if (!options.overlap) definition.overlap = false;
      if (options.catchUp !== undefined) definition.catchUp = options.catchUp;
      if (options.paused === true) definition.paused = true;
      done(
        await withApp(undefined, options, async (app) => {
          await app.schedules.add(id, definition);
          ctx.out.write(options.json === true ? json({ id, ...definition }) : `added schedule ${id}\n`);
          return 0;
        }),
      );
    });

  for (const [name, description, verb] of [
    ["pause", "pause a stored schedule: it fires nothing until resumed", "paused"],
    ["resume", "resume a paused stored schedule from its next tick", "resumed"],
    ["remove", "remove a stored schedule (a code schedule with its id fires again)", "removed"],
  ] as const) {
    const command = schedules.command(name).description(description).argument("<id>", "the schedule's id");
    appOption(command);
    jsonOption(command).action(async (id: string, options: AppOptions & { json?: boolean }) => {
      done(
        await withApp(undefined, options, async (app) => {
          if (name === "remove") {
            if (!(await app.schedules.remove(id))) throw new Error(`no stored schedule "${id}"`);
          } else {
            await (name === "pause" ? app.schedules.pause(id) : app.schedules.resume(id));
          }
          ctx.out.write(options.json === true ? json({ id, [verb]: true }) : `${verb} schedule ${id}\n`);
          return 0;
        }),
      );
    });
  }
}
