/**
 * Circuit breakers (a task's `breaker` option): after `failureThreshold` failed attempts within
 * `windowMs`, the breaker opens and runs of its tasks are not started — each delivery goes back to
 * its queue until the cooldown ends, with no attempt used — instead of burning their retries
 * against a service that is down. After `cooldownMs` it is half-open: up to `halfOpenProbes` runs
 * start as probes; the first probe to succeed closes it, a probe that fails opens it again for
 * another cooldown.
 *
 * One breaker per task, or one per `name` shared by every task that gives it (tasks that call the
 * same downstream). Its state is one key of the app's store, so every worker, push handler and
 * replica on that store sees the same breaker:
 *
 * - **Closed**: the check before a run is one read (`store.get`); a success writes nothing. A
 *   failure is a read and a compare-and-set of the failure times in the window.
 * - **Open**: the check is that same read; the delivery is sent back for the rest of the cooldown.
 * - **Half-open**: a read and an `incr` of the round's probe slots (a key per opening, so rounds
 *   never share slots); runs past the slots wait `min(cooldownMs, probe slot life)` and look again.
 *
 * What counts as a failure: an attempt whose code threw (any error: retryable or not, including
 * `NonRetryableError` and `ctx.retry()`) or ran past `timeoutMs`. Not counted: input that fails
 * its schema and a result that is not JSON (the downstream was not at fault), and attempts
 * abandoned by a stopping worker or cancelled.
 *
 * Races, bounded and documented: runs that passed the check just before the breaker opened still
 * run (at most one per worker slot; their failures are not counted again while it is open). A
 * probe's slot lives `timeoutMs` + 5 s, so a probe whose worker died frees it then. Every write
 * is a compare-and-set on the one key (`Store.compareAndSet`); a store without it gets a
 * compare-and-delete followed by a set-if-absent, between which a reader sees the breaker closed
 * and a concurrent failure can overwrite the count (it opens late, never early). Times are the
 * writing process's clock.
 *
 * @example
 * ```ts
 * const charge = app.task({
 *   name: "payments.charge",
 *   breaker: { name: "stripe", failureThreshold: 5, windowMs: 60_000, cooldownMs: 30_000, halfOpenProbes: 1 },
 *   run: (input: { amount: number }) => stripe.charge(input.amount),
 * });
 * app.on("breakerOpened", (e) => console.warn(`${e.name} open until ${new Date(e.until!)}`));
 * ```
 *
 * @module
 */
import type { Clock, Store } from "../contracts.ts";
import type { Emitter } from "../events.ts";
import { breakerKey, breakerProbeKey } from "../keys.ts";
import { type Cas, casOf } from "./_cas.ts";
import type { BreakerTask, ResolvedBreaker } from "./breaker-options.ts";

/** A breaker's state: closed (runs start), open (they wait), half-open (probes start). */
export type BreakerState = "closed" | "open" | "half-open";

/** A breaker as `app.inspect().breakers()` reports it. */
export interface BreakerInfo {
  name: string;
  /** The app's tasks that use it. */
  tasks: string[];
  state: BreakerState;
  /** Closed: failed attempts within the window now. Open and half-open: those that opened it. */
  failures: number;
  /** When the cooldown ends (open) or ended (half-open), epoch ms; null when closed. */
  until: number | null;
  /** Half-open: probe runs started in this round. */
  probes: number;
}

/**
 * The state kept under the breaker's key (JSON). Closed: `f`, the failure times in the window.
 * Open (and half-open once `until` has passed): `e`, an id of this opening (its probe slots' key),
 * `until`, the cooldown's end, and `n`, the failures that opened it.
 */
interface Stored {
  f?: number[];
  e?: string;
  until?: number;
  n?: number;
}

function parse(raw: string | null): Stored {
  if (raw === null) return {};
  try {
    const value = JSON.parse(raw) as unknown;
    return typeof value === "object" && value !== null ? (value as Stored) : {};
  } catch {
    return {};
  }
}

/** How long a probe's slot holds: the longest its attempt can take, and a margin. */
function probeTtlMs(task: BreakerTask): number {
  return task.timeoutMs + 5_000;
}

/**
 * How long an open breaker's state is kept: its cooldown, then a half-open time long enough for a
 * probe to report. A breaker whose probes never report (no traffic) is forgotten — closed — after.
 */
function openTtlMs(b: ResolvedBreaker, task: BreakerTask): number {
  return b.cooldownMs + Math.max(b.cooldownMs, b.windowMs, probeTtlMs(task));
}

/** Compare-and-set tries before a failure is left uncounted (contention on one breaker). */
const CAS_TRIES = 16;

function newEpoch(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}

/** The answer of {@link Breakers.admit}: start the run now, or send it back until `until`. */
export type BreakerPass = { readonly run: true } | { readonly run: false; readonly until: number };

const RUN: BreakerPass = Object.freeze({ run: true });

/** A probe slot a delivery holds. */
interface Probe {
  readonly epoch: string;
}

/** What an attempt tells its breaker: it succeeded, it failed, or nothing (it did not count). */
export type BreakerOutcome = "succeeded" | "failed" | undefined;

/** What the breakers need of their app. */
export interface BreakerDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly events: Emitter;
  /** Delays are collapsed to 0 (eager mode): a cooldown has always passed. */
  readonly collapse?: boolean;
}

/**
 * The app's circuit breakers at run time: the check before a run, and the outcome after it (the
 * executor holds one; nothing else starts runs).
 *
 * @example
 * ```ts
 * const breakers = new Breakers({ store, clock, events });
 * const pass = await breakers.admit(task, delivery);
 * if (pass.run) await breakers.settle(task, delivery, "succeeded");
 * ```
 */
