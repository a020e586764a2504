/**
 * Internal: what the core's other parts (the HTTP handler, `processDelivery`) reach of an app
 * that applications do not: its executor, ledger and emitter.
 *
 * @module
 */
import type { Emitter } from "./events.ts";
import type { Executor } from "./execute/executor.ts";
import type { Ledger } from "./execute/ledger.ts";
import type { StatsCollector } from "./ops/stats.ts";

/** An app's internals. */
export interface AppInternals {
  /** The one executor every mode uses. */
  readonly executor: Executor;
  /** Compound broker+store steps (fused into single round trips by backends that can). */
  readonly ledger: Ledger;
  /** Lifecycle events (applications use `app.on`). */
  readonly events: Emitter;
  /** Task statistics not reported yet (undefined when the store keeps none). */
  readonly stats?: StatsCollector | undefined;
}

const internalsOf = new WeakMap<object, AppInternals>();

/** Records an app's internals (its constructor does). */
export function setInternals(app: object, parts: AppInternals): void {
  internalsOf.set(app, parts);
}

/** The internals of an app. */
export function internals(app: object): AppInternals {
  const found = internalsOf.get(app);
  if (found === undefined) throw new TypeError("not a celeriac App (use createApp())");
  return found;
}
