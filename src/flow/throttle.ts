/**
 * Throttle at enqueue: at most `limit` enqueues of a task per key in each window of `periodMs`.
 * Over the limit, an enqueue is dropped (the default: nothing is sent, and its handle says so)
 * or delayed (sent to start at the beginning of the next window with room).
 *
 * Windows are fixed: aligned to multiples of `periodMs` since the epoch, on the enqueuing
 * process's clock. Each enqueue counts itself in its window with one `Store.incr` (the counter
 * expires a period after its window ends), so the limit holds across every process that shares
 * the store; processes whose clocks differ disagree on a boundary by that much. A fixed window
 * admits up to `2 × limit` within one period that straddles a boundary. A delayed enqueue counts
 * itself in the window it is sent to, so each window starts at most `limit` runs of the key,
 * delayed ones first; a store key notes the first window that may have room, so a long backlog
 * does not probe every full window.
 *
 * The throttle counts enqueues as they are made, before an idempotency key is looked at: an
 * enqueue that is dropped claims no key; one that is admitted or delayed is sent as usual (a key
 * a run already holds returns that run, and the handle still says what the throttle did). An
 * enqueue that fails after it was counted (a backend error) still counts. Workflow steps are not
 * throttled; schedule ticks are.
 *
 * @module
 */
import type { RunRecord, Store } from "../contracts.ts";
import type { EnqueueInternals } from "../enqueue.ts";
import { ThrottledError } from "../errors.ts";
import { newRunId } from "../_ids.ts";
import { throttleKey, throttleNextKey } from "../keys.ts";
import { checkKeys, keysOf, positiveInt } from "../_options.ts";
import type { EnqueueOptions, ResolvedTask, Run } from "../task.ts";
import { checkKeyFn, flowKey } from "./_key.ts";
import type { SendFn } from "./debounce.ts";

/**
 * A task's `throttle` option.
 *
 * @example
 * ```ts
 * app.task({
 *   name: "sms.send",
 *   throttle: { key: (sms: { to: string }) => sms.to, limit: 3, periodMs: 60_000, mode: "delay" },
 *   run: (sms) => provider.send(sms),
 * });
 * ```
 */
export interface ThrottleOptions<I = unknown> {
  /**
   * The key enqueues are counted under, from the validated input (a non-empty string; a function
   * that throws or returns anything else fails the enqueue with `FlowKeyError`).
   * @default every enqueue of the task shares one key
   */
  key?: (input: I) => string;
  /** At most this many enqueues of a key in each window. */
  limit: number;
  /** The window (ms): fixed windows aligned to multiples of `periodMs` since the epoch. */
  periodMs: number;
  /**
   * Over the limit: `"drop"` sends nothing and returns a handle with `throttled: "dropped"`
   * (its `result()` rejects with `ThrottledError`); `"delay"` sends the run to start at the next
   * window with room, and the handle says `throttled: "delayed"`.
   * @default "drop"
   */
  mode?: "drop" | "delay";
}

/** A validated `throttle`. */
export interface ResolvedThrottle {
  readonly key: ((input: unknown) => string) | undefined;
  readonly limit: number;
  readonly periodMs: number;
  readonly mode: "drop" | "delay";
}

const THROTTLE_KEYS = keysOf<ThrottleOptions>({ key: true, limit: true, periodMs: true, mode: true });

/** Validates a task's `throttle` (`where` names the task); undefined when not set. */
export function resolveThrottle(value: unknown, where: string): ResolvedThrottle | undefined {
  if (value === undefined) return undefined;
  const name = `${where}: throttle`;
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`${name} must be an object { key?, limit, periodMs, mode? }, got ${String(value)}`);
  }
  checkKeys(value, THROTTLE_KEYS, name);
  const options = value as ThrottleOptions;
  const key = checkKeyFn(options.key, `${name}.key`);
  const limit = positiveInt(`${name}.limit`, options.limit);
  const periodMs = positiveInt(`${name}.periodMs`, options.periodMs);
  const mode = options.mode ?? "drop";
  if (mode !== "drop" && mode !== "delay") {
    throw new RangeError(`${name}.mode must be "drop" or "delay", got ${JSON.stringify(mode)}`);
  }
  return { key, limit, periodMs, mode };
}

/** The handle of a dropped enqueue: no run was sent, none is recorded. */
export class DroppedRun implements Run<never> {
  readonly id: string;
  readonly throttled = "dropped" as const;
  /** When the key's next window begins (epoch ms). */
  readonly retryAt: number;
  readonly #task: string;
  readonly #key: string;

