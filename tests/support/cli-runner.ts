/**
 * Running the `celeriac` CLI (cli/mod.ts, from source) in child processes under the current
 * runtime, for the CLI tests: to completion (`cli`), or in the background with its output
 * collected (`startCli`); and in a real terminal through tmux (`tmuxCli`, Node only).
 *
 * @module
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { waitFor } from "./redis-fixtures.ts";

export const CLI = fileURLToPath(new URL("../../cli/mod.ts", import.meta.url));
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The current runtime running the CLI from source. */
export function cliCommand(args: readonly string[]): [string, string[]] {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Bun !== undefined) return [process.execPath, [CLI, ...args]];
  if (g.Deno !== undefined) return [process.execPath, ["run", "-A", CLI, ...args]];
  return [process.execPath, ["--import", "tsx", CLI, ...args]];
}

/** The environment of a CLI child: this process's, minus color settings, plus `env`. */
export function cliEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({
    ...process.env,
    NO_COLOR: undefined,
    FORCE_COLOR: undefined,
    ...env,
  })) {
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** How a CLI run ended. */
export interface CliResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A CLI child running in the background. */
export interface CliChild {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /**
   * Sends it a signal. (Through `process.kill`: Deno's `child.kill()` sends only once and then
   * reports any exit as by that signal.)
   */
  signal(name: "SIGINT" | "SIGTERM"): void;
  /** Resolves when stderr matches `pattern` (fails after `ms`, showing the output). */
  waitForStderr(pattern: RegExp, ms?: number): Promise<void>;
  /** Resolves when it has exited (fails after `ms`). */
  exit(ms?: number): Promise<CliResult>;
}

const live = new Set<ChildProcess>();

/** Starts the CLI with `args`; stdin is a pipe that is closed at once unless `input` is given. */
export function startCli(
  args: readonly string[],
  env: Record<string, string | undefined>,
  input?: string,
): CliChild {
  const [file, argv] = cliCommand(args);
  const child = spawn(file, argv, { cwd: ROOT, env: cliEnv(env), stdio: ["pipe", "pipe", "pipe"] });
  live.add(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString("utf8");
  });
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString("utf8");
  });
  child.stdin!.on("error", () => {});
  child.stdin!.end(input);
  const ended = new Promise<CliResult>((resolve) => {
    child.once("close", (code, signal) => {
      live.delete(child);
      resolve({ code, signal, stdout: out, stderr: err });
    });
  });
  const show = () => `\n--- stdout ---\n${out}\n--- stderr ---\n${err}`;
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    signal(name) {
      process.kill(child.pid!, name);
    },
    async waitForStderr(pattern, ms = 30_000) {
      await waitFor(() => pattern.test(err), ms, `stderr matching ${pattern}`).catch((error) => {
        throw new Error(`${(error as Error).message}${show()}`);
      });
    },
    async exit(ms = 30_000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the CLI did not exit within ${ms} ms${show()}`)), ms);
      });
      try {
        return await Promise.race([ended, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs the CLI with `args` to its end. */
export function cli(
  args: readonly string[],
  env: Record<string, string | undefined>,
  input?: string,
): Promise<CliResult> {
  return startCli(args, env, input).exit(60_000);
}

/** Kills CLI children a failed test left running. */
export function killLiveClis(): void {
  for (const child of live) child.kill("SIGKILL");
}

const exec = promisify(execFile);

/** Why tmux cannot be used here, or null. */
export async function tmuxMissing(): Promise<string | null> {
  try {
    await exec("tmux", ["-V"]);
    return null;
  } catch {
    return "tmux is not installed: apt-get install -y tmux (.ci/run installs it)";
  }
}

/** The CLI running in a real terminal: a tmux pane on a tmux server of its own. */
export interface TmuxCli {
  /** What the pane has shown (its history too): plain text, or with its color escapes. */
  screen(options?: { escapes?: boolean }): Promise<string>;
  /** Resolves when the screen matches `pattern` (fails after `ms`, showing the screen). */
  waitForScreen(pattern: RegExp, ms?: number): Promise<string>;
  /** Types into the pane (tmux send-keys arguments: "n", "Enter"). */
  keys(...keys: string[]): Promise<void>;
  /** Resolves with the CLI's exit status once it has ended (the pane stays, showing its output). */
  exit(ms?: number): Promise<number>;
  /** Stops the tmux server. */
  close(): Promise<void>;
}

let sessions = 0;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Starts the CLI with `args` in a 120×30 tmux pane. */
export async function tmuxCli(args: readonly string[], env: Record<string, string>): Promise<TmuxCli> {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-tmux-"));
  const socket = join(dir, "socket");
  const conf = join(dir, "tmux.conf");
  // The pane stays after the CLI exits, so its last screen can be read.
  writeFileSync(conf, "set -g remain-on-exit on\nset -g status off\n");
  // The server (started by the first call) passes its environment on to the pane: no color settings.
  const tmux = (...a: string[]) =>
    exec("tmux", ["-S", socket, "-f", conf, ...a], { cwd: ROOT, env: cliEnv({}) });
  const [file, argv] = cliCommand(args);
  const vars = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  const target = `cli${++sessions}`;
  // The pane's shell waits for the CLI and writes its exit status to a file: tmux itself
  // sometimes shows a pane dead before it has reaped the process, and then has no status.
  const statusFile = join(dir, "status");
  const cd = `cd ${quote(ROOT)}`;
  const command = `${cd} && ${[file, ...argv].map(quote).join(" ")}; echo $? > ${quote(statusFile)}`;
  await tmux("new-session", "-d", "-s", target, "-x", "120", "-y", "30", ...vars, command);
  const screen = async (options: { escapes?: boolean } = {}) => {
    const escapes = options.escapes === true ? ["-e"] : [];
    return (await tmux("capture-pane", "-p", "-J", "-S", "-", ...escapes, "-t", target)).stdout;
  };
  /** The exit status once the CLI has ended, else null. */
  const status = (): number | null => {
    if (!existsSync(statusFile)) return null;
    const text = readFileSync(statusFile, "utf8").trim();
    return text === "" ? null : Number(text);
  };
  return {
    screen,
    async waitForScreen(pattern, ms = 30_000) {
      let last = "";
      const shown = async () => {
        const ended = status() !== null; // read first: what it shows then is final
        last = await screen();
        return pattern.test(last) || ended;
      };
      await waitFor(shown, ms, `the terminal to show ${pattern}`).catch((error) => {
        throw new Error(`${(error as Error).message}; the terminal shows:\n${last}`);
      });
      if (!pattern.test(last))
        throw new Error(`the CLI exited without showing ${pattern}; the terminal shows:\n${last}`);
      return last;
    },
    async keys(...keys) {
      await tmux("send-keys", "-t", target, ...keys);
    },
    async exit(ms = 30_000) {
      await waitFor(() => status() !== null, ms, "the CLI in tmux to exit").catch(async (error) => {
        throw new Error(`${(error as Error).message}; the terminal shows:\n${await screen()}`);
      });
      return status()!;
    },
    async close() {
      await tmux("kill-server").catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
