/**
 * The options of a task's circuit breaker (`breaker`), checked at definition time, and the
 * breakers of an app's tasks by name. The breaker itself is in `breaker.ts`.
 *
 * @module
 */
import { checkKeys, keysOf, positiveInt } from "../_options.ts";

/**
 * A task's circuit breaker (what it does: `flow/breaker.ts`). Every field is optional.
 *
 * @example
 * ```ts
 * app.task({ name: "geo.lookup", breaker: { name: "geo-api", failureThreshold: 10 }, run: lookup });
 * app.task({ name: "geo.reverse", breaker: { name: "geo-api", failureThreshold: 10 }, run: reverse });
 * ```
 */
export interface BreakerOptions {
  /** Shares one breaker between every task that gives this name. @default the task's name */
  name?: string;
  /** Failed attempts within `windowMs` that open the breaker. @default 5 */
  failureThreshold?: number;
  /** How far back failures count. @default 60_000 */
  windowMs?: number;
  /** How long an open breaker keeps runs from starting before it lets probes through. @default 30_000 */
  cooldownMs?: number;
  /** How many runs may start as probes while half-open. @default 1 */
  halfOpenProbes?: number;
}

/** A breaker's options with defaults filled in. */
export interface ResolvedBreaker {
  readonly name: string;
  readonly failureThreshold: number;
  readonly windowMs: number;
  readonly cooldownMs: number;
  readonly halfOpenProbes: number;
}

const BREAKER_KEYS = keysOf<BreakerOptions>({
  name: true,
  failureThreshold: true,
  windowMs: true,
  cooldownMs: true,
  halfOpenProbes: true,
});

/** Validates a task's `breaker` option; throws TypeError/RangeError naming the option. */
export function resolveBreaker(where: string, task: string, option: unknown): ResolvedBreaker | undefined {
  if (option === undefined) return undefined;
  if (typeof option !== "object" || option === null || Array.isArray(option)) {
    throw new TypeError(`${where}: breaker must be an object, got ${JSON.stringify(option)}`);
  }
  checkKeys(option, BREAKER_KEYS, `${where}: breaker`);
  const o = option as BreakerOptions;
  const name = o.name ?? task;
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(`${where}: breaker.name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  return Object.freeze({
    name,
    failureThreshold: positiveInt(`${where}: breaker.failureThreshold`, o.failureThreshold ?? 5),
    windowMs: positiveInt(`${where}: breaker.windowMs`, o.windowMs ?? 60_000),
    cooldownMs: positiveInt(`${where}: breaker.cooldownMs`, o.cooldownMs ?? 30_000),
    halfOpenProbes: positiveInt(`${where}: breaker.halfOpenProbes`, o.halfOpenProbes ?? 1),
  });
}

/** What the breaker needs of a task. */
export interface BreakerTask {
  readonly name: string;
  readonly timeoutMs: number;
  readonly breaker?: ResolvedBreaker | undefined;
}

/** Tasks sharing a breaker name must agree on its options: throws a TypeError naming both. */
export function checkSharedBreaker(tasks: Iterable<BreakerTask>, task: BreakerTask): void {
  const b = task.breaker;
  if (b === undefined) return;
  for (const other of tasks) {
    const o = other.breaker;
    if (o === undefined || o.name !== b.name || other.name === task.name) continue;
    if (
      o.failureThreshold !== b.failureThreshold ||
      o.windowMs !== b.windowMs ||
      o.cooldownMs !== b.cooldownMs ||
      o.halfOpenProbes !== b.halfOpenProbes
    ) {
      throw new TypeError(
        `task "${task.name}": breaker "${b.name}" is shared with task "${other.name}" with other options; give them the same options`,
      );
    }
  }
}

/** The breakers of an app's tasks, by name, with the tasks that use each. */
export function breakersOf(
  tasks: Iterable<BreakerTask>,
): Map<string, { breaker: ResolvedBreaker; tasks: string[] }> {
  const out = new Map<string, { breaker: ResolvedBreaker; tasks: string[] }>();
  for (const task of tasks) {
    const b = task.breaker;
    if (b === undefined) continue;
    const entry = out.get(b.name);
    if (entry === undefined) out.set(b.name, { breaker: b, tasks: [task.name] });
    else entry.tasks.push(task.name);
  }
  return out;
}
