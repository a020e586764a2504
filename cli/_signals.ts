/**
 * Internal: graceful stop on SIGINT and SIGTERM. The first signal asks the long-running command
 * to stop (it awaits its worker's or scheduler's `stop()` and the app's `close()`); a second one
 * exits at once with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
 *
 * @module
 */
import { constants } from "node:os";
import process from "node:process";

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** The first stop signal, and a way to stop listening. */
export interface StopSignals {
  /** Resolves with the first signal's name. */
  readonly first: Promise<string>;
  /** Removes the handlers (the process's default handling comes back). */
  dispose(): void;
}

/** Listens for SIGINT and SIGTERM; `onForce` runs (then the process exits) on the second one. */
export function stopSignals(onForce: (signal: string) => void): StopSignals {
  let resolveFirst!: (signal: string) => void;
  const first = new Promise<string>((resolve) => {
    resolveFirst = resolve;
  });
  let seen = false;
  const handler = (signal: NodeJS.Signals) => {
    if (!seen) {
      seen = true;
      resolveFirst(signal);
      return;
    }
    onForce(signal);
    process.exit(128 + (constants.signals[signal] ?? 2));
  };
  for (const signal of SIGNALS) process.on(signal, handler);
  return {
    first,
    dispose() {
      for (const signal of SIGNALS) process.off(signal, handler);
    },
  };
}
