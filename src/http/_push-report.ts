/**
 * Internal: push deployments have no long-lived worker, so each handler instance (an isolate, a
 * serverless instance) reports itself to the registry as a "push" worker after the deliveries it
 * serves — at most once per interval, off the delivery's path (`waitUntil` where the platform has
 * it) — and drops out three intervals after its last delivery.
 *
 * @module
 */
import type { Clock, OpsStore, Outcome, WorkerInfo } from "../contracts.ts";
import type { Emitter } from "../events.ts";
import { processId, runtimeName } from "../ops/_runtime.ts";
import { MISSED_BEATS, reporterId, STATS_TTL_MS } from "../ops/heartbeat.ts";
import type { StatsCollector } from "../ops/stats.ts";
import { VERSION } from "../version.ts";

/** Lets work outlive the response (Cloudflare's and Vercel's `waitUntil`). */
export interface WaitUntil {
  waitUntil?(promise: Promise<unknown>): void;
}

/** Counts an instance's deliveries and reports them. */
export class PushReporter {
  readonly #ops: OpsStore;
  readonly #clock: Clock;
  readonly #events: Emitter;
  readonly #stats: StatsCollector | undefined;
  readonly #intervalMs: number;
  readonly #id = reporterId(null, processId());
  readonly #queues = new Set<string>();
  readonly #counters = { processed: 0, succeeded: 0, failed: 0, retried: 0 };
  #startedAt = 0;
  #reportedAt = Number.NEGATIVE_INFINITY;
  #inFlight: Promise<void> | undefined;

  constructor(
    ops: OpsStore,
    clock: Clock,
    events: Emitter,
    stats: StatsCollector | undefined,
    intervalMs: number,
  ) {
    this.#ops = ops;
    this.#clock = clock;
    this.#events = events;
    this.#stats = stats;
    this.#intervalMs = intervalMs;
  }

  /** Counts one delivery's outcome; reports when the last report is an interval old. */
  served(queue: string | undefined, outcome: Outcome, ctx: WaitUntil | undefined): void {
    const now = this.#clock.now();
    if (this.#startedAt === 0) this.#startedAt = now;
    if (queue !== undefined) this.#queues.add(queue);
    const c = this.#counters;
    c.processed++;
    if (outcome.kind === "succeeded") c.succeeded++;
    else if (outcome.kind === "retrying") c.retried++;
    else if (outcome.kind === "failed" || outcome.kind === "rejected") c.failed++;
    if (now - this.#reportedAt < this.#intervalMs || this.#inFlight !== undefined) return;
    this.#reportedAt = now;
    const done = this.#report(now).finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = done;
    ctx?.waitUntil?.(done);
  }

  async #report(now: number): Promise<void> {
    const stats = this.#stats;
    const rows = stats === undefined || stats.empty ? [] : stats.take();
    const info: WorkerInfo = {
      id: this.#id,
      kind: "push",
      hostname: null,
      runtime: runtimeName(),
      pid: processId(),
      queues: [...this.#queues],
      concurrency: 0,
      prefetch: 0,
      startedAt: this.#startedAt,
      version: VERSION,
      beatAt: now,
      heartbeatMs: this.#intervalMs,
      state: "running",
      counters: { ...this.#counters },
      active: [],
    };
    try {
      await this.#ops.report({
        worker: info,
        ttlMs: this.#intervalMs * MISSED_BEATS,
        stats: rows,
        statsTtlMs: STATS_TTL_MS,
      });
    } catch (error) {
      if (rows.length > 0) stats?.restore(rows);
      this.#events.emit("error", { error, where: "push instance report" });
    }
  }
}
