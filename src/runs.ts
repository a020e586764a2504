/**
 * Run handles and waiting for a run's result: the handle `enqueue` returns for each run, and the
 * waiters a final state wakes (runs finished in this process wake them at once; others are
 * announced by stores that can, or found by polling the store with a growing interval).
 *
 * @module
 */
import type { RunRecord, Store } from "./contracts.ts";
import { FINAL_STATES } from "./run-state.ts";
import { CancelledError, CeleriacError, ExpiredError, TaskFailedError, TimeoutError } from "./errors.ts";
import type { Run } from "./task.ts";

/** The app's side of a {@link Run} handle. */
export interface RunHost {
  status(id: string, queue: string | undefined): Promise<RunRecord | null>;
  result(id: string, queue: string | undefined, timeoutMs: number): Promise<unknown>;
  cancel(id: string, queue: string | undefined): Promise<boolean>;
}

/** A handle on one run: its id plus calls into the app (a class: enqueue makes one per run). */
export class RunHandle<R> implements Run<R> {
  readonly id: string;
  readonly #host: RunHost;
  readonly #queue: string | undefined;

  constructor(host: RunHost, id: string, queue: string | undefined) {
    this.#host = host;
    this.id = id;
    this.#queue = queue;
  }

  status(): Promise<RunRecord | null> {
    return this.#host.status(this.id, this.#queue);
  }

  result(options?: { timeoutMs?: number }): Promise<R> {
    return this.#host.result(this.id, this.#queue, options?.timeoutMs ?? 60_000) as Promise<R>;
  }

  cancel(): Promise<boolean> {
    return this.#host.cancel(this.id, this.#queue);
  }
}

/** Callers of `run.result()` waiting on runs, by run id. */
export class ResultWaiters {
  readonly #store: Store;
  /** Waiters by run id; woken with the run's success when an announcement carried it. */
  readonly #waiters = new Map<string, Set<(succeeded?: { result: unknown }) => void>>();

  constructor(store: Store) {
    this.#store = store;
  }

  /**
   * A run reached a final state (here, or announced from elsewhere): its waiters look again now,
   * or take `succeeded` as the run's outcome when the announcement carried it.
   */
  settled(id: string, succeeded?: { result: unknown }): void {
    const set = this.#waiters.get(id);
    if (set === undefined) return;
    this.#waiters.delete(id);
    for (const wake of set) wake(succeeded);
  }

  /**
   * True once a result was waited for here that may end in another process (the store can
   * announce ends): runs enqueued from now on are watched from the start, so their end wakes
   * this process at once, however soon a worker takes them.
   */
  get watching(): boolean {
    return this.#listening !== undefined;
  }

  /** Listening to run ends (once per process), or undefined when the store cannot announce them. */
  #listening: Promise<boolean> | undefined;

  #listen(): Promise<boolean> {
    const store = this.#store;
    if (store.onRunEnded === undefined || store.watchRun === undefined) return Promise.resolve(false);
    this.#listening ??= store
      .onRunEnded((id, succeeded) => this.settled(id, succeeded))
      .then(
        () => true,
        () => {
          this.#listening = undefined; // not listening: poll, and try again next time
          return false;
        },
      );
    return this.#listening;
  }

  /**
   * The run's result once it is final; throws for a failed, cancelled, missing or late run. A run
   * that ends in this process wakes its waiters at once; one that ends elsewhere is announced by
   * stores that can (Redis over TCP), and found by polling the store from 2 ms on otherwise (REST,
   * or a run taken by a worker before it was watched).
   */
  async result(id: string, queue: string | undefined, timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    let pollMs = 2;
    // Listen before marking the run watched, so its announcement cannot come first.
    let record = (await this.#listen())
      ? await this.#store.watchRun!(id, queue)
      : await this.#store.getRun(id, queue);
    for (;;) {
      if (record === null)
        throw new CeleriacError(`run ${id} not found (it never existed, or its record expired)`);
      if (FINAL_STATES.has(record.state)) return outcome(id, record);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new TimeoutError(`run ${id} did not finish within ${timeoutMs} ms (state: ${record.state})`);
      const succeeded = await this.#wait(id, Math.min(pollMs, left));
      if (succeeded !== undefined) return succeeded.result;
      pollMs = Math.min(pollMs * 2, 500);
      record = await this.#store.getRun(id, queue);
    }
  }

  /** Resolves when the run settles (with its success, when announced with it) or after `ms`. */
  #wait(id: string, ms: number): Promise<{ result: unknown } | undefined> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(id);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(id, set);
      }
      const wake = (succeeded?: { result: unknown }) => {
        clearTimeout(timer);
        set.delete(wake);
        resolve(succeeded);
      };
      const timer = setTimeout(() => wake(), ms);
      set.add(wake);
    });
  }
}

/** A final record's result, or the error it stands for. */
function outcome(id: string, record: RunRecord): unknown {
  if (record.state === "succeeded") return record.result;
  if (record.state === "cancelled") throw new CancelledError(`run ${id} was cancelled`);
  if (record.state === "expired") throw new ExpiredError(id, record.expiresAt);
  const error = record.error ?? { name: "Error", message: "unknown failure" };
  throw new TaskFailedError(id, error, {
    cause: Object.assign(new Error(error.message), { name: error.name }),
  });
}

/** Rejects with the TaskFailedError of the first of `runs` that failed (eager mode's `propagate`). */
export async function rejectFailed(
  store: Store,
  runs: readonly Run<unknown>[],
  queue: string,
): Promise<void> {
  for (const run of runs) {
    const record = await store.getRun(run.id, queue);
    if (record?.state === "failed") outcome(run.id, record);
  }
}
