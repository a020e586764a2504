/**
 * Strict JSON encoding: values JSON would silently change (functions, Maps, BigInt, NaN, cycles)
 * are rejected with a {@link SerializationError} naming where they are.
 *
 * @module
 */
import { SerializationError } from "./errors.ts";

function check(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new SerializationError(`${path} is ${value}, which JSON cannot carry`);
      }
      return;
    case "undefined":
      return;
    case "bigint":
    case "function":
    case "symbol":
      throw new SerializationError(`${path} is a ${typeof value}, which JSON cannot carry`);
  }
  if (value === null) return;
  const obj = value as object;
  if (typeof (obj as { toJSON?: unknown }).toJSON === "function") return;
  if (seen.has(obj)) throw new SerializationError(`${path} refers back to itself (a cycle)`);
  if (Array.isArray(obj)) {
    seen.add(obj);
    for (let i = 0; i < obj.length; i++) check(obj[i], `${path}[${i}]`, seen);
    seen.delete(obj);
    return;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) {
    const kind = (obj as { constructor?: { name?: string } }).constructor?.name ?? "object";
    throw new SerializationError(
      `${path} is a ${kind}, which JSON cannot carry faithfully; convert it to plain data first`,
    );
  }
  seen.add(obj);
  for (const key of Object.keys(obj)) check((obj as Record<string, unknown>)[key], `${path}.${key}`, seen);
  seen.delete(obj);
}

/** The `seen` set passed for a primitive, which `check` never writes to. */
const NO_OBJECTS: Set<object> = new Set();

/**
 * Encodes `value` as JSON, throwing {@link SerializationError} where JSON would lose or change it.
 * `what` names the value in the message ("input", "result").
 */
export function toJson(value: unknown, what: string): string {
  // Fast path for plain data; the check walks only when plain stringify could hide a problem.
  check(value, what, typeof value === "object" && value !== null ? new Set() : NO_OBJECTS);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new SerializationError(`${what} cannot be encoded as JSON: ${String(cause)}`, { cause });
  }
  return text ?? "null";
}
