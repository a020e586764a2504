/**
 * Internal: the dashboard's options, validated once.
 *
 * @module
 */
import { checkKeys, keysOf } from "../_options.ts";

/** Where a value shown by the dashboard comes from (see {@link DashboardOptions.redact}). */
export type RedactedField = "input" | "result" | "progress" | "error" | "deadLetter";

/**
 * Options of `dashboard()`. One of `token` or `authorize` is required: the dashboard shows task
 * inputs and results and can steer queues, so it is never open by default.
 *
 * @example
 * ```ts
 * dashboard(app, {
 *   token: env.DASHBOARD_TOKEN,
 *   readOnly: env.STAGE === "prod",
 *   redact: (value, { field }) => (field === "input" ? "[hidden]" : value),
 * });
 * ```
 */
export interface DashboardOptions {
  /**
   * A bearer token: requests carry it as `Authorization: Bearer <token>`, or a browser signs in
   * once with it (a form), which sets an HttpOnly session cookie derived from it.
   */
  token?: string | undefined;
  /**
   * Decides who may see the dashboard (your own session check, an SSO header): true lets the
   * request in. With `token` too, either lets a request in.
   */
  authorize?: ((request: Request) => boolean | Promise<boolean>) | undefined;
  /** No actions: no buttons are shown and every POST answers 403. @default false */
  readOnly?: boolean;
  /**
   * Changes a value before it is shown (inputs, results, progress, errors, dead letters' bodies):
   * return what may be displayed.
   */
  redact?:
    | ((value: unknown, where: { field: RedactedField; task: string | null; id: string }) => unknown)
    | undefined;
  /**
   * Signs the forms' CSRF tokens and the session cookie. Give every replica the same one when a
   * dashboard behind `authorize` is served by several. @default derived from `token`, else random per process
   */
  secret?: string | undefined;
  /** The page title. @default "celeriac" */
  title?: string;
  /** How often a browser without Server-Sent Events polls for updates (ms). @default 10_000 */
  pollMs?: number;
  /** How often the live stream reads the backend's change log (ms). @default 1_000 */
  liveMs?: number;
}

const KEYS = keysOf<DashboardOptions>({
  token: true,
  authorize: true,
  readOnly: true,
  redact: true,
  secret: true,
  title: true,
  pollMs: true,
  liveMs: true,
});

/** The validated options. */
export interface DashboardConfig {
  token: string | undefined;
  authorize: ((request: Request) => boolean | Promise<boolean>) | undefined;
  readOnly: boolean;
  redact: DashboardOptions["redact"];
  secret: string;
  title: string;
  pollMs: number;
  liveMs: number;
}

function interval(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 50) {
    throw new RangeError(`${name} must be a number of ms (at least 50), got ${String(value)}`);
  }
  return value;
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Validates the options; throws naming what is wrong. */
export function resolveDashboard(options: DashboardOptions): DashboardConfig {
  if (options === null || typeof options !== "object")
    throw new TypeError("dashboard options must be an object");
  checkKeys(options, KEYS, "dashboard()");
  const { token, authorize, redact, secret } = options;
  if (token !== undefined && (typeof token !== "string" || token.length < 8)) {
    throw new TypeError("token must be a string of at least 8 characters");
  }
  if (authorize !== undefined && typeof authorize !== "function")
    throw new TypeError("authorize must be a function");
  if (token === undefined && authorize === undefined) {
    throw new TypeError(
      "dashboard() needs token or authorize (pass authorize: () => true to open it on purpose)",
    );
  }
  if (redact !== undefined && typeof redact !== "function") throw new TypeError("redact must be a function");
  if (secret !== undefined && (typeof secret !== "string" || secret.length < 16)) {
    throw new TypeError("secret must be a string of at least 16 characters");
  }
  if (options.readOnly !== undefined && typeof options.readOnly !== "boolean") {
    throw new TypeError("readOnly must be a boolean");
  }
  const title = options.title ?? "celeriac";
  if (typeof title !== "string") throw new TypeError("title must be a string");
  return {
    token,
    authorize,
    readOnly: options.readOnly === true,
    redact,
    secret: secret ?? (token === undefined ? randomSecret() : `token:${token}`),
    title,
    pollMs: interval(options.pollMs, "pollMs", 10_000),
    liveMs: interval(options.liveMs, "liveMs", 1_000),
  };
}