export class Breakers {
  readonly #deps: BreakerDeps;
  readonly #cas: Cas;
  /** Probe slots held, by the delivery that holds them. */
  readonly #probes = new WeakMap<object, Probe>();

  constructor(deps: BreakerDeps) {
    this.#deps = deps;
    this.#cas = casOf(deps.store);
  }

  /**
   * Whether a run of `task` may start now; `holder` (the delivery) holds the probe slot it may
   * take, until {@link settle}. One store read when the breaker is closed or open.
   */
  async admit(task: BreakerTask, holder: object): Promise<BreakerPass> {
    const b = task.breaker!;
    const { store, clock, events } = this.#deps;
    const s = parse(await store.get(breakerKey(b.name)));
    if (s.until === undefined || s.e === undefined) return RUN;
    const now = clock.now();
    if (now < s.until && this.#deps.collapse !== true) return { run: false, until: s.until };
    const ttl = probeTtlMs(task);
    const taken = await store.incr(breakerProbeKey(b.name, s.e), 1, ttl);
    if (taken > b.halfOpenProbes) return { run: false, until: now + Math.min(b.cooldownMs, ttl) };
    if (taken === 1) events.emit("breakerHalfOpen", { name: b.name, task: task.name, until: s.until });
    this.#probes.set(holder, { epoch: s.e });
    return RUN;
  }

  /**
   * Feeds an attempt's outcome back to its breaker, and frees the probe slot `holder` took (an
   * outcome of undefined: the attempt did not run, or does not count). Undefined when there is
   * nothing to write: a success while closed costs nothing.
   */
  settle(task: BreakerTask, holder: object, outcome: BreakerOutcome): Promise<void> | undefined {
    const probe = this.#probes.get(holder);
    if (probe !== undefined) this.#probes.delete(holder);
    if (outcome === "failed") return this.#failed(task, probe);
    if (probe === undefined) return undefined;
    if (outcome === "succeeded") return this.#close(task, probe);
    // A slot whose run never ran is given back at once.
    return this.#deps.store
      .incr(breakerProbeKey(task.breaker!.name, probe.epoch), -1, probeTtlMs(task))
      .then(() => {});
  }

  async #failed(task: BreakerTask, probe: Probe | undefined): Promise<void> {
    const b = task.breaker!;
    const { store, clock, events } = this.#deps;
    const key = breakerKey(b.name);
    for (let i = 0; i < CAS_TRIES; i++) {
      const raw = await store.get(key);
      const s = parse(raw);
      const now = clock.now();
      let next: Stored;
      let ttl: number;
      if (s.until !== undefined && s.e !== undefined) {
        // Open already: only a probe of this opening opens it again; other failures are of runs
        // that started before it opened.
        if (probe === undefined || probe.epoch !== s.e) return;
        next = { e: newEpoch(), until: now + b.cooldownMs, n: 1 };
        ttl = openTtlMs(b, task);
      } else {
        const since = now - b.windowMs;
        const f = (Array.isArray(s.f) ? s.f : []).filter((t) => t > since);
        f.push(now);
        if (f.length >= b.failureThreshold) {
          next = { e: newEpoch(), until: now + b.cooldownMs, n: f.length };
          ttl = openTtlMs(b, task);
        } else {
          next = { f: f.slice(-b.failureThreshold) };
          ttl = b.windowMs;
        }
      }
      if (await this.#cas(key, raw, JSON.stringify(next), ttl)) {
        if (next.until !== undefined) {
          events.emit("breakerOpened", {
            name: b.name,
            task: task.name,
            failures: next.n!,
            until: next.until,
          });
        }
        return;
      }
    }
    events.emit("error", {
      error: new Error(`a failure of task "${task.name}" was not counted: breaker "${b.name}" kept changing`),
      where: `breaker "${b.name}"`,
    });
  }

  async #close(task: BreakerTask, probe: Probe): Promise<void> {
    const b = task.breaker!;
    const { store, events } = this.#deps;
    const key = breakerKey(b.name);
    for (let i = 0; i < CAS_TRIES; i++) {
      const raw = await store.get(key);
      // Closed by another probe already, or opened again by one that failed: nothing to do.
      if (raw === null || parse(raw).e !== probe.epoch) return;
      if (await store.compareAndDelete(key, raw)) {
        events.emit("breakerClosed", { name: b.name, task: task.name });
        return;
      }
    }
  }
}

/** Reads one breaker for `app.inspect().breakers()`. */
export async function breakerInfo(
  store: Store,
  now: number,
  breaker: ResolvedBreaker,
  tasks: string[],
): Promise<BreakerInfo> {
  const s = parse(await store.get(breakerKey(breaker.name)));
  const info: BreakerInfo = {
    name: breaker.name,
    tasks,
    state: "closed",
    failures: 0,
    until: null,
    probes: 0,
  };
  if (s.until === undefined || s.e === undefined) {
    const since = now - breaker.windowMs;
    info.failures = (Array.isArray(s.f) ? s.f : []).filter((t) => t > since).length;
    return info;
  }
  info.failures = s.n ?? 0;
  info.until = s.until;
  if (now < s.until) {
    info.state = "open";
    return info;
  }
  info.state = "half-open";
  const taken = Number(await store.get(breakerProbeKey(breaker.name, s.e)));
  info.probes = Number.isFinite(taken) ? Math.max(0, Math.min(taken, breaker.halfOpenProbes)) : 0;
  return info;
}
