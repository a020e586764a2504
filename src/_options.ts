/**
 * Internal: the check every options object of the public API goes through — an unknown key (a
 * misspelt `maxAtempts`, an option of another library) is a `TypeError` naming it, never
 * silently ignored.
 *
 * @module
 */

/** Throws a TypeError naming the first key of `options` that is not in `known`. */
export function checkKeys(options: unknown, known: ReadonlySet<string>, where: string): void {
  if (options === undefined || options === null || typeof options !== "object") return;
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw new TypeError(
        `unknown option ${JSON.stringify(key)} of ${where} (known: ${[...known].join(", ")})`,
      );
    }
  }
}

/** The keys of an options type, listed once where the type is defined. */
export function keysOf<T>(keys: { [K in keyof Required<T>]: true }): ReadonlySet<string> {
  return new Set(Object.keys(keys));
}

/** Checks a positive safe integer option; RangeError naming it (`name`) and the value. */
export function positiveInt(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}
