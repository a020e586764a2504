/**
 * Rate and concurrency limits of a task, global across every worker of a backend and optionally
 * per key (a user, a tenant, an API host). The enqueue computes each run's limit keys from its
 * input and the message carries them; the broker enforces them as it leases (a run over a limit
 * stays queued: it is not handed out, and no attempt is consumed). A push broker hands them to its
 * provider instead (QStash's flow control), and the provider may leave a rate limit to the handler
 * (`flow/_rate-turn.ts`), which enforces it with the same {@link gcra} before the run starts.
 *
 * @module
 */
import { positiveInt } from "../_options.ts";
import { flowKey } from "./_key.ts";

/**
 * A rate limit: at most `limit` runs start per `periodMs` (as a smooth rate with bursts up to
 * `limit`), per `key` when given. A string such as `"100/m"` (per `s`, `m`, `h` or `d`) is the
 * same without a key.
 *
 * @example
 * ```ts
 * app.task({ name: "api.call", rateLimit: { limit: 50, periodMs: 1_000, key: (i: { host: string }) => i.host }, run });
 * app.task({ name: "email.send", rateLimit: "100/m", run });
 * ```
 */
export type RateLimitOption<I = unknown> =
  | string
  | { limit: number; periodMs: number; key?: (input: I) => string };

/**
 * A concurrency limit: at most `limit` runs of the task (per `key` when given) run at once across
 * every worker. A slot follows its run's lease: a worker that dies frees it when the lease ends.
 *
 * @example
 * ```ts
 * app.task({ name: "report.build", concurrency: { limit: 1, key: (i: { tenant: string }) => i.tenant }, run });
 * ```
 */
export interface ConcurrencyLimitOption<I = unknown> {
  limit: number;
  key?: (input: I) => string;
}

/** A task's limits, validated. */
export interface ResolvedLimits {
  rate?: { limit: number; periodMs: number; key: ((input: unknown) => string) | undefined };
  concurrency?: { limit: number; key: ((input: unknown) => string) | undefined };
}

/** One run's limits, as its message carries them (keys already computed). */
export interface MessageLimits {
  rate?: { key: string; limit: number; periodMs: number };
  concurrency?: { key: string; limit: number };
}

/** The envelope's `meta` field that carries a run's limits (so its retries keep them). */
export const LIMITS_META = "limits";

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function keyFn(where: string, value: unknown): ((input: unknown) => string) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") throw new TypeError(`${where}: key must be a function of the input`);
  return value as (input: unknown) => string;
}

function checkOnly(where: string, value: object, allowed: readonly string[]): void {
  for (const k of Object.keys(value)) {
    if (!allowed.includes(k)) throw new TypeError(`${where}: unknown option ${k}`);
  }
}

/** Validates a task's `rateLimit` and `concurrency` options (TypeError/RangeError naming them). */
export function resolveLimits(where: string, rate: unknown, concurrency: unknown): ResolvedLimits {
  const out: ResolvedLimits = {};
  if (rate !== undefined) {
    const w = `${where}: rateLimit`;
    if (typeof rate === "string") {
      const m = /^\s*(\d+)\s*\/\s*([smhd])\s*$/.exec(rate);
      if (m === null)
        throw new TypeError(`${w} must look like "100/m" (per s, m, h or d), got ${JSON.stringify(rate)}`);
      out.rate = { limit: positiveInt(`${w}: limit`, Number(m[1])), periodMs: UNITS[m[2]!]!, key: undefined };
    } else if (typeof rate === "object" && rate !== null) {
      checkOnly(w, rate, ["limit", "periodMs", "key"]);
      const r = rate as { limit?: unknown; periodMs?: unknown; key?: unknown };
      out.rate = {
        limit: positiveInt(`${w}: limit`, r.limit),
        periodMs: positiveInt(`${w}: periodMs`, r.periodMs),
        key: keyFn(w, r.key),
      };
    } else {
      throw new TypeError(`${w} must be an object or a string such as "100/m"`);
    }
  }
  if (concurrency !== undefined) {
    const w = `${where}: concurrency`;
    if (typeof concurrency !== "object" || concurrency === null)
      throw new TypeError(`${w} must be an object`);
    checkOnly(w, concurrency, ["limit", "key"]);
    const c = concurrency as { limit?: unknown; key?: unknown };
    out.concurrency = { limit: positiveInt(`${w}: limit`, c.limit), key: keyFn(w, c.key) };
  }
  return out;
}

function keyOf(
  task: string,
  fn: ((input: unknown) => string) | undefined,
  input: unknown,
  option: "rateLimit.key" | "concurrency.key",
): string {
  return fn === undefined ? task : `${task}:${flowKey(fn, input, task, option)}`;
}

/** One run's limits from its task's and its input, or undefined when the task has none. */
export function limitsFor(task: string, limits: ResolvedLimits, input: unknown): MessageLimits | undefined {
  if (limits.rate === undefined && limits.concurrency === undefined) return undefined;
  const out: MessageLimits = {};
  if (limits.rate !== undefined) {
    const { limit, periodMs } = limits.rate;
    out.rate = { key: keyOf(task, limits.rate.key, input, "rateLimit.key"), limit, periodMs };
  }
  if (limits.concurrency !== undefined) {
    out.concurrency = {
      key: keyOf(task, limits.concurrency.key, input, "concurrency.key"),
      limit: limits.concurrency.limit,
    };
  }
  return out;
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;

/** The limits an envelope's `meta` carries, when well formed (anything else is ignored). */
export function limitsOf(meta: Record<string, unknown> | undefined): MessageLimits | undefined {
  const raw = meta?.[LIMITS_META] as { rate?: unknown; concurrency?: unknown } | undefined;
  if (typeof raw !== "object" || raw === null) return undefined;
  const out: MessageLimits = {};
  const r = raw.rate as MessageLimits["rate"];
  if (
    r !== undefined &&
    typeof r.key === "string" &&
    r.key !== "" &&
    isCount(r.limit) &&
    isCount(r.periodMs)
  ) {
    out.rate = { key: r.key, limit: r.limit, periodMs: r.periodMs };
  }
  const c = raw.concurrency as MessageLimits["concurrency"];
  if (c !== undefined && typeof c.key === "string" && c.key !== "" && isCount(c.limit)) {
    out.concurrency = { key: c.key, limit: c.limit };
  }
  return out.rate === undefined && out.concurrency === undefined ? undefined : out;
}

/**
 * The generic cell rate algorithm, one step: with `tat` the stored theoretical arrival time (0
 * when none), whether a run may start at `now`, the new `tat` to store, and when a run over the
 * limit may start (`at`) if it reserves its place now (its start is then guaranteed). Bursts of
 * up to `limit` pass at once; the rate is `limit` per `periodMs` on average.
 */
export function gcra(
  tat: number,
  now: number,
  limit: number,
  periodMs: number,
): { ok: boolean; tat: number; at: number } {
  const step = periodMs / limit;
  const tolerance = periodMs - step;
  const base = Math.max(tat, now);
  const next = base + step;
  if (base - now <= tolerance) return { ok: true, tat: next, at: now };
  return { ok: false, tat: next, at: base - tolerance };
}
