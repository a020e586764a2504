/**
 * Internal: the Redis backend's run history (`store.history`), read from the indexes the queue
 * script keeps (lua/history.ts): one history script call per queue per page, merged newest
 * first across queues.
 *
 * @module
 */
import {
  BackendError,
  type HistoryPage,
  type HistoryQuery,
  type HistoryRun,
  type RunChange,
  type RunHistory,
  type RunState,
  storedState,
} from "../../backend.ts";
import {
  checkQuery,
  decodeCursor,
  ENDED_STATES,
  encodeCursor,
  envelopeParts,
  type HistoryCursor,
} from "../../src/history/_query.ts";
import { int, list, type Transport, text } from "./_client.ts";
import { decodeRecord } from "./_codec.ts";
import { queueKeys } from "./_keys.ts";
import { HISTORY_SCRIPT_SOURCE, type Script } from "./lua/mod.ts";

const HISTORY_SCRIPT: Script = { name: "celeriac.history", source: HISTORY_SCRIPT_SOURCE };

/** Index entries one queue's script looks at for one page, at most. */
export const SCAN_LIMIT = 2_000;

type Cursor = HistoryCursor;

/** (a.k, a.id) sorts after (b.k, b.id): it is newer in the index's order (ids compared as bytes). */
function after(a: Cursor, b: Cursor): boolean {
  return a.k > b.k || (a.k === b.k && a.id > b.id);
}

interface Found extends Cursor {
  run: HistoryRun;
}

/** One queue's answer to a page: its matches, and where it stopped when more may follow. */
interface QueuePage {
  found: Found[];
  scanned: number;
  stop: Cursor | null;
}

/** What the history needs of its backend. */
export interface HistoryHost {
  prefix: string;
  t: Transport;
  /** The known queues (for a run looked up without its queue). */
  queues(): Promise<string[]>;
}

/** A run from a record's hash fields (`~name, ~value, …`, message fields included). */
function runOf(flat: readonly unknown[], from: number): HistoryRun | null {
  const record = decodeRecord(flat, from);
  if (record === null) return null;
  let body: string | undefined;
  for (let i = from; i + 1 < flat.length; i += 2) {
    if (flat[i] === "~.b") body = text(flat[i + 1], "envelope");
  }
  return body === undefined ? record : { ...record, ...envelopeParts(body) };
}

/** The Redis backend's run history. */
export class RedisHistory implements RunHistory {
  readonly textSearch = true;
  readonly #host: HistoryHost;

  constructor(host: HistoryHost) {
    this.#host = host;
  }

