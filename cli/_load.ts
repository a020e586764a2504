/**
 * Internal: finding and loading the user's app module. The path comes from the command's `[app]`
 * argument (worker, scheduler, inspect), else `--app`, else `CELERIAC_APP`. A TypeScript module
 * loads natively on Bun, Deno and Node with type stripping; on an older Node through tsx's loader
 * when tsx is installed. The module must export a celeriac app as its default export or as `app`.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import type { App } from "../mod.ts";
import { AppLoadError, UsageError } from "./_exit.ts";

/** Where the app path came from, for the help text and errors. */
export const APP_HELP = `The app module (a file whose default export, or export named "app", is a celeriac app)
comes from the command's [app] argument where it has one, else --app <path>, else the
CELERIAC_APP environment variable. TypeScript files load natively on Bun, Deno and Node 22.18+;
on older Node versions through tsx when it is installed (npm i -D tsx).`;

/** The app as the CLI uses it. */
export type CliApp = App;

/** The app path of a command: its `[app]` argument, else `--app`, else `CELERIAC_APP`. */
export function appPath(argument: string | undefined, option: string | undefined): string {
  if (argument !== undefined && option !== undefined && resolve(argument) !== resolve(option)) {
    throw new UsageError(`two app modules given: ${argument} and --app ${option}; give one`);
  }
  const path = argument ?? option ?? process.env.CELERIAC_APP;
  if (path === undefined || path === "") {
    throw new UsageError("no app module: pass its path (--app ./app.ts) or set CELERIAC_APP");
  }
  return path;
}

const g = globalThis as { Bun?: unknown; Deno?: unknown };

/** True when this Node imports .ts files itself (type stripping, on by default since 22.18/23.6). */
function nodeStripsTypes(): boolean {
  const features = process.features as { typescript?: string | false };
  if (typeof features.typescript === "string") return true;
  return process.execArgv.some(
    (a) => a === "--experimental-strip-types" || a === "--experimental-transform-types",
  );
}

type TsxApi = { register?: () => unknown; default?: { register?: () => unknown } };

/** tsx's ESM loader API, from the CLI's own dependencies or from next to the app; null without tsx. */
async function tsxApi(file: string): Promise<TsxApi | null> {
  const missing = (error: unknown) =>
    ["ERR_MODULE_NOT_FOUND", "MODULE_NOT_FOUND"].includes((error as { code?: string }).code ?? "");
  try {
    return (await import("tsx/esm/api")) as TsxApi;
  } catch (error) {
    if (!missing(error)) throw error;
  }
  try {
    const path = createRequire(file).resolve("tsx/esm/api");
    return (await import(pathToFileURL(path).href)) as TsxApi;
  } catch (error) {
    if (!missing(error)) throw error;
    return null;
  }
}

let tsxRegistered = false;

/** Makes a .ts module importable on a Node that cannot strip types, or says how to. */
async function ensureTypeScript(file: string, shown: string): Promise<void> {
  if (g.Bun !== undefined || g.Deno !== undefined || tsxRegistered || nodeStripsTypes()) return;
  const api = await tsxApi(file);
  const register = api?.register ?? api?.default?.register;
  if (typeof register !== "function") {
    throw new AppLoadError(
      `${shown} is TypeScript, and Node ${process.versions.node} cannot load TypeScript by itself.\n` +
        "Install tsx next to it (npm i -D tsx) and celeriac will use it, use Node 22.18 or newer,\n" +
        "or run the CLI under Bun (bunx --bun celeriac …) or Deno (deno run -A npm:celeriac …).",
    );
  }
  register();
  tsxRegistered = true;
}

/** True for an object with the methods the CLI calls on an app. */
export function isApp(value: unknown): value is CliApp {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return ["worker", "scheduler", "enqueue", "close", "deadLetters"].every((k) => typeof v[k] === "function");
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (value === null) return "null";
  if (typeof value === "function") return `a function${value.name ? ` (${value.name})` : ""}`;
  if (typeof value === "object") return `an object without worker(), enqueue() and close()`;
  return `a ${typeof value}`;
}

/** Imports the app module at `path` (relative to the working directory) and returns its app. */
export async function loadApp(path: string): Promise<CliApp> {
  const file = resolve(path);
  if (!existsSync(file)) throw new AppLoadError(`app module not found: ${path} (looked at ${file})`);
  if (/\.[cm]?tsx?$/.test(file)) await ensureTypeScript(file, path);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (cause) {
    throw new AppLoadError(`could not load ${path}: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
    });
  }
  if (isApp(mod.default)) return mod.default;
  if (isApp(mod.app)) return mod.app;
  const names = Object.keys(mod).filter((k) => k !== "default");
  throw new AppLoadError(
    `${path} does not export a celeriac app: expected \`export default app\` or \`export const app = createApp(…)\`.\n` +
      `Its default export is ${describe(mod.default)}${"app" in mod ? `, its "app" export is ${describe(mod.app)}` : ""}` +
      `${names.length > 0 ? `; it exports ${names.join(", ")}` : ""}.`,
  );
}
