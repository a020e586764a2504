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
export type { App, AppOptions, DrainOptions } from "./src/app.ts";
export { createApp } from "./src/app.ts";
export { type ManualClock, manualClock, systemClock } from "./src/clock.ts";
export type { AttemptError, Clock, DeadLetter, ErrorInfo, RunRecord, RunState } from "./src/contracts.ts";
export {
  BackendError,
  CancelledError,
  CeleriacError,
  EnvelopeError,
  FlowKeyError,
  ExpiredError,
  LockedError,
  NonRetryableError,
  RetryAfterError,
  type SchemaIssue,
  SerializationError,
  SignatureError,
  TaskFailedError,
  ThrottledError,
  TimeoutError,
  UnknownTaskError,
  ValidationError,
  WorkerLostError,
} from "./src/errors.ts";
export type { EventMap, EventType } from "./src/events.ts";
export type { Worker, WorkerOptions } from "./src/execute/worker.ts";
export type {
  PoolCall,
  PoolIo,
  PoolRecycled,
  PoolStats,
  TaskPool,
  ThreadContext,
  ThreadModule,
} from "./src/pool.ts";
export type { DebounceOptions } from "./src/flow/debounce.ts";
export type { ThrottleOptions } from "./src/flow/throttle.ts";
export type { BreakerOptions } from "./src/flow/breaker-options.ts";
export type { ConcurrencyLimitOption, RateLimitOption } from "./src/flow/limits.ts";
export type {
  ActiveRun,
  BreakerInfo,
  BreakerState,
  BulkProgress,
  Control,
  Inspector,
  Percentiles,
  QueueInfo,
  ScheduleInfo,
  TaskStats,
} from "./src/ops/types.ts";
export { METRICS_CONTENT_TYPE } from "./src/ops/metrics.ts";
export type { LockHandle, LockOptions, LockState, TaskLockOptions } from "./src/flow/lock.ts";
export type { RetryOptions } from "./src/retry.ts";
export type { Route, RouteFunction, Routes, RouteTable } from "./src/routes.ts";
export {
  cronTrigger,
  type Schedule,
  type ScheduleOptions,
  type Scheduler,
  type SchedulerOptions,
  type ScheduleStatus,
  type ScheduleTiming,
  type TickResult,
} from "./src/schedule/scheduler.ts";
export type { Schedules } from "./src/schedule/schedules.ts";
export type { StoredSchedule, StoredSchedulePatch } from "./src/schedule/stored.ts";
export type {
  EnqueueOptions,
  InlineTaskDefinition,
  Run,
  Task,
  TaskContext,
  TaskDefinition,
  TaskOptions,
  ThreadTaskDefinition,
} from "./src/task.ts";
export { chain, chord, group, type Step, type Workflow } from "./src/workflow/workflow.ts";
