/**
 * Internal: an app's schedules as its schedulers see them — the ones defined in code and the
 * stored ones (`Store.schedules`), a stored one hiding a code one with the same id. The stored
 * set is read again only when the store's revision moved (one cheap read per look), and each
 * stored definition is parsed again only when its JSON changed, so an unchanged schedule keeps
 * its entry object (schedulers compare entries by identity to see what changed).
 *
 * @module
 */
import type { ScheduleStore, Store } from "../contracts.ts";
import { defineSchedule, type Schedule, type ScheduleEntry, type ScheduleOptions } from "./define.ts";
import { parseStored, type StoredHost, storedEntry } from "./stored.ts";

/** A stored schedule this process cannot run (unknown task here, a definition it cannot read). */
export interface InvalidSchedule {
  readonly id: string;
  readonly error: unknown;
  /** The stored definition as far as it could be read. */
  readonly definition: Record<string, unknown>;
}

/** The schedules at one look. */
export interface ScheduleView {
  /** Code schedules not hidden by a stored one, then the valid stored ones (paused included). */
  entries: ScheduleEntry[];
  invalid: InvalidSchedule[];
  /** Set when the stored schedules could not be read; the last ones read are in the view. */
  error?: unknown;
}

interface Cached {
  json: string;
  entry: ScheduleEntry | null;
  invalid: InvalidSchedule | null;
}

/** What the set needs from its app. */
export interface ScheduleSetHost extends StoredHost {
  readonly store: Store;
}

/** An app's code schedules and a cache of its stored ones. */
export class ScheduleSet {
  readonly #host: ScheduleSetHost;
  readonly code: Map<string, ScheduleEntry> = new Map();
  #stored = new Map<string, Cached>();
  /** The revision the cache was read at (undefined: never read). */
  #revision: string | null | undefined;
  /** Orders concurrent reads: an older read never replaces a newer one. */
  #reads = 0;
  #applied = 0;
  readonly #listeners = new Set<() => void>();

  constructor(host: ScheduleSetHost) {
    this.#host = host;
  }

  /** The store's schedules, when it keeps any. */
  get store(): ScheduleStore | undefined {
    return this.#host.store.schedules;
  }

  /** Defines a schedule in code (see `app.schedule`) and tells running schedulers. */
  define<I>(id: string, options: ScheduleOptions<I>): Schedule {
    const schedule = defineSchedule(this.#host, this.code, id, options);
    this.changed();
    return schedule;
  }

  /** Tells this process's running schedulers to look again now. */
  changed(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Calls `listener` on each local change; returns the function that stops. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The schedules now: reads the store's revision, and the stored set when it moved. */
  async view(): Promise<ScheduleView> {
    let error: unknown;
    const store = this.store;
    if (store !== undefined) {
      try {
        await this.#refresh(store);
      } catch (e) {
        error = e;
      }
    }
    const entries: ScheduleEntry[] = [];
    for (const entry of this.code.values()) if (!this.#stored.has(entry.id)) entries.push(entry);
    const invalid: InvalidSchedule[] = [];
    for (const cached of this.#stored.values()) {
      if (cached.entry !== null) entries.push(cached.entry);
      if (cached.invalid !== null) invalid.push(cached.invalid);
    }
    return error === undefined ? { entries, invalid } : { entries, invalid, error };
  }

  async #refresh(store: ScheduleStore): Promise<void> {
    const read = ++this.#reads;
    const revision = store.revision === undefined ? undefined : await store.revision();
    if (revision !== undefined && revision === this.#revision) return;
    const rows = await store.list();
    if (read < this.#applied) return;
    this.#applied = read;
    this.#revision = revision;
    const next = new Map<string, Cached>();
    for (const { id, json } of rows) {
      const old = this.#stored.get(id);
      next.set(id, old !== undefined && old.json === json ? old : this.#parse(id, json));
    }
    this.#stored = next;
  }

  #parse(id: string, json: string): Cached {
    let definition: unknown;
    try {
      definition = parseStored(id, json);
      return { json, entry: storedEntry(this.#host, id, definition), invalid: null };
    } catch (error) {
      const readable = typeof definition === "object" && definition !== null && !Array.isArray(definition);
      const record = readable ? (definition as Record<string, unknown>) : {};
      return { json, entry: null, invalid: { id, error, definition: record } };
    }
  }
}
