/**
 * The tracing hook: what the core tells a tracer (OpenTelemetry through `celeriac/otel`, or any
 * other) about enqueues and attempts, and where it keeps the trace context — in the envelope, so
 * a run's attempts and its workflow's later steps join the trace of whoever enqueued it. Without
 * a `telemetry` option nothing here runs.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { otel } from "celeriac/otel";
 * const app = createApp({ telemetry: otel() });
 * ```
 *
 * @module
 */
import type { ErrorInfo } from "./contracts.ts";
import type { Emitter } from "./events.ts";

/**
 * Trace context as text fields (W3C Trace Context: `traceparent`, and `tracestate` when there
 * is one), carried in the envelope's `meta.trace`.
 */
export type TraceCarrier = Record<string, string>;

/** What is being enqueued (one call: one task, one queue, one or more runs). */
export interface EnqueueTrace {
  task: string;
  queue: string;
  /** The run ids, in order. */
  ids: readonly string[];
  /** Set when the enqueue comes from a finished step of a workflow: that attempt's context. */
  parent?: TraceCarrier | undefined;
  /** Epoch ms the runs may start at, when delayed. */
  notBefore?: number | undefined;
}

/** A span around one enqueue call. */
export interface EnqueueSpan {
  /** The context the runs carry (their attempts' parent). */
  readonly carrier?: TraceCarrier | undefined;
  /** Ends the span: `error` when the enqueue threw, `duplicates` the runs an idempotency key absorbed. */
  end(result: { error?: unknown; duplicates?: number }): void;
}

/** One attempt about to run. */
export interface AttemptTrace {
  id: string;
  task: string;
  queue: string;
  /** 1-based. */
  attempt: number;
  /** How many times the message was handed out (this time included). */
  deliveries: number;
  /** The context the run carries (its enqueue), when it carries one. */
  carrier?: TraceCarrier | undefined;
  /** When the run was enqueued, epoch ms. */
  enqueuedAt: number;
}

/** How an attempt ended, as the tracer is told. */
export type AttemptEnd =
  | { kind: "succeeded" }
  | { kind: "retrying"; error: ErrorInfo; delayMs: number }
  | { kind: "failed"; error: ErrorInfo }
  /** Cancelled while it ran, or recorded by another delivery: its outcome was not recorded here. */
  | { kind: "duplicate"; state: string };

/** A span around one attempt. */
export interface AttemptSpan {
  /** This attempt's own context: workflow steps it completes are enqueued under it. */
  readonly carrier?: TraceCarrier | undefined;
  /** Runs the task's code with this span current (so what it enqueues joins the trace). */
  run<T>(fn: () => T): T;
  end(end: AttemptEnd): void;
}

/**
 * A tracer for the core. Both hooks are optional; each returns undefined to trace nothing. They
 * are called synchronously on the hot path and must not throw (the core catches and reports).
 */
export interface Telemetry {
  enqueue?(trace: EnqueueTrace): EnqueueSpan | undefined;
  attempt?(trace: AttemptTrace): AttemptSpan | undefined;
}

/** The envelope's `meta` key that holds the trace context. */
export const TRACE_META = "trace";

/** The trace context a decoded envelope's `meta` carries, if any (ignores anything malformed). */
export function carrierOf(meta: Record<string, unknown> | undefined): TraceCarrier | undefined {
  const value = meta?.[TRACE_META];
  if (typeof value !== "object" || value === null) return undefined;
  const out: TraceCarrier = {};
  let any = false;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "string") {
      out[k] = v;
      any = true;
    }
  }
  return any ? out : undefined;
}

/** The tracer's span around an enqueue (a tracer that throws is reported, never fails it). */
export function openEnqueueSpan(
  telemetry: Telemetry | undefined,
  events: Emitter,
  trace: EnqueueTrace,
): EnqueueSpan | undefined {
  try {
    return telemetry?.enqueue?.(trace);
  } catch (error) {
    events.emit("error", { error, where: "telemetry enqueue hook" });
    return undefined;
  }
}

/** Ends an enqueue span (a tracer that throws is reported). */
export function closeEnqueueSpan(
  events: Emitter,
  span: EnqueueSpan | undefined,
  result: { error?: unknown; duplicates?: number },
): void {
  try {
    span?.end(result);
  } catch (error) {
    events.emit("error", { error, where: "telemetry enqueue hook" });
  }
}
