import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { otel } from "../adapters/otel/mod.ts";
import { chord, createApp, manualClock, NonRetryableError } from "../mod.ts";

// The real SDK: spans recorded in memory, the context carried by AsyncLocalStorage (Node, Deno
// and Bun all have it), the trace context written as W3C `traceparent`.
const contextManager = new AsyncLocalStorageContextManager();
before(() => {
  context.setGlobalContextManager(contextManager.enable());
});
after(() => {
  context.disable();
});

function setup(options: { eager?: boolean } = {}) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer("test");
  const clock = manualClock(Date.UTC(2030, 0, 1));
  const backend = memory({ clock, ...options });
  const app = createApp({
    broker: backend,
    store: backend,
    clock,
    random: () => 0,
    telemetry: otel({ tracer, propagator: new W3CTraceContextPropagator() }),
  });
  const spans = () => exporter.getFinishedSpans();
  /** The one finished span of `name` whose attributes include `attrs`. */
  const span = (name: string, attrs: Record<string, unknown>): ReadableSpan => {
    const found = spans().filter(
      (s) => s.name === name && Object.entries(attrs).every(([k, x]) => s.attributes[k] === x),
    );
    assert.equal(found.length, 1, `one span ${name} ${JSON.stringify(attrs)}, got ${found.length}`);
    return found[0]!;
  };
  return { app, clock, tracer, spans, span, provider, exporter };
}

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan) => s.spanContext().spanId;
const traceOf = (s: ReadableSpan) => s.spanContext().traceId;

