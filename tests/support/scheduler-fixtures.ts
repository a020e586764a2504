/** Shared helpers of the scheduler suites: time helpers and an app on a manual clock. */
import * as v from "valibot";
import { memory } from "../../adapters/memory/mod.ts";
import { createApp, manualClock, type TickResult } from "../../mod.ts";

export const MIN = 60_000;
export const at = (iso: string): number => Date.parse(iso);
export const iso = (d: Date): string => d.toISOString().replace(".000Z", "Z");
export const ticksOf = (r: TickResult, reason?: string): string[] =>
  reason === undefined
    ? r.enqueued.map((e) => iso(e.tick))
    : r.skipped.filter((s) => s.reason === reason).map((s) => iso(s.tick));

/** An app on a manual clock with one task that records the tick it ran for. */
export function tickApp(start: number) {
  const clock = manualClock(start);
  const app = createApp({ broker: memory({ clock }), clock });
  const ran: number[] = [];
  const beat = app.task({
    name: "beat",
    input: v.object({ tick: v.number() }),
    run: ({ tick }) => {
      ran.push(tick);
      return tick;
    },
  });
  const input = (tick: Date) => ({ tick: tick.getTime() });
  return { clock, app, ran, beat, input };
}
