/**
 * Internal: the memory backend's run history (`Store.history`): per queue, the runs in the order
 * they were enqueued (capped), each with its envelope's text when the backend saw it sent, and a
 * capped log of state changes. Records themselves stay in the backend: the history reads them
 * through `lookup`, so it never shows a state the store does not hold.
 *
 * @module
 */
import type { RunRecord } from "../contracts.ts";
import type { HistoryPage, HistoryQuery, HistoryRun, RunChange, RunHistory } from "../history-contracts.ts";
import {
  checkQuery,
  decodeCursor,
  ENDED_STATES,
  encodeCursor,
  envelopeParts,
  type HistoryCursor,
  matchesText,
} from "../history/_query.ts";

interface Entry {
  id: string;
  queue: string;
  /** The envelope as sent, when seen. */
  body: string | undefined;
  /** Removed from the index (replaced by a later entry of the same id, or trimmed). */
  gone: boolean;
}

/** Options of the memory history. */
export interface MemoryHistoryOptions {
  /** Runs kept in the index per queue (the oldest go first). */
  maxRuns: number;
  /** State changes kept in the log. */
  changes: number;
}

type Cursor = HistoryCursor;

/** (k, id) after (lower than) the cursor, newest first. */
function before(k: number, id: string, c: Cursor | null): boolean {
  return c === null || k < c.k || (k === c.k && id < c.id);
}

/** The memory backend's history. */
export class MemoryHistory implements RunHistory {
  readonly textSearch = true;
  readonly #options: MemoryHistoryOptions;
  readonly #lookup: (id: string) => RunRecord | undefined;
  readonly #queues = new Map<string, Entry[]>();
  readonly #byId = new Map<string, Entry>();
  readonly #log: (RunChange & { seq: number })[] = [];
  #seq = 0;
  /** Someone has asked for changes. */
  #read = false;

  constructor(options: MemoryHistoryOptions, lookup: (id: string) => RunRecord | undefined) {
    this.#options = options;
    this.#lookup = lookup;
  }

  /** A run was created (or created again under its id): it goes to the front of its queue's index. */
  added(record: RunRecord, body: string | undefined): void {
    const old = this.#byId.get(record.id);
    if (old !== undefined) old.gone = true;
    const entry: Entry = { id: record.id, queue: record.queue, body: body ?? old?.body, gone: false };
    this.#byId.set(record.id, entry);
    let list = this.#queues.get(record.queue);
    if (list === undefined) {
      list = [];
      this.#queues.set(record.queue, list);
    }
    list.push(entry);
    // Trimmed in batches: one splice per tenth of the cap.
    if (list.length > this.#options.maxRuns * 1.1 + 16) this.#trim(list);
    this.changed(record);
  }

  #trim(list: Entry[]): void {
    const drop = list.length - this.#options.maxRuns;
    for (let i = 0; i < drop; i++) {
      const e = list[i]!;
      e.gone = true;
      if (this.#byId.get(e.id) === e) this.#byId.delete(e.id);
    }
    list.splice(0, drop);
  }

  /**
   * A run's state changed (or was set at creation): it goes to the log. Only once someone reads
   * the log: a reader's first cursor is the log's end then, so nothing logged before it is ever
   * read, and an app nobody watches pays nothing for it.
   */
  changed(record: RunRecord): void {
    if (!this.#read) return;
    const log = this.#log;
    log.push({
      seq: ++this.#seq,
      id: record.id,
      queue: record.queue,
      task: record.task,
      state: record.state,
      at: record.updatedAt,
    });
    if (log.length > this.#options.changes * 1.1 + 16) log.splice(0, log.length - this.#options.changes);
  }

  #run(entry: Entry, record: RunRecord): HistoryRun {
    const run: HistoryRun = structuredClone(record);
    if (entry.body !== undefined) Object.assign(run, envelopeParts(entry.body));
    return run;
  }

  list(query: HistoryQuery): Promise<HistoryPage> {
    try {
      return Promise.resolve(this.#list(checkQuery(query)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #list(q: HistoryQuery): HistoryPage {
    const cursor = q.cursor == null ? null : decodeCursor(q.cursor);
    const ended = q.state !== undefined && ENDED_STATES.has(q.state);
    // The best `limit` found so far, newest first (kept sorted; limit is small).
    const best: { k: number; entry: Entry; record: RunRecord }[] = [];
    let scanned = 0;
    for (const queue of q.queues) {
      const list = this.#queues.get(queue);
      if (list === undefined) continue;
      for (let i = list.length - 1; i >= 0; i--) {
        const entry = list[i]!;
        if (entry.gone) continue;
        scanned++;
        const record = this.#lookup(entry.id);
        if (record === undefined || record.queue !== queue) continue;
        const k = ended ? (record.finishedAt ?? record.updatedAt) : record.enqueuedAt;
        const last = best[best.length - 1];
        // Entries are in enqueue order: once the page is full, older ones cannot enter it.
        if (!ended && best.length === q.limit && last !== undefined && k < last.k) break;
        if (!before(k, entry.id, cursor)) continue;
        if (q.from !== undefined && k < q.from) continue;
        if (q.to !== undefined && k >= q.to) continue;
        if (q.task !== undefined && record.task !== q.task) continue;
        if (q.state !== undefined && record.state !== q.state) continue;
        if (q.idempotencyKey !== undefined && record.idempotencyKey !== q.idempotencyKey) continue;
        if (q.text !== undefined && !matchesText(q.text, entry.body, record)) continue;
        // Full: only a run newer than the page's oldest gets in.
        if (
          best.length === q.limit &&
          last !== undefined &&
          before(k, entry.id, { k: last.k, id: last.entry.id })
        )
          continue;
        let at = best.length;
        while (at > 0 && before(best[at - 1]!.k, best[at - 1]!.entry.id, { k, id: entry.id })) at--;
        best.splice(at, 0, { k, entry, record });
        if (best.length > q.limit) best.pop();
      }
    }
    const last = best[best.length - 1];
    // A full page may have more after it; the next page then answers empty.
    const next =
      best.length === q.limit && last !== undefined ? encodeCursor({ k: last.k, id: last.entry.id }) : null;
    return { runs: best.map((b) => this.#run(b.entry, b.record)), cursor: next, scanned };
  }

  get(id: string): Promise<HistoryRun | null> {
    const record = this.#lookup(id);
    if (record === undefined) return Promise.resolve(null);
    const entry = this.#byId.get(id) ?? { id, queue: record.queue, body: undefined, gone: false };
    return Promise.resolve(this.#run(entry, record));
  }

  changes(
    queues: readonly string[],
    cursor: string | null,
    limit: number,
  ): Promise<{ changes: RunChange[]; cursor: string }> {
    this.#read = true;
    if (cursor === null) return Promise.resolve({ changes: [], cursor: String(this.#seq) });
    const after = Number(cursor);
    if (!Number.isSafeInteger(after)) return Promise.reject(new TypeError(`not a change cursor: ${cursor}`));
    const wanted = new Set(queues);
    const out: RunChange[] = [];
    let seq = after;
    // The log is ordered by seq: start at the first entry after the cursor.
    const log = this.#log;
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (log[mid]!.seq <= after) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < log.length && out.length < limit; i++) {
      const { seq: s, ...change } = log[i]!;
      seq = s;
      if (wanted.has(change.queue)) out.push(change);
    }
    if (out.length < limit) seq = Math.max(seq, this.#seq);
    return Promise.resolve({ changes: out, cursor: String(seq) });
  }
}
