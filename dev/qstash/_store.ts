/**
 * The emulator's messages and their delivery: the message table, the dead-letter queue, the
 * deduplication ids and counters, and the loop that pushes each due message to its destination
 * with a signed request (when its flow control allows), then retries, dead-letters or sends its
 * callbacks.
 *
 * @module
 */
import { base64, encoder, multi, randomId } from "./_encoding.ts";
import { retryAfterMs } from "./_durations.ts";
import { FlowGate } from "./_flow-control.ts";
import { signQStashDelivery } from "./sign.ts";
import type { EmulatorAttempt, EmulatorMessage, EmulatorMessageState, EmulatorStats } from "./types.ts";

const MAX_TIMER_MS = 2_147_483_647;
/** States of a message that waits for its next attempt. */
export const WAITING: ReadonlySet<EmulatorMessageState> = new Set(["CREATED", "RETRY"]);
/** States of a message that is not finished yet (listed by `GET /v2/messages/:id`, cancellable). */
export const PENDING: ReadonlySet<EmulatorMessageState> = new Set(["CREATED", "RETRY", "ACTIVE"]);

/** `T` without `readonly`. */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A message as the emulator keeps it: the public view plus what delivery needs. */
export type Entry = Mutable<EmulatorMessage> & {
  attempts: EmulatorAttempt[];
  bodyBytes: Uint8Array<ArrayBuffer>;
  delayFn?: (retried: number) => number;
  isCallback: boolean;
};

/** What {@linkcode Store.enqueue} needs to create a message. */
export type NewEntry = Pick<
  Entry,
  "url" | "method" | "headers" | "bodyBytes" | "maxRetries" | "notBefore" | "isCallback"
> &
  Partial<
    Pick<
      Entry,
      | "timeoutMs"
      | "deduplicationId"
      | "callback"
      | "failureCallback"
      | "retryDelay"
      | "delayFn"
      | "flowControl"
    >
  >;

/** Settings of {@linkcode createStore}. */
export interface StoreConfig {
  /** Key every delivery is signed with. */
  signingKey: string;
  /** The emulator clock, epoch milliseconds. */
  now: () => number;
  /** Delay before the next attempt, given how many retries already happened. */
  backoff: (retried: number) => number;
}

/** The emulator's state and delivery loop; see {@linkcode createStore}. */
export interface Store {
  /** The emulator clock. */
  readonly now: () => number;
  /** Every message in publish order, including callback messages. */
  readonly entries: Map<string, Entry>;
  /** The dead-letter queue, by `dlqId`. */
  readonly deadLetters: Map<string, Entry>;
  /** Deduplication ids seen, with the message they named and when they are forgotten. */
  readonly dedup: Map<string, { messageId: string; expiresAt: number }>;
  /** The live counters (a new object after `reset()`). */
  readonly stats: Mutable<EmulatorStats>;
  /** Adds a message and schedules its first attempt. */
  enqueue(init: NewEntry): Entry;
  /** Marks a message cancelled; an attempt in flight is not aborted. */
  cancel(entry: Entry): void;
  /** Resolves once no attempt is in flight and none is due on the emulator clock. */
  idle(): Promise<void>;
  /** Makes every waiting message due now, then waits for `idle()`. */
  flush(): Promise<void>;
  /** Forgets all messages, the dead-letter queue, deduplication ids and counters. */
  reset(): void;
  /** Stops the timer and aborts attempts in flight; resolves once they settled. */
  close(): Promise<void>;
}

/**
 * Creates the emulator's message store and delivery loop. Attempts run as soon as a message is
 * due on `now()`; a timer wakes the loop for the next due message.
 *
 * @example
 * ```ts
 * const store = createStore({ signingKey: "sig_a", now: Date.now, backoff: () => 1000 });
 * store.enqueue({
 *   url: "http://127.0.0.1:3000/task", method: "POST", headers: {}, bodyBytes: new Uint8Array(),
 *   maxRetries: 3, notBefore: Date.now(), isCallback: false,
 * });
 * await store.idle();
 * ```
 */
