/**
 * Idempotency at run time, in one place. A run with an idempotency key passes a gate before it
 * starts:
 *
 * 1. **Owner**: the key maps to the run whose effect happened (set at enqueue, and again when a
 *    run of the key succeeds). When that is another run and it succeeded, this delivery is a
 *    duplicate: it is recorded as succeeded with the owner's result, and nothing runs.
 * 2. **Claim**: one running holder of the key at a time. A delivery that finds the claim held by
 *    another holder is deferred (sent again later) instead of running beside it. The claim
 *    follows the delivery's lease: it lasts `leaseMs`, is renewed with the lease, and so lapses
 *    with it when its worker dies; a redelivery of the same run takes over a claim left by its
 *    earlier (lost) delivery instead of waiting for it.
 * 3. **Release**: the claim is freed when the attempt has ended.
 *
 * A push delivery (no lease) of a run without a key needs no claim: its run's own record is one.
 * It starts only a run that is not active (see {@link pushStart}); a copy arriving while the run
 * is active is deferred, and one arriving after the run's timeout (its process died) starts it.
 *
 * Keys are scoped per task and queue (see `keys.ts`); the ledger maps them to its storage.
 *
 * @module
 */
import type { Clock, Delivery, Outcome, RunRecord, Store, UpdateRunResult } from "./contracts.ts";
import { type Envelope, toMessage } from "./envelope.ts";
import type { Ledger } from "./execute/ledger.ts";
import { claimKey, idempotencyKey, type QueueKey } from "./keys.ts";
import { ACTIVE_GUARD, duplicatePatch, PUSH_START_GUARD, type RunFields, START_GUARD } from "./run-state.ts";

/** What the gate needs. */
export interface GateDeps {
  readonly ledger: Ledger;
  readonly store: Store;
  readonly clock: Clock;
  /** A run reached a final state in this process. */
  settled(id: string): void;
}

/** A claim the gate took: release it once the attempt ended. */
export interface Claim {
  readonly key: QueueKey;
  readonly holder: string;
}

/** The gate's answer: run (holding `claim` when the run has a key), or an outcome already reached. */
export type Admission = { run: true; claim: Claim | undefined } | { run: false; outcome: Outcome };

const FREE: Admission = Object.freeze({ run: true, claim: undefined });

/** How long a deferred duplicate waits before it is delivered again. */
export function deferDelayMs(timeoutMs: number): number {
  return Math.min(timeoutMs, 5_000);
}

/** The run a delivery carries, as the gate sees it. */
export interface GateRun {
  /** The run's identity fields (to record a duplicate). */
  fields: RunFields;
  resultTtlMs: number;
  timeoutMs: number;
}

/** How long a push delivery's claim holds without a release: the attempt's timeout and a margin. */
export function claimTtlMs(timeoutMs: number): number {
  return timeoutMs + 5_000;
}

/** True when a delivery must pass the gate: it has an idempotency key. */
export function gated(envelope: Envelope): boolean {
  return envelope.idempotencyKey !== undefined;
}

/** Passes a delivery through the gate (see {@link gated}: others pass without a round trip). */
export async function admit(
  deps: GateDeps,
  delivery: Delivery,
  envelope: Envelope,
  run: GateRun,
): Promise<Admission> {
  const key = envelope.idempotencyKey;
  if (key === undefined) return FREE;
  const { ledger, store, clock } = deps;
  const owner = await ledger.idempotencyOwner(idempotencyKey(envelope.queue, envelope.task, key));
  if (owner !== null && owner !== envelope.id) {
    const done = await store.getRun(owner, envelope.queue);
    if (done?.state === "succeeded") {
      const applied = await ledger.start(
        delivery,
        envelope.id,
        duplicatePatch(run.fields, clock.now(), done.result),
        {
          ttlMs: run.resultTtlMs,
          onlyIf: START_GUARD,
        },
      );
      await ledger.skip(delivery);
      if (applied.applied) deps.settled(envelope.id);
      return { run: false, outcome: { kind: "duplicate", id: envelope.id, state: "succeeded" } };
    }
  }
  const claim: Claim = {
    key: claimKey(envelope.queue, envelope.task, key),
    holder: `${envelope.id}:${delivery.receipt}`,
  };
  // A pull delivery's claim lives as long as its lease and is renewed with it.
  const held = await ledger.claim(claim.key, claim.holder, delivery.leaseMs ?? claimTtlMs(run.timeoutMs));
  if (held !== null) {
    // The same run's earlier delivery holds it: its lease lapsed (this is a redelivery), so its
    // claim lapses too, within a lease — come back then, not after the usual deferral.
    const sameRun = delivery.leaseMs !== undefined && held.holder.startsWith(`${envelope.id}:`);
    const delayMs = sameRun
      ? Math.min(held.remainingMs ?? delivery.leaseMs!, deferDelayMs(run.timeoutMs)) + 1
      : deferDelayMs(run.timeoutMs);
    return { run: false, outcome: await defer(deps, delivery, envelope, delayMs) };
  }
  delivery.claim = claim;
  return { run: true, claim };
}

/**
 * The meta of an envelope sent back by {@link defer}: its deferrals counted, so that a re-send of
 * the same attempt is a new send (`Message.key`) each time.
 */
export function deferredMeta(meta: Envelope["meta"]): Record<string, unknown> {
  const prev = meta?.deferrals;
  return { ...meta, deferrals: typeof prev === "number" ? prev + 1 : 1 };
}

/** Sends the delivery's run again after `delayMs` (another holder runs it now) and acks this one. */
export async function defer(
  deps: GateDeps,
  delivery: Delivery,
  envelope: Envelope,
  delayMs: number,
): Promise<Outcome> {
  const meta = deferredMeta(envelope.meta);
  await deps.ledger.defer(delivery, toMessage({ ...envelope, notBefore: deps.clock.now() + delayMs, meta }));
  return { kind: "deferred", id: envelope.id, delayMs };
}

/**
 * The start of a push delivery (no lease): a run that is active is being run by another copy,
 * unless it has been active for longer than its timeout (that copy's process died). Resolves to
 * the start's answer, or to the deferral of this copy.
 */
export async function pushStart(
  deps: GateDeps,
  delivery: Delivery,
  envelope: Envelope,
  patch: Partial<RunRecord>,
  run: GateRun,
): Promise<UpdateRunResult | Outcome> {
  const { ledger, clock } = deps;
  const start = await ledger.start(delivery, envelope.id, patch, {
    ttlMs: run.resultTtlMs,
    onlyIf: PUSH_START_GUARD,
  });
  if (start.applied || start.record?.state !== "active") return start;
  const since = start.record.startedAt ?? start.record.updatedAt;
  const left = since + claimTtlMs(run.timeoutMs) - clock.now();
  if (left > 0) return await defer(deps, delivery, envelope, Math.min(left, deferDelayMs(run.timeoutMs)) + 1);
  return await ledger.start(delivery, envelope.id, patch, { ttlMs: run.resultTtlMs, onlyIf: ACTIVE_GUARD });
}

/** Frees a claim (only when this holder still has it). */
export function release(ledger: Ledger, claim: Claim): Promise<void> {
  return ledger.release(claim.key, claim.holder);
}
