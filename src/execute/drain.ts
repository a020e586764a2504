/**
 * Running queued tasks without a worker: `app.drain()` in tests, and eager mode, which runs each
 * enqueue to its end before it resolves.
 *
 * @module
 */
import type { Broker, Delivery } from "../contracts.ts";
import type { Executor } from "./executor.ts";

/** Runs everything queued and due on a pull broker; resolves with how many deliveries ran. */
export async function drain(
  broker: Broker,
  executor: Executor,
  queues: readonly string[],
  concurrency: number,
): Promise<number> {
  if (!broker.receive) throw new TypeError("drain() needs a pull broker (memory or redis)");
  let processed = 0;
  for (;;) {
    const deliveries = await broker.receive({ queues, max: concurrency, leaseMs: 300_000, waitMs: 0 });
    if (deliveries.length === 0) return processed;
    await Promise.all(deliveries.map((d) => executor.process(d)));
    processed += deliveries.length;
  }
}

/** Eager mode: processes until nothing is left (waiting out delays only when asked to). */
export async function runEager(broker: Broker, executor: Executor, queues: readonly string[]): Promise<void> {
  for (;;) {
    const pending = broker.stats?.();
    const waitMs =
      broker.honorDelays && pending !== undefined && pending.ready + pending.delayed > 0 ? 3_600_000 : 0;
    const deliveries: Delivery[] = await broker.receive!({ queues, max: 1, leaseMs: 3_600_000, waitMs });
    if (deliveries.length === 0) return;
    for (const d of deliveries) await executor.process(d);
  }
}
