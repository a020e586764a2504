/**
 * The emulator's time expressions: `Upstash-Delay`/`Upstash-Timeout` durations, `Retry-After`
 * headers and `Upstash-Retry-Delay` expressions.
 *
 * @module
 */

const DAY_MS = 86_400_000;

/**
 * Delay from `Retry-After` (seconds, HTTP date or `6m5s`) or the rate-limit reset headers; none
 * above a day.
 *
 * @example
 * ```ts
 * retryAfterMs({ "retry-after": "30" }, Date.now()); // 30_000
 * ```
 */
export function retryAfterMs(headers: Readonly<Record<string, string>>, now: number): number | undefined {
  const names = [
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
  ];
  for (const name of names) {
    const value = headers[name]?.trim();
    if (value === undefined || value === "") continue;
    let ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : parseDuration(value);
    if (ms === undefined && !Number.isNaN(Date.parse(value))) ms = Date.parse(value) - now;
    if (ms !== undefined && ms <= DAY_MS) return Math.max(0, ms);
  }
  return undefined;
}

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: DAY_MS,
};

/**
 * Parses `10s`, `5m`, `1h30m`, `500ms` into milliseconds; a bare integer means seconds.
 *
 * @example
 * ```ts
 * parseDuration("1h30m"); // 5_400_000
 * parseDuration("soon"); // undefined
 * ```
 */
export function parseDuration(text: string): number | undefined {
  const value = text.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== value) return undefined;
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * (UNITS[unit as string] ?? 0), 0);
}

const FUNCTIONS: Record<string, (...args: number[]) => number> = {
  pow: Math.pow,
  sqrt: Math.sqrt,
  abs: Math.abs,
  exp: Math.exp,
  floor: Math.floor,
  ceil: Math.ceil,
  round: Math.round,
  min: Math.min,
  max: Math.max,
};

/**
 * Compiles an `Upstash-Retry-Delay` expression (milliseconds, variable `retried`); throws a
 * `SyntaxError` for anything else.
 *
 * @example
 * ```ts
 * compileRetryDelay("1000 * pow(2, retried)")(3); // 8000
 * ```
 */
export function compileRetryDelay(source: string): (retried: number) => number {
  type Node = (retried: number) => number;
  const tokens = source.match(/\d+(?:\.\d+)?|[A-Za-z_]\w*|\S/g) ?? [];
  let at = 0;
  const take = (expected?: string): string => {
    const token = tokens[at++];
    if (token === undefined || (expected !== undefined && token !== expected)) {
      throw new SyntaxError(`invalid Upstash-Retry-Delay "${source}": expected ${expected ?? "a value"}`);
    }
    return token;
  };
  const binary = (next: () => Node, ops: string[]): Node => {
    let left = next();
    while (ops.includes(tokens[at] ?? "")) {
      const op = take();
      const [l, r] = [left, next()];
      left = (x) =>
        op === "+" ? l(x) + r(x) : op === "-" ? l(x) - r(x) : op === "*" ? l(x) * r(x) : l(x) / r(x);
    }
    return left;
  };
  const expression = (): Node => binary(term, ["+", "-"]);
  const term = (): Node => binary(unary, ["*", "/"]);
  const unary = (): Node => {
    if (tokens[at] === "-") {
      take();
      const inner = unary();
      return (x) => -inner(x);
    }
    return primary();
  };
  const primary = (): Node => {
    const token = take();
    if (/^\d/.test(token)) return () => Number(token);
    if (token === "retried") return (x) => x;
    if (token === "(") {
      const inner = expression();
      take(")");
      return inner;
    }
    const fn = FUNCTIONS[token];
    if (fn === undefined) {
      throw new SyntaxError(`invalid Upstash-Retry-Delay "${source}": unknown "${token}"`);
    }
    take("(");
    const args: Node[] = [expression()];
    while (tokens[at] === ",") {
      take(",");
      args.push(expression());
    }
    take(")");
    return (x) => fn(...args.map((arg) => arg(x)));
  };
  const root = expression();
  if (at !== tokens.length) take("end of expression");
  return root;
}
