/**
 * Debounce at enqueue: enqueues of a task with the same key collapse into one run while they
 * keep coming — the last input wins, and the run starts `delayMs` after the last enqueue of the
 * burst (at most `maxWaitMs` after its first).
 *
 * How: a burst is one run. The store keeps the key's current burst (its run id and when it
 * began) under `debounceKey`, set with `setIfAbsent`, so concurrent enqueues from any number of
 * processes agree on it. Each enqueue sends the burst's run under that id, with its input and a
 * start time of `min(now + delayMs, first + maxWaitMs)`, through `Ledger.replace`: in one atomic
 * step with the check that the run still waits (not started, its message not leased), it
 * replaces the waiting message and record. When the run no longer waits (a worker took it, or it
 * ended or was cancelled), the enqueue ends that burst and begins the next one (a new run id).
 *
 * What is guaranteed, on every backend that has `Ledger.replace` (memory, Redis over TCP, REST
 * and Cluster):
 * - **No input is lost.** An enqueue's input either replaces the input of a run that has not
 *   started — and so is the input that run starts with, unless a later enqueue replaced it in
 *   turn — or begins a new burst whose run starts later. A replacement never lands on a run that
 *   a worker has leased: the check and the send are one step.
 * - **One run per burst.** Enqueues in a burst share one run id (their handles point at it).
 *   Of concurrent enqueues of one key, the one whose send lands last wins; one that lands while
 *   the run is being leased begins the next burst, so that input runs too, `delayMs` later.
 * - A run starts no sooner than `delayMs` after the last enqueue of its burst, and (with
 *   `maxWaitMs`) due no later than `maxWaitMs` after the first, whenever a worker is free. A run
 *   already due (the cap reached) is still replaced until a worker takes it.
 * - The burst key lives `resultTtlMs`: a key enqueued without a pause for longer than that
 *   (no `maxWaitMs`) begins a new burst then, so it still runs at least once per `resultTtlMs`.
 *
 * Enqueues that name their run (`id`, as a schedule's tick does) and workflow steps are not
 * debounced. An idempotency key is checked in the same step as the replacement: an enqueue
 * whose key a run already holds returns that run and changes nothing (its handle has no
 * `debounced`); otherwise the key maps to the burst's run. QStash cannot replace a published
 * message, so a QStash app (or any app whose ledger lacks `replace`) rejects `debounce` when the
 * task is defined. In eager mode, delays are collapsed: every enqueue runs at once.
 *
 * @module
 */
import type { EnqueueInternals } from "../enqueue.ts";
import { CeleriacError } from "../errors.ts";
import type { EnqueueItem, Ledger } from "../execute/ledger.ts";
import { newRunId } from "../_ids.ts";
import { debounceKey } from "../keys.ts";
import { checkKeys, keysOf, positiveInt } from "../_options.ts";
import { UNSTARTED_GUARD } from "../run-state.ts";
import type { SendHost } from "../send.ts";
import type { EnqueueOptions, ResolvedTask, Run } from "../task.ts";
import { checkKeyFn, flowKey } from "./_key.ts";

/**
 * A task's `debounce` option.
 *
 * @example
 * ```ts
 * app.task({
 *   name: "search.reindex",
 *   debounce: { key: (doc: { id: string }) => doc.id, delayMs: 2_000, maxWaitMs: 30_000 },
 *   run: (doc) => reindex(doc.id),
 * });
 * ```
 */
export interface DebounceOptions<I = unknown> {
  /**
   * The key whose enqueues collapse, from the validated input (a non-empty string; a function
   * that throws or returns anything else fails the enqueue with `FlowKeyError`).
   * @default every enqueue of the task shares one key
   */
  key?: (input: I) => string;
  /** The quiet period: the run starts this long (ms) after the last enqueue of its burst. */
  delayMs: number;
  /**
   * Bounds starvation: the run is due at most this long (ms) after the first enqueue of its
   * burst, however often enqueues keep coming. At least `delayMs`.
   * @default no bound
   */
  maxWaitMs?: number;
}

/** A validated `debounce`. */
export interface ResolvedDebounce {
  readonly key: ((input: unknown) => string) | undefined;
  readonly delayMs: number;
  readonly maxWaitMs: number | undefined;
}

const DEBOUNCE_KEYS = keysOf<DebounceOptions>({ key: true, delayMs: true, maxWaitMs: true });

/** Validates a task's `debounce` (`where` names the task); undefined when not set. */
export function resolveDebounce(value: unknown, where: string): ResolvedDebounce | undefined {
  if (value === undefined) return undefined;
  const name = `${where}: debounce`;
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`${name} must be an object { key?, delayMs, maxWaitMs? }, got ${String(value)}`);
  }
  checkKeys(value, DEBOUNCE_KEYS, name);
  const options = value as DebounceOptions;
  const key = checkKeyFn(options.key, `${name}.key`);
  const delayMs = positiveInt(`${name}.delayMs`, options.delayMs);
  const maxWaitMs =
    options.maxWaitMs === undefined ? undefined : positiveInt(`${name}.maxWaitMs`, options.maxWaitMs);
  if (maxWaitMs !== undefined && maxWaitMs < delayMs) {
    throw new RangeError(`${name}.maxWaitMs must be at least delayMs (${delayMs}), got ${maxWaitMs}`);
  }
  return { key, delayMs, maxWaitMs };
}

