/**
 * Internal: the locks tasks take with `ctx.lock()`. In an attempt with a lease, a lock lives as
 * long as the lease and is renewed whenever the lease is (the executor's `renew`), so the lock of
 * a worker that died lapses with its lease; without one (a push delivery, or a store that cannot
 * renew), it lives for its `ttlMs` (default: the task's timeout). Every lock an attempt took is
 * released when the attempt ends, whatever the end.
 *
 * @module
 */
import type { Delivery, LeaseState } from "../contracts.ts";
import { CeleriacError } from "../errors.ts";
import type { Emitter } from "../events.ts";
import {
  type Lock,
  type LockHandle,
  type LockHost,
  resolveTaskLockOptions,
  takeLock,
  type TaskLockOptions,
} from "./lock.ts";

/** What the locks of attempts need: a lock host, and where to report a failed renewal or release. */
export interface AttemptLocksHost extends LockHost {
  readonly events: Emitter;
}

/** The locks of one executor's attempts; those under a lease by delivery, for renewal. */
export class LeasedLocks {
  readonly #host: AttemptLocksHost;
  readonly #leased = new Map<Delivery, AttemptLocks>();

  constructor(host: AttemptLocksHost) {
    this.#host = host;
  }

  /** Attempts under a lease holding (or taking) locks now. */
  get size(): number {
    return this.#leased.size;
  }

  /** The locks of one attempt, made on its first `ctx.lock()`. */
  open(delivery: Delivery, run: string, timeoutMs: number): AttemptLocks {
    const leaseMs = this.#host.store.compareAndSet === undefined ? undefined : delivery.leaseMs;
    const locks = new AttemptLocks(this.#host, run, leaseMs, timeoutMs, () => this.#leased.delete(delivery));
    if (leaseMs !== undefined) this.#leased.set(delivery, locks);
    return locks;
  }

  /** After a lease renewal: renews the locks of the attempts whose lease is still held. */
  renew(deliveries: readonly Delivery[], states: readonly LeaseState[] | undefined, leaseMs: number): void {
    deliveries.forEach((delivery, i) => {
      if ((states?.[i] ?? "held") === "held") this.#leased.get(delivery)?.renew(leaseMs);
    });
  }
}

/** The locks one attempt took. */
export class AttemptLocks {
  readonly #host: AttemptLocksHost;
  readonly #run: string;
  /** The lease's duration, when the locks follow a lease. */
  readonly #leaseMs: number | undefined;
  readonly #timeoutMs: number;
  readonly #forget: () => void;
  readonly #locks: Lock[] = [];
  /** Aborted when the attempt ends: a wait still under way stops. */
  readonly #ended = new AbortController();

  constructor(
    host: AttemptLocksHost,
    run: string,
    leaseMs: number | undefined,
    timeoutMs: number,
    forget: () => void,
  ) {
    this.#host = host;
    this.#run = run;
    this.#leaseMs = leaseMs;
    this.#timeoutMs = timeoutMs;
    this.#forget = forget;
  }

  /** `ctx.lock()`: `attempt` aborts when the attempt ends (its `ctx.signal`). */
  async take(key: string, options: TaskLockOptions, attempt: AbortSignal): Promise<LockHandle> {
    const resolved = resolveTaskLockOptions(key, options, this.#timeoutMs);
    if (this.#leaseMs !== undefined) resolved.ttlMs = this.#leaseMs;
    if (this.#ended.signal.aborted) throw this.#late(key);
    const signals = [attempt, this.#ended.signal];
    if (resolved.signal !== undefined) signals.push(resolved.signal);
    resolved.signal = anySignal(signals);
    const lock = await takeLock(this.#host, key, resolved);
    if (this.#ended.signal.aborted) {
      await lock.release().catch(() => {});
      throw this.#late(key);
    }
    this.#locks.push(lock);
    return lock as unknown as LockHandle;
  }

  #late(key: string): CeleriacError {
    return new CeleriacError(`ctx.lock("${key}"): the attempt of run ${this.#run} has ended`);
  }

  /** Renews every lock not released yet to `leaseMs` from now; a lost one is reported. */
  renew(leaseMs: number): void {
    for (const lock of this.#locks) {
      if (lock.released) continue;
      lock.renew(leaseMs).then(
        (held) => {
          if (!held && !lock.released) {
            const error = new CeleriacError(
              `lock "${lock.key}" of run ${this.#run} was lost: it expired before it was renewed`,
            );
            this.#host.events.emit("error", { error, where: `lock renewal of run ${this.#run}` });
          }
        },
        (error: unknown) =>
          this.#host.events.emit("error", { error, where: `lock renewal of run ${this.#run}` }),
      );
    }
  }

  /** The attempt ended: releases its locks. Never rejects (a failed release is reported). */
  end(): Promise<void> {
    this.#ended.abort(new CeleriacError(`ctx.lock: the attempt of run ${this.#run} has ended`));
    this.#forget();
    const releases = this.#locks.map((lock) =>
      lock.release().then(
        () => {},
        (error: unknown) =>
          this.#host.events.emit("error", { error, where: `lock release of run ${this.#run}` }),
      ),
    );
    return Promise.all(releases).then(() => {});
  }
}

/** A signal that aborts when any of them does. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as { any?: (signals: AbortSignal[]) => AbortSignal }).any;
  if (any !== undefined) return any(signals);
  const controller = new AbortController();
  const abort = (signal: AbortSignal) => () => controller.abort(signal.reason);
  for (const signal of signals) {
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener("abort", abort(signal), { once: true });
  }
  return controller.signal;
}
