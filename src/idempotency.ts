/**
 * Idempotency at run time, in one place. A run with an idempotency key passes a gate before it
 * starts:
 *
 * 1. **Owner**: the key maps to the run whose effect happened (set at enqueue, and again when a
 *    run of the key succeeds). When that is another run and it succeeded, this delivery is a
 *    duplicate: it is recorded as succeeded with the owner's result, and nothing runs.
 * 2. **Claim**: one running holder of the key at a time. A delivery that finds the claim held by
 *    another holder is deferred (sent again later) instead of running beside it.
 * 3. **Release**: the claim is freed when the attempt has ended.
 *
 * Keys are scoped per task and queue (see `keys.ts`); the ledger maps them to its storage.
 *
 * @module
 */
import type { Clock, Delivery, Outcome, Store } from "./contracts.ts";
import { type Envelope, toMessage } from "./envelope.ts";
import type { Ledger } from "./execute/ledger.ts";
import { claimKey, idempotencyKey, type QueueKey } from "./keys.ts";
import { duplicatePatch, type RunFields, START_GUARD } from "./run-state.ts";

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

/** How long a claim holds without a release: the attempt's timeout and a margin. */
export function claimTtlMs(timeoutMs: number): number {
  return timeoutMs + 5_000;
}

/** Passes a delivery through the gate. */
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
    holder: `${envelope.id}:${envelope.attempt}:${delivery.receipt}`,
  };
  const holder = await ledger.claim(claim.key, claim.holder, claimTtlMs(run.timeoutMs));
  if (holder !== null && holder !== claim.holder) {
    const delayMs = deferDelayMs(run.timeoutMs);
    // Count deferrals so a re-send of the same attempt is a new send (Message.key) each time.
    const prev = envelope.meta?.deferrals;
    const meta = { ...envelope.meta, deferrals: typeof prev === "number" ? prev + 1 : 1 };
    await ledger.defer(delivery, toMessage({ ...envelope, notBefore: clock.now() + delayMs, meta }));
    return { run: false, outcome: { kind: "deferred", id: envelope.id, delayMs } };
  }
  return { run: true, claim };
}

/** Frees a claim (only when this holder still has it). */
export function release(ledger: Ledger, claim: Claim): Promise<void> {
  return ledger.release(claim.key, claim.holder);
}
