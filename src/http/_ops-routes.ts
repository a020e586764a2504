/**
 * Internal: the operators' routes of the handler — `GET /metrics` (Prometheus text) and the
 * worker part of `GET /health` (live workers per queue, oldest wait).
 *
 * @module
 */
import type { App } from "../app.ts";
import { METRICS_CONTENT_TYPE } from "../ops/metrics.ts";
import type { Config } from "./options.ts";
import { failure, problem, unauthorized } from "./_http.ts";

/** `GET /metrics`: the app's metrics, for a bearer of `token` or `metricsToken`. */
export async function metrics(app: App, config: Config, request: Request): Promise<Response> {
  if (config.metrics === undefined) {
    return problem(404, "NotFound", "the metrics route is not enabled (no token or metricsToken)");
  }
  if (!(await config.metrics(request.headers.get("authorization")))) return unauthorized();
  try {
    const text = await app.metrics();
    return new Response(text, { status: 200, headers: { "content-type": METRICS_CONTENT_TYPE } });
  } catch (error) {
    return failure(error);
  }
}

/** One queue in the health answer. */
export interface QueueHealth {
  queue: string;
  waiting: number;
  paused: boolean;
  workers: number;
  oldestWaitingAgeMs: number | null;
}

/**
 * The worker part of the health answer: each queue's waiting work and live workers; `ok` false
 * when `requireWorkers` and a queue with waiting work (not paused) has none. Undefined when the
 * backends keep no registry or queue counts.
 */
export async function workerHealth(
  app: App,
  config: Config,
): Promise<{ ok: boolean; workers: number; queues: QueueHealth[]; error?: string } | undefined> {
  if (app.store.ops === undefined || app.broker.queueOps === undefined) return undefined;
  const inspect = app.inspect();
  const [workers, queues] = await Promise.all([inspect.workers(), inspect.queues()]);
  const out = queues.map((q) => ({
    queue: q.queue,
    waiting: q.waiting,
    paused: q.paused,
    workers: q.workers,
    oldestWaitingAgeMs: q.oldestWaitingAgeMs,
  }));
  const stranded = out.filter((q) => q.waiting > 0 && !q.paused && q.workers === 0).map((q) => q.queue);
  const ok = !config.requireWorkers || stranded.length === 0;
  const result: { ok: boolean; workers: number; queues: QueueHealth[]; error?: string } = {
    ok,
    workers: workers.length,
    queues: out,
  };
  if (!ok) result.error = `waiting work and no live worker on: ${stranded.join(", ")}`;
  return result;
}
