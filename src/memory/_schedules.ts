/**
 * The memory backend's schedule store (`Store.schedules`): stored schedules as JSON text by id,
 * with a revision counter that moves on each change.
 *
 * @module
 */
import type { ScheduleStore } from "../contracts.ts";

/** Stored schedules in a Map, shared by every app on the same memory backend. */
export class MemorySchedules implements ScheduleStore {
  readonly #items = new Map<string, string>();
  #revision = 0;

  put(id: string, json: string): Promise<void> {
    this.#items.set(id, json);
    this.#revision++;
    return Promise.resolve();
  }

  remove(id: string): Promise<boolean> {
    const removed = this.#items.delete(id);
    if (removed) this.#revision++;
    return Promise.resolve(removed);
  }

  list(): Promise<{ id: string; json: string }[]> {
    return Promise.resolve([...this.#items].map(([id, json]) => ({ id, json })));
  }

  revision(): Promise<string | null> {
    return Promise.resolve(this.#revision === 0 ? null : String(this.#revision));
  }
}
