/**
 * The run history's contract (`Store.history`): what a store keeps so operators can list, search
 * and follow runs after the fact — an index of recent runs per queue (by enqueue time), of ended
 * runs per state and of runs per task, and a capped log of state changes. The dashboard reads
 * it; a dashboard restarted or served by another replica sees the same history. An optional
 * capability: `contracts.ts` re-exports it.
 *
 * @module
 */
import type { RunRecord, RunState } from "./contracts.ts";

/** A run as the history returns it: its record, and what its envelope carried when the store keeps it. */
export interface HistoryRun extends RunRecord {
  /** The task input (JSON), when the store still has the run's envelope. */
  input?: unknown;
  /** The envelope's meta (a workflow's links: its id, step, parent), when kept. */
  meta?: Record<string, unknown>;
}

/**
 * A search of the history. Every filter is optional and they combine (and). Runs come newest
 * first: by when they were enqueued, or, with `state` one of the ended states, by when they
 * ended.
 */
export interface HistoryQuery {
  /** The queues to look in (the caller knows them: the app's and the broker's). */
  queues: readonly string[];
  task?: string | undefined;
  state?: RunState | undefined;
  /** Exact idempotency key (the record's `idempotencyKey`). */
  idempotencyKey?: string | undefined;
  /** Enqueued (ended, with an ended `state`) at or after this time, epoch ms. */
  from?: number | undefined;
  /** Enqueued (ended, with an ended `state`) before this time, epoch ms. */
  to?: number | undefined;
  /**
   * Text the run's input, result or error contains (case-insensitive), where the store can
   * search it (`RunHistory.textSearch`); ignored otherwise.
   */
  text?: string | undefined;
  /** Where the page starts: the previous page's `cursor` (opaque); absent or null: the newest. */
  cursor?: string | null | undefined;
  /** At most this many runs (1–500). */
  limit: number;
}

/** A page of {@link RunHistory.list}. */
export interface HistoryPage {
  runs: HistoryRun[];
  /** Where the next page starts, or null after the last. */
  cursor: string | null;
  /**
   * Index entries looked at for this page. A filter no index answers (text, a state still in
   * progress, a task and a state together) reads records one by one, at most `scanLimit` per
   * page: a page can then hold fewer runs than asked and still have a cursor.
   */
  scanned: number;
}

/** One change of a run's state, as the history's log keeps it. */
export interface RunChange {
  id: string;
  queue: string;
  task: string;
  state: RunState;
  /** When it changed, epoch ms (the backend's clock). */
  at: number;
}

/** See {@link Store.history}. */
export interface RunHistory {
  /** Whether `HistoryQuery.text` is searched. */
  readonly textSearch: boolean;
  /** Lists runs matching the query, newest first, a page at a time. */
  list(query: HistoryQuery): Promise<HistoryPage>;
  /** One run with what its envelope carried, or null when it is gone. */
  get(id: string, queue?: string): Promise<HistoryRun | null>;
  /**
   * The state changes of the queues' runs after `cursor` (from the previous answer; null: start
   * from now, returning none), oldest first, at most `limit`. The log is capped: a reader that
   * fell behind misses the oldest changes and should reload what it shows.
   */
  changes(
    queues: readonly string[],
    cursor: string | null,
    limit: number,
  ): Promise<{ changes: RunChange[]; cursor: string }>;
}
