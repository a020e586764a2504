/**
 * Errors as runs store them: anything a task throws turned into `{ name, message, stack? }`.
 *
 * @module
 */
import type { ErrorInfo } from "./contracts.ts";

/**
 * Turns anything thrown into a stored error. An Error's stack is read when `stack` is first
 * read: engines format a stack trace on first access (through source maps, where enabled), and
 * a retried attempt only hands it to listeners, which may never look at it.
 *
 * @example
 * ```ts
 * const info = errorInfo(new TypeError("bad input"));
 * // { name: "TypeError", message: "bad input", stack: "TypeError: bad input\n    at …" }
 * ```
 */
export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const info: ErrorInfo = { name: error.name || "Error", message: error.message };
    let stack: string | undefined | null = null;
    Object.defineProperty(info, "stack", {
      enumerable: true,
      configurable: true,
      get() {
        if (stack === null) {
          const text: unknown = error.stack;
          stack = typeof text === "string" ? text : undefined;
        }
        return stack;
      },
      set(value: string | undefined) {
        stack = value;
      },
    });
    return info;
  }
  if (error === undefined) return { name: "Error", message: "task threw undefined" };
  if (typeof error === "string") return { name: "Error", message: error };
  let text: string;
  try {
    text = JSON.stringify(error) ?? String(error);
  } catch {
    text = String(error);
  }
  return { name: "Error", message: `task threw a non-Error value: ${text}` };
}

/** The error without its stack (attempt histories, dead letters, workflow hand-overs). */
export function withoutStack(info: ErrorInfo): ErrorInfo {
  return { name: info.name, message: info.message };
}