describe("otel()", () => {
  it("keeps one trace from the enqueue through a retried attempt to a chord callback", async () => {
    const { app, clock, tracer, spans, span } = setup();
    let calls = 0;
    const flaky = app.task({
      name: "flaky",
      input: v.number(),
      retry: { maxAttempts: 3, baseMs: 10, jitter: "none" },
      run: (n) => {
        if (++calls === 1) throw new Error("transient");
        return n * 10;
      },
    });
    const double = app.task({ name: "double", input: v.number(), run: (n) => n * 2 });
    const sum = app.task({
      name: "sum",
      input: v.array(v.number()),
      run: (ns) => ns.reduce((x, y) => x + y, 0),
    });

    const run = await tracer.startActiveSpan("request", async (root) => {
      try {
        return await chord([double.with(1), flaky.with(2)], sum.with()).enqueue();
      } finally {
        root.end();
      }
    });
    await app.drain(); // double succeeds, flaky's first attempt fails
    clock.advance(10);
    await app.drain(); // flaky's retry succeeds, the callback is enqueued and runs
    assert.equal(await run.result(), 22);

    const root = span("request", {});
    const workflow = span("send default", { "celeriac.task": "workflow.chord" });
    const sendFlaky = span("send default", { "celeriac.task": "flaky" });
    const sendDouble = span("send default", { "celeriac.task": "double" });
    const first = span("process default", { "celeriac.task": "flaky", "celeriac.attempt": 1 });
    const second = span("process default", { "celeriac.task": "flaky", "celeriac.attempt": 2 });
    const processDouble = span("process default", { "celeriac.task": "double" });
    const sendSum = span("send default", { "celeriac.task": "sum" });
    const processSum = span("process default", { "celeriac.task": "sum" });

    for (const s of spans()) assert.equal(traceOf(s), traceOf(root), `${s.name} is in the request's trace`);
    assert.equal(parentOf(workflow), idOf(root));
    assert.equal(parentOf(sendFlaky), idOf(workflow));
    assert.equal(parentOf(sendDouble), idOf(workflow));
    // Both attempts are children of the run's producer span, not of each other.
    assert.equal(parentOf(first), idOf(sendFlaky));
    assert.equal(parentOf(second), idOf(sendFlaky));
    assert.equal(parentOf(processDouble), idOf(sendDouble));
    // The callback is enqueued by the attempt that completed the chord's last member.
    assert.equal(parentOf(sendSum), idOf(second));
    assert.equal(parentOf(processSum), idOf(sendSum));

    assert.equal(first.status.code, SpanStatusCode.ERROR);
    assert.equal(first.status.message, "transient");
    assert.equal(first.attributes["celeriac.outcome"], "retrying");
    assert.equal(first.attributes["celeriac.retry_delay_ms"], 10);
    assert.equal(first.attributes["error.type"], "Error");
    const exception = first.events.find((e) => e.name === "exception");
    assert.equal(exception?.attributes?.["exception.message"], "transient");
    assert.equal(second.status.code, SpanStatusCode.UNSET);
    assert.equal(second.attributes["celeriac.outcome"], "succeeded");
    assert.equal(processSum.attributes["celeriac.outcome"], "succeeded");
  });

  it("makes what a task enqueues a child of that task's attempt", async () => {
    const { app, span } = setup();
    const child = app.task({ name: "child", run: () => "done" });
    const parent = app.task({
      name: "parent",
      run: async () => {
        await new Promise((resolve) => setTimeout(resolve, 0)); // the context survives awaits
        return (await child.enqueue(null)).id;
      },
    });
    const run = await parent.enqueue(null);
    await app.drain();
    const childId = await run.result();

    const processParent = span("process default", { "celeriac.task": "parent" });
    const sendChild = span("send default", { "celeriac.task": "child" });
    const processChild = span("process default", { "celeriac.task": "child" });
    assert.equal(sendChild.attributes["messaging.message.id"], childId);
    assert.equal(parentOf(sendChild), idOf(processParent));
    assert.equal(parentOf(processChild), idOf(sendChild));
    assert.equal(traceOf(processChild), traceOf(processParent));
  });

  it("sets the messaging attributes on producer and consumer spans", async () => {
    const { app, span } = setup();
    const resize = app.task({ name: "image.resize", queue: "media", run: () => true });
    const run = await resize.enqueue(null, { delayMs: 0 });
    const batch = await resize.enqueueMany([1, 2, 3]);
    await app.drain();
    await run.result();

    const send = span("send media", { "messaging.message.id": run.id });
    assert.equal(send.kind, SpanKind.PRODUCER);
    assert.deepEqual(send.attributes, {
      "messaging.system": "celeriac",
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.destination.name": "media",
      "messaging.message.id": run.id,
      "celeriac.task": "image.resize",
    });
    const sendBatch = span("send media", { "messaging.batch.message_count": 3 });
    assert.equal("messaging.message.id" in sendBatch.attributes, false);

    const process = span("process media", { "messaging.message.id": run.id });
    assert.equal(process.kind, SpanKind.CONSUMER);
    assert.deepEqual(process.attributes, {
      "messaging.system": "celeriac",
      "messaging.operation.type": "process",
      "messaging.operation.name": "process",
      "messaging.destination.name": "media",
      "messaging.message.id": run.id,
      "celeriac.task": "image.resize",
      "celeriac.attempt": 1,
      "celeriac.deliveries": 1,
      "celeriac.outcome": "succeeded",
    });
    for (const r of batch) {
      assert.equal(parentOf(span("process media", { "messaging.message.id": r.id })), idOf(sendBatch));
    }
  });

  it("records a run's delay and the runs an idempotency key absorbed", async () => {
    const { app, clock, spans } = setup();
    const nightly = app.task({ name: "report", run: () => 1 });
    await nightly.enqueue(null, { delayMs: 60_000, idempotencyKey: "2030-01-01" });
    await nightly.enqueue(null, { delayMs: 60_000, idempotencyKey: "2030-01-01" });
    const [first, second] = spans();
    assert.equal(first?.attributes["celeriac.not_before"], clock.now() + 60_000);
    assert.equal("celeriac.duplicates" in (first?.attributes ?? {}), false);
    assert.equal(second?.attributes["celeriac.duplicates"], 1);
  });

  it("marks a failed attempt as an error with the exception recorded", async () => {
    const { app, span } = setup();
    const charge = app.task({
      name: "charge",
      run: () => {
        throw new NonRetryableError("card declined");
      },
    });
    const run = await charge.enqueue(null);
    await app.drain();
    await assert.rejects(run.result(), /card declined/);
    const s = span("process default", { "celeriac.task": "charge" });
    assert.equal(s.status.code, SpanStatusCode.ERROR);
    assert.equal(s.attributes["celeriac.outcome"], "failed");
    assert.equal(s.attributes["error.type"], "NonRetryableError");
    const exception = s.events.find((e) => e.name === "exception");
    assert.equal(exception?.attributes?.["exception.type"], "NonRetryableError");
    assert.equal(exception?.attributes?.["exception.message"], "card declined");
  });

  it("traces eager mode the same way", async () => {
    const { app, tracer, span } = setup({ eager: true });
    const hello = app.task({ name: "hello", run: (name: unknown) => `hello ${String(name)}` });
    const run = await tracer.startActiveSpan("request", async (root) => {
      try {
        return await hello.enqueue("Ada");
      } finally {
        root.end();
      }
    });
    assert.equal(await run.result(), "hello Ada");
    const root = span("request", {});
    const send = span("send default", { "celeriac.task": "hello" });
    const process = span("process default", { "celeriac.task": "hello" });
    assert.equal(parentOf(send), idOf(root));
    assert.equal(parentOf(process), idOf(send));
  });

  it("writes the W3C traceparent into the carrier and adds the attributes hook's attributes", () => {
    const { tracer, span } = setup();
    const telemetry = otel({
      tracer,
      propagator: new W3CTraceContextPropagator(),
      attributes: ({ operation, trace }) => ({ "app.operation": operation, "app.task": trace.task }),
    });
    const sent = telemetry.enqueue!({ task: "t", queue: "q", ids: ["r1"] })!;
    sent.end({});
    assert.match(sent.carrier?.traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const attempt = telemetry.attempt!({
      id: "r1",
      task: "t",
      queue: "q",
      attempt: 1,
      deliveries: 1,
      carrier: sent.carrier,
      enqueuedAt: 0,
    })!;
    const inside = attempt.run(() => trace.getActiveSpan()?.spanContext().spanId);
    attempt.end({ kind: "duplicate", state: "cancelled" });
    const process = span("process q", { "app.operation": "process", "app.task": "t" });
    assert.equal(inside, idOf(process));
    assert.equal(attempt.carrier?.traceparent?.split("-")[2], idOf(process));
    assert.equal(process.attributes["celeriac.outcome"], "duplicate");
    assert.equal(process.attributes["celeriac.state"], "cancelled");
    assert.equal(span("send q", {}).attributes["app.operation"], "send");
  });

  it("uses the global tracer provider and propagator by default, named celeriac with its version", async () => {
    const { provider, spans } = setup();
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    try {
      const telemetry = otel();
      const sent = telemetry.enqueue!({ task: "t", queue: "q", ids: ["r1"] })!;
      sent.end({ error: new TypeError("bad option") });
      assert.ok(sent.carrier?.traceparent);
      const [s] = spans();
      const version = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;
      assert.deepEqual(
        { name: s?.instrumentationScope.name, version: s?.instrumentationScope.version },
        { name: "celeriac", version },
      );
      assert.equal(s?.status.code, SpanStatusCode.ERROR);
      assert.equal(s?.attributes["error.type"], "TypeError");
    } finally {
      trace.disable();
      propagation.disable();
    }
  });

  it("rejects unknown options", () => {
    assert.throws(() => otel({ tracr: undefined } as never), /unknown option "tracr" of otel\(\)/);
  });
});