  #call(queue: string, args: string[]): Promise<unknown> {
    return this.#host.t.run(HISTORY_SCRIPT, [queueKeys(this.#host.prefix, queue)[0]!], args);
  }

  async list(query: HistoryQuery): Promise<HistoryPage> {
    const q = checkQuery(query);
    const cursor = q.cursor === null || q.cursor === undefined ? null : decodeCursor(q.cursor);
    const ended = q.state !== undefined && ENDED_STATES.has(q.state);
    // The narrowest index that answers the query: a key's runs, a state's ended runs, a task's.
    const index =
      q.idempotencyKey !== undefined
        ? `hk:${JSON.stringify(q.idempotencyKey)}`
        : ended
          ? `he:${q.state}`
          : q.task !== undefined
            ? `ht:${JSON.stringify(q.task)}`
            : "h";
    const args = [
      "L",
      index,
      cursor === null ? "" : String(cursor.k),
      cursor === null ? "" : cursor.id,
      q.from === undefined ? "" : String(q.from),
      q.to === undefined ? "" : String(q.to),
      String(q.limit),
      String(SCAN_LIMIT),
      q.state === undefined ? "" : storedState(q.state),
      q.task === undefined ? "" : JSON.stringify(q.task),
      q.idempotencyKey === undefined ? "" : JSON.stringify(q.idempotencyKey),
      q.text ?? "",
    ];
    const pages = await Promise.all(q.queues.map(async (queue) => this.#page(await this.#call(queue, args))));
    // Newest first across queues, down to the highest point where a queue stopped looking (below
    // it, that queue may have runs not read yet).
    let bound: Cursor | null = null;
    for (const p of pages) if (p.stop !== null && (bound === null || after(p.stop, bound))) bound = p.stop;
    const all = pages
      .flatMap((p) => p.found)
      .filter((f) => bound === null || !after(bound, f))
      .sort((a, b) => (after(a, b) ? -1 : after(b, a) ? 1 : 0));
    const runs = all.slice(0, q.limit);
    const last = runs.at(-1);
    const next = runs.length === q.limit && last !== undefined ? last : bound;
    return {
      runs: runs.map((f) => f.run),
      cursor: next === null ? null : encodeCursor({ k: next.k, id: next.id }),
      scanned: pages.reduce((n, p) => n + p.scanned, 0),
    };
  }

  #page(reply: unknown): QueuePage {
    const flat = list(reply, "history page");
    const scanned = int(flat[0], "history scanned");
    const more = int(flat[1], "history more") === 1;
    const stop = more ? { k: Number(text(flat[2])), id: text(flat[3]) } : null;
    const found: Found[] = [];
    for (let i = 4; i < flat.length; i++) {
      const entry = list(flat[i], "history run");
      const run = runOf(entry, 2);
      if (run === null) continue;
      found.push({ id: text(entry[0], "run id"), k: Number(text(entry[1], "score")), run });
    }
    return { found, scanned, stop };
  }

  async get(id: string, queue?: string): Promise<HistoryRun | null> {
    if (typeof id !== "string" || id === "") throw new TypeError("id must be a non-empty string");
    const one = async (q: string) => runOf(list(await this.#call(q, ["G", id]), "run"), 0);
    if (queue !== undefined) return await one(queue);
    const found = await Promise.all((await this.#host.queues()).map(one));
    return found.find((r) => r !== null) ?? null;
  }

  async changes(
    queues: readonly string[],
    cursor: string | null,
    limit: number,
  ): Promise<{ changes: RunChange[]; cursor: string }> {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`limit must be a positive integer, got ${String(limit)}`);
    }
    const at = cursor === null ? {} : decodeLog(cursor);
    const next: Record<string, LogCursor> = { ...at };
    const merged: { change: RunChange; order: number; move: (c: LogCursor) => LogCursor }[] = [];
    await Promise.all(
      [...new Set(queues)].map(async (queue) => {
        const from = at[queue];
        const args =
          from === undefined ? ["C", "", "", "", "1"] : ["C", from.s, from.k, from.i, String(limit)];
        const flat = list(await this.#call(queue, args), "changes");
        if (from === undefined) {
          // A queue not followed yet: from its end (a new reader sees changes from now).
          next[queue] = { s: text(flat[0]), k: text(flat[1]), i: text(flat[2]) };
          return;
        }
        const created = int(flat[0], "created");
        for (let j = 0, i = 1; i + 3 < flat.length; j++, i += 4) {
          const first = text(flat[i], "position");
          const id = text(flat[i + 1], "run id");
          const state = text(flat[i + 2], "state");
          const task = taskOf(text(flat[i + 3], "task"));
          if (j < created) {
            const score = first;
            const time = Math.floor(Number(score));
            merged.push({
              change: { id, queue, task, state: state as RunState, at: time },
              order: 0,
              move: (c) => ({ ...c, k: score, i: id }),
            });
          } else {
            const dash = first.indexOf("-");
            if (id === "" || state === "") continue;
            merged.push({
              change: { id, queue, task, state: state as RunState, at: Number(first.slice(0, dash)) },
              order: 1 + Number(first.slice(dash + 1)),
              move: (c) => ({ ...c, s: first }),
            });
          }
        }
      }),
    );
    // Oldest first across queues (a run's creation before what its log says at the same ms).
    merged.sort((a, b) => a.change.at - b.change.at || a.order - b.order);
    const taken = merged.slice(0, limit);
    for (const m of taken) next[m.change.queue] = m.move(next[m.change.queue]!);
    return { changes: taken.map((m) => m.change), cursor: JSON.stringify(next) };
  }
}

/** Where a reader of a queue's changes is: its log's last entry, its index's newest run. */
interface LogCursor {
  s: string;
  k: string;
  i: string;
}

function decodeLog(cursor: string): Record<string, LogCursor> {
  let value: unknown;
  try {
    value = JSON.parse(cursor);
  } catch (cause) {
    throw new TypeError(`not a change log cursor of this backend: ${cursor}`, { cause });
  }
  const ok =
    value !== null &&
    typeof value === "object" &&
    Object.values(value).every(
      (c: unknown) =>
        c !== null &&
        typeof c === "object" &&
        ["s", "k", "i"].every((f) => typeof (c as Record<string, unknown>)[f] === "string"),
    );
  if (!ok) throw new TypeError(`not a change log cursor of this backend: ${cursor}`);
  return value as Record<string, LogCursor>;
}

/** A task name from its stored JSON ("" when the record is gone). */
function taskOf(stored: string): string {
  if (stored === "") return "";
  try {
    return String(JSON.parse(stored));
  } catch (cause) {
    throw new BackendError("a run record's task is not JSON", { cause });
  }
}
