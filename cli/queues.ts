/**
 * `celeriac queues pause|resume|purge NAME`: `app.control.pause`, `resume` and `purge`. Purge
 * asks first on a terminal, and without one refuses unless `--yes`.
 *
 * @module
 */
import type { Command } from "commander";
import { type AppOptions, appOption, type Ctx, jsonOption, withApp } from "./_context.ts";
import { UsageError } from "./_exit.ts";
import { APP_HELP } from "./_load.ts";
import { json } from "./_output.ts";
import { canAsk, confirm } from "./_prompt.ts";

interface Options extends AppOptions {
  json?: boolean;
  yes?: boolean;
}

/** Registers `queues` and its subcommands on the program. */
export function queuesCommand(program: Command, ctx: Ctx, done: (code: number) => void): void {
  const queues = program
    .command("queues")
    .description("pause, resume and purge queues (see `inspect queues` for their counts)")
    .addHelpText("after", `\n${APP_HELP}`);

  for (const [name, description, paused] of [
    ["pause", "stop workers taking from a queue (enqueue still works; running tasks finish)", true],
    ["resume", "let workers take from a paused queue again", false],
  ] as const) {
    const command = queues.command(name).description(description).argument("<queue>", "the queue's name");
    appOption(command);
    jsonOption(command).action(async (queue: string, options: Options) => {
      done(
        await withApp(undefined, options, async (app) => {
          await (paused ? app.control.pause(queue) : app.control.resume(queue));
          ctx.out.write(
            options.json === true ? json({ queue, paused }) : `${paused ? "paused" : "resumed"} ${queue}\n`,
          );
          return 0;
        }),
      );
    });
  }

  const purge = queues
    .command("purge")
    .description("remove a queue's waiting and delayed messages (their runs end cancelled)")
    .argument("<queue>", "the queue's name");
  appOption(purge).option("-y, --yes", "do not ask (needed when stdin is not a terminal)");
  jsonOption(purge)
    .addHelpText(
      "after",
      `
On a terminal purge asks first (y/N). Without a terminal it refuses (exit 2) unless --yes.
Running tasks are not touched.`,
    )
    .action(async (queue: string, options: Options) => {
      if (options.yes !== true && !canAsk()) {
        throw new UsageError(`not purging ${queue}: stdin is not a terminal to confirm on; pass --yes`);
      }
      done(
        await withApp(undefined, options, async (app) => {
          if (options.yes !== true) {
            // The counts make the question concrete; without them it is still asked.
            const counts = await Promise.resolve()
              .then(() => app.inspect().queues())
              .then((all) => all.find((q) => q.queue === queue))
              .catch(() => undefined);
            const what =
              counts === undefined
                ? `every waiting and delayed message of queue "${queue}"`
                : `${counts.waiting} waiting and ${counts.scheduled + counts.retrying} delayed message(s) of queue "${queue}"`;
            if (!(await confirm(`Purge ${what}?`))) {
              ctx.err.write("not purged\n");
              return 1;
            }
          }
          const purged = await app.control.purge(queue);
          ctx.out.write(
            options.json === true ? json({ queue, purged }) : `purged ${purged} message(s) from ${queue}\n`,
          );
          return 0;
        }),
      );
    });
}
