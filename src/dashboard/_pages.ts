/**
 * Internal: the overview, queue and workers pages.
 *
 * @module
 */
import { html } from "hono/html";
import type { App } from "../app.ts";
import type { QueuedRun, WorkerInfo } from "../contracts.ts";
import type { QueueInfo } from "../ops/types.ts";
import { chart, series } from "./_chart.ts";
import { action, duration, type Html, link, notice, type PageContext, page, state, time } from "./_html.ts";

const COUNTS = ["waiting", "scheduled", "retrying", "limited", "active", "deadLetters"] as const;

/** A queue's row: its counts carry `data-count`, so live updates change them in place. */
function queueRow(ctx: PageContext, q: QueueInfo): Html {
  return html`<tr data-queue="${q.queue}">
<td><a href="${ctx.base}/queues/${encodeURIComponent(q.queue)}">${q.queue}</a>${q.paused ? html` <span class="badge paused" data-paused>paused</span>` : ""}</td>
${COUNTS.map((c) => html`<td class="num" data-count="${c}">${q[c]}</td>`)}
<td class="num" data-count="workers">${q.workers}</td>
<td data-count="oldest">${duration(q.oldestWaitingAgeMs)}</td>
</tr>`;
}

function queuesTable(ctx: PageContext, queues: readonly QueueInfo[]): Html {
  if (queues.length === 0) return html`<p class="none">No queues yet: enqueue a run.</p>`;
  return html`<table id="queues" class="grid">
<thead><tr><th>Queue</th><th class="num">Waiting</th><th class="num">Scheduled</th><th class="num">Retrying</th><th class="num">Limited</th><th class="num">Active</th><th class="num">Dead</th><th class="num">Workers</th><th>Oldest wait</th></tr></thead>
<tbody>${queues.map((q) => queueRow(ctx, q))}</tbody>
</table>`;
}

/** Per-minute statistics of the last hour, when the store keeps them. */
async function lastHour(app: App): Promise<Html> {
  const ops = app.store.ops;
  if (ops === undefined) return html`<p class="none">This store keeps no statistics.</p>`;
  const nowMinute = Math.floor(app.clock.now() / 60_000);
  const { minutes } = await ops.stats(nowMinute - 59);
  return chart(series(minutes, nowMinute));
}

/** The overview: every queue's counts, live workers, the last hour's throughput and failures. */
export async function overview(app: App, ctx: PageContext, flash: string | null): Promise<Html> {
  const inspect = app.inspect();
  const queues = app.broker.queueOps === undefined ? [] : await inspect.queues();
  const workers = app.store.ops === undefined ? [] : await inspect.workers();
  const body = html`${notice(flash)}
<section class="cards">
<div class="card"><b data-total="workers">${workers.filter((w) => w.kind === "worker").length}</b> live workers</div>
<div class="card"><b>${workers.filter((w) => w.kind === "push").length}</b> push handlers</div>
<div class="card"><b data-total="waiting">${queues.reduce((a, q) => a + q.waiting, 0)}</b> waiting</div>
<div class="card"><b data-total="active">${queues.reduce((a, q) => a + q.active, 0)}</b> active</div>
<div class="card"><b data-total="dead">${queues.reduce((a, q) => a + q.deadLetters, 0)}</b> dead letters</div>
</section>
<h2>Queues</h2>
${app.broker.queueOps === undefined ? html`<p class="none">This broker's queues live at its provider (push delivery): see the runs.</p>` : queuesTable(ctx, queues)}
<h2>Last hour</h2>
${await lastHour(app)}`;
  return page(ctx, "/", "Overview", body);
}

const QUEUE_TABS = [
  "waiting",
  "scheduled",
  "retrying",
  "limited",
  "active",
  "succeeded",
  "failed",
  "cancelled",
] as const;
const ENDED_TABS: ReadonlySet<string> = new Set(["succeeded", "failed", "cancelled"]);

/** What the queue's messages are listed as, in each tab of the queue page. */
function tabOf(value: string | null): (typeof QUEUE_TABS)[number] {
  return (QUEUE_TABS as readonly string[]).includes(value ?? "")
    ? (value as (typeof QUEUE_TABS)[number])
    : "waiting";
}

const PAGE = 50;
/** Messages looked at per queue page when a tab filters them (the listing mixes states). */
const SCAN = 2_000;

async function queuedRuns(app: App, queue: string, tab: string, cursor: string | null) {
  const ops = app.broker.queueOps!;
  const runs: QueuedRun[] = [];
  let next = cursor;
  let looked = 0;
  do {
    const page = await ops.list(queue, { cursor: next, limit: 500 });
    looked += page.runs.length;
    for (const r of page.runs) if (r.state === tab && runs.length < PAGE) runs.push(r);
    next = page.cursor;
  } while (next !== null && runs.length < PAGE && looked < SCAN);
  return { runs, cursor: next };
}

/** A queue: its counts, pause/resume and purge, and its runs per state. */
export async function queuePage(
  app: App,
  ctx: PageContext,
  queue: string,
  params: URLSearchParams,
  flash: string | null,
): Promise<Html> {
  const tab = tabOf(params.get("state"));
  const info =
    app.broker.queueOps === undefined
      ? undefined
      : (await app.inspect().queues()).find((q) => q.queue === queue);
  const q = encodeURIComponent(queue);
  const actions =
    info === undefined
      ? html``
      : html`<div class="actions">
${info.paused ? action(ctx, `/queues/${q}/resume`, "Resume", { name: "resume" }) : action(ctx, `/queues/${q}/pause`, "Pause", { name: "pause" })}
${action(ctx, `/queues/${q}/purge`, "Purge", { name: "purge", danger: true, confirm: `Remove every waiting and delayed run of ${queue}? Their runs end cancelled.` })}
</div>`;
  const tabs = html`<nav class="tabs">${QUEUE_TABS.map(
    (t) =>
      html`<a href="${link(ctx.base, `/queues/${q}`, { state: t })}"${t === tab ? html` aria-current="page"` : ""}>${t}${
        info !== undefined && t in info
          ? html` <span class="n">${String((info as unknown as Record<string, number>)[t])}</span>`
          : ""
      }</a>`,
  )}</nav>`;
  let list: Html;
  if (ENDED_TABS.has(tab)) {
    list = html`<p><a href="${link(ctx.base, "/runs", { queue, state: tab })}">Search the ${tab} runs of ${queue}</a> (from the run history).</p>`;
  } else if (app.broker.queueOps === undefined) {
    list = html`<p class="none">This broker's queues live at its provider.</p>`;
  } else {
    const { runs, cursor } = await queuedRuns(app, queue, tab, params.get("cursor"));
    list = html`<table class="grid runs"><thead><tr><th>Run</th><th>Task</th><th>State</th><th>${tab === "active" ? "Lease until" : "Due"}</th></tr></thead>
<tbody>${runs.map(
      (r) =>
        html`<tr data-run="${r.id}"><td><a href="${link(ctx.base, `/runs/${encodeURIComponent(r.id)}`, { queue })}">${r.id}</a></td><td>${r.task ?? "—"}</td><td>${state(r.state)}</td><td>${time(r.at)}</td></tr>`,
    )}</tbody></table>
${runs.length === 0 ? html`<p class="none">No ${tab} runs.</p>` : ""}
${cursor === null ? "" : html`<p class="pager"><a href="${link(ctx.base, `/queues/${q}`, { state: tab, cursor })}">More →</a></p>`}`;
  }
  const body = html`${notice(flash)}
${info === undefined ? html`<p class="none">No such queue is known.</p>` : queuesTable(ctx, [info])}
${actions}
${tabs}
${list}`;
  return page(ctx, "/", `Queue ${queue}`, body);
}

