/**
 * The executor: the only code that runs a task. Worker, HTTP handler and eager mode all call
 * {@link Executor.process}; none of them re-implements any step.
 *
 * Steps: decode + validate the envelope → end an expired run without running it (`expiry.ts`) →
 * hold back a run that its circuit breaker, or a rate limit its push provider left to the
 * handler, does not let start yet →
 * start the run (atomically, so finished or cancelled runs are not run again) → idempotency
 * claim → validate input → run with timeout → record the outcome → retry, or fail and
 * dead-letter → emit events → ack.
 *
 * @module
 */
import type {
  AttemptError,
  Broker,
  Clock,
  DeadLetter,
  Delivery,
  ErrorInfo,
  LeaseState,
  Outcome,
  Store,
} from "../contracts.ts";
import { decodeEnvelope, type Envelope, envelopeFrom, toMessage } from "../envelope.ts";
import { errorInfo, withoutStack } from "../error-info.ts";
import {
  CeleriacError,
  EnvelopeError,
  RetryRequest,
  SerializationError,
  UnknownTaskError,
  WorkerLostError,
} from "../errors.ts";
import type { Emitter } from "../events.ts";
import { expire, isExpired } from "../expiry.ts";
import { type BreakerOutcome, Breakers } from "../flow/breaker.ts";
import { holdBack } from "../flow/_hold-back.ts";
import { waitForRate } from "../flow/_rate-turn.ts";
import { LeasedLocks } from "../flow/_attempt-locks.ts";
import type { StatsCollector } from "../ops/stats.ts";
import {
  type AttemptEnd,
  type AttemptSpan,
  carrierOf,
  type Telemetry,
  type TraceCarrier,
} from "../telemetry.ts";
import { admit, type Claim, gated, pushStart, release } from "../idempotency.ts";
import { toJson } from "../json.ts";
import { idempotencyKey } from "../keys.ts";
import { decideRetry } from "../retry.ts";
import {
  failurePatch,
  rejectedPatch,
  retryPatch,
  runFields,
  START_GUARD,
  startPatch,
  UNFINISHED,
} from "../run-state.ts";
import { validate } from "../schema.ts";
import type { TaskPool } from "../pool.ts";
import type { ResolvedTask } from "../task.ts";
import type { Continuation } from "../workflow/workflow.ts";
import { AttemptContext } from "./_context.ts";
import { runModule } from "./_pool-run.ts";
import { AttemptTimeouts, isThenable } from "./_timeouts.ts";
import type { Ledger } from "./ledger.ts";

export type { Outcome } from "../contracts.ts";

/** What the executor needs from its app. */
export interface ExecutorDeps {
  tasks: ReadonlyMap<string, ResolvedTask>;
  broker: Broker;
  store: Store;
  /** Compound broker+store steps (fused by backends that can). */
  ledger: Ledger;
  clock: Clock;
  random: () => number;
  events: Emitter;
  /** Carries results and failures of workflow steps onward (absent: no workflows). */
  workflow?: {
    succeeded(cont: Continuation, result: unknown, trace?: TraceCarrier): Promise<void>;
    failed(cont: Continuation, error: ErrorInfo, where: string, trace?: TraceCarrier): Promise<void>;
  };
  /** Counts outcomes and runtimes for the app's reports (absent: nothing is counted). */
  stats?: StatsCollector | undefined;
  /** Traces attempts (absent: no tracing, no cost). */
  telemetry?: Telemetry | undefined;
  /** Called when a run reaches a final state in this process (wakes `run.result()` waiters). */
  settled(id: string): void;
}

/** Per-call options of {@link Executor.process}. */
export interface ProcessOptions {
  /** Aborting it aborts the task's `ctx.signal` (a worker stopping for good). */
  signal?: AbortSignal;
  /**
   * Pull workers: on success, lease the next due delivery of the same queue in the same step
   * when the ledger can. The caller must process what comes back in `Outcome.next`.
   */
  takeNext?: { leaseMs: number };
  /**
   * Called once the task's own code has returned or thrown, before its outcome is recorded (a
   * worker lets a prefetched task start while this one's outcome travels to the backend).
   */
  onRan?: () => void;
  /** Runs tasks defined with `module` (without one, the module runs on the event loop). */
  pool?: TaskPool | undefined;
}

/** Runs tasks. One per app. */
export class Executor {
  readonly #deps: ExecutorDeps;
  readonly #timeouts = new AttemptTimeouts();
  readonly #breakers: Breakers;
  /** Locks tasks took with `ctx.lock()`, renewed with their leases. */
  readonly #locks: LeasedLocks;

