/**
 * Task and queue metrics in the Prometheus text exposition format, version 0.0.4: counters of
 * attempt outcomes, runtime and wait histograms per task, gauges per queue and of workers.
 *
 * Rules the output keeps (so any scraper parses it):
 * - names follow Prometheus conventions: `<prefix>_…`, base unit seconds, `_total` on counters;
 * - each family is written once, as `# HELP`, `# TYPE`, then its samples, and never interleaves
 *   with another; a family without samples is left out (an empty snapshot still has
 *   `<prefix>_workers`, whose two samples are always there);
 * - label values are escaped (`\\`, `\"`, `\n`); numbers are written as JavaScript writes them
 *   (integers as they are), with `NaN`, `+Inf` and `-Inf` spelled as the format wants;
 * - histogram buckets are cumulative, end with `le="+Inf"` equal to `_count`, and their bounds
 *   are converted from milliseconds to seconds without float noise (`0.0001`, not
 *   `0.00010000000000000002`);
 * - no sample carries a timestamp: Prometheus stamps a scrape itself, and explicit timestamps
 *   defeat its staleness handling. `MetricsSnapshot.at` is therefore not written.
 *
 * @module
 */
import { BOUNDS_MS, type TaskCounts } from "./stats.ts";

/** The `Content-Type` of a response carrying {@link renderMetrics} output. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A histogram as counted: per-bucket counts, not cumulative; times in milliseconds. */
export interface Histogram {
  /** Upper bounds (ms) of the buckets, strictly ascending, finite, without the +Inf bucket. */
  bounds: readonly number[];
  /** Count per bucket (not cumulative): `bounds.length + 1` entries, the last above every bound. */
  counts: readonly number[];
  /** Sum of every observed value (ms). */
  sumMs: number;
}

/** One task on one queue: outcome counts and histograms. */
export interface TaskMetrics {
  task: string;
  queue: string;
  /** Attempts that succeeded. */
  succeeded: number;
  /** Attempts that failed with no retry left (the run failed and was dead-lettered). */
  failed: number;
  /** Attempts that failed and will run again. */
  retried: number;
  /** Deliveries that could not run (undecodable payload, unknown task): dead-lettered. */
  rejected: number;
  /** Runs whose expiry passed before an attempt started: not run, ended `expired` (absent: 0). */
  expired?: number;
  /** How long attempts' code ran. */
  runtime: Histogram;
  /** How long attempts waited from when they were due (enqueued, or delay over) to their start. */
  wait: Histogram;
}

/** One queue as the broker and the store count it. */
export interface QueueMetrics {
  queue: string;
  /** Ready to be taken now. */
  waiting: number;
  /** Sent with a delay, not yet due. */
  scheduled: number;
  /** Next attempts of failed runs, not yet due. */
  retrying: number;
  /** Held back by a rate or concurrency limit. */
  limited: number;
  /** Leased by a worker. */
  active: number;
  paused: boolean;
  deadLetters: number;
  /** Age (ms) of the oldest ready message, or null when none waits (written as 0). */
  oldestWaitingAgeMs: number | null;
  /** Live workers serving the queue. */
  workers: number;
}

/** Everything {@link renderMetrics} writes. */
export interface MetricsSnapshot {
  tasks: TaskMetrics[];
  queues: QueueMetrics[];
  /** Live pulling workers, and push instances (HTTP handlers) that reported recently. */
  workers: { worker: number; push: number };
  /** When the snapshot was taken (epoch ms); not written (samples carry no timestamps). */
  at: number;
}

/** Options of {@link renderMetrics}. */
export interface RenderMetricsOptions {
  /**
   * The first part of every metric name: letters, digits and `_`, not starting with a digit or
   * `__` (colons are left to recording rules).
   * @default "celeriac"
   */
  prefix?: string;
}

const PREFIX = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const OUTCOMES = ["succeeded", "failed", "retried", "rejected", "expired"] as const;
const STATES = ["waiting", "scheduled", "retrying", "limited", "active"] as const;

type Labels = ReadonlyArray<readonly [name: string, value: string]>;

