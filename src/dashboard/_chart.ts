/**
 * Internal: the overview's chart — runs succeeded and failed per minute over the last hour, from
 * the store's per-minute statistics, drawn as an SVG on the server (no chart script to ship; it
 * reads without JavaScript and passes the CSP: presentation attributes, no style).
 *
 * @module
 */
import { html } from "hono/html";
import type { StatsRow } from "../contracts.ts";
import type { Html } from "./_html.ts";

/** One minute of the chart. */
export interface MinutePoint {
  minute: number;
  succeeded: number;
  failed: number;
}

/** The per-minute series of the last `minutes` minutes ending at `nowMinute` (oldest first). */
export function series(rows: readonly StatsRow[], nowMinute: number, minutes = 60): MinutePoint[] {
  const first = nowMinute - minutes + 1;
  const points: MinutePoint[] = [];
  for (let m = first; m <= nowMinute; m++) points.push({ minute: m, succeeded: 0, failed: 0 });
  for (const row of rows) {
    const p = points[row.minute - first];
    if (p === undefined) continue;
    p.succeeded += row.values.s ?? 0;
    p.failed += row.values.f ?? 0;
  }
  return points;
}

const W = 720;
const H = 160;
const PAD = 28;

/** The chart: bars of succeeded runs, failed ones stacked in red, and the failure rate as a line. */
export function chart(points: readonly MinutePoint[]): Html {
  const max = Math.max(1, ...points.map((p) => p.succeeded + p.failed));
  const slot = (W - PAD) / Math.max(1, points.length);
  const y = (n: number) => H - PAD - (n / max) * (H - 2 * PAD);
  const total = points.reduce((a, p) => a + p.succeeded + p.failed, 0);
  const failed = points.reduce((a, p) => a + p.failed, 0);
  const bars = points.map((p, i) => {
    const x = PAD + i * slot;
    const ok = html`<rect class="ok" x="${x.toFixed(1)}" y="${y(p.succeeded).toFixed(1)}" width="${Math.max(1, slot - 1).toFixed(1)}" height="${(H - PAD - y(p.succeeded)).toFixed(1)}"><title>${new Date(p.minute * 60_000).toISOString().slice(11, 16)} UTC: ${p.succeeded} succeeded, ${p.failed} failed</title></rect>`;
    if (p.failed === 0) return ok;
    const top = y(p.succeeded + p.failed);
    return html`${ok}<rect class="bad" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${Math.max(1, slot - 1).toFixed(1)}" height="${(y(p.succeeded) - top).toFixed(1)}"></rect>`;
  });
  const rate = points
    .map((p, i) => {
      const n = p.succeeded + p.failed;
      const r = n === 0 ? 0 : p.failed / n;
      return `${(PAD + i * slot + slot / 2).toFixed(1)},${(H - PAD - r * (H - 2 * PAD)).toFixed(1)}`;
    })
    .join(" ");
  const rateText = total === 0 ? "no runs" : `${((failed / total) * 100).toFixed(1)} % failed`;
  return html`<figure class="chart">
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Runs per minute, last hour: ${total} ended, ${rateText}">
<line class="axis" x1="${PAD}" y1="${H - PAD}" x2="${W}" y2="${H - PAD}"></line>
<text class="label" x="2" y="${PAD}">${max}</text><text class="label" x="2" y="${H - PAD}">0</text>
<text class="label" x="${PAD}" y="${H - 8}">−60 min</text><text class="label" x="${W - 40}" y="${H - 8}">now</text>
${bars}
<polyline class="rate" points="${rate}"></polyline>
</svg>
<figcaption>Runs ended per minute, last hour: <b data-total>${total}</b>, ${rateText} <span class="key"><i class="k-ok"></i>succeeded <i class="k-bad"></i>failed <i class="k-rate"></i>failure rate (0–100 %)</span></figcaption>
</figure>`;
}
