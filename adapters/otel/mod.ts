/**
 * OpenTelemetry tracing: `otel()` is a `telemetry` for `createApp` that follows the messaging
 * semantic conventions. Each enqueue is a producer span (`send <queue>`), each attempt a consumer
 * span (`process <queue>`) whose parent is the context the run carries in its envelope, so a
 * run's attempts, what its task enqueues and the later steps of its workflow all join the trace
 * of whoever enqueued it — across processes, brokers and the HTTP push of QStash.
 *
 * `@opentelemetry/api` is an optional peer dependency: install it (your OpenTelemetry SDK
 * needs it anyway) to use this entry; nothing else in celeriac imports it. Spans go to the
 * globally registered tracer provider, and the trace context is written and read with the
 * global propagator (the W3C `traceparent`, as the SDKs register it), unless you pass your own.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { otel } from "celeriac/otel";
 *
 * const app = createApp({ telemetry: otel() });
 * ```
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import {
  type AttemptEnd,
  type AttemptSpan,
  type AttemptTrace,
  checkKeys,
  type EnqueueSpan,
  type EnqueueTrace,
  type ErrorInfo,
  errorInfo,
  keysOf,
  type Telemetry,
  type TraceCarrier,
  VERSION,
} from "../../backend.ts";

export type { AttemptTrace, EnqueueTrace, Telemetry, TraceCarrier } from "../../backend.ts";

/** What a span is about to describe, as the `attributes` hook sees it. */
export type SpanSubject =
  | { operation: "send"; trace: EnqueueTrace }
  | { operation: "process"; trace: AttemptTrace };

/** Options of {@linkcode otel}. */
export interface OtelOptions {
  /**
   * The tracer that makes the spans.
   * @default the global tracer provider's, `trace.getTracer("celeriac", <celeriac's version>)`
   */
  tracer?: Tracer | undefined;
  /**
   * Writes the trace context into the envelope and reads it back (the carrier is a
   * `Record<string, string>`).
   * @default the global propagator (`propagation` of `@opentelemetry/api`)
   */
  propagator?: TextMapPropagator | undefined;
  /**
   * Extra attributes for a span, set when it starts (so samplers see them); they override the
   * adapter's own of the same name.
   * @default none
   */
  attributes?: ((subject: SpanSubject) => Attributes | undefined) | undefined;
}

const OTEL_KEYS = keysOf<OtelOptions>({ tracer: true, propagator: true, attributes: true });

/**
 * A `telemetry` that traces enqueues and attempts with OpenTelemetry.
 *
 * Producer span `send <queue>` (kind PRODUCER): `messaging.system` "celeriac",
 * `messaging.operation.type`/`.name` "send", `messaging.destination.name` the queue,
 * `messaging.message.id` the run id (or `messaging.batch.message_count` for many runs),
 * `celeriac.task`, and `celeriac.not_before` (epoch ms) for a delayed run, `celeriac.duplicates`
 * for runs an idempotency key absorbed. Its parent is the active context, or for a workflow
 * step the attempt that completed the step before.
 *
 * Consumer span `process <queue>` (kind CONSUMER), child of the run's producer span (of the
 * active context, for a run enqueued without tracing):
 * `messaging.operation.type`/`.name` "process", the run id, queue and task as above,
 * `celeriac.attempt` (1-based), `celeriac.deliveries` (times the message was handed out) and
 * `celeriac.outcome` (succeeded, retrying, failed, duplicate). A failed or retrying attempt has
 * status ERROR, `error.type` and the exception recorded; a retry also `celeriac.retry_delay_ms`.
 * The task's code runs with this span active, so what it enqueues (and any span it starts) is
 * its child.
 *
 * @example
 * ```ts
 * import { trace } from "@opentelemetry/api";
 * import { createApp } from "celeriac";
 * import { otel } from "celeriac/otel";
 *
 * const app = createApp({
 *   telemetry: otel({
 *     tracer: trace.getTracer("billing"),
 *     attributes: (subject) => ({ "app.region": "eu-west-1", "app.task": subject.trace.task }),
 *   }),
 * });
 * ```
 */
export function otel(options: OtelOptions = {}): Telemetry {
  checkKeys(options, OTEL_KEYS, "otel()");
  const tracer = options.tracer ?? trace.getTracer("celeriac", VERSION);
  const propagator: TextMapPropagator = options.propagator ?? propagation;
  const extra = options.attributes;

  const inject = (ctx: Context): TraceCarrier | undefined => {
    const carrier: TraceCarrier = {};
    propagator.inject(ctx, carrier, defaultTextMapSetter);
    for (const _ in carrier) return carrier;
    return undefined;
  };
  const extract = (carrier: TraceCarrier): Context =>
    propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
  const withExtra = (attributes: Attributes, subject: SpanSubject): Attributes => {
    const more = extra?.(subject);
    return more === undefined ? attributes : { ...attributes, ...more };
  };

  return {
    enqueue(t: EnqueueTrace): EnqueueSpan {
      const parent = t.parent === undefined ? context.active() : extract(t.parent);
      const attributes: Attributes = {
        "messaging.system": "celeriac",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": t.queue,
        "celeriac.task": t.task,
      };
      if (t.ids.length === 1) attributes["messaging.message.id"] = t.ids[0];
      else attributes["messaging.batch.message_count"] = t.ids.length;
      if (t.notBefore !== undefined) attributes["celeriac.not_before"] = t.notBefore;
      const span = tracer.startSpan(
        `send ${t.queue}`,
        { kind: SpanKind.PRODUCER, attributes: withExtra(attributes, { operation: "send", trace: t }) },
        parent,
      );
      return {
        carrier: inject(trace.setSpan(parent, span)),
        end({ error, duplicates }) {
          if (duplicates) span.setAttribute("celeriac.duplicates", duplicates);
          if (error !== undefined) recordError(span, errorInfo(error));
          span.end();
        },
      };
    },

    attempt(t: AttemptTrace): AttemptSpan {
      const parent = t.carrier === undefined ? context.active() : extract(t.carrier);
      const attributes: Attributes = {
        "messaging.system": "celeriac",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": t.queue,
        "messaging.message.id": t.id,
        "celeriac.task": t.task,
        "celeriac.attempt": t.attempt,
        "celeriac.deliveries": t.deliveries,
      };
      const span = tracer.startSpan(
        `process ${t.queue}`,
        { kind: SpanKind.CONSUMER, attributes: withExtra(attributes, { operation: "process", trace: t }) },
        parent,
      );
      const active = trace.setSpan(parent, span);
      return {
        carrier: inject(active),
        run: (fn) => context.with(active, fn),
        end(end: AttemptEnd) {
          span.setAttribute("celeriac.outcome", end.kind);
          if (end.kind === "retrying") {
            span.setAttribute("celeriac.retry_delay_ms", end.delayMs);
            recordError(span, end.error);
          } else if (end.kind === "failed") {
            recordError(span, end.error);
          } else if (end.kind === "duplicate") {
            span.setAttribute("celeriac.state", end.state);
          }
          span.end();
        },
      };
    },
  };
}

/** ERROR status with the exception recorded (instrumentations leave success Unset). */
function recordError(span: Span, error: ErrorInfo): void {
  span.recordException(error);
  span.setAttribute("error.type", error.name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}
