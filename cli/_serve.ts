/**
 * Internal: running a worker or a scheduler in the foreground until a stop signal (or until it
 * stops by itself), then stopping it gracefully and closing the app.
 *
 * @module
 */
import type { Ctx } from "./_context.ts";
import type { CliApp } from "./_load.ts";
import { stopSignals } from "./_signals.ts";

/** A worker or a scheduler, as the CLI drives it. */
export interface Runner {
  readonly running: boolean;
  stop(): Promise<void>;
  /** Resolves when it has stopped, also by itself (a worker told to shut down remotely). */
  stopped?(): Promise<void>;
}

/** How `serve` talks about its runner. */
export interface ServeText {
  /** "worker" or "scheduler". */
  what: string;
  /** What the first signal's line adds: "waiting up to 10s for 3 running tasks". */
  stopping(): string;
  /** What a forced exit leaves behind. */
  forced(): string;
}

/**
 * Listens for SIGINT/SIGTERM, then calls `start` (which starts the runner and says so), and runs
 * until a signal or until the runner stops by itself; then `await runner.stop()` and
 * `await app.close()`, and resolves to exit code 0. A second signal exits at once (130 / 143).
 * The handlers go in before anything starts: a signal that came between a startup line and
 * them would kill the process with the default action, skipping the graceful stop.
 */
export async function serve(
  app: CliApp,
  ctx: Ctx,
  text: ServeText,
  start: () => Runner | Promise<Runner>,
): Promise<number> {
  const { err, pe } = ctx;
  const signals = stopSignals((signal) => {
    err.write(pe.red(`${signal} again: exiting now; ${text.forced()}\n`));
  });
  let poll: ReturnType<typeof setInterval> | undefined;
  try {
    let runner: Runner;
    try {
      runner = await start();
    } catch (error) {
      await app.close();
      throw error;
    }
    // A scheduler's timers are unref'd and a worker may wait on unref'd timers: this interval
    // keeps the process alive (and, for a runner without stopped(), notices it stopped by itself).
    const stoppedItself = new Promise<null>((resolve) => {
      runner.stopped?.().then(
        () => resolve(null),
        () => resolve(null),
      );
      poll = setInterval(() => {
        if (runner.stopped === undefined && !runner.running) resolve(null);
      }, 1_000);
    });
    const signal = await Promise.race([signals.first, stoppedItself]);
    if (signal === null) {
      err.write(pe.dim(`${text.what} stopped; closing the app\n`));
    } else {
      err.write(
        pe.yellow(`${signal}: stopping the ${text.what}, ${text.stopping()} (${signal} again to exit now)\n`),
      );
    }
    await runner.stop();
    await app.close();
    err.write(pe.dim(`${text.what} stopped\n`));
    return 0;
  } finally {
    clearInterval(poll);
    signals.dispose();
  }
}
