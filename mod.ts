/**
 * celeriac: background tasks for TypeScript on Node, Deno, Bun and the edge — retries with
 * backoff, idempotency, priorities, delays, leases, dead letters and events, over swappable
 * backends.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import * as v from "valibot";
 *
 * const app = createApp();
 * const greet = app.task({
 *   name: "greet",
 *   input: v.object({ name: v.string() }),
 *   run: ({ name }) => `hello ${name}`,
 * });
 * const worker = app.worker().start();
 * const run = await greet.enqueue({ name: "Ada" });
 * console.log(await run.result()); // "hello Ada"
 * await worker.stop();
 * ```
 *
 * @module
 */
export { App, type AppOptions, createApp, type DrainOptions } from "./src/app.ts";
export { type ManualClock, manualClock, systemClock } from "./src/clock.ts";
export type {
  AttemptError,
  Broker,
  Clock,
  DeadLetter,
  Delivery,
  ErrorInfo,
  Message,
  ReceiveOptions,
  RunGuard,
  RunRecord,
  RunState,
  Store,
  UpdateRunOptions,
  UpdateRunResult,
} from "./src/contracts.ts";
export { FINAL_STATES } from "./src/contracts.ts";
export { decodeEnvelope, type Envelope, encodeEnvelope, ENVELOPE_VERSION } from "./src/envelope.ts";
export {
  BackendError,
  CancelledError,
  CeleriacError,
  type CeleriacErrorOptions,
  EnvelopeError,
  NonRetryableError,
  RetryAfterError,
  type SchemaIssue,
  SerializationError,
  SignatureError,
  TaskFailedError,
  TimeoutError,
  UnknownTaskError,
  ValidationError,
} from "./src/errors.ts";
export { Emitter, type EventMap, type EventType, type Listener } from "./src/events.ts";
export { Executor, type Outcome, type ProcessOptions } from "./src/executor.ts";
export { errorInfo } from "./src/_error-info.ts";
export { toJson } from "./src/json.ts";
export { composeLedger, type EnqueueItem, type Ledger } from "./src/ledger.ts";
export {
  backoffDelay,
  decideRetry,
  type RetryDecision,
  type RetryOn,
  type RetryOptions,
  type RetryPolicy,
  retryPolicy,
} from "./src/retry.ts";
export {
  type InferInput,
  type InferOutput,
  isStandardSchema,
  type StandardSchemaV1,
  validate,
} from "./src/schema.ts";
export type {
  EnqueueOptions,
  ResolvedTask,
  Run,
  StandardInput,
  StandardOutput,
  Task,
  TaskContext,
  TaskDefinition,
} from "./src/task.ts";
export {
  type CatchUp,
  DEFAULT_CATCH_UP_WINDOW_MS,
  type EnqueuedTick,
  MAX_TICKS_PER_CALL,
  type Schedule,
  type ScheduleOptions,
  Scheduler,
  type SchedulerHost,
  type SchedulerOptions,
  type SchedulerSource,
  type ScheduleStatus,
  type SkippedTick,
  scheduled,
  type TickError,
  type TickResult,
  type WaitUntilContext,
} from "./src/scheduler.ts";
export { Worker, type WorkerHost, type WorkerOptions } from "./src/worker.ts";
export {
  type Continuation,
  chain,
  chord,
  group,
  type Signature,
  type Workflow,
  type WorkflowNode,
} from "./src/workflow.ts";
