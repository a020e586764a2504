/**
 * `app.inspect()`, `app.control` and `app.metrics()`: what operators see and steer, built on the
 * broker's queue ops and the store's operators' part (registry, control, statistics).
 *
 * @module
 */
import type { Broker, Clock, DeadLetter, OpsStore, QueueOps, Store, WorkerInfo } from "../contracts.ts";
import { CeleriacError } from "../errors.ts";
import type { Emitter } from "../events.ts";
import { checkConcurrency } from "../execute/worker-options.ts";
import { breakerInfo } from "../flow/breaker.ts";
import { type BreakerTask, breakersOf } from "../flow/breaker-options.ts";
import type { Run } from "../task.ts";
import { STATS_TTL_MS } from "./heartbeat.ts";
import { type MetricsSnapshot, renderMetrics, taskMetrics } from "./metrics.ts";
import { quantile, type StatsCollector, sumRows, type TaskCounts } from "./stats.ts";
import type {
  ActiveRun,
  BulkProgress,
  Control,
  Inspector,
  Percentiles,
  QueueInfo,
  ScheduleInfo,
  TaskStats,
} from "./types.ts";

/** What inspect and control need from their app. */
export interface OpsHost {
  readonly broker: Broker;
  readonly store: Store;
  readonly clock: Clock;
  readonly events: Emitter;
  /** What this process counted and has not reported. */
  readonly stats: StatsCollector;
  /** The queues the app's tasks use. */
  queues(): string[];
  getRun(id: string, queue?: string): Run<unknown>;
  replay(id: string): Promise<unknown>;
  schedules(): Promise<ScheduleInfo[]>;
  /** The app's tasks (their circuit breakers). */
  readonly tasks: ReadonlyMap<string, BreakerTask>;
}

const DEFAULT_WINDOW_MS = 15 * 60_000;
/** Dead letters looked at per pass of a bulk replay. */
const REPLAY_PAGE = 1_000;

function opsOf(host: OpsHost): OpsStore {
  const ops = host.store.ops;
  if (ops === undefined)
    throw new CeleriacError("this store keeps no worker registry or statistics (store.ops)");
  return ops;
}

function queueOpsOf(host: OpsHost): QueueOps {
  const q = host.broker.queueOps;
  if (q === undefined) {
    throw new CeleriacError("this broker has no queue ops (a push broker's queues live at its provider)");
  }
  return q;
}

/** Reports this process's statistics now, so what it counted is in what is read next. */
async function flush(host: OpsHost, ops: OpsStore): Promise<void> {
  if (host.stats.empty) return;
  const rows = host.stats.take();
  try {
    await ops.report({ ttlMs: 1, stats: rows, statsTtlMs: STATS_TTL_MS });
  } catch (error) {
    host.stats.restore(rows);
    throw error;
  }
}

function percentiles(counts: readonly number[], sumMs: number): Percentiles {
  const n = counts.reduce((a, b) => a + b, 0);
  return {
    p50: quantile(counts, 0.5),
    p90: quantile(counts, 0.9),
    p99: quantile(counts, 0.99),
    mean: n === 0 ? null : sumMs / n,
  };
}

function taskStats(c: TaskCounts): TaskStats {
  return {
    task: c.task,
    queue: c.queue,
    succeeded: c.succeeded,
    failed: c.failed,
    retried: c.retried,
    rejected: c.rejected,
    expired: c.expired,
    runtime: percentiles(c.runtime, c.runtimeSumMs),
    wait: percentiles(c.wait, c.waitSumMs),
  };
}

async function queueInfos(host: OpsHost, workers: readonly WorkerInfo[]): Promise<QueueInfo[]> {
  const q = queueOpsOf(host);
  const names = [...new Set([...host.queues(), ...(await q.known())])].sort();
  const ops = host.store.ops;
  const [counts, dead] = await Promise.all([
    q.counts(names),
    ops === undefined ? Promise.resolve(names.map(() => 0)) : ops.deadLetterCounts(names),
  ]);
  const now = host.clock.now();
  return counts.map((c, i) => ({
    ...c,
    deadLetters: dead[i] ?? 0,
    oldestWaitingAgeMs: c.oldestWaitingAt === null ? null : Math.max(0, now - c.oldestWaitingAt),
    workers: workers.filter((w) => w.queues.includes(c.queue)).length,
  }));
}

