/**
 * Reports to the worker registry: a worker (or a push handler instance) sends what it is and
 * what it counted every beat, with the task statistics the app gathered meanwhile, and takes the
 * control commands waiting for it. The registry forgets it after three missed beats.
 *
 * @module
 */
import type { Clock, ControlCommand, OpsStore, WorkerInfo } from "../contracts.ts";
import type { Emitter } from "../events.ts";
import type { StatsCollector } from "./stats.ts";

/** How long the store keeps per-minute statistics (the longest `inspect().stats()` window). */
export const STATS_TTL_MS = 24 * 3_600_000;
/** A reporter is forgotten after this many missed beats. */
export const MISSED_BEATS = 3;

/** What a reporter needs. */
export interface ReporterHost {
  readonly ops: OpsStore;
  readonly clock: Clock;
  readonly events: Emitter;
  /** The app's statistics not reported yet (taken with each report, put back when it fails). */
  readonly stats?: StatsCollector | undefined;
}

/** A unique id for a worker: its host (or runtime), process and a random part. */
export function reporterId(hostname: string | null, pid: number | null): string {
  const random = crypto.randomUUID().slice(0, 8);
  return `${hostname ?? "worker"}:${pid ?? "-"}:${random}`;
}

/**
 * Sends reports: `beat()` now, `start()` every `intervalMs`, `stop()` deregisters. Reports never
 * overlap (a slow store skips a beat instead of piling them up).
 */
export class Reporter {
  readonly #host: ReporterHost;
  readonly #info: () => WorkerInfo;
  readonly #onCommand: (command: ControlCommand) => void;
  readonly intervalMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #inFlight: Promise<void> | undefined;

  constructor(
    host: ReporterHost,
    intervalMs: number,
    info: () => WorkerInfo,
    onCommand: (command: ControlCommand) => void,
  ) {
    this.#host = host;
    this.intervalMs = intervalMs;
    this.#info = info;
    this.#onCommand = onCommand;
  }

  /** Reports now (and every interval from then on). */
  start(): void {
    if (this.#timer !== undefined) return;
    void this.beat();
    this.#timer = setInterval(() => void this.beat(), this.intervalMs);
    // A timer must not keep a runtime alive on its own (Node, Bun, Deno all have unref).
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Sends one report unless one is on its way; resolves when it is done. */
  beat(): Promise<void> {
    this.#inFlight ??= this.#report().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #report(): Promise<void> {
    const stats = this.#host.stats;
    const rows = stats === undefined || stats.empty ? [] : stats.take();
    let commands: ControlCommand[];
    try {
      commands = await this.#host.ops.report({
        worker: this.#info(),
        ttlMs: this.intervalMs * MISSED_BEATS,
        stats: rows,
        statsTtlMs: STATS_TTL_MS,
      });
    } catch (error) {
      if (rows.length > 0) stats?.restore(rows);
      this.#host.events.emit("error", { error, where: "worker heartbeat" });
      return;
    }
    for (const command of commands) {
      try {
        this.#onCommand(command);
      } catch (error) {
        this.#host.events.emit("error", { error, where: `control command ${command.type}` });
      }
    }
  }

  /** Stops beating; with `forget`, a last report of the statistics and removal from the registry. */
  async stop(id: string): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
    const ops = this.#host.ops;
    const stats = this.#host.stats;
    try {
      if (stats !== undefined && !stats.empty) {
        const rows = stats.take();
        await ops.report({ ttlMs: 1, stats: rows, statsTtlMs: STATS_TTL_MS }).catch((error: unknown) => {
          stats.restore(rows);
          throw error;
        });
      }
      await ops.forget(id);
    } catch (error) {
      this.#host.events.emit("error", { error, where: "worker deregistration" });
    }
  }
}
