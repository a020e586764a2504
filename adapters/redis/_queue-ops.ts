/**
 * Operators' view of the Redis backend's queues: counts (counters and set sizes the queue script
 * keeps), pause and resume, purge and listing, each one queue script call (or a few pages).
 *
 * @module
 */
import type { QueuedRun, QueueCounts, QueueOps } from "../../backend.ts";
import { type PurgePage, QueueCall } from "./_call.ts";
import { int, list, text } from "./_client.ts";

/** What the queue ops need from their backend. */
export interface QueueOpsHost {
  readonly prefix: string;
  run(call: QueueCall): Promise<unknown[]>;
  /** Every known queue. */
  queues(): Promise<string[]>;
  /** Wakes this process's waiting consumers (a resumed queue). */
  wake(): void;
}

/** How many messages one purge or list call handles. */
const PAGE = 500;
/** How long the record of a purged run is kept (it is marked cancelled). */
const PURGED_TTL_MS = 86_400_000;

const STATES: Record<string, QueuedRun["state"]> = {
  w: "waiting",
  s: "scheduled",
  y: "retrying",
  l: "limited",
  a: "active",
};

/** The task field of a run record (JSON text), or null when there is none. */
function taskName(json: string): string | null {
  if (json === "") return null;
  try {
    const name: unknown = JSON.parse(json);
    return typeof name === "string" ? name : null;
  } catch {
    return null;
  }
}

async function one(host: QueueOpsHost, queue: string, add: (c: QueueCall) => void): Promise<unknown> {
  const c = new QueueCall(host.prefix, queue);
  add(c);
  const [reply] = await host.run(c);
  return reply;
}

/** The dead letters of one queue: the sixth field of its counts. */
export async function deadLetterCount(host: QueueOpsHost, queue: string): Promise<number> {
  return int(list(await one(host, queue, (c) => c.counts()), "queue counts")[5], "dead letters");
}

/** The queue ops of a Redis backend. */
export function redisQueueOps(host: QueueOpsHost): QueueOps {
  return {
    known: () => host.queues(),
    counts: (queues) =>
      Promise.all(
        queues.map(async (queue): Promise<QueueCounts> => {
          const r = list(await one(host, queue, (c) => c.counts()), "queue counts").map((v) =>
            int(v, "a count"),
          );
          const oldest = r[6] ?? -1;
          return {
            queue,
            waiting: r[0] ?? 0,
            scheduled: r[1] ?? 0,
            retrying: r[2] ?? 0,
            limited: r[7] ?? 0,
            active: r[3] ?? 0,
            paused: r[4] === 1,
            oldestWaitingAt: oldest < 0 ? null : oldest,
          };
        }),
      ),
    pause: async (queue) => {
      await one(host, queue, (c) => c.pause(true));
    },
    resume: async (queue) => {
      await one(host, queue, (c) => c.pause(false));
      host.wake();
    },
    purge: async (queue) => {
      let removed = 0;
      let page: PurgePage | undefined;
      do {
        const from = page;
        const r = list(await one(host, queue, (c) => c.purge(PAGE, PURGED_TTL_MS, from)), "purge");
        removed += int(r[0], "purged");
        const phase = text(r[3], "purge phase");
        page = {
          back: text(r[1], "purge back"),
          at: text(r[2], "purge time"),
          phase: phase === "r" || phase === "t" || phase === "p" ? phase : "",
          cursor: text(r[4], "purge cursor"),
        };
      } while (page.phase !== "");
      return removed;
    },
    list: async (queue, options) => {
      const limit = Math.max(1, Math.min(Math.floor(options.limit), PAGE));
      const cursor = options.cursor ?? "r:0";
      const m = /^(?:([rt]):(\d+)|(p):(|\d+:[\s\S]*))$/.exec(cursor);
      if (m === null) throw new TypeError(`not a cursor of this backend: ${cursor}`);
      const phase = (m[1] ?? m[3]) as "r" | "t" | "p";
      const r = list(
        await one(host, queue, (c) => c.list(phase, (m[2] ?? m[4]) as string, limit)),
        "queue page",
      );
      const runs: QueuedRun[] = [];
      for (let i = 2; i + 3 < r.length; i += 4) {
        const task = taskName(text(r[i + 1], "task"));
        const at = int(r[i + 3], "time");
        runs.push({
          id: text(r[i], "run id"),
          task,
          state: STATES[text(r[i + 2], "state code")] ?? "waiting",
          at: at < 0 ? null : at,
        });
      }
      const next = text(r[0], "page phase");
      return { runs, cursor: next === "" ? null : `${next}:${text(r[1], "page cursor")}` };
    },
  };
}
