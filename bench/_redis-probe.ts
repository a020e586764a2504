/**
 * Measuring helpers of bench/redis.ts: what Redis did (INFO commandstats and INFO cpu deltas),
 * what this Node process spent (`process.cpuUsage()` deltas), wall time, and the small
 * statistics and formatting the report needs.
 *
 * @module
 */
import type { Redis as IoRedis } from "ioredis";

/** Counters read from Redis at one moment. */
interface RedisCounters {
  /** used_cpu_sys + used_cpu_user, in µs. */
  cpuUs: number;
  /** Calls per command (lower case, e.g. `evalsha`, `hset`), scripts' inner commands included. */
  calls: Map<string, number>;
}

/** What happened during one measured phase. */
export interface Delta {
  /** Wall time, ms. */
  ms: number;
  /** CPU time of this Node process (user + system), µs. */
  nodeUs: number;
  /** CPU time of redis-server (user + system), µs. */
  redisUs: number;
  /** Calls per command during the phase (the probe's own INFO calls left out). */
  calls: Map<string, number>;
  /** HTTP requests the REST bridge served during the phase (0 without a bridge). */
  requests: number;
}

/** The commands that run a script. */
export const SCRIPT_COMMANDS = ["evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro"];

/** Every command call of a phase. */
export function totalCalls(d: Delta): number {
  let sum = 0;
  for (const v of d.calls.values()) sum += v;
  return sum;
}

/** Script calls (EVALSHA, EVAL, …) of a phase. */
export function scriptCalls(d: Delta): number {
  let sum = 0;
  for (const name of SCRIPT_COMMANDS) sum += d.calls.get(name) ?? 0;
  return sum;
}

/** Two deltas of consecutive phases as one. */
export function joinDeltas(a: Delta, b: Delta): Delta {
  const calls = new Map(a.calls);
  for (const [k, v] of b.calls) calls.set(k, (calls.get(k) ?? 0) + v);
  return {
    ms: a.ms + b.ms,
    nodeUs: a.nodeUs + b.nodeUs,
    redisUs: a.redisUs + b.redisUs,
    calls,
    requests: a.requests + b.requests,
  };
}

function parseInfo(text: string): RedisCounters {
  const calls = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(m[1]!.toLowerCase(), Number(m[2]));
  }
  const sys = /^used_cpu_sys:([\d.]+)/m.exec(text);
  const user = /^used_cpu_user:([\d.]+)/m.exec(text);
  if (sys === null || user === null) throw new Error("INFO cpu did not report used_cpu_sys/used_cpu_user");
  return { cpuUs: Math.round((Number(sys[1]) + Number(user[1])) * 1e6), calls };
}

/** Reads Redis counters over its own connection, and brackets phases with them. */
export class Probe {
  readonly #admin: IoRedis;
  readonly #requests: () => number;

  /** `requests` reads the REST bridge's request counter, when there is one. */
  constructor(admin: IoRedis, requests: () => number = () => 0) {
    this.#admin = admin;
    this.#requests = requests;
  }

  /** The connection the probe uses (FLUSHALL and friends go through it too). */
  get admin(): IoRedis {
    return this.#admin;
  }

  async #read(): Promise<RedisCounters> {
    return parseInfo(String(await this.#admin.call("INFO", "commandstats", "cpu")));
  }

  /** Empties Redis (between runs). */
  async flush(): Promise<void> {
    await this.#admin.call("FLUSHALL");
  }

  /**
   * Runs `fn` and measures it. The Redis counters are read just before the clock starts and
   * just after it stops, so the probe's two INFO calls are the only foreign work in the window
   * (and are left out of the command counts).
   */
  async measure<T>(fn: () => Promise<T>): Promise<{ value: T; delta: Delta }> {
    const r0 = await this.#read();
    const q0 = this.#requests();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const value = await fn();
    const ms = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    const requests = this.#requests() - q0;
    const r1 = await this.#read();
    const calls = new Map<string, number>();
    for (const [name, n] of r1.calls) {
      const d = n - (r0.calls.get(name) ?? 0);
      if (d > 0 && name !== "info") calls.set(name, d);
    }
    // The first INFO (r0) finished before the window; the second is in r1's cpu figure: small.
    const delta = { ms, nodeUs: c1.user + c1.system, redisUs: r1.cpuUs - r0.cpuUs, calls, requests };
    return { value, delta };
  }
}

// ---------------------------------------------------------------- statistics

/** The median (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The p-th percentile (nearest rank), p in (0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

// ---------------------------------------------------------------- formatting

/** 12,345 */
export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
}

/** A number with `digits` decimals. */
export function fixed(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "–";
}

/** 1.53× */
export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : "–";
}

/** A markdown table. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = head.map((_, i) => (i === 0 ? "---" : "---:"));
  return [head, align, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

/** Commands per task, by command, for several columns; the busiest first. */
export function breakdown(columns: readonly { name: string; n: number; delta: Delta }[], top = 16): string {
  const names = new Set<string>();
  for (const c of columns) for (const k of c.delta.calls.keys()) names.add(k);
  const weight = (k: string) => Math.max(...columns.map((c) => (c.delta.calls.get(k) ?? 0) / c.n));
  const rows = [...names].sort((a, b) => weight(b) - weight(a));
  const shown = rows.slice(0, top);
  const rest = rows.slice(top);
  const cell = (c: { n: number; delta: Delta }, ks: readonly string[]) =>
    fixed(ks.reduce((s, k) => s + (c.delta.calls.get(k) ?? 0), 0) / c.n, 2);
  const body = shown.map((k) => [k.toUpperCase(), ...columns.map((c) => cell(c, [k]))]);
  if (rest.length > 0) body.push([`(${rest.length} others)`, ...columns.map((c) => cell(c, rest))]);
  body.push(["**total**", ...columns.map((c) => `**${fixed(totalCalls(c.delta) / c.n, 2)}**`)]);
  return table(["command (per task)", ...columns.map((c) => c.name)], body);
}
