/**
 * Internal: the CLI's exit codes and the errors that choose them.
 *
 * @module
 */

/** What each exit code of `celeriac` means (documented in `--help` and the README). */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** The command ran and failed: a backend error, a task that does not exist, a rejected input. */
  failure: 1,
  /** A wrong command line: unknown command or option, a bad value, a missing argument. */
  usage: 2,
  /** The app module could not be loaded, or it exports no celeriac app. */
  app: 3,
  /** Interrupted: Ctrl-C at a prompt, or a second SIGINT while stopping (SIGTERM: 143). */
  interrupted: 130,
} as const;

/** The exit codes as `--help` lists them. */
export const EXIT_HELP = `Exit codes:
  0    ok
  1    failure (the command ran and failed)
  2    usage error (unknown command or option, bad value, refused without --yes)
  3    the app module could not be loaded or exports no celeriac app
  130  interrupted (Ctrl-C at a prompt; a second SIGINT while stopping)
  143  a second SIGTERM while stopping`;

/** A wrong command line: exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The app module could not be loaded or is not an app: exit code 3. */
export class AppLoadError extends Error {
  override name = "AppLoadError";
}

/** Ended by the user (Ctrl-C at a prompt): exit code 130. */
export class InterruptedError extends Error {
  override name = "InterruptedError";
}
