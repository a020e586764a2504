/**
 * Internal: the key of an enqueue under a flow-control option (`debounce.key`, `throttle.key`,
 * `rateLimit.key`, `concurrency.key`), from the validated input; a function that throws, or
 * returns anything but a non-empty string, is a {@link FlowKeyError} naming the option.
 *
 * @module
 */
import { FlowKeyError } from "../errors.ts";

/** The key `fn` gives `input`, checked; `option` names the option in the error. */
export function flowKey(
  fn: (input: unknown) => unknown,
  input: unknown,
  task: string,
  option: string,
): string {
  let key: unknown;
  try {
    key = fn(input);
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new FlowKeyError(option, `${option} of task "${task}" threw: ${message}`, { cause });
  }
  if (typeof key !== "string" || key.length === 0) {
    throw new FlowKeyError(
      option,
      `${option} of task "${task}" must return a non-empty string, got ${describe(key)}`,
    );
  }
  return key;
}

function describe(value: unknown): string {
  if (value instanceof Promise) return "a promise (key functions are synchronous)";
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value === "object" && value !== null ? "an object" : String(value);
}

/** Checks an optional key function at definition time. */
export function checkKeyFn(value: unknown, option: string): ((input: unknown) => string) | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw new TypeError(`${option} must be a function of the input, got ${typeof value}`);
  }
  return value as (input: unknown) => string;
}
