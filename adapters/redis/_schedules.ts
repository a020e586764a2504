/**
 * The Redis backend's schedule store (`Store.schedules`): one hash at `prefix:schedules`, through
 * the schedules script, so it works the same over TCP, REST and on Redis Cluster.
 *
 * @module
 */
import type { ScheduleStore } from "../../backend.ts";
import { int, list, maybeText, text, type Transport } from "./_client.ts";
import { SCHEDULES_SCRIPT } from "./lua/mod.ts";

/** Stored schedules in one hash; each change sets a fresh revision token beside them. */
export class RedisSchedules implements ScheduleStore {
  readonly #t: Transport;
  readonly #key: string;

  constructor(t: Transport, key: string) {
    this.#t = t;
    this.#key = key;
  }

  #call(...args: string[]): Promise<unknown> {
    return this.#t.run(SCHEDULES_SCRIPT, [this.#key], args);
  }

  async put(id: string, json: string): Promise<void> {
    if (/[{}]/.test(id)) throw new TypeError(`schedule id must not hold braces, got ${JSON.stringify(id)}`);
    await this.#call("put", id, json, crypto.randomUUID());
  }

  async remove(id: string): Promise<boolean> {
    return int(await this.#call("remove", id, crypto.randomUUID()), "remove schedule") === 1;
  }

  async list(): Promise<{ id: string; json: string }[]> {
    const flat = list(await this.#call("list"), "stored schedules");
    const out: { id: string; json: string }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      out.push({ id: text(flat[i], "schedule id"), json: text(flat[i + 1], "stored schedule") });
    }
    return out;
  }

  async revision(): Promise<string | null> {
    return maybeText(await this.#call("revision"), "schedules revision");
  }
}
