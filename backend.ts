/**
 * celeriac/backend: what a backend author needs — the broker and store contracts, the composed
 * ledger, the envelope codec, the run-state rules and the key namespace — to write an adapter
 * (a broker, a store, a push receiver) outside this package. Applications import `celeriac`.
 * The contract test suite that every adapter here passes is `celeriac/backend/testing`.
 *
 * @example
 * ```ts
 * import type { Broker, Message } from "celeriac/backend";
 * import { BackendError } from "celeriac/backend";
 *
 * export function myBroker(): Broker {
 *   return {
 *     async send(messages: readonly Message[]) {
 *       if (messages.length > 100) throw new BackendError("too many at once");
 *       // publish each message.body to the queue named message.queue …
 *     },
 *   };
 * }
 * ```
 *
 * @module
 */
export type {
  AttemptError,
  Broker,
  Clock,
  ControlCommand,
  DeadLetter,
  Delivery,
  ErrorInfo,
  HistoryPage,
  HistoryQuery,
  HistoryRun,
  LeaseState,
  Message,
  OpsStore,
  Outcome,
  PushReceiver,
  PushRoute,
  QueueCounts,
  QueuedRun,
  QueuedRunPage,
  QueueOps,
  ReceiveOptions,
  RunChange,
  RunGuard,
  RunHistory,
  RunRecord,
  RunState,
  ScheduleStore,
  StatsRow,
  Store,
  UpdateRunOptions,
  UpdateRunResult,
  WorkerInfo,
} from "./src/contracts.ts";
export {
  decodeEnvelope,
  type Envelope,
  ENVELOPE_VERSION,
  encodeEnvelope,
  envelopeFrom,
  sendKey,
  toMessage,
} from "./src/envelope.ts";
export { errorInfo, withoutStack } from "./src/error-info.ts";
export { limitsOf, type MessageLimits } from "./src/flow/limits.ts";
export {
  BackendError,
  CeleriacError,
  EnvelopeError,
  SignatureError,
  TimeoutError,
  UnknownTaskError,
} from "./src/errors.ts";
export { Emitter, type EventMap, type EventType, type Listener } from "./src/events.ts";
export type { Executor, ProcessOptions } from "./src/execute/executor.ts";
export {
  CANCELLED_STEP,
  type CancelledStep,
  type ClaimHeld,
  composeLedger,
  type EnqueueItem,
  type IdempotencyClaim,
  type Ledger,
  type TakeNext,
} from "./src/execute/ledger.ts";
export { processDelivery } from "./src/process.ts";
export { Deadlines } from "./src/execute/_deadlines.ts";
export { checkKeys, keysOf } from "./src/_options.ts";
export { toJson } from "./src/json.ts";
export {
  claimKey,
  flatKey,
  groupCountKey,
  groupMemberKey,
  idempotencyKey,
  type QueueKey,
  scheduleLastKey,
  scheduleRunKey,
  scheduleTickKey,
  workflowStepKey,
} from "./src/keys.ts";
export {
  ACTIVE_GUARD,
  CANCELLABLE_STATES,
  cancelPatch,
  duplicatePatch,
  FINAL_STATES,
  failurePatch,
  initialState,
  isFinal,
  isStartable,
  notStarted,
  PUSH_START_GUARD,
  RUN_STATES,
  type RunFields,
  rejectedPatch,
  runFields,
  retryPatch,
  START_GUARD,
  STARTABLE_STATES,
  STARTED,
  type StartResult,
  storedState,
  type Success,
  startPatch,
  successPatch,
  UNSTARTED_GUARD,
} from "./src/run-state.ts";
export {
  backoffDelay,
  decideRetry,
  type RetryDecision,
  type RetryOn,
  type RetryPolicy,
  retryPolicy,
} from "./src/retry.ts";
export { isStandardSchema, type StandardSchemaV1, validate } from "./src/schema.ts";
export type {
  AttemptEnd,
  AttemptSpan,
  AttemptTrace,
  EnqueueSpan,
  EnqueueTrace,
  Telemetry,
  TraceCarrier,
} from "./src/telemetry.ts";
export { VERSION } from "./src/version.ts";