function workerRow(ctx: PageContext, w: WorkerInfo, now: number): Html {
  const id = encodeURIComponent(w.id);
  const pool = w.pool === undefined ? "—" : `${w.pool.busy}/${w.pool.size} threads`;
  return html`<tr data-worker="${w.id}">
<td><code>${w.id}</code><br><span class="dim">${w.kind} · ${w.runtime} · ${w.hostname ?? "?"}${w.pid === null ? "" : ` pid ${w.pid}`}</span></td>
<td>${w.queues.join(", ")}</td>
<td class="num">${w.concurrency}</td>
<td class="num">${w.active.length}</td>
<td class="num">${w.counters.processed}</td>
<td class="num">${w.counters.failed}</td>
<td>${pool}</td>
<td>${w.state}</td>
<td>${duration(now - w.beatAt)} ago</td>
<td>${time(w.startedAt)}</td>
<td>${
    w.kind === "worker"
      ? html`${
          ctx.readOnly
            ? ""
            : html`<form class="act inline" method="post" action="${ctx.base}/workers/${id}/concurrency"><input type="hidden" name="_csrf" value="${ctx.csrf}"><input name="concurrency" type="number" min="1" max="10000" value="${w.concurrency}" aria-label="concurrency"><button type="submit" data-action="concurrency">Set</button></form>`
        }${action(ctx, `/workers/${id}/shutdown`, "Shut down", { name: "shutdown", danger: true, confirm: `Stop worker ${w.id} gracefully?` })}`
      : ""
  }</td>
</tr>`;
}

/** Live workers: heartbeats, queues, concurrency, active runs, counters; change concurrency, shut down. */
export async function workersPage(app: App, ctx: PageContext, flash: string | null): Promise<Html> {
  if (app.store.ops === undefined)
    return page(ctx, "/workers", "Workers", html`<p class="none">This store keeps no worker registry.</p>`);
  const workers = await app.inspect().workers();
  const now = app.clock.now();
  const active = workers.flatMap((w) => w.active.map((a) => ({ ...a, worker: w.id })));
  const body = html`${notice(flash)}
<table id="workers" class="grid"><thead><tr><th>Worker</th><th>Queues</th><th class="num">Concurrency</th><th class="num">Active</th><th class="num">Processed</th><th class="num">Failed</th><th>Pool</th><th>State</th><th>Last seen</th><th>Started</th><th></th></tr></thead>
<tbody>${workers.map((w) => workerRow(ctx, w, now))}</tbody></table>
${workers.length === 0 ? html`<p class="none">No live workers.</p>` : ""}
<h2>Running now</h2>
<table class="grid runs"><thead><tr><th>Run</th><th>Queue</th><th>Worker</th><th>Since</th></tr></thead>
<tbody>${active.map(
    (a) =>
      html`<tr data-run="${a.id}"><td><a href="${link(ctx.base, `/runs/${encodeURIComponent(a.id)}`, { queue: a.queue })}">${a.id}</a></td><td>${a.queue}</td><td><code>${a.worker}</code></td><td>${time(a.since)}</td></tr>`,
  )}</tbody></table>`;
  return page(ctx, "/workers", "Workers", body);
}
