/**
 * The operators' store of the Redis backend: the worker registry, control messages and task
 * statistics, one ops-script call each (see lua/ops.ts).
 *
 * @module
 */
import type { ControlCommand, OpsStore, StatsRow, WorkerInfo } from "../../backend.ts";
import { int, list, type Transport, text } from "./_client.ts";
import { ms } from "./_codec.ts";
import { opsKeys } from "./_keys.ts";
import { OPS_SCRIPT } from "./lua/mod.ts";

function parse<T>(json: string): T | undefined {
  try {
    return JSON.parse(json) as T;
  } catch {
    return undefined; // an unreadable entry (another version's) is left out, not fatal
  }
}

/** Rows from `~minute, ~field, value` triples (minute null: totals, `~field, value` pairs). */
function rows(flat: readonly unknown[], from: number, to: number, withMinute: boolean): StatsRow[] {
  const byKey = new Map<string, StatsRow>();
  const step = withMinute ? 3 : 2;
  for (let i = from; i + step - 1 < to; i += step) {
    const minute = withMinute ? Number(text(flat[i], "minute")) : 0;
    const field = parse<unknown>(text(flat[withMinute ? i + 1 : i], "stats field"));
    const value = int(flat[withMinute ? i + 2 : i + 1], "stats value");
    if (!Array.isArray(field) || field.length !== 3 || !field.every((f) => typeof f === "string")) continue;
    const [task, queue, name] = field as [string, string, string];
    const key = `${minute}\u0000${task}\u0000${queue}`;
    let row = byKey.get(key);
    if (row === undefined) {
      row = { minute, task, queue, values: {} };
      byKey.set(key, row);
    }
    row.values[name] = value;
  }
  return [...byKey.values()];
}

/** The operators' store over one transport. `deadLetters` counts one queue's dead letters. */
export function redisOpsStore(
  t: Transport,
  prefix: string,
  deadLetters: (queue: string) => Promise<number>,
): OpsStore {
  const keys = opsKeys(prefix);
  const call = (...args: string[]) => t.run(OPS_SCRIPT, keys, args);
  return {
    async report({ worker, ttlMs, stats = [], statsTtlMs }) {
      const args: string[] = [];
      let n = 0;
      for (const row of stats) {
        for (const [name, value] of Object.entries(row.values)) {
          args.push(String(row.minute), JSON.stringify([row.task, row.queue, name]), String(value));
          n++;
        }
      }
      const reply = list(
        await call(
          "report",
          worker?.id ?? "",
          worker === undefined ? "" : JSON.stringify(worker),
          ms(ttlMs),
          ms(statsTtlMs),
          String(n),
          ...args,
        ),
        "report",
      );
      const out: ControlCommand[] = [];
      for (const item of reply) {
        const command = parse<ControlCommand>(text(item, "control command"));
        if (command !== undefined) out.push(command);
      }
      return out;
    },
    async forget(workerId) {
      await call("forget", workerId);
    },
    async workers() {
      const out: WorkerInfo[] = [];
      for (const item of list(await call("workers"), "workers")) {
        const info = parse<WorkerInfo>(text(item, "worker"));
        if (info !== undefined) out.push(info);
      }
      return out;
    },
    async control(workerId, command) {
      return int(await call("control", workerId, JSON.stringify(command)), "control") === 1;
    },
    async stats(sinceMinute) {
      const flat = list(await call("stats", String(Math.floor(sinceMinute))), "stats");
      const split = flat.indexOf("~");
      if (split < 0) throw new TypeError("unexpected stats reply");
      return { minutes: rows(flat, 0, split, true), totals: rows(flat, split + 1, flat.length, false) };
    },
    deadLetterCounts: (queues) => Promise.all(queues.map(deadLetters)),
  };
}
