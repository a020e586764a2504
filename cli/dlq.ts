/**
 * `celeriac dlq list|show|replay`: the app's dead letters (`app.deadLetters()`), one in full,
 * and sending them again (`app.replay(id)`, `app.control.replay({ ... })`) with a progress bar.
 *
 * @module
 */
import type { Command } from "commander";
import type { DeadLetter } from "../mod.ts";
import { integer } from "./_args.ts";
import { type AppOptions, appOption, type Ctx, jsonOption, withApp } from "./_context.ts";
import { UsageError } from "./_exit.ts";
import { APP_HELP, type CliApp } from "./_load.ts";
import { clip, formatWhen, json, progressBar, table } from "./_output.ts";

/** How many dead letters `show` and a `list --task` look through (newest first). */
const SCAN = 10_000;

interface ListOptions extends AppOptions {
  task?: string;
  limit: number;
  json?: boolean;
}

interface ReplayOptions extends AppOptions {
  task?: string;
  reason?: string;
  queue?: string;
  all?: boolean;
  json?: boolean;
}

/** Registers `dlq` and its subcommands on the program. */
export function dlqCommand(program: Command, ctx: Ctx, done: (code: number) => void): void {
  const dlq = program
    .command("dlq")
    .description("list, show and replay dead letters (runs that failed for good or could not be run)")
    .addHelpText("after", `\n${APP_HELP}`);

  const list = dlq.command("list").description("list dead letters, newest first");
  appOption(list)
    .option("--task <name>", `only this task's (looks through the newest ${SCAN})`)
    .option("--limit <n>", "show at most this many", integer(1), 50);
  jsonOption(list).action(async (options: ListOptions) => {
    done(
      await withApp(undefined, options, async (app) => {
        const letters =
          options.task === undefined
            ? await app.deadLetters({ limit: options.limit })
            : (await app.deadLetters({ limit: SCAN }))
                .filter((d) => d.task === options.task)
                .slice(0, options.limit);
        if (options.json === true) {
          ctx.out.write(json(letters));
          return 0;
        }
        const now = Date.now();
        ctx.out.write(
          table(
            letters,
            [
              { header: "ID", cell: (d) => d.id },
              { header: "TASK", cell: (d) => d.task ?? "-" },
              { header: "QUEUE", cell: (d) => d.queue },
              { header: "WHEN", cell: (d) => formatWhen(d.at, now) },
              { header: "REASON", cell: (d) => clip(d.reason, 40) },
              { header: "ERROR", cell: (d) => clip(`${d.error.name}: ${d.error.message}`, 60) },
            ],
            ctx.po,
          ),
        );
        return 0;
      }),
    );
  });

  const show = dlq.command("show").description("show one dead letter in full").argument("<id>", "its id");
  appOption(show);
  jsonOption(show).action(async (id: string, options: AppOptions & { json?: boolean }) => {
    done(
      await withApp(undefined, options, async (app) => {
        const letter = (await app.deadLetters({ limit: SCAN })).find((d) => d.id === id);
        if (letter === undefined) {
          throw new Error(`no dead letter with id ${id} (among the newest ${SCAN})`);
        }
        ctx.out.write(options.json === true ? json(letter) : describe(letter, ctx));
        return 0;
      }),
    );
  });

  const replay = dlq
    .command("replay")
    .description("send dead letters again, each with a fresh attempt budget under its run id")
    .argument("[id]", "one dead letter's id");
  appOption(replay)
    .option("--task <name>", "the dead letters of this task")
    .option("--reason <prefix>", "the dead letters whose reason starts with this")
    .option("--queue <name>", "the dead letters of this queue")
    .option("--all", "every dead letter");
  jsonOption(replay)
    .addHelpText(
      "after",
      `
Give one id, or filters (--task, --reason, --queue, combined), or --all. On a terminal a
progress bar shows how many were sent.

Examples:
  celeriac dlq replay --task email.send --reason "TimeoutError"
  celeriac dlq replay 01J9Z3T4G8`,
    )
    .action(async (id: string | undefined, options: ReplayOptions) => {
      const filtered =
        options.task !== undefined || options.reason !== undefined || options.queue !== undefined;
      if (id !== undefined && (filtered || options.all === true)) {
        throw new UsageError(
          "give a dead letter's id or filters (--task, --reason, --queue, --all), not both",
        );
      }
      if (id === undefined && !filtered && options.all !== true) {
        throw new UsageError("say which dead letters: an id, --task, --reason, --queue, or --all");
      }
      done(
        await withApp(undefined, options, async (app) => {
          if (id !== undefined) {
            const run = await app.replay(id);
            ctx.out.write(options.json === true ? json({ replayed: 1, id: run.id }) : `replayed ${run.id}\n`);
            return 0;
          }
          const replayed = await replayMany(app, options, ctx);
          ctx.out.write(
            options.json === true
              ? json({ replayed })
              : `replayed ${replayed} dead letter${replayed === 1 ? "" : "s"}\n`,
          );
          return 0;
        }),
      );
    });
}

async function replayMany(app: CliApp, options: ReplayOptions, ctx: Ctx): Promise<number> {
  const bar = progressBar(ctx.err, "replaying", ctx.pe);
  try {
    return await app.control.replay({
      ...(options.task === undefined ? {} : { task: options.task }),
      ...(options.reason === undefined ? {} : { reason: options.reason }),
      ...(options.queue === undefined ? {} : { queue: options.queue }),
      ...(options.all === true ? { all: true } : {}),
      onProgress: ({ done, total }) => bar.update(done, total),
    });
  } finally {
    bar.end();
  }
}

function describe(d: DeadLetter, ctx: Ctx): string {
  const { bold, dim, red } = ctx.po;
  const lines = [
    `${bold("id")}      ${d.id}`,
    `${bold("task")}    ${d.task ?? "-"}`,
    `${bold("queue")}   ${d.queue}`,
    `${bold("when")}    ${new Date(d.at).toISOString()} (${formatWhen(d.at)})`,
    `${bold("reason")}  ${d.reason}`,
    `${bold("error")}   ${red(`${d.error.name}: ${d.error.message}`)}`,
  ];
  if (d.error.stack !== undefined) lines.push(dim(d.error.stack.replace(/^/gm, "          ")));
  if (d.errors.length > 0) {
    lines.push(bold("attempts"));
    for (const e of d.errors) {
      lines.push(`  ${e.attempt}  ${new Date(e.at).toISOString()}  ${e.name}: ${e.message}`);
    }
  }
  let input: unknown;
  let decoded = false;
  try {
    const body = JSON.parse(d.body) as { input?: unknown };
    if (typeof body === "object" && body !== null && "input" in body) {
      input = body.input;
      decoded = true;
    }
  } catch {
    // not JSON: shown as received below
  }
  if (decoded) lines.push(bold("input"), (JSON.stringify(input, null, 2) ?? "(none)").replace(/^/gm, "  "));
  else lines.push(bold("body (as received)"), `  ${d.body}`);
  return `${lines.join("\n")}\n`;
}
