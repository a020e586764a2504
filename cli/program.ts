/**
 * The `celeriac` command line: the program with its commands, and `main(argv)`, which runs it
 * and turns what happened into an exit code (see `EXIT`).
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { readFileSync } from "node:fs";
import process from "node:process";
import { type Ctx, processCtx } from "./_context.ts";
import { AppLoadError, EXIT, EXIT_HELP, InterruptedError, UsageError } from "./_exit.ts";
import { dlqCommand } from "./dlq.ts";
import { enqueueCommand } from "./enqueue.ts";
import { inspectCommand } from "./inspect.ts";
import { queuesCommand } from "./queues.ts";
import { schedulerCommand } from "./scheduler.ts";
import { schedulesCommand } from "./schedules.ts";
import { workerCommand } from "./worker.ts";

/** The package's version, from its package.json (next to cli/ in the source, two up in dist/). */
function version(): string {
  for (const path of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "celeriac" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not there: try the next
    }
  }
  return "unknown";
}

/** The program; each command's action reports its exit code through `done`. */
export function program(ctx: Ctx, done: (code: number) => void): Command {
  const program = new Command("celeriac")
    .description("Run and operate celeriac workers, schedulers, queues and dead letters.")
    .version(version(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help for the command")
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({
      writeOut: (text) => ctx.out.write(text),
      writeErr: (text) => ctx.err.write(text),
      outputError: (text, write) => write(ctx.pe.red(text)),
    })
    .addHelpText(
      "after",
      `
Every command that needs the app takes its module from --app <path> or $CELERIAC_APP;
worker, scheduler and inspect also take it as their last argument. Run
"celeriac <command> --help" for a command's options.

${EXIT_HELP}`,
    );
  workerCommand(program, ctx, done);
  schedulerCommand(program, ctx, done);
  inspectCommand(program, ctx, done);
  queuesCommand(program, ctx, done);
  dlqCommand(program, ctx, done);
  enqueueCommand(program, ctx, done);
  schedulesCommand(program, ctx, done);
  return program;
}

/** Writes an error the way the CLI reports it and returns its exit code. */
function report(error: unknown, ctx: Ctx): number {
  const { err, pe } = ctx;
  if (error instanceof CommanderError) {
    // Commander has printed the message (and the help after it); help and --version exit 0.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof InterruptedError) return EXIT.interrupted;
  const message = (error as Error)?.message ?? String(error);
  if (error instanceof UsageError) {
    err.write(pe.red(`error: ${message}\n`));
    err.write(`(run with --help for usage)\n`);
    return EXIT.usage;
  }
  if (error instanceof AppLoadError) {
    err.write(pe.red(`error: ${message}\n`));
    const cause = error.cause as Error | undefined;
    if (cause?.stack !== undefined) err.write(pe.dim(`${cause.stack}\n`));
    return EXIT.app;
  }
  const e = error as { name?: string; issues?: readonly { message: string; path?: readonly unknown[] }[] };
  const name = typeof e?.name === "string" && e.name !== "Error" ? `${e.name}: ` : "";
  err.write(pe.red(`error: ${name}${message}\n`));
  for (const issue of e?.issues ?? []) {
    const at =
      issue.path === undefined || issue.path.length === 0 ? "" : `${issue.path.map(String).join(".")}: `;
    err.write(`  - ${at}${issue.message}\n`);
  }
  if (process.env.CELERIAC_DEBUG && (error as Error)?.stack) err.write(pe.dim(`${(error as Error).stack}\n`));
  return EXIT.failure;
}

/**
 * Runs the command line `argv` (without the runtime and script) and resolves to the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await main(["inspect", "queues", "./app.ts", "--json"]);
 * ```
 */
export async function main(argv: readonly string[], ctx: Ctx = processCtx()): Promise<number> {
  let code: number = EXIT.ok;
  try {
    await program(ctx, (c) => {
      code = c;
    }).parseAsync([...argv], { from: "user" });
    return code;
  } catch (error) {
    return report(error, ctx);
  }
}