  constructor(deps: ExecutorDeps) {
    this.#deps = deps;
    this.#locks = new LeasedLocks(deps);
    const { store, clock, events, broker } = deps;
    const collapse = broker.eager === true && broker.honorDelays !== true;
    this.#breakers = new Breakers({ store, clock, events, collapse });
  }

  /** Renews the leases of deliveries being worked on and the claims and locks they hold. */
  renew(deliveries: readonly Delivery[], leaseMs: number): Promise<readonly LeaseState[] | undefined> {
    const renewed = this.#deps.ledger.renew(deliveries, leaseMs);
    if (this.#locks.size === 0) return renewed;
    return renewed.then((states) => {
      this.#locks.renew(deliveries, states, leaseMs);
      return states;
    });
  }

  /** Processes one delivery to its outcome. Never throws for anything a task or payload does. */
  async process(delivery: Delivery, options: ProcessOptions = {}): Promise<Outcome> {
    const { tasks } = this.#deps;
    let envelope: Envelope;
    if (delivery.malformed !== undefined) {
      return await this.#reject(delivery, undefined, new EnvelopeError(delivery.malformed));
    }
    try {
      envelope =
        delivery.parsed === undefined ? decodeEnvelope(delivery.body) : envelopeFrom(delivery.parsed);
    } catch (error) {
      return await this.#reject(delivery, undefined, error);
    }
    const task = tasks.get(envelope.task);
    if (task === undefined)
      return await this.#reject(delivery, envelope, new UnknownTaskError(envelope.task));
    // Expired before this attempt started (retries and redeliveries too): ends `expired`, not run.
    if (isExpired(envelope, this.#deps.clock)) return await expire(this.#deps, delivery, envelope, task);
    // A poison message: its worker was lost (crashed, killed) every time it ran it.
    const lost = delivery.deliveries - 1;
    if (delivery.leaseMs !== undefined && lost >= task.maxDeliveries) {
      const error = new WorkerLostError(`worker lost ${lost} times running run ${envelope.id}`);
      return await this.#fail(delivery, envelope, task, error, `worker lost ${lost} times`);
    }
    // A circuit breaker: while it is open, the run waits for the cooldown without an attempt.
    if (task.breaker === undefined || delivery.started?.applied === false) {
      return await this.#admitted(delivery, envelope, task, options);
    }
    const pass = await this.#breakers.admit(task, delivery);
    if (!pass.run) return await holdBack(this.#deps, delivery, envelope, task, pass.until);
    try {
      return await this.#admitted(delivery, envelope, task, options);
    } finally {
      // A probe slot taken by a delivery that did not run (a duplicate) is given back.
      await this.#breakers.settle(task, delivery, undefined)?.catch((error: unknown) => {
        this.#deps.events.emit("error", { error, where: `breaker of task "${task.name}"` });
      });
    }
  }

  /** Past the checks that need no run record: idempotency, the start, the attempt. */
  async #admitted(
    delivery: Delivery,
    envelope: Envelope,
    task: ResolvedTask,
    options: ProcessOptions,
  ): Promise<Outcome> {
    const { clock, ledger } = this.#deps;
    // A rate limit the push provider did not take: over it, the run waits for its turn.
    if (delivery.rateLimit !== undefined) {
      const held = await waitForRate(this.#deps, delivery, envelope, task);
      if (held !== undefined) return held;
    }
    // Idempotency: a finished key returns its result; one holder of the key runs at a time.
    let claim: Claim | undefined;
    if (gated(envelope)) {
      const admission = await admit(this.#deps, delivery, envelope, {
        fields: runFields(envelope, task.retry.maxAttempts, true),
        resultTtlMs: task.resultTtlMs,
        timeoutMs: task.timeoutMs,
      });
      if (!admission.run) return admission.outcome;
      claim = admission.claim;
    }

    const startedAt = clock.now();
    if (delivery.started !== undefined && claim === undefined) {
      // The broker started the run as it leased it, in the same round trip.
      if (!delivery.started.applied) {
        await ledger.skip(delivery);
        return { kind: "duplicate", id: envelope.id, state: delivery.started.state };
      }
      if (this.#deps.events.has("active")) {
        this.#deps.events.emit("active", { id: envelope.id, task: task.name, attempt: envelope.attempt });
      }
      return await this.#attempt(delivery, envelope, task, startedAt, options);
    }
    const fields = runFields(envelope, task.retry.maxAttempts, true);
    const patch = startPatch(fields, startedAt);
    // A push delivery without a key has no lease and no claim: its record keeps copies apart.
    const start =
      delivery.leaseMs === undefined && claim === undefined
        ? await pushStart(this.#deps, delivery, envelope, patch, {
            fields,
            resultTtlMs: task.resultTtlMs,
            timeoutMs: task.timeoutMs,
          })
        : await ledger.start(delivery, envelope.id, patch, { ttlMs: task.resultTtlMs, onlyIf: START_GUARD });
    if ("kind" in start) return start;
    if (!start.applied) {
      // Finished or cancelled already: a duplicate or stale delivery. Nothing runs.
      if (claim !== undefined) await release(ledger, claim);
      await ledger.skip(delivery);
      return { kind: "duplicate", id: envelope.id, state: start.record?.state ?? "missing" };
    }

    if (this.#deps.events.has("active")) {
      this.#deps.events.emit("active", { id: envelope.id, task: task.name, attempt: envelope.attempt });
    }
    try {
      return await this.#attempt(delivery, envelope, task, startedAt, options);
    } finally {
      if (claim !== undefined) await release(ledger, claim).catch(() => {});
    }
  }

