/**
 * Distributed locks (Celery users' `cache.add(key, True, timeout)` pattern, done safely): one
 * holder of a key at a time across every process on the store, with a TTL so a dead holder frees
 * it, and a fencing token that grows with every holder.
 *
 * Taking a lock is three store calls: set-if-absent of a fresh holder id with the TTL; the next
 * fencing token from the key's counter (`Store.incr`); then, in one compare-and-set, the check
 * that the lock is still this holder's and the token written into its value. A holder whose lock
 * expired before its token was drawn fails the check, so the holders' tokens grow in the order
 * they held the lock. Release is a compare-and-delete and renew a compare-and-set of that value,
 * so a holder whose lock expired (and was perhaps taken by another) can neither release nor renew
 * the other's.
 *
 * @module
 */
import type { Clock, Store } from "../contracts.ts";
import { checkKeys, keysOf } from "../_options.ts";
import { LockedError } from "../errors.ts";
import { lockKey, lockTokenKey } from "../keys.ts";

/** Options of `app.lock()`. */
export interface LockOptions {
  /**
   * How long the lock lives unless renewed, in ms: a holder that dies (or forgets to release)
   * frees the key after this long. Required.
   */
  ttlMs: number;
  /**
   * How long to keep trying while another holder has the lock, in ms (the app's clock); when it
   * runs out, `LockedError`. `Infinity` waits until the lock is free or `signal` aborts.
   * @default 0 (fail at once)
   */
  waitMs?: number;
  /**
   * The first pause between tries while waiting, in ms; each pause doubles, up to 1 s (or
   * `retryMs` when larger), with jitter.
   * @default 50
   */
  retryMs?: number;
  /** Aborting stops the wait: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of `ctx.lock()` in a task: the TTL comes from the attempt's lease. */
export interface TaskLockOptions {
  /**
   * Only for an attempt without a lease (a push delivery): how long the lock lives, in ms. An
   * attempt with a lease (a pull worker, `drain()`, eager mode) uses the lease's duration instead,
   * renewed with the lease.
   * @default the task's timeoutMs
   */
  ttlMs?: number;
  /** As for `app.lock()`. @default 0 (fail at once) */
  waitMs?: number;
  /** As for `app.lock()`. @default 50 */
  retryMs?: number;
  /** Aborting stops the wait (so does the end of the attempt: `ctx.signal`). */
  signal?: AbortSignal;
}

/** `Symbol.asyncDispose` where the TypeScript lib in use knows it (else no member at all). */
type AsyncDisposeKey = SymbolConstructor extends { readonly asyncDispose: infer S extends symbol }
  ? S
  : never;

/** The lock's `[Symbol.asyncDispose]()`, typed only where the lib knows `Symbol.asyncDispose`. */
export type AsyncDisposableLock = { [K in AsyncDisposeKey]: () => Promise<void> };

/** The members of a {@link LockHandle}. */
export interface LockState {
  /** The lock's key, as given. */
  readonly key: string;
  /**
   * The fencing token: larger for every later holder of this key (a safe integer). Pass it to
   * what the lock protects, and have that refuse a write with a smaller token than it has seen:
   * a holder paused past its TTL then cannot overwrite the next holder's work.
   */
  readonly token: number;
  /**
   * True while this handle holds the lock as far as it knows: taken, not released, not found
   * lost by a renewal, and before `expiresAt` on the app's clock.
   */
  readonly held: boolean;
  /** When the lock expires unless renewed (epoch ms, the app's clock; a little early, never late). */
  readonly expiresAt: number;
  /**
   * Extends the lock to `ttlMs` from now (default: its last TTL), only while it is still this
   * holder's. False when it was not (it expired, perhaps to another holder): `held` turns false.
   * Throws a `TypeError` on a store without `compareAndSet`.
   */
  renew(ttlMs?: number): Promise<boolean>;
  /**
   * Frees the lock if it is still this holder's. False when it was not (it expired, perhaps to
   * another holder, whose lock stays), or was released already.
   */
  release(): Promise<boolean>;
}

/**
 * A lock taken with `app.lock()` or `ctx.lock()`. `await using lock = await app.lock(…)`
 * releases it at the end of the block (`[Symbol.asyncDispose]`, where the runtime has it).
 */
export type LockHandle = LockState & AsyncDisposableLock;

/** What taking a lock needs (an app has it). */
export interface LockHost {
  readonly store: Store;
  readonly clock: Clock;
  /** The random source of the pauses' jitter. */
  readonly random: () => number;
}

/** Options after checks and defaults. */
export interface ResolvedLockOptions {
  ttlMs: number;
  waitMs: number;
  retryMs: number;
  signal: AbortSignal | undefined;
}

/** `Symbol.asyncDispose`, or the name runtimes without it (and TypeScript's helpers) use. */
const ASYNC_DISPOSE: symbol =
  (Symbol as { asyncDispose?: symbol }).asyncDispose ?? Symbol.for("Symbol.asyncDispose");

const LOCK_KEYS = keysOf<LockOptions>({ ttlMs: true, waitMs: true, retryMs: true, signal: true });
const TASK_LOCK_KEYS = keysOf<TaskLockOptions>({ ttlMs: true, waitMs: true, retryMs: true, signal: true });

/** The longest pause between tries (unless `retryMs` is longer). */
const MAX_PAUSE_MS = 1_000;

/**
 * Takes the lock on `key`: see `app.lock()`.
 *
 * @example
 * ```ts
 * const lock = await acquireLock(app, "report:daily", { ttlMs: 60_000 });
 * try { await buildReport(lock.token); } finally { await lock.release(); }
 * ```
 */
export function acquireLock(host: LockHost, key: string, options: LockOptions): Promise<LockHandle> {
  try {
    checkLockKey(key, "app.lock");
    if (options === null || typeof options !== "object") {
      throw new TypeError(`app.lock options must be an object with ttlMs, got ${String(options)}`);
    }
    checkKeys(options, LOCK_KEYS, "app.lock");
    const resolved = resolveLockOptions(options, "app.lock");
    return takeLock(host, key, resolved) as Promise<unknown> as Promise<LockHandle>;
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Takes the lock on `key`, runs `fn` with it and releases it, whether `fn` returns or throws: see
 * `app.withLock()`.
 *
 * @example
 * ```ts
 * const report = await withLock(app, "report:daily", { ttlMs: 60_000 }, (lock) => build(lock.token));
 * ```
 */
export async function withLock<T>(
  host: LockHost,
  key: string,
  options: LockOptions,
  fn: (lock: LockHandle) => T | Promise<T>,
): Promise<T> {
  if (typeof fn !== "function") throw new TypeError("app.withLock needs a function to run");
  const lock = await acquireLock(host, key, options);
  let result: T;
  try {
    result = await fn(lock);
  } catch (error) {
    await lock.release().catch(() => {}); // fn's error is the one to report
    throw error;
  }
  await lock.release();
  return result;
}

/** Checks `ctx.lock()`'s key and options; `ttlMs` is the TTL when the attempt has no lease. */
export function resolveTaskLockOptions(
  key: string,
  options: TaskLockOptions,
  defaultTtlMs: number,
): ResolvedLockOptions {
  checkLockKey(key, "ctx.lock");
  if (options === null || typeof options !== "object") {
    throw new TypeError(`ctx.lock options must be an object, got ${String(options)}`);
  }
  checkKeys(options, TASK_LOCK_KEYS, "ctx.lock");
  return resolveLockOptions({ ...options, ttlMs: options.ttlMs ?? defaultTtlMs }, "ctx.lock");
}

function checkLockKey(key: unknown, where: string): void {
  if (typeof key !== "string" || key.length === 0) {
    throw new TypeError(`${where} key must be a non-empty string, got ${JSON.stringify(key)}`);
  }
}

function resolveLockOptions(options: LockOptions, where: string): ResolvedLockOptions {
  const { ttlMs, waitMs = 0, retryMs = 50, signal } = options;
  checkTtl(ttlMs, `${where} ttlMs`);
  if (typeof waitMs !== "number" || Number.isNaN(waitMs) || waitMs < 0) {
    throw new RangeError(`${where} waitMs must be a non-negative number, got ${String(waitMs)}`);
  }
  if (typeof retryMs !== "number" || !Number.isFinite(retryMs) || retryMs <= 0) {
    throw new RangeError(`${where} retryMs must be a positive number, got ${String(retryMs)}`);
  }
  if (signal !== undefined && (signal === null || typeof signal.aborted !== "boolean")) {
    throw new TypeError(`${where} signal must be an AbortSignal, got ${String(signal)}`);
  }
  return { ttlMs, waitMs, retryMs, signal };
}

function checkTtl(ttlMs: unknown, what: string): asserts ttlMs is number {
  if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`${what} must be a positive number, got ${String(ttlMs)}`);
  }
}

/**
 * Tries until the lock is taken, the wait runs out (`LockedError`) or the signal aborts (its
 * reason). The deadline is on the app's clock; the pauses are real timers.
 */
export async function takeLock(host: LockHost, key: string, options: ResolvedLockOptions): Promise<Lock> {
  const { clock } = host;
  const { signal } = options;
  const deadline = clock.now() + options.waitMs;
  const maxPause = Math.max(MAX_PAUSE_MS, options.retryMs);
  let pause = options.retryMs;
  for (;;) {
    signal?.throwIfAborted();
    const lock = await tryLock(host, key, options.ttlMs);
    if (lock !== undefined) {
      if (signal?.aborted) {
        await lock.release().catch(() => {});
        signal.throwIfAborted();
      }
      return lock;
    }
    const left = deadline - clock.now();
    if (left <= 0) {
      const message =
        options.waitMs === 0
          ? `lock "${key}" is held by another holder`
          : `lock "${key}" was still held by another holder after waiting ${options.waitMs} ms`;
      throw new LockedError(key, message);
    }
    // Equal jitter: contenders woken by the same release do not all try at the same moment.
    await sleep(Math.min(left, pause / 2 + (host.random() * pause) / 2), signal);
    pause = Math.min(maxPause, pause * 2);
  }
}

/** One try: the lock, or undefined when another holder has it. */
async function tryLock(host: LockHost, key: string, ttlMs: number): Promise<Lock | undefined> {
  const { store, clock } = host;
  const name = lockKey(key);
  const holder = crypto.randomUUID();
  const takenAt = clock.now();
  if ((await store.setIfAbsent(name, holder, ttlMs)) !== null) return undefined;
  let value = holder;
  try {
    const token = await store.incr(lockTokenKey(key));
    const checkedAt = clock.now();
    // Still this holder's after the token was drawn? (Else it expired in between and the token
    // may be older than the next holder's: give up this try.)
    if (store.compareAndSet === undefined) {
      if ((await store.get(name)) !== holder) return undefined;
      return new Lock(host, key, token, holder, takenAt + ttlMs, ttlMs);
    }
    value = `${token}:${holder}`;
    if (!(await store.compareAndSet(name, holder, value, ttlMs))) return undefined;
    return new Lock(host, key, token, value, checkedAt + ttlMs, ttlMs);
  } catch (error) {
    // Do not leave a half-taken lock behind until its TTL.
    await Promise.allSettled([store.compareAndDelete(name, holder), store.compareAndDelete(name, value)]);
    throw error;
  }
}

/** A lock held (or once held) by this process (its `[Symbol.asyncDispose]` is set below). */
export class Lock implements LockState {
  readonly key: string;
  readonly token: number;
  readonly #host: LockHost;
  readonly #name: string;
  /** The lock's value in the store: `<token>:<holder id>`. */
  readonly #value: string;
  #expiresAt: number;
  #ttlMs: number;
  #released = false;
  #lost = false;