/**
 * Writes a snapshot in the Prometheus text format (0.0.4). Families, in order:
 * `<prefix>_tasks_total{task,queue,outcome}` (counter, every outcome also when 0),
 * `<prefix>_task_runtime_seconds{task,queue}` and `<prefix>_task_wait_seconds{task,queue}`
 * (histograms), `<prefix>_queue_messages{queue,state}`, `<prefix>_queue_dead_letters{queue}`,
 * `<prefix>_queue_paused{queue}` (0 or 1), `<prefix>_queue_oldest_waiting_seconds{queue}` (0
 * when nothing waits, so the series never vanishes), `<prefix>_queue_workers{queue}` and
 * `<prefix>_workers{kind}` with kind `worker` or `push` (gauges). Tasks and queues keep the
 * snapshot's order.
 *
 * Throws `RangeError` for a bad prefix, a malformed histogram, or the same task and queue (or
 * the same queue) twice, which would write duplicate series.
 *
 * @example
 * ```ts
 * import { METRICS_CONTENT_TYPE, renderMetrics } from "celeriac";
 * const text = renderMetrics({ tasks: [], queues: [], workers: { worker: 2, push: 0 }, at: Date.now() });
 * // # HELP celeriac_workers Live workers by kind: worker (pulling), push (HTTP handler instances).
 * // # TYPE celeriac_workers gauge
 * // celeriac_workers{kind="worker"} 2
 * // celeriac_workers{kind="push"} 0
 * const response = new Response(text, { headers: { "content-type": METRICS_CONTENT_TYPE } });
 * ```
 */
export function renderMetrics(snapshot: MetricsSnapshot, options: RenderMetricsOptions = {}): string {
  const prefix = options.prefix ?? "celeriac";
  if (!PREFIX.test(prefix) || prefix.startsWith("__"))
    throw new RangeError(
      `prefix must be letters, digits and _, not starting with a digit or __, got ${JSON.stringify(prefix)}`,
    );
  checkUnique(snapshot);
  const out: string[] = [];
  const family = (name: string, type: "counter" | "gauge" | "histogram", help: string, lines: string[]) => {
    if (lines.length === 0) return;
    const full = `${prefix}_${name}`;
    out.push(`# HELP ${full} ${escapeHelp(help)}`, `# TYPE ${full} ${type}`);
    for (const line of lines) out.push(`${full}${line}`);
  };
  const { tasks, queues } = snapshot;
  const taskLabels = (t: TaskMetrics): Labels => [
    ["task", t.task],
    ["queue", t.queue],
  ];

  family(
    "tasks_total",
    "counter",
    "Task attempts by outcome: succeeded; failed (no retry left); retried (failed, runs again); " +
      "rejected (a delivery that could not run); expired (not started before its expiry, not run).",
    tasks.flatMap((t) =>
      OUTCOMES.map((outcome) => sample("", [...taskLabels(t), ["outcome", outcome]], t[outcome] ?? 0)),
    ),
  );
  family(
    "task_runtime_seconds",
    "histogram",
    "How long attempts' code ran.",
    tasks.flatMap((t) => histogram(t.runtime, taskLabels(t), `runtime of ${describe(t)}`)),
  );
  family(
    "task_wait_seconds",
    "histogram",
    "How long attempts waited from when they were due (enqueued, or their delay over) to their start.",
    tasks.flatMap((t) => histogram(t.wait, taskLabels(t), `wait of ${describe(t)}`)),
  );

  const queueLabel = (q: QueueMetrics): Labels => [["queue", q.queue]];
  family(
    "queue_messages",
    "gauge",
    "Messages in a queue by state: waiting (ready), scheduled (delayed), retrying (next attempt " +
      "not due), limited (held back by a rate or concurrency limit), active (leased).",
    queues.flatMap((q) => STATES.map((state) => sample("", [...queueLabel(q), ["state", state]], q[state]))),
  );
  family(
    "queue_dead_letters",
    "gauge",
    "Dead letters kept for a queue.",
    queues.map((q) => sample("", queueLabel(q), q.deadLetters)),
  );
  family(
    "queue_paused",
    "gauge",
    "1 when the queue is paused (nothing is handed out), else 0.",
    queues.map((q) => sample("", queueLabel(q), q.paused ? 1 : 0)),
  );
  family(
    "queue_oldest_waiting_seconds",
    "gauge",
    "Age of the oldest ready message of a queue; 0 when none waits.",
    queues.map((q) =>
      sample("", queueLabel(q), q.oldestWaitingAgeMs === null ? 0 : seconds(q.oldestWaitingAgeMs)),
    ),
  );
  family(
    "queue_workers",
    "gauge",
    "Live workers serving a queue.",
    queues.map((q) => sample("", queueLabel(q), q.workers)),
  );
  family("workers", "gauge", "Live workers by kind: worker (pulling), push (HTTP handler instances).", [
    sample("", [["kind", "worker"]], snapshot.workers.worker),
    sample("", [["kind", "push"]], snapshot.workers.push),
  ]);
  return `${out.join("\n")}\n`;
}