  #attempt(
    delivery: Delivery,
    envelope: Envelope,
    task: ResolvedTask,
    startedAt: number,
    options: ProcessOptions,
  ): Promise<Outcome> {
    const span = this.#deps.telemetry?.attempt === undefined ? undefined : this.#span(delivery, envelope);
    if (span === undefined) return this.#run(delivery, envelope, task, startedAt, options, undefined);
    return this.#run(delivery, envelope, task, startedAt, options, span).then(
      (outcome) => {
        endSpan(span, attemptEnd(outcome), this.#deps.events);
        return outcome;
      },
      (error: unknown) => {
        endSpan(span, { kind: "failed", error: errorInfo(error) }, this.#deps.events);
        throw error;
      },
    );
  }

  /** The tracer's span for an attempt (a tracer that throws is reported, never fails the run). */
  #span(delivery: Delivery, envelope: Envelope): AttemptSpan | undefined {
    try {
      return this.#deps.telemetry!.attempt!({
        id: envelope.id,
        task: envelope.task,
        queue: envelope.queue,
        attempt: envelope.attempt,
        deliveries: delivery.deliveries,
        carrier: carrierOf(envelope.meta),
        enqueuedAt: envelope.enqueuedAt,
      });
    } catch (error) {
      this.#deps.events.emit("error", { error, where: "telemetry attempt hook" });
      return undefined;
    }
  }

  async #run(
    delivery: Delivery,
    envelope: Envelope,
    task: ResolvedTask,
    startedAt: number,
    options: ProcessOptions,
    span: AttemptSpan | undefined,
  ): Promise<Outcome> {
    const { clock, events, stats } = this.#deps;
    const ctx = new AttemptContext(this.#deps, envelope, task, options.signal, delivery, this.#locks);
    const trace = span?.carrier;

    let resultJson: string | undefined;
    let result: unknown;
    let failure: unknown;
    let ok = false;
    let ran: number | undefined;
    try {
      const input =
        task.schema === undefined
          ? envelope.input
          : await validate(task.schema, envelope.input, `input of task "${task.name}"`);
      const began = performance.now();
      ran = began;
      const work =
        task.module === undefined
          ? () => task.run(input, ctx)
          : () => runModule(task, task.module!, input, ctx, options.pool);
      const value = span === undefined ? work() : span.run(work);
      // A pool enforces the timeout itself, from when a thread starts the task (it terminates it).
      const timed = task.module === undefined || options.pool === undefined;
      result = !isThenable(value)
        ? value
        : timed
          ? await this.#timeouts.race(value, task, envelope.attempt, ctx)
          : await value;
      // A timer cannot fire while the handler blocks the event loop: code that ran past its
      // timeout (synchronous, or async that blocked before it settled) fails now, when it returns.
      if (timed && performance.now() - began > task.timeoutMs)
        throw this.#timeouts.error(task, envelope.attempt, ctx);
      if (!task.ignoreResult) {
        try {
          resultJson = toJson(result, "result");
        } catch (error) {
          throw new SerializationError(
            `task "${task.name}" returned a value that is not JSON: ${(error as Error).message}`,
            { cause: error },
          );
        }
      }
      ok = true;
    } catch (error) {
      failure = error;
    }
    // The breaker learns of a failure before the worker starts its next task (a success while
    // closed writes nothing, so costs nothing here).
    if (task.breaker !== undefined) {
      // Counted: what the task's code did. Not: input it never got, a result not JSON, an abandon.
      const counted: BreakerOutcome = ok
        ? "succeeded"
        : ran === undefined || options.signal?.aborted === true || isSerializationError(failure)
          ? undefined
          : "failed";
      await this.#breakers.settle(task, delivery, counted)?.catch((error: unknown) => {
        events.emit("error", { error, where: `breaker of task "${task.name}"` });
      });
    }
    options.onRan?.();
    if (stats !== undefined && ran !== undefined) {
      const due = envelope.notBefore ?? envelope.enqueuedAt;
      stats.ran(task.name, envelope.queue, startedAt, performance.now() - ran, startedAt - due);
    }
    const writes = ctx.settle();
    if (writes !== undefined) await writes;

    if (ok) {
      const stored = resultJson === undefined ? undefined : (JSON.parse(resultJson) as unknown);
      const cont = envelope.meta?.cont as Continuation | undefined;
      // Continue the workflow before acking: a crash in between redelivers, and the next step's
      // idempotency key absorbs the repeat.
      if (cont !== undefined && this.#deps.workflow !== undefined)
        await this.#deps.workflow.succeeded(cont, stored, trace);
      const now = clock.now();
      const next = await this.#deps.ledger.succeed(
        delivery,
        envelope.id,
        resultJson === undefined ? { at: now } : { at: now, result: stored, resultJson },
        task.resultTtlMs,
        envelope.idempotencyKey === undefined
          ? undefined
          : {
              key: idempotencyKey(envelope.queue, task.name, envelope.idempotencyKey),
              ttlMs: task.idempotencyTtlMs,
            },
        options.takeNext === undefined
          ? undefined
          : { max: 1, leaseMs: options.takeNext.leaseMs, start: true },
      );
      this.#deps.settled(envelope.id);
      if (next !== undefined && !Array.isArray(next)) return cancelledOutcome(envelope.id, next.next);
      stats?.ended(task.name, envelope.queue, now, "succeeded");
      events.emit("succeeded", {
        id: envelope.id,
        task: task.name,
        attempt: envelope.attempt,
        result: stored,
        durationMs: now - startedAt,
      });
      return next === undefined || next.length === 0
        ? { kind: "succeeded", id: envelope.id, result: stored }
        : { kind: "succeeded", id: envelope.id, result: stored, next };
    }
    if (isSerializationError(failure)) {
      return await this.#fail(delivery, envelope, task, failure, "result is not JSON", trace);
    }
    return await this.#failed(delivery, envelope, task, failure, options, trace);
  }

  async #continueFailed(envelope: Envelope, info: ErrorInfo, trace?: TraceCarrier): Promise<void> {
    const cont = envelope.meta?.cont as Continuation | undefined;
    if (cont === undefined || this.#deps.workflow === undefined) return;
    try {
      await this.#deps.workflow.failed(cont, withoutStack(info), envelope.task, trace);
    } catch (error) {
      this.#deps.events.emit("error", { error, where: `workflow of run ${envelope.id}` });
    }
  }

  async #failed(
    delivery: Delivery,
    envelope: Envelope,
    task: ResolvedTask,
    failure: unknown,
    options: ProcessOptions,
    trace: TraceCarrier | undefined,
  ): Promise<Outcome> {
    const { clock, events } = this.#deps;
    const decision = decideRetry(task.retry, failure, envelope.attempt, this.#deps.random);
    if (!decision.retry) {
      const reason =
        decision.reason === "exhausted"
          ? `failed after ${envelope.attempt} attempt${envelope.attempt === 1 ? "" : "s"}`
          : decision.reason === "non-retryable"
            ? "non-retryable error"
            : "error not retried by retryOn";
      return await this.#fail(delivery, envelope, task, failure, reason, trace);
    }
    const info = errorInfo(
      failure instanceof RetryRequest && failure.cause !== undefined ? failure.cause : failure,
    );
    const now = clock.now();
    const history = [
      ...(envelope.errors ?? []),
      { ...withoutStack(info), attempt: envelope.attempt, at: now },
    ];
    const delayMs = Math.max(0, Math.round(decision.delayMs));
    const notBefore = now + delayMs;
    const next = await this.#deps.ledger.retry(
      delivery,
      envelope.id,
      retryPatch(now, notBefore, history),
      task.resultTtlMs + delayMs,
      toMessage({ ...envelope, attempt: envelope.attempt + 1, notBefore, errors: history }),
      options.takeNext === undefined ? undefined : { max: 1, leaseMs: options.takeNext.leaseMs, start: true },
    );
    if (next !== undefined && !Array.isArray(next)) {
      this.#deps.settled(envelope.id);
      return cancelledOutcome(envelope.id, next.next);
    }
    this.#deps.stats?.ended(task.name, envelope.queue, now, "retried");
    events.emit("retrying", {
      id: envelope.id,
      task: task.name,
      attempt: envelope.attempt,
      error: info,
      delayMs,
    });
    return next === undefined || next.length === 0
      ? { kind: "retrying", id: envelope.id, delayMs, error: info }
      : { kind: "retrying", id: envelope.id, delayMs, error: info, next };
  }

  async #fail(
    delivery: Delivery,
    envelope: Envelope,
    task: ResolvedTask,
    failure: unknown,
    reason: string,
    trace?: TraceCarrier,
  ): Promise<Outcome> {
    const { clock, events } = this.#deps;
    const info = errorInfo(failure);
    const now = clock.now();
    const history: AttemptError[] = [
      ...(envelope.errors ?? []),
      { ...withoutStack(info), attempt: envelope.attempt, at: now },
    ];
    const entry: DeadLetter = {
      id: envelope.id,
      task: task.name,
      queue: envelope.queue,
      reason: `${reason}: ${info.name}: ${info.message}`,
      error: info,
      errors: history,
      body: delivery.body,
      at: now,
    };
    await this.#deps.ledger.fail(delivery, entry, {
      patch: failurePatch(now, info, history),
      options: { ttlMs: task.resultTtlMs, onlyIf: UNFINISHED },
    });
    this.#deps.settled(envelope.id);
    this.#deps.stats?.ended(task.name, envelope.queue, now, "failed");
    await this.#continueFailed(envelope, info, trace);
    events.emit("failed", { id: envelope.id, task: task.name, attempt: envelope.attempt, error: info });
    events.emit("deadLettered", entry);
    return { kind: "failed", id: envelope.id, error: info };
  }

  /** Dead-letters a delivery that cannot run at all; records the run as failed when it has an id. */
  async #reject(delivery: Delivery, envelope: Envelope | undefined, error: unknown): Promise<Outcome> {
    const { clock, events } = this.#deps;
    const info = errorInfo(error);
    const now = clock.now();
    const id = envelope?.id ?? (delivery.id || crypto.randomUUID());
    const entry: DeadLetter = {
      id,
      queue: envelope?.queue ?? delivery.queue,
      reason: `${info.name}: ${info.message}`,
      error: withoutStack(info),
      errors: envelope?.errors ?? [],
      body: delivery.body,
      at: now,
    };
    if (envelope !== undefined) entry.task = envelope.task;
    await this.#deps.ledger.fail(
      delivery,
      entry,
      envelope === undefined
        ? undefined
        : {
            patch: rejectedPatch(runFields(envelope, envelope.attempt, false), now, withoutStack(info)),
            options: { ttlMs: 86_400_000, onlyIf: START_GUARD },
          },
    );
    this.#deps.stats?.ended(envelope?.task ?? "", entry.queue, now, "rejected");
    if (envelope !== undefined) {
      this.#deps.settled(envelope.id);
      await this.#continueFailed(envelope, withoutStack(info));
    }
    events.emit("deadLettered", entry);
    return { kind: "rejected", id, reason: entry.reason };
  }
}