/**
 * Throws when `task` is debounced and `ledger` cannot replace a waiting run in one step (a push
 * broker such as QStash, or a broker and a store that are not one backend).
 */
export function checkDebounceSupport(task: ResolvedTask, ledger: Ledger): void {
  if (task.debounce === undefined || ledger.replace !== undefined) return;
  throw new TypeError(
    `task "${task.name}": debounce needs a backend that replaces a waiting run in one step ` +
      "(memory() or redis() as both broker and store); this app's broker and store cannot " +
      "(QStash cannot replace a message it has accepted)",
  );
}

/** Sends inputs through the app's usual enqueue path (see `sendRuns`). */
export type SendFn = (
  inputs: readonly unknown[],
  options: EnqueueOptions,
  internal: EnqueueInternals,
) => Promise<Run<unknown>[]>;

/** How often an enqueue tries again after finding its burst's run started. */
const MAX_TRIES = 5;

/** A burst as the store keeps it: `<first enqueue, epoch ms>:<run id>` (plain text, not JSON). */
function burstText(first: number, id: string): string {
  return `${first}:${id}`;
}

function parseBurst(text: string): { first: number; id: string } | undefined {
  const at = text.indexOf(":");
  const first = Number(text.slice(0, at));
  const id = text.slice(at + 1);
  return at > 0 && Number.isSafeInteger(first) && id.length > 0 ? { first, id } : undefined;
}

/**
 * The runs of debounced enqueues, input by input (`validated`: each input's schema output).
 * Rejects `delayMs` and `at`: debounce decides when the run starts.
 */
export async function debounceRuns(
  host: SendHost,
  task: ResolvedTask,
  debounce: ResolvedDebounce,
  queue: string,
  inputs: readonly unknown[],
  validated: readonly unknown[],
  options: EnqueueOptions,
  internal: EnqueueInternals,
  send: SendFn,
): Promise<Run<unknown>[]> {
  if (options.delayMs !== undefined || options.at !== undefined) {
    throw new TypeError(
      `task "${task.name}" is debounced: its runs start debounce.delayMs after the last enqueue, ` +
        "so enqueue takes no delayMs or at",
    );
  }
  checkDebounceSupport(task, host.ledger);
  // Every key first: a key function that fails sends nothing.
  const keys = validated.map((v) =>
    debounce.key === undefined ? "" : flowKey(debounce.key, v, task.name, "debounce.key"),
  );
  const runs: Run<unknown>[] = [];
  for (let i = 0; i < inputs.length; i++) {
    runs.push(
      await debounceOne(host, task, debounce, debounceKey(queue, task.name, keys[i]!), {
        input: inputs[i],
        valid: validated[i],
        options,
        internal,
        send,
      }),
    );
  }
  return runs;
}

interface One {
  input: unknown;
  valid: unknown;
  options: EnqueueOptions;
  internal: EnqueueInternals;
  send: SendFn;
}

async function debounceOne(
  host: SendHost,
  task: ResolvedTask,
  debounce: ResolvedDebounce,
  name: string,
  one: One,
): Promise<Run<unknown>> {
  const ledger = host.ledger;
  for (let tries = 1; ; tries++) {
    const now = host.clock.now();
    const mine = burstText(now, newRunId());
    const held = await host.store.setIfAbsent(name, mine, task.resultTtlMs);
    const text = held ?? mine;
    const burst = parseBurst(text);
    let outcome = "sent" as "sent" | "owned" | "refused";
    if (burst !== undefined) {
      const cap =
        debounce.maxWaitMs === undefined ? Number.POSITIVE_INFINITY : burst.first + debounce.maxWaitMs;
      const at = Math.min(now + debounce.delayMs, cap);
      const sendOne = async (items: readonly EnqueueItem[]): Promise<(string | null)[]> => {
        const item = items[0]!;
        const answer = await ledger.replace!(item, UNSTARTED_GUARD);
        if (answer === false) {
          outcome = "refused";
          return [item.record.id]; // nothing was sent
        }
        if (answer !== null) outcome = "owned";
        return [answer];
      };
      const [run] = await one.send(
        [one.input],
        { ...one.options, id: burst.id, at },
        { ...one.internal, validated: [one.valid], send: sendOne },
      );
      if (outcome === "owned") return run!;
      if (outcome === "sent")
        return Object.assign(run!, { debounced: held === null ? "scheduled" : "replaced" });
    }
    // The burst's run started, ended or was cancelled (or the key held no burst): begin the next.
    await host.store.compareAndDelete(name, text);
    if (tries >= MAX_TRIES) {
      throw new CeleriacError(
        `debounced enqueue of task "${task.name}" gave up: its burst's run started before the input ` +
          `could be replaced, ${MAX_TRIES} times in a row`,
      );
    }
  }
}
