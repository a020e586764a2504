/**
 * Running one delivery through an app's executor, for brokers that deliver by themselves (a
 * queue's consumer callback, a push receiver served outside `createHandler`).
 *
 * @module
 */
import { type App, internals } from "./app.ts";
import type { Delivery, Outcome } from "./contracts.ts";
import type { ProcessOptions } from "./execute/executor.ts";

/**
 * Runs one delivery through the app's executor (decode, idempotency, start, run, record, retry or
 * dead-letter) and resolves to its outcome. Never rejects for anything a task or payload does; a
 * backend failure before the outcome was recorded rejects, so the caller can redeliver.
 *
 * @example
 * ```ts
 * import { processDelivery } from "celeriac/backend";
 * const outcome = await processDelivery(app, { id, queue: "default", body, receipt: id, deliveries: 1 });
 * if (outcome.kind === "failed") console.error(outcome.error);
 * ```
 */
export function processDelivery(app: App, delivery: Delivery, options?: ProcessOptions): Promise<Outcome> {
  return internals(app).executor.process(delivery, options);
}
