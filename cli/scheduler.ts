/**
 * `celeriac scheduler [app]`: runs `app.scheduler().start()` in the foreground (it enqueues each
 * schedule's ticks, once across replicas) and stops gracefully on SIGINT/SIGTERM.
 *
 * @module
 */
import type { Command } from "commander";
import process from "node:process";
import { type AppOptions, appOption, type Ctx } from "./_context.ts";
import { APP_HELP, appPath, loadApp } from "./_load.ts";
import { serve } from "./_serve.ts";

/** Registers `scheduler` on the program. */
export function schedulerCommand(program: Command, ctx: Ctx, done: (code: number) => void): void {
  const command = program
    .command("scheduler")
    .description("run a scheduler: enqueue the app's schedules at each tick until SIGINT or SIGTERM")
    .argument("[app]", "the app module (or --app, or $CELERIAC_APP)");
  appOption(command)
    .addHelpText(
      "after",
      `
Any number of schedulers may run on one store: each tick is enqueued once. On SIGINT or
SIGTERM the scheduler disarms its timers, waits for a tick in progress, closes the app and
exits 0; a second signal exits at once (130, or 143 for SIGTERM).

${APP_HELP}

Example:
  celeriac scheduler ./app.ts`,
    )
    .action(async (argument: string | undefined, options: AppOptions) => {
      const app = await loadApp(appPath(argument, options.app));
      const off = app.on("error", (e) => {
        const error = e.error as { message?: string } | undefined;
        ctx.err.write(`${ctx.pe.red("error")} ${e.where}: ${error?.message ?? String(e.error)}\n`);
      });
      const text = {
        what: "scheduler",
        stopping: () => "waiting for a tick in progress",
        forced: () => "a tick in progress is cut short",
      };
      try {
        done(
          await serve(app, ctx, text, async () => {
            const scheduler = app.scheduler().start();
            const listed = await app.schedules.list({ next: 0 }).catch(() => null);
            const stored = listed?.filter((s) => s.source === "stored").length;
            const count = listed === null ? "" : ` · ${listed.length} schedule(s), ${stored} stored`;
            ctx.err.write(`${ctx.pe.green("celeriac scheduler")} started${count} · pid ${process.pid}\n`);
            return scheduler;
          }),
        );
      } finally {
        off();
      }
    });
}
