/**
 * Internal: a run's rate and concurrency limits as QStash flow control (`Upstash-Flow-Control-Key`
 * with `parallelism`, `rate` and `period`), which QStash enforces across every delivery of a key.
 *
 * QStash takes one flow-control key per message. Limits that share their key (or a run with one
 * limit) go to QStash whole. When the two keys differ, the concurrency limit goes to QStash and
 * the rate limit is enforced by the handler as each delivery arrives (`Delivery.rateLimit`), from
 * the app's store. That way round because a concurrency slot must follow its delivery: QStash
 * holds a place for exactly as long as the call is in flight, and a handler instance that dies
 * loses its place with its connection or at the call's timeout, where slots kept in the store
 * would have to be released by the handler and would leak until a TTL when it dies; and a run
 * over a concurrency limit cannot know when a slot frees, so the handler could only poll for one
 * with re-publishes. A rate limit holds nothing while the run runs: the handler reserves a turn
 * (one compare-and-set of the key's state in the store) and sends a run over it back for exactly
 * that time, and a handler that dies after reserving leaves a turn unused, never an extra start.
 * Kept the other way, QStash's rate would also count every re-publish of a run held back by the
 * handler's concurrency check against the rate.
 *
 * @module
 */
import type { FlowControl } from "@upstash/qstash";
import type { Message, MessageLimits } from "../../backend.ts";

/** The rate limit the handler enforces for a run with these limits, when QStash cannot take it. */
export function rateAtDelivery(limits: MessageLimits | undefined): MessageLimits["rate"] {
  const rate = limits?.rate;
  const concurrency = limits?.concurrency;
  return rate !== undefined && concurrency !== undefined && rate.key !== concurrency.key ? rate : undefined;
}

/** The flow control of a message's limits, or undefined when it has none. */
export function flowOfLimits(message: Message): FlowControl | undefined {
  const limits = message.limits;
  if (limits === undefined) return undefined;
  const { concurrency } = limits;
  const rate = rateAtDelivery(limits) === undefined ? limits.rate : undefined;
  if (rate === undefined) {
    return concurrency === undefined
      ? undefined
      : { key: encodeURIComponent(concurrency.key), parallelism: concurrency.limit };
  }
  // QStash counts the period in whole seconds: a shorter or fractional one rounds up, and the
  // rate scales with it (never above the limit's own rate).
  const seconds = Math.max(1, Math.ceil(rate.periodMs / 1_000));
  const perPeriod = Math.max(1, Math.floor((rate.limit * seconds * 1_000) / rate.periodMs));
  const flow: FlowControl = { key: encodeURIComponent(rate.key), rate: perPeriod, period: seconds };
  if (concurrency !== undefined) (flow as { parallelism?: number }).parallelism = concurrency.limit;
  return flow;
}