/** A task's result that is not JSON. */
function isSerializationError(error: unknown): boolean {
  return (
    error instanceof SerializationError ||
    (error instanceof CeleriacError && error.name === "SerializationError")
  );
}

/** A run cancelled while it ran: its outcome was not recorded. */
function cancelledOutcome(id: string, next: Delivery[] | undefined): Outcome {
  return next === undefined || next.length === 0
    ? { kind: "duplicate", id, state: "cancelled" }
    : { kind: "duplicate", id, state: "cancelled", next };
}

/** What a tracer is told of an attempt's outcome. */
function attemptEnd(outcome: Outcome): AttemptEnd {
  switch (outcome.kind) {
    case "succeeded":
      return { kind: "succeeded" };
    case "retrying":
      return { kind: "retrying", error: outcome.error, delayMs: outcome.delayMs };
    case "failed":
      return { kind: "failed", error: outcome.error };
    case "rejected":
      return { kind: "failed", error: { name: "EnvelopeError", message: outcome.reason } };
    case "duplicate":
      return { kind: "duplicate", state: outcome.state };
    case "deferred":
      return { kind: "duplicate", state: "deferred" };
    case "expired":
      return { kind: "duplicate", state: "expired" };
  }
}

function endSpan(span: AttemptSpan, end: AttemptEnd, events: Emitter): void {
  try {
    span.end(end);
  } catch (error) {
    events.emit("error", { error, where: "telemetry attempt hook" });
  }
}
