/**
 * What the QStash emulator reports: its messages, their delivery attempts and its counters.
 *
 * @module
 */

/** Lifecycle of a message, named after QStash's states. */
export type EmulatorMessageState = "CREATED" | "ACTIVE" | "RETRY" | "DELIVERED" | "FAILED" | "CANCELLED";

/** One HTTP request the emulator made to a destination. */
export interface EmulatorAttempt {
  /** Value of the `Upstash-Retried` header sent with this attempt. */
  readonly retried: number;
  /** Emulator-clock time the attempt started. */
  readonly startedAt: number;
  /** Emulator-clock time the attempt finished. */
  readonly finishedAt: number;
  /** Response status; absent after a network error or timeout. */
  readonly status?: number;
  /** Why no response arrived (network error, timeout). */
  readonly error?: string;
  /** Response body text. */
  readonly responseBody: string;
  /** Response headers, lower-case names. */
  readonly responseHeaders: Readonly<Record<string, string>>;
}

/** A message's flow control (`Upstash-Flow-Control-Key` and `-Value`), as the emulator enforces it. */
export interface EmulatorFlowControl {
  readonly key: string;
  /** Calls of the key in flight at once, at most. */
  readonly parallelism?: number;
  /** Calls of the key started per `periodMs`, at most. */
  readonly rate?: number;
  /** The rate's window, in milliseconds (1 s unless the message sets `period`). */
  readonly periodMs: number;
}

/** A published message and its delivery history; a live view, updated as delivery goes on. */
export interface EmulatorMessage {
  readonly messageId: string;
  /** Destination URL, exactly as published (also the signature's `sub`). */
  readonly url: string;
  readonly method: string;
  /** Headers sent to the destination besides QStash's own (`Upstash-Forward-` prefix stripped). */
  readonly headers: Readonly<Record<string, string>>;
  /** Body as UTF-8 text. */
  readonly body: string;
  readonly bodyBytes: Uint8Array;
  /** `Upstash-Retries`: retries after the first attempt before dead-lettering. */
  readonly maxRetries: number;
  readonly createdAt: number;
  /** Emulator-clock time of the first attempt (`Upstash-Delay` / `Upstash-Not-Before`). */
  readonly notBefore: number;
  readonly timeoutMs?: number;
  readonly deduplicationId?: string;
  readonly callback?: string;
  readonly failureCallback?: string;
  readonly retryDelay?: string;
  /** Its flow control, when published with one. */
  readonly flowControl?: EmulatorFlowControl;
  readonly state: EmulatorMessageState;
  /** When the next attempt is due, while the message waits. */
  readonly nextAttemptAt: number | undefined;
  readonly attempts: readonly EmulatorAttempt[];
  /** Set once the message is dead-lettered. */
  readonly dlqId: string | undefined;
}

/** Counters since start (or the last `reset()`). */
export interface EmulatorStats {
  /** Messages accepted (not counting deduplicated publishes). */
  readonly published: number;
  /** Publishes answered with an existing message id. */
  readonly deduplicated: number;
  /** HTTP requests made to destinations, every attempt counted. */
  readonly deliveries: number;
  /** Messages that got a 2xx. */
  readonly delivered: number;
  /** Messages moved to the dead-letter queue. */
  readonly deadLettered: number;
  readonly cancelled: number;
}
