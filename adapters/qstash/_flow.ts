/**
 * Internal: a run's rate and concurrency limits as QStash flow control (`Upstash-Flow-Control-Key`
 * with `parallelism`, `rate` and `period`), which QStash enforces across every delivery of a key.
 *
 * @module
 */
import type { FlowControl } from "@upstash/qstash";
import { CeleriacError, type Message } from "../../backend.ts";

/** The flow control of a message's limits, or undefined when it has none. */
export function flowOfLimits(message: Message): FlowControl | undefined {
  const limits = message.limits;
  if (limits === undefined) return undefined;
  const { rate, concurrency } = limits;
  if (rate !== undefined && concurrency !== undefined && rate.key !== concurrency.key) {
    // QStash keeps one flow-control key per message: two different keys cannot both hold.
    throw new CeleriacError(
      `QStash takes one flow-control key per message: the rate limit's key ${rate.key} and the ` +
        `concurrency limit's key ${concurrency.key} differ`,
    );
  }
  const key = encodeURIComponent((rate ?? concurrency)!.key);
  if (rate === undefined) return { key, parallelism: concurrency!.limit };
  // QStash counts the period in whole seconds: a shorter or fractional one rounds up, and the
  // rate scales with it (never above the limit's own rate).
  const seconds = Math.max(1, Math.ceil(rate.periodMs / 1_000));
  const perPeriod = Math.max(1, Math.floor((rate.limit * seconds * 1_000) / rate.periodMs));
  const flow: FlowControl = { key, rate: perPeriod, period: seconds };
  if (concurrency !== undefined) (flow as { parallelism?: number }).parallelism = concurrency.limit;
  return flow;
}