  constructor(id: string, task: string, key: string, retryAt: number) {
    this.id = id;
    this.#task = task;
    this.#key = key;
    this.retryAt = retryAt;
  }

  /** Null: nothing was recorded. */
  status(): Promise<RunRecord | null> {
    return Promise.resolve(null);
  }

  /** Rejects with `ThrottledError`. */
  result(): Promise<never> {
    return Promise.reject(new ThrottledError(this.#task, this.#key, this.retryAt));
  }

  /** False: there is nothing to cancel. */
  cancel(): Promise<boolean> {
    return Promise.resolve(false);
  }
}

/** What the throttle decided for one enqueue. */
type Decision = { kind: "admitted" } | { kind: "delayed"; at: number } | { kind: "dropped"; retryAt: number };

const ADMITTED: Decision = { kind: "admitted" };

/** How long a window's counter is kept: to the end of the next window (clock skew's margin). */
function windowTtl(start: number, periodMs: number, now: number): number {
  return Math.max(1, start + 2 * periodMs - now);
}

/** Counts one enqueue of `key` at `now` and decides (a delayed one is counted in its window). */
async function decide(
  store: Store,
  task: string,
  throttle: ResolvedThrottle,
  key: string,
  now: number,
): Promise<Decision> {
  const { limit, periodMs } = throttle;
  const start = now - (now % periodMs);
  const count = await store.incr(throttleKey(task, key, start), 1, windowTtl(start, periodMs, now));
  if (count <= limit) return ADMITTED;
  if (throttle.mode === "drop") return { kind: "dropped", retryAt: start + periodMs };
  // The next window with room, from the first one known to may have some.
  const nextKey = throttleNextKey(task, key);
  const hint = Number((await store.get(nextKey)) ?? Number.NaN);
  const first = Number.isSafeInteger(hint) && hint > start ? hint - (hint % periodMs) : start + periodMs;
  for (let at = first; ; at += periodMs) {
    const n = await store.incr(throttleKey(task, key, at), 1, windowTtl(at, periodMs, now));
    if (n > limit) continue;
    // Note where the next delayed enqueue should look: past this window once it is full.
    if (n === limit || at > first) {
      const next = n === limit ? at + periodMs : at;
      await store.set(nextKey, String(next), windowTtl(next, periodMs, now));
    }
    return { kind: "delayed", at };
  }
}

/**
 * The runs of throttled enqueues at `now` (`validated`: each input's schema output; `own`: when
 * the enqueue itself asks its runs to start, if it does): every key first (a key function that
 * fails counts nothing and sends nothing), then each enqueue counted in turn; those admitted,
 * and those delayed to the same window, are sent together.
 */
export async function throttleRuns(
  store: Store,
  now: number,
  own: number | undefined,
  task: ResolvedTask,
  throttle: ResolvedThrottle,
  inputs: readonly unknown[],
  validated: readonly unknown[],
  options: EnqueueOptions,
  internal: EnqueueInternals,
  send: SendFn,
): Promise<Run<unknown>[]> {
  const keys = validated.map((v) =>
    throttle.key === undefined ? "" : flowKey(throttle.key, v, task.name, "throttle.key"),
  );
  const runs: Run<unknown>[] = new Array(inputs.length);
  // Inputs to send, by the start of the window they were delayed to (admitted: undefined).
  const groups = new Map<number | undefined, number[]>();
  for (let i = 0; i < inputs.length; i++) {
    const decision = await decide(store, task.name, throttle, keys[i]!, now);
    if (decision.kind === "dropped") {
      runs[i] = new DroppedRun(options.id ?? newRunId(), task.name, keys[i]!, decision.retryAt);
      continue;
    }
    const at = decision.kind === "delayed" ? decision.at : undefined;
    const group = groups.get(at);
    if (group === undefined) groups.set(at, [i]);
    else group.push(i);
  }
  for (const [at, indexes] of groups) {
    const sent = await send(
      indexes.map((i) => inputs[i]),
      at === undefined ? options : { ...options, at: Math.max(at, own ?? at) },
      { ...internal, validated: indexes.map((i) => validated[i]) },
    );
    indexes.forEach((index, j) => {
      const run = sent[j]!;
      runs[index] = at === undefined ? run : Object.assign(run, { throttled: "delayed" as const });
    });
  }
  return runs;
}