/**
 * Turns per-task counts read back from the store (`sumRows` of `ops/stats.ts`) into
 * {@link TaskMetrics}, with the histograms on {@link BOUNDS_MS}. Keeps their order.
 *
 * @example
 * ```ts
 * import { renderMetrics, taskMetrics } from "celeriac";
 * const { totals } = await store.ops.stats(0); // the operators' store: rows per task and queue
 * const tasks = taskMetrics(sumRows(totals)); // sumRows: ops/stats.ts
 * const text = renderMetrics({ tasks, queues: [], workers: { worker: 1, push: 0 }, at: Date.now() });
 * ```
 */
export function taskMetrics(counts: readonly TaskCounts[]): TaskMetrics[] {
  return counts.map((c) => ({
    task: c.task,
    queue: c.queue,
    succeeded: c.succeeded,
    failed: c.failed,
    retried: c.retried,
    rejected: c.rejected,
    expired: c.expired,
    runtime: { bounds: BOUNDS_MS, counts: c.runtime, sumMs: c.runtimeSumMs },
    wait: { bounds: BOUNDS_MS, counts: c.wait, sumMs: c.waitSumMs },
  }));
}

/** `_bucket` lines (cumulative, then `+Inf`), `_sum` (seconds) and `_count` of one series. */
function histogram(h: Histogram, labels: Labels, where: string): string[] {
  const { bounds, counts } = h;
  if (counts.length !== bounds.length + 1)
    throw new RangeError(
      `${where}: counts must have bounds.length + 1 = ${bounds.length + 1} entries, got ${counts.length}`,
    );
  const lines: string[] = [];
  let total = 0;
  for (let i = 0; i < bounds.length; i++) {
    const bound = bounds[i]!;
    const previous = i === 0 ? -Infinity : bounds[i - 1]!;
    if (!Number.isFinite(bound) || !(bound > previous))
      throw new RangeError(
        `${where}: bounds must be finite and strictly ascending, got ${bounds.join(", ")}`,
      );
    total += counts[i]!;
    lines.push(sample("_bucket", [...labels, ["le", formatNumber(seconds(bound))]], total));
  }
  total += counts[bounds.length]!;
  lines.push(sample("_bucket", [...labels, ["le", "+Inf"]], total));
  lines.push(sample("_sum", labels, seconds(h.sumMs)));
  lines.push(sample("_count", labels, total));
  return lines;
}

function checkUnique(snapshot: MetricsSnapshot): void {
  const tasks = new Set<string>();
  for (const t of snapshot.tasks) {
    const key = `${t.queue}\u0000${t.task}`;
    if (tasks.has(key)) throw new RangeError(`tasks: ${describe(t)} appears twice`);
    tasks.add(key);
  }
  const queues = new Set<string>();
  for (const q of snapshot.queues) {
    if (queues.has(q.queue)) throw new RangeError(`queues: queue ${JSON.stringify(q.queue)} appears twice`);
    queues.add(q.queue);
  }
}

function describe(t: TaskMetrics): string {
  return `task ${JSON.stringify(t.task)} on queue ${JSON.stringify(t.queue)}`;
}

/** One sample line without the family name: suffix, label set, value. */
function sample(suffix: string, labels: Labels, value: number): string {
  const set = labels.map(([name, v]) => `${name}="${escapeLabelValue(v)}"`).join(",");
  return `${suffix}${set === "" ? "" : `{${set}}`} ${formatNumber(value)}`;
}

/** Milliseconds to seconds, rounded to 15 significant digits so `0.1` ms is `0.0001`, not noise. */
function seconds(ms: number): number {
  if (!Number.isFinite(ms)) return ms;
  return Number.parseFloat((ms / 1000).toPrecision(15));
}

/** A sample value as the text format spells it: Go's ParseFloat and Python's float() read it. */
function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n); // shortest round trip: 3, 0.0025, 1e-7, 1e+21; -0 is "0"
}

function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}
