/**
 * Internal: a rate limit enforced as a push delivery arrives, for a run whose provider did not
 * take it (`Delivery.rateLimit`: QStash keeps one flow-control key per message, and gives it to
 * the run's concurrency limit when the two keys differ). The same cell rate as the brokers that
 * enforce limits as they lease ({@link gcra}); its state, the key's theoretical arrival time, is
 * one key of the app's store written with a compare-and-set, so every handler instance on that
 * store shares it.
 *
 * A delivery over the limit reserves the next free start (the state moves past it) and goes back
 * to its queue until then, with no attempt used, marked as holding that turn: the copy that comes
 * back starts without a second check. Nothing is held while it waits, so nothing needs releasing:
 * a handler that dies after reserving leaves its turn unused (the rate is kept, never exceeded).
 * Sent back again for another reason (an open breaker, a duplicate running), a copy loses its
 * mark and asks for a new turn when it comes back.
 *
 * Bounds: starts are at their turns or later, never earlier. A turn comes back no sooner than the
 * provider delivers: QStash counts delays in whole seconds, and holds a delivery while its
 * concurrency limit is full; turns that come back late can start closer together than the rate's
 * step (their count over time still holds). Times are the handling process's clock.
 *
 * @module
 */
import type { Clock, Delivery, Outcome, Store } from "../contracts.ts";
import { type Envelope, sendKey } from "../envelope.ts";
import { deferredMeta, type GateDeps } from "../idempotency.ts";
import { rateKey } from "../keys.ts";
import { casOf } from "./_cas.ts";
import { holdBack } from "./_hold-back.ts";
import { gcra } from "./limits.ts";

/** The envelope's `meta` field naming the send that holds a reserved turn (its `Message.key`). */
const TURN_META = "rateTurn";

/** Compare-and-set tries before a delivery is sent back without a turn (contention on one key). */
const CAS_TRIES = 16;

type Rate = NonNullable<Delivery["rateLimit"]>;

/** What the rate says of a delivery: start now, or wait until `at` (with a turn reserved or not). */
type Turn = { readonly run: true } | { readonly run: false; readonly at: number; readonly reserved: boolean };

const RUN: Turn = Object.freeze({ run: true });

/**
 * Takes a start under `rate` at the clock's now, or reserves the next free one. Under contention
 * that outlasts the tries, reserves nothing and says to look again after one step.
 */
async function takeTurn(store: Store, clock: Clock, rate: Rate): Promise<Turn> {
  const key = rateKey(rate.key);
  const cas = casOf(store);
  for (let i = 0; i < CAS_TRIES; i++) {
    const raw = await store.get(key);
    const stored = raw === null ? 0 : Number(raw);
    const now = clock.now();
    const step = gcra(Number.isFinite(stored) ? stored : 0, now, rate.limit, rate.periodMs);
    // Past its time the state says nothing (gcra takes now instead): it lives until then, and a
    // period more for a store whose clock runs ahead of this process's.
    const ttlMs = Math.ceil(step.tat - now) + rate.periodMs;
    if (await cas(key, raw, String(step.tat), ttlMs)) {
      return step.ok ? RUN : { run: false, at: step.at, reserved: true };
    }
  }
  return { run: false, at: clock.now() + rate.periodMs / rate.limit, reserved: false };
}

/** True when this copy of the run was sent back holding its turn (it starts without a check). */
function holdsTurn(envelope: Envelope): boolean {
  return envelope.meta?.[TURN_META] === sendKey(envelope);
}

/**
 * Enforces the delivery's `rateLimit`: undefined when the run may start now, or the outcome of
 * sending it back to wait for its turn.
 */
export async function waitForRate(
  deps: GateDeps,
  delivery: Delivery,
  envelope: Envelope,
  task: { readonly retry: { readonly maxAttempts: number }; readonly resultTtlMs: number },
): Promise<Outcome | undefined> {
  const rate = delivery.rateLimit;
  if (rate === undefined || holdsTurn(envelope)) return undefined;
  const turn = await takeTurn(deps.store, deps.clock, rate);
  if (turn.run) return undefined;
  let back = envelope;
  if (turn.reserved) {
    // Marked with the key of the send that goes back (the one holdBack makes: a deferral more).
    const turnKey = sendKey({ ...envelope, meta: deferredMeta(envelope.meta) });
    back = { ...envelope, meta: { ...envelope.meta, [TURN_META]: turnKey } };
  }
  return await holdBack(deps, delivery, back, task, turn.at);
}
