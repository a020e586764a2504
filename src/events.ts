/**
 * Lifecycle events, like Celery's signals: `app.on("succeeded", listener)`. Listeners run
 * synchronously in the order added; one that throws is reported and never breaks a run.
 *
 * @module
 */
import type { DeadLetter, ErrorInfo } from "./contracts.ts";

/** The payload of each event type. */
export interface EventMap {
  /** A run was accepted by the broker. */
  enqueued: { id: string; task: string; queue: string; notBefore?: number };
  /** An attempt started. */
  active: { id: string; task: string; attempt: number };
  /** A task reported progress. */
  progress: { id: string; task: string; attempt: number; progress: unknown };
  /** A run finished well. */
  succeeded: { id: string; task: string; attempt: number; result: unknown; durationMs: number };
  /** An attempt failed and another is scheduled. */
  retrying: { id: string; task: string; attempt: number; error: ErrorInfo; delayMs: number };
  /** A run failed for good (it is also dead-lettered). */
  failed: { id: string; task: string; attempt: number; error: ErrorInfo };
  /**
   * A run's expiry passed before an attempt started: it was not run and ended `expired` (it is
   * dead-lettered too only when its task says `deadLetterExpired`).
   */
  expired: { id: string; task: string; attempt: number; expiresAt: number };
  /** A run was cancelled before it ran. */
  cancelled: { id: string; task: string };
  /** A delivery went to the dead-letter list. */
  deadLettered: DeadLetter;
  /**
   * A circuit breaker opened (`failures` failed attempts within its window, or a probe failed):
   * runs of its tasks wait until `until`. Emitted by the process whose failure opened it.
   */
  breakerOpened: BreakerEvent;
  /** A breaker's cooldown ended and its first probe run starts (emitted by that run's process). */
  breakerHalfOpen: BreakerEvent;
  /** A probe run succeeded and closed the breaker (emitted by that run's process). */
  breakerClosed: BreakerEvent;
  /** Something went wrong outside any task: a backend error in a worker, a throwing listener. */
  error: { error: unknown; where: string };
}

/** The payload of the circuit breaker events: the breaker, the task whose run moved it. */
export interface BreakerEvent {
  name: string;
  task?: string;
  /** `breakerOpened`: the failed attempts that opened it. */
  failures?: number;
  /** `breakerOpened`: when its cooldown ends; `breakerHalfOpen`: when it ended (epoch ms). */
  until?: number;
}

/** An event name. */
export type EventType = keyof EventMap;

/** A listener for one event type; an async one's rejection is reported like a throw. */
export type Listener<T extends EventType> = (event: EventMap[T]) => unknown;

/** A tiny typed emitter; `emit` costs nothing when nobody listens. */
export class Emitter {
  #listeners = new Map<EventType, Set<Listener<EventType>>>();

  /** Adds a listener; returns a function that removes it. */
  on<T extends EventType>(type: T, listener: Listener<T>): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener as Listener<EventType>);
    return () => {
      set.delete(listener as Listener<EventType>);
    };
  }

  /** True when at least one listener waits for `type`. */
  has(type: EventType): boolean {
    const set = this.#listeners.get(type);
    return set !== undefined && set.size > 0;
  }

  /** Calls every listener of `type`; a listener that throws is reported as an `error` event. */
  emit<T extends EventType>(type: T, event: EventMap[T]): void {
    const set = this.#listeners.get(type);
    if (set === undefined || set.size === 0) return;
    for (const listener of set) {
      try {
        const returned: unknown = listener(event);
        // An async listener's rejection is reported like a throw, never left unhandled.
        if (isThenable(returned)) returned.then(undefined, (error: unknown) => this.#failed(type, error));
      } catch (error) {
        this.#failed(type, error);
      }
    }
  }

  #failed(type: EventType, error: unknown): void {
    if (type === "error") {
      console.error("celeriac: an error listener threw", error);
    } else if (this.has("error")) {
      this.emit("error", { error, where: `listener for "${type}"` });
    } else {
      console.error(`celeriac: a listener for "${type}" threw`, error);
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}