/** The app's inspector. */
export function inspector(host: OpsHost): Inspector {
  return {
    workers: async () => opsOf(host).workers(),
    async active() {
      const workers = await opsOf(host).workers();
      const entries = workers.flatMap((w) => w.active.map((a) => ({ worker: w.id, ...a })));
      return Promise.all(
        entries.map(async (a): Promise<ActiveRun> => {
          const record = await host.getRun(a.id, a.queue).status();
          const run: ActiveRun = {
            id: a.id,
            queue: a.queue,
            task: record?.task ?? null,
            worker: a.worker,
            since: a.since,
            attempt: record?.attempt ?? null,
          };
          if (record?.progress !== undefined) run.progress = record.progress;
          return run;
        }),
      );
    },
    async queues() {
      const workers = host.store.ops === undefined ? [] : await host.store.ops.workers();
      return queueInfos(host, workers);
    },
    async stats(options = {}) {
      const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
      if (!(windowMs > 0) || windowMs > STATS_TTL_MS) {
        throw new RangeError(`windowMs must be in (0, ${STATS_TTL_MS}], got ${String(windowMs)}`);
      }
      const ops = opsOf(host);
      await flush(host, ops);
      const since = Math.floor((host.clock.now() - windowMs) / 60_000) + 1;
      const { minutes } = await ops.stats(since);
      return sumRows(minutes.filter((r) => r.minute >= since)).map(taskStats);
    },
    schedules: () => host.schedules(),
    async breakers() {
      const now = host.clock.now();
      const named = [...breakersOf(host.tasks.values()).values()];
      named.sort((a, b) => (a.breaker.name < b.breaker.name ? -1 : a.breaker.name > b.breaker.name ? 1 : 0));
      return Promise.all(named.map((n) => breakerInfo(host.store, now, n.breaker, n.tasks)));
    },
  };
}

/** The Prometheus text of the app's metrics (see `ops/metrics.ts`). */
export async function metricsText(host: OpsHost): Promise<string> {
  const ops = opsOf(host);
  await flush(host, ops);
  const [workers, { totals }] = await Promise.all([ops.workers(), ops.stats(Number.MAX_SAFE_INTEGER)]);
  const queues = host.broker.queueOps === undefined ? [] : await queueInfos(host, workers);
  const snapshot: MetricsSnapshot = {
    tasks: taskMetrics(sumRows(totals)),
    queues: queues.map((q) => ({
      queue: q.queue,
      waiting: q.waiting,
      scheduled: q.scheduled,
      retrying: q.retrying,
      limited: q.limited,
      active: q.active,
      paused: q.paused,
      deadLetters: q.deadLetters,
      oldestWaitingAgeMs: q.oldestWaitingAgeMs,
      workers: q.workers,
    })),
    workers: {
      worker: workers.filter((w) => w.kind === "worker").length,
      push: workers.filter((w) => w.kind === "push").length,
    },
    at: host.clock.now(),
  };
  return renderMetrics(snapshot);
}

function progressOf(onProgress: BulkProgress | undefined) {
  return (done: number, total: number | null) => {
    try {
      onProgress?.({ done, total });
    } catch {
      // a progress callback's error must not stop the operation
    }
  };
}

/** The app's control. */
export function control(host: OpsHost): Control {
  return {
    pause: async (queue) => queueOpsOf(host).pause(queue),
    resume: async (queue) => queueOpsOf(host).resume(queue),
    purge: async (queue) => queueOpsOf(host).purge(queue),
    async cancel({ queue, task, onProgress }) {
      const q = queueOpsOf(host);
      // Listed first, then cancelled: cancelling while paging would shift the pages.
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await q.list(queue, { cursor, limit: 500 });
        for (const r of page.runs) {
          if (r.state !== "active" && (task === undefined || r.task === task)) ids.push(r.id);
        }
        cursor = page.cursor;
      } while (cursor !== null);
      const report = progressOf(onProgress);
      let cancelled = 0;
      for (let i = 0; i < ids.length; i++) {
        if (await host.getRun(ids[i]!, queue).cancel()) cancelled++;
        report(i + 1, ids.length);
      }
      return cancelled;
    },
    async replay({ task, reason, all, queue, onProgress }) {
      if (all !== true && task === undefined && reason === undefined && queue === undefined) {
        throw new TypeError("replay needs task, reason or queue to match, or all: true");
      }
      const matches = (d: DeadLetter) =>
        (task === undefined || d.task === task) &&
        (reason === undefined || d.reason.startsWith(reason)) &&
        (queue === undefined || d.queue === queue);
      const report = progressOf(onProgress);
      const tried = new Set<string>();
      let replayed = 0;
      let total: number | null | undefined;
      for (;;) {
        const listed = await host.store.listDeadLetters({ limit: REPLAY_PAGE });
        const page = listed.filter((d) => matches(d) && !tried.has(d.id));
        // The first list holds them all when it is not full: then the total is known.
        total ??= listed.length < REPLAY_PAGE ? page.length : null;
        if (page.length === 0) return replayed;
        for (const d of page) {
          tried.add(d.id);
          try {
            await host.replay(d.id);
            replayed++;
          } catch (error) {
            host.events.emit("error", { error, where: `replaying dead letter ${d.id}` });
          }
          report(tried.size, total);
        }
      }
    },
    concurrency: async (workerId, concurrency) => {
      checkConcurrency(concurrency);
      return opsOf(host).control(workerId, { type: "concurrency", concurrency });
    },
    shutdown: async (workerId) => opsOf(host).control(workerId, { type: "shutdown" }),
  };
}
