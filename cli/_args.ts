/**
 * Internal: parsers of option and argument values. Each throws commander's
 * `InvalidArgumentError`, which commander reports naming the option (exit code 2).
 *
 * @module
 */
import { InvalidArgumentError } from "commander";

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration with units, in ms: `500ms`, `5s`, `2m`, `1h30m`, `1d`. A bare number is refused:
 * seconds or milliseconds would be a guess.
 */
export function duration(text: string): number {
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g)];
  const rest = text.trim().replace(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g, "");
  if (parts.length === 0 || rest.trim() !== "") {
    throw new InvalidArgumentError(
      `expected a duration with a unit (500ms, 5s, 2m, 1h30m, 1d), got "${text}"`,
    );
  }
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit!]!, 0);
}

/** An integer of at least `min`. */
export function integer(min: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer of at least ${min}, got "${text}"`);
    }
    return n;
  };
}

/** A comma-separated list of names: `a,b` (spaces around names are dropped, empty ones refused). */
export function list(text: string): string[] {
  const names = text.split(",").map((s) => s.trim());
  if (names.some((s) => s === "")) {
    throw new InvalidArgumentError(`expected comma-separated names (a,b), got "${text}"`);
  }
  return names;
}

/** JSON text. */
export function jsonValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`expected JSON, got ${JSON.stringify(text)}: ${(error as Error).message}`);
  }
}

/** A time: an ISO 8601 date-time or epoch ms. */
export function time(text: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) {
    throw new InvalidArgumentError(`expected an ISO date-time or epoch ms, got "${text}"`);
  }
  return ms;
}
