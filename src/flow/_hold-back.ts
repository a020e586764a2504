/**
 * Internal: what the executor does with a delivery held back before it starts — by an open
 * circuit breaker, or by a rate limit enforced as deliveries arrive (`_rate-turn.ts`): the run
 * goes back to its queue until its time, its attempt unused and its record waiting (scheduled, or
 * retrying after a failed attempt), as it would be had it not been delivered yet.
 *
 * @module
 */
import type { Delivery, Outcome, RunGuard } from "../contracts.ts";
import type { Envelope } from "../envelope.ts";
import { defer, type GateDeps } from "../idempotency.ts";
import { ACTIVE_GUARD, deferPatch, isFinal, runFields, WAITING_GUARD } from "../run-state.ts";

/** Not started yet (a push delivery, a drain): a missing record is made, waiting. */
const WAITING_OR_MISSING: RunGuard = [...WAITING_GUARD, "missing"];

/**
 * Sends the delivery's run back to wait until `until` (the same attempt, a new send) and acks
 * this delivery; a run that has ended meanwhile (cancelled) is acked as a duplicate instead.
 */
export async function holdBack(
  deps: GateDeps,
  delivery: Delivery,
  envelope: Envelope,
  task: { readonly retry: { readonly maxAttempts: number }; readonly resultTtlMs: number },
  until: number,
): Promise<Outcome> {
  const { clock, store, ledger } = deps;
  const now = clock.now();
  const delayMs = Math.max(0, until - now);
  // The record first: the message is leased to this delivery, so nobody starts the run between.
  const patch = {
    ...runFields(envelope, task.retry.maxAttempts, true),
    ...deferPatch(now, now + delayMs, envelope.attempt),
  };
  const waiting = await store.updateRun(envelope.id, patch, {
    ttlMs: task.resultTtlMs + delayMs,
    queue: delivery.queue,
    // A pull worker's broker started the run as it leased it; otherwise it has not started.
    onlyIf: delivery.started?.applied === true ? ACTIVE_GUARD : WAITING_OR_MISSING,
  });
  if (!waiting.applied && waiting.record !== null && isFinal(waiting.record.state)) {
    await ledger.skip(delivery);
    return { kind: "duplicate", id: envelope.id, state: waiting.record.state };
  }
  return await defer(deps, delivery, envelope, delayMs);
}
