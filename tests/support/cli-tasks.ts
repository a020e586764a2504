/**
 * The app of the CLI tests, on Redis: tasks that echo, take a while, hang until stopped, spin
 * (a module task, for the thread pool), and fail for good (so they are dead-lettered), and one schedule in code. `tests/support/cli-app.ts` exports it for the CLI;
 * the tests build their own copy on the same Redis and prefix to check what the CLI did.
 *
 * @module
 */
import { Redis } from "ioredis";
import { type RedisBackend, redis } from "../../adapters/redis/mod.ts";
import { type App, createApp, NonRetryableError } from "../../mod.ts";

/** The app, its backend and the client it opened (close both when done). */
export interface CliTestApp {
  app: App;
  backend: RedisBackend;
  client: Redis;
}

/** The app of the CLI tests on the Redis at `url`, under `prefix`. */
export function cliTestApp(url: string, prefix: string): CliTestApp {
  const client = new Redis(url, { maxRetriesPerRequest: 3, connectTimeout: 2_000 });
  client.on("error", () => {});
  const backend = redis({ client, prefix });
  const app = createApp({ broker: backend, store: backend });
  const echo = app.task({ name: "echo", run: (input: unknown) => input });
  // A schedule in code (none of the tests runs its tick: 02:00 on 1 January).
  app.schedule("new-year", { cron: "0 2 1 1 *", task: echo, input: { year: "new" } });
  app.task({
    name: "slow",
    run: async (input: unknown) => {
      const ms = (input as { ms?: number } | undefined)?.ms ?? 500;
      await new Promise((resolve) => setTimeout(resolve, ms));
      return { slept: ms };
    },
  });
  // Runs until its worker gives up on it (the forced exit test kills the process first).
  app.task({
    name: "hang",
    timeoutMs: 600_000,
    run: (_input: unknown, ctx) =>
      new Promise((_resolve, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)),
      ),
  });
  // CPU work in a thread when the worker has a pool (--pool threads), on its event loop otherwise.
  app.task({ name: "spin", module: new URL("./pool/cpu.task.ts", import.meta.url) });
  app.task({
    name: "fail",
    run: (input: unknown) => {
      throw new NonRetryableError(`boom ${JSON.stringify(input)}`);
    },
  });
  return { app, backend, client };
}
