/** The small arithmetic tasks the workflow suites compose, registered on a given app. */
import * as v from "valibot";
import { type Broker, processDelivery } from "../../backend.ts";
import type { App } from "../../mod.ts";

/** Registers `add`, `double` and `sum` on `app`. */
export function mathTasks(app: App) {
  const add = app.task({
    name: "add",
    input: v.object({ a: v.number(), b: v.number() }),
    run: ({ a, b }) => a + b,
  });
  const double = app.task({ name: "double", input: v.number(), run: (n) => n * 2 });
  const sum = app.task({
    name: "sum",
    input: v.array(v.number()),
    run: (ns) => ns.reduce((x, y) => x + y, 0),
  });
  return { add, double, sum };
}

/** Processes every due delivery twice, as a broker may after a lost ack, until none is left. */
export async function deliverEachTwice(app: App, broker: Broker): Promise<void> {
  for (;;) {
    const ds = (await broker.receive?.({ queues: ["default"], max: 10, leaseMs: 60_000, waitMs: 0 })) ?? [];
    if (ds.length === 0) return;
    for (const d of ds) {
      await processDelivery(app, d);
      await processDelivery(app, { ...d, receipt: `${d.receipt}-dup` });
    }
  }
}
