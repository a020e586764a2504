/**
 * `celeriac enqueue TASK [INPUT]`: `app.enqueue(name, input, options)`; prints the run id.
 *
 * @module
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import type { EnqueueOptions } from "../mod.ts";
import { duration, integer, jsonValue, time } from "./_args.ts";
import { type AppOptions, appOption, type Ctx, jsonOption, withApp } from "./_context.ts";
import { UsageError } from "./_exit.ts";
import { APP_HELP } from "./_load.ts";
import { json } from "./_output.ts";

interface Options extends AppOptions {
  delay?: number;
  at?: number;
  queue?: string;
  priority?: number;
  id?: string;
  idempotencyKey?: string;
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

/** Registers `enqueue` on the program. */
export function enqueueCommand(program: Command, ctx: Ctx, done: (code: number) => void): void {
  const command = program
    .command("enqueue")
    .description("enqueue a run of a task by name and print its run id")
    .argument("<task>", "the task's name")
    .argument("[input]", "the input as JSON; - reads it from stdin (default: no input)");
  appOption(command)
    .option("--delay <duration>", "deliver no sooner than this from now: 500ms, 5s, 2m, 1h", duration)
    .option("--at <time>", "deliver no sooner than this time (ISO 8601 or epoch ms)", time)
    .option("--queue <name>", "send to this queue instead of the task's")
    .option("--priority <n>", "override the task's priority (0-9)", integer(0))
    .option("--id <id>", "use this run id instead of a random one")
    .option("--idempotency-key <key>", "override the task's idempotency key for this run")
    .option("--wait", "wait for the run to end and print its result (exit 1 when it failed)")
    .option("--timeout <duration>", "with --wait: give up after this long (default: 60s)", duration);
  jsonOption(command)
    .addHelpText(
      "after",
      `
With an idempotency key seen within its TTL, the id printed is the existing run's.

${APP_HELP}

Examples:
  celeriac enqueue email.send '{"to":"ada@example.com"}' --delay 5s
  echo '{"to":"ada@example.com"}' | celeriac enqueue email.send - --json`,
    )
    .action(async (task: string, text: string | undefined, options: Options) => {
      if (options.delay !== undefined && options.at !== undefined) {
        throw new UsageError("give --delay or --at, not both");
      }
      if (options.timeout !== undefined && options.wait !== true)
        throw new UsageError("--timeout needs --wait");
      const input = text === undefined ? undefined : jsonValueOrUsage(text === "-" ? readStdin() : text);
      const enqueue: EnqueueOptions = {};
      if (options.delay !== undefined) enqueue.delayMs = options.delay;
      if (options.at !== undefined) enqueue.at = options.at;
      if (options.queue !== undefined) enqueue.queue = options.queue;
      if (options.priority !== undefined) enqueue.priority = options.priority;
      if (options.id !== undefined) enqueue.id = options.id;
      if (options.idempotencyKey !== undefined) enqueue.idempotencyKey = options.idempotencyKey;
      done(
        await withApp(undefined, options, async (app) => {
          const known = app.tasks.get(task);
          if (known === undefined) {
            const names = [...app.tasks.keys()].sort();
            throw new Error(
              `unknown task "${task}"; the app's tasks are: ${names.length > 0 ? names.join(", ") : "(none)"}`,
            );
          }
          const run = await app.enqueue(task, input, enqueue);
          const queue = options.queue ?? known.queue;
          if (options.wait !== true) {
            ctx.out.write(options.json === true ? json({ id: run.id, task, queue }) : `${run.id}\n`);
            return 0;
          }
          if (options.json !== true) ctx.err.write(ctx.pe.dim(`enqueued ${run.id}; waiting for it to end\n`));
          try {
            const result = await run.result({ timeoutMs: options.timeout ?? 60_000 });
            ctx.out.write(
              options.json === true
                ? json({ id: run.id, task, queue, state: "succeeded", result })
                : `${JSON.stringify(result) ?? "undefined"}\n`,
            );
            return 0;
          } catch (error) {
            if (options.json !== true) throw error;
            const record = await run.status();
            ctx.out.write(
              json({
                id: run.id,
                task,
                queue,
                state: record?.state ?? null,
                error: (error as Error).message,
              }),
            );
            return 1;
          }
        }),
      );
    });
}

function readStdin(): string {
  return readFileSync(0, "utf8");
}

function jsonValueOrUsage(text: string): unknown {
  try {
    return jsonValue(text);
  } catch (error) {
    throw new UsageError(`input: ${(error as Error).message}`);
  }
}