export function createStore(config: StoreConfig): Store {
  const { now, backoff, signingKey: currentSigningKey } = config;
  const entries = new Map<string, Entry>();
  const deadLetters = new Map<string, Entry>();
  const dedup = new Map<string, { messageId: string; expiresAt: number }>();
  const inflight = new Set<Promise<void>>();
  const controllers = new Set<AbortController>();
  const flows = new FlowGate();
  const zero: Mutable<EmulatorStats> = {
    published: 0,
    deduplicated: 0,
    deliveries: 0,
    delivered: 0,
    deadLettered: 0,
    cancelled: 0,
  };
  let stats = { ...zero };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  function pump(): void {
    if (closed) return;
    const t = now();
    // In publish order, so a flow-control key's waitlist is first come, first called.
    let next = Number.POSITIVE_INFINITY;
    for (const entry of entries.values()) {
      if (!WAITING.has(entry.state)) continue;
      let due = entry.nextAttemptAt ?? 0;
      if (due <= t && entry.flowControl !== undefined)
        due = Math.max(due, flows.waitUntil(entry.flowControl, t));
      if (due > t) {
        next = Math.min(next, due);
        continue;
      }
      start(entry);
    }
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (next !== Number.POSITIVE_INFINITY) {
      timer = setTimeout(pump, Math.min(Math.max(next - now(), 0), MAX_TIMER_MS));
    }
  }

  function start(entry: Entry): void {
    entry.state = "ACTIVE";
    entry.nextAttemptAt = undefined;
    const flow = entry.flowControl;
    if (flow !== undefined) flows.started(flow, now());
    const run: Promise<void> = attempt(entry)
      .catch((error: unknown) => console.error("qstash emulator: delivery crashed", error))
      .finally(() => {
        if (flow !== undefined) flows.ended(flow);
        inflight.delete(run);
        pump();
      });
    inflight.add(run);
  }

  async function attempt(entry: Entry): Promise<void> {
    const retried = entry.attempts.length;
    const startedAt = now();
    const controller = new AbortController();
    controllers.add(controller);
    const limit =
      entry.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => controller.abort(new Error(`timed out after ${entry.timeoutMs}ms`)),
            entry.timeoutMs,
          );
    const hasBody = entry.method !== "GET";
    const headers = new Headers(entry.headers);
    headers.set("Upstash-Message-Id", entry.messageId);
    headers.set("Upstash-Retried", String(retried));
    headers.set("User-Agent", "Upstash-QStash");
    headers.set(
      "Upstash-Signature",
      await signQStashDelivery({
        signingKey: currentSigningKey,
        url: entry.url,
        body: hasBody ? entry.bodyBytes : new Uint8Array(0),
      }),
    );
    stats.deliveries += 1;
    let result: Mutable<EmulatorAttempt> = {
      retried,
      startedAt,
      finishedAt: startedAt,
      responseBody: "",
      responseHeaders: {},
    };
    try {
      const response = await fetch(entry.url, {
        method: entry.method,
        headers,
        body: hasBody ? entry.bodyBytes : null,
        signal: controller.signal,
        redirect: "manual",
      });
      result = {
        ...result,
        status: response.status,
        responseBody: await response.text(),
        responseHeaders: Object.fromEntries(response.headers),
      };
    } catch (error) {
      const reason = controller.signal.aborted ? controller.signal.reason : error;
      result.error = reason instanceof Error ? reason.message : String(reason);
    } finally {
      if (limit !== undefined) clearTimeout(limit);
      controllers.delete(controller);
    }
    result.finishedAt = now();
    entry.attempts.push(result);
    if (closed || entry.state !== "ACTIVE") return;
    const status = result.status ?? 0;
    if (status >= 200 && status < 300) {
      entry.state = "DELIVERED";
      stats.delivered += 1;
      if (entry.callback !== undefined) sendCallback(entry, entry.callback, result);
      return;
    }
    const nonRetryable =
      status === 489 && result.responseHeaders["upstash-nonretryable-error"]?.toLowerCase() === "true";
    if (nonRetryable || retried >= entry.maxRetries) {
      entry.state = "FAILED";
      entry.dlqId = `${Date.now()}-${randomId(16)}`;
      deadLetters.set(entry.dlqId, entry);
      stats.deadLettered += 1;
      if (entry.failureCallback !== undefined) sendCallback(entry, entry.failureCallback, result);
      return;
    }
    const delay = retryAfterMs(result.responseHeaders, now()) ?? (entry.delayFn ?? backoff)(retried);
    entry.state = "RETRY";
    entry.nextAttemptAt = now() + Math.max(0, delay);
  }

  function sendCallback(entry: Entry, url: string, last: EmulatorAttempt): void {
    if (entry.isCallback) return;
    const payload = {
      status: last.status ?? 0,
      header: multi(last.responseHeaders),
      body: base64(encoder.encode(last.responseBody)),
      retried: last.retried,
      maxRetries: entry.maxRetries,
      sourceMessageId: entry.messageId,
      url: entry.url,
      method: entry.method,
      sourceHeader: multi(entry.headers),
      sourceBody: base64(entry.bodyBytes),
      notBefore: entry.notBefore,
      createdAt: entry.createdAt,
      callerIP: "127.0.0.1",
      ...(entry.dlqId === undefined ? {} : { dlqId: entry.dlqId }),
    };
    enqueue({
      url,
      method: "POST",
      headers: { "content-type": "application/json" },
      bodyBytes: encoder.encode(JSON.stringify(payload)),
      maxRetries: entry.maxRetries,
      notBefore: now(),
      isCallback: true,
    });
  }

  function enqueue(init: NewEntry): Entry {
    const entry: Entry = {
      ...init,
      messageId: `msg_${randomId(26)}`,
      body: new TextDecoder().decode(init.bodyBytes),
      createdAt: now(),
      state: "CREATED",
      nextAttemptAt: init.notBefore,
      attempts: [],
      dlqId: undefined,
    };
    entries.set(entry.messageId, entry);
    stats.published += 1;
    pump();
    return entry;
  }

  function cancel(entry: Entry): void {
    entry.state = "CANCELLED";
    entry.nextAttemptAt = undefined;
    stats.cancelled += 1;
  }

  async function idle(): Promise<void> {
    for (;;) {
      pump();
      if (inflight.size === 0) return;
      await Promise.allSettled([...inflight]);
    }
  }

  return {
    now,
    entries,
    deadLetters,
    dedup,
    get stats() {
      return stats;
    },
    enqueue,
    cancel,
    idle,
    async flush() {
      const t = now();
      for (const entry of entries.values()) if (WAITING.has(entry.state)) entry.nextAttemptAt = t;
      await idle();
    },
    reset() {
      for (const entry of entries.values()) if (PENDING.has(entry.state)) entry.state = "CANCELLED";
      for (const controller of controllers) controller.abort(new Error("emulator reset"));
      entries.clear();
      deadLetters.clear();
      dedup.clear();
      flows.clear();
      stats = { ...zero };
      pump();
    },
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      for (const controller of controllers) controller.abort(new Error("emulator closed"));
      await Promise.allSettled([...inflight]);
    },
  };
}
