/**
 * Internal: what every command gets — the output streams with their styles — and the shared
 * `--app` and `--json` options.
 *
 * @module
 */
import type { Command } from "commander";
import process from "node:process";
import { appPath, type CliApp, loadApp } from "./_load.ts";
import { type OutStream, type Paint, paint } from "./_output.ts";

/** The streams a command writes to, each with its own styles. */
export interface Ctx {
  /** Results: tables, ids, JSON. */
  out: OutStream;
  /** Everything else: progress, prompts, startup lines, logs, errors. */
  err: OutStream;
  /** Styles for `out`. */
  po: Paint;
  /** Styles for `err`. */
  pe: Paint;
}

/** The context over the process's stdout and stderr. */
export function processCtx(): Ctx {
  return { out: process.stdout, err: process.stderr, po: paint(process.stdout), pe: paint(process.stderr) };
}

/** Options every command that loads the app has. */
export interface AppOptions {
  app?: string;
}

/** Adds `--app <path>` (see APP_HELP). */
export function appOption(command: Command): Command {
  return command.option("--app <path>", "the app module (default: $CELERIAC_APP)");
}

/** Adds `--json`. */
export function jsonOption(command: Command): Command {
  return command.option("--json", "print JSON for scripts instead of text for people");
}

/** Loads the app, runs `fn` with it, and closes it whatever happens. */
export async function withApp<T>(
  argument: string | undefined,
  options: AppOptions,
  fn: (app: CliApp) => Promise<T>,
): Promise<T> {
  const app = await loadApp(appPath(argument, options.app));
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}
