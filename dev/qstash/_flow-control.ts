/**
 * The emulator's flow control, as QStash's: a message published with `Upstash-Flow-Control-Key`
 * and `Upstash-Flow-Control-Value` (`parallelism=2, rate=10, period=60s`) counts toward its key.
 * Per key, at most `parallelism` calls are in flight (a call holds its place until its response
 * or its timeout), and at most `rate` calls start per `period` (a window that opens with the
 * first call after the previous window ended; `period` defaults to one second). A due message
 * over a limit waits, in publish order, and is called as soon as the limit allows: it is
 * delayed, never failed, and uses no retry.
 *
 * @module
 */
import { parseDuration } from "./_durations.ts";
import type { EmulatorFlowControl as FlowControl } from "./types.ts";

const positive = (text: string): number | undefined =>
  /^\d+$/.test(text) && Number(text) > 0 ? Number(text) : undefined;

/**
 * The flow control of a publish's headers: undefined when it has none, or the reason it is
 * invalid (a 400), as a string.
 *
 * @example
 * ```ts
 * parseFlowControl("emails", "parallelism=2, rate=10, period=60s"); // { key: "emails", parallelism: 2, rate: 10, periodMs: 60_000 }
 * ```
 */
export function parseFlowControl(
  key: string | undefined,
  value: string | undefined,
): FlowControl | string | undefined {
  if (key === undefined && value === undefined) return undefined;
  if (key === undefined || key.trim() === "") {
    return "Upstash-Flow-Control-Value needs a non-empty Upstash-Flow-Control-Key";
  }
  const flow: { key: string; parallelism?: number; rate?: number; periodMs: number } = {
    key,
    periodMs: 1_000,
  };
  for (const part of (value ?? "").split(",")) {
    const text = part.trim();
    if (text === "") continue;
    const [name, raw = ""] = text.split("=").map((s) => s.trim());
    const parsed = name === "period" ? parseDuration(raw) : positive(raw);
    if (parsed === undefined || parsed <= 0 || !["parallelism", "rate", "period"].includes(name!)) {
      return `invalid Upstash-Flow-Control-Value "${value}"`;
    }
    if (name === "period") flow.periodMs = parsed;
    else flow[name as "parallelism" | "rate"] = parsed;
  }
  if (flow.parallelism === undefined && flow.rate === undefined) {
    return `Upstash-Flow-Control-Value "${value ?? ""}" sets neither parallelism nor rate`;
  }
  return flow;
}

/**
 * The calls in flight and the rate windows of every flow-control key.
 *
 * @example
 * ```ts
 * const gate = new FlowGate();
 * const flow = { key: "k", parallelism: 1, periodMs: 1_000 };
 * gate.waitUntil(flow, 0); // 0: it may start now
 * gate.started(flow, 0);
 * gate.waitUntil(flow, 0); // Infinity: until the call in flight ends
 * gate.ended(flow);
 * ```
 */
export class FlowGate {
  readonly #active = new Map<string, number>();
  readonly #windows = new Map<string, { start: number; count: number }>();

  /**
   * When a call under `flow` may start, seen at `now`: `now` or earlier (at once), the end of the
   * key's full rate window, or Infinity (when a call in flight ends).
   */
  waitUntil(flow: FlowControl, now: number): number {
    let at = now;
    if (flow.parallelism !== undefined && (this.#active.get(flow.key) ?? 0) >= flow.parallelism) {
      at = Number.POSITIVE_INFINITY;
    }
    if (flow.rate !== undefined) {
      const window = this.#windows.get(flow.key);
      if (window !== undefined && now < window.start + flow.periodMs && window.count >= flow.rate) {
        at = Math.max(at, window.start + flow.periodMs);
      }
    }
    return at;
  }

  /** A call under `flow` starts at `now`. */
  started(flow: FlowControl, now: number): void {
    this.#active.set(flow.key, (this.#active.get(flow.key) ?? 0) + 1);
    const window = this.#windows.get(flow.key);
    if (window === undefined || now >= window.start + flow.periodMs) {
      this.#windows.set(flow.key, { start: now, count: 1 });
    } else {
      window.count += 1;
    }
  }

  /** A call under `flow` ended (answered, failed, timed out or aborted). */
  ended(flow: FlowControl): void {
    const left = (this.#active.get(flow.key) ?? 0) - 1;
    if (left > 0) this.#active.set(flow.key, left);
    else this.#active.delete(flow.key);
  }

  /** Forgets every key. */
  clear(): void {
    this.#active.clear();
    this.#windows.clear();
  }
}
