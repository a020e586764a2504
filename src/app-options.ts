/**
 * Options of `createApp`, and how an app finds its backends when some are left out.
 *
 * @module
 */
import type { Broker, Clock, Store } from "./contracts.ts";
import { MemoryBackend } from "./memory/backend.ts";
import { checkKeys, keysOf } from "./_options.ts";
import type { Routes } from "./routes.ts";
import type { Telemetry } from "./telemetry.ts";

/**
 * Options of `createApp`.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { memory } from "celeriac/adapters/memory";
 * const app = createApp({ broker: memory(), store: memory() });
 * ```
 */
export interface AppOptions {
  /** Moves tasks. @default memory() */
  broker?: Broker;
  /** Keeps state, results and dead letters. @default the broker when it is also a store, else memory() */
  store?: Store;
  /** Time source (tests inject a manual clock). @default the system clock */
  clock?: Clock;
  /** Random source in [0, 1) for jitter (tests inject a fixed one). @default Math.random */
  random?: () => number;
  /**
   * A tracer for enqueues and attempts (`otel()` from `celeriac/otel` for OpenTelemetry).
   * @default none: nothing is traced
   */
  telemetry?: Telemetry | undefined;
  /**
   * The routing table (Celery's `task_routes`): the queue and priority of tasks whose definitions
   * leave them out, by exact name or glob (`"email.*"`: `*` is any run of characters, dots
   * included; an exact name wins, then the first glob that matches), by a function of the task
   * name, or a list of those tried in order. Applied when a task is registered.
   * @default none: such tasks go to "default" with priority 0
   */
  routes?: Routes | undefined;
}

/** Options of `app.drain()`. */
export interface DrainOptions {
  /** Queues to drain. @default every queue the app uses */
  queues?: readonly string[];
  /** Deliveries processed at once. @default 1 (deterministic order) */
  concurrency?: number;
}

function isStore(value: unknown): value is Store {
  return (
    typeof (value as Store | undefined)?.updateRun === "function" &&
    typeof (value as Store).getRun === "function"
  );
}

/**
 * The broker and store of an app: as given; a store that is also a broker serves as both; a
 * broker that carries a store (QStash) lends it; the in-memory backend fills what is left.
 */
const APP_KEYS = keysOf<AppOptions>({
  broker: true,
  store: true,
  clock: true,
  random: true,
  telemetry: true,
  routes: true,
});

export function resolveBackends(options: AppOptions): { broker: Broker; store: Store } {
  if (typeof options !== "object" || options === null)
    throw new TypeError("createApp options must be an object");
  checkKeys(options, APP_KEYS, "createApp");
  const broker: Broker =
    options.broker ??
    (isStore(options.store) && typeof (options.store as unknown as Broker).send === "function"
      ? (options.store as unknown as Broker)
      : new MemoryBackend());
  const store =
    options.store ?? (isStore(broker) ? broker : isStore(broker.store) ? broker.store : new MemoryBackend());
  return { broker, store };
}