  constructor(host: LockHost, key: string, token: number, value: string, expiresAt: number, ttlMs: number) {
    this.#host = host;
    this.key = key;
    this.token = token;
    this.#name = lockKey(key);
    this.#value = value;
    this.#expiresAt = expiresAt;
    this.#ttlMs = ttlMs;
  }

  get held(): boolean {
    return !this.#released && !this.#lost && this.#host.clock.now() < this.#expiresAt;
  }

  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** True once `release()` was called. */
  get released(): boolean {
    return this.#released;
  }

  async renew(ttlMs: number = this.#ttlMs): Promise<boolean> {
    checkTtl(ttlMs, "lock.renew ttlMs");
    const { store, clock } = this.#host;
    if (store.compareAndSet === undefined) {
      throw new TypeError("this store cannot renew a lock: it has no compareAndSet");
    }
    if (this.#released || this.#lost) return false;
    const at = clock.now();
    const renewed = await store.compareAndSet(this.#name, this.#value, this.#value, ttlMs);
    if (!renewed) this.#lost = true;
    else if (!this.#released) {
      this.#expiresAt = at + ttlMs;
      this.#ttlMs = ttlMs;
    }
    return renewed;
  }

  async release(): Promise<boolean> {
    if (this.#released) return false;
    this.#released = true;
    if (this.#lost) return false;
    return await this.#host.store.compareAndDelete(this.#name, this.#value);
  }
}

// Outside the class body: a computed member named by a runtime symbol has no declared type.
Object.defineProperty(Lock.prototype, ASYNC_DISPOSE, {
  value: function asyncDispose(this: Lock): Promise<void> {
    return this.release().then(() => {});
  },
  writable: true,
  configurable: true,
});

/** Waits `ms` on a real timer; rejects with the signal's reason when it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      signal?.removeEventListener("abort", aborted);
      resolve();
    };
    const aborted = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", aborted, { once: true });
  });
}
