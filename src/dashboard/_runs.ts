/**
 * Internal: the runs table with its search, and the run page.
 *
 * @module
 */
import { html } from "hono/html";
import type { App } from "../app.ts";
import type { HistoryQuery, HistoryRun, RunState } from "../contracts.ts";
import { ENDED_STATES } from "../history/_query.ts";
import { RUN_STATES } from "../run-state.ts";
import {
  action,
  duration,
  type Html,
  json,
  link,
  notice,
  type PageContext,
  page,
  state,
  time,
} from "./_html.ts";
import type { Redactor } from "./_redact.ts";

const STATES: readonly RunState[] = RUN_STATES;
const FILTERS = ["task", "state", "queue", "key", "from", "to", "text"] as const;
const PAGE = 50;

/** A `datetime-local` value (UTC) or an ISO time or epoch ms, as epoch ms; undefined when empty or unreadable. */
export function parseTime(value: string | null): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d{10,}$/.test(v)) return Number(v);
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The queues to search: the app's and the broker's. */
export async function knownQueues(app: App): Promise<string[]> {
  const own = app.queues();
  const known = app.broker.queueOps === undefined ? [] : await app.broker.queueOps.known();
  return [...new Set([...own, ...known])].sort();
}

function searchForm(
  ctx: PageContext,
  params: URLSearchParams,
  queues: readonly string[],
  textSearch: boolean,
): Html {
  const v = (k: string) => params.get(k) ?? "";
  return html`<form id="search" class="search" method="get" action="${ctx.base}/runs">
<label>Run id <input name="id" value="${v("id")}"></label>
<label>Task <input name="task" value="${v("task")}"></label>
<label>State <select name="state"><option value="">any</option>${STATES.map(
    (s) => html`<option${s === v("state") ? html` selected` : ""}>${s}</option>`,
  )}</select></label>
<label>Queue <select name="queue"><option value="">any</option>${queues.map(
    (q) => html`<option${q === v("queue") ? html` selected` : ""}>${q}</option>`,
  )}</select></label>
<label>Idempotency key <input name="key" value="${v("key")}"></label>
<label>From (UTC) <input name="from" type="datetime-local" step="1" value="${v("from")}"></label>
<label>To (UTC) <input name="to" type="datetime-local" step="1" value="${v("to")}"></label>
${textSearch ? html`<label>Text <input name="text" value="${v("text")}" placeholder="in input, result, error"></label>` : ""}
<button type="submit">Search</button> <a href="${ctx.base}/runs">Clear</a>
</form>`;
}

/** A run's row in a table: `data-run` lets live updates change its state. */
export function runRow(ctx: PageContext, r: HistoryRun): Html {
  const ended = r.finishedAt !== undefined && r.startedAt !== undefined ? r.finishedAt - r.startedAt : null;
  return html`<tr data-run="${r.id}">
<td><a href="${link(ctx.base, `/runs/${encodeURIComponent(r.id)}`, { queue: r.queue })}">${r.id}</a></td>
<td>${r.task}</td><td>${r.queue}</td><td>${state(r.state)}</td>
<td class="num">${r.attempt}/${r.maxAttempts}</td>
<td>${time(r.enqueuedAt)}</td><td>${duration(ended)}</td>
<td>${r.idempotencyKey ?? ""}</td>
</tr>`;
}

/** The runs table: the history's search, newest first, a page at a time by cursor. */
export async function runsPage(app: App, ctx: PageContext, params: URLSearchParams): Promise<Html> {
  const history = app.store.history;
  const queues = await knownQueues(app);
  if (history === undefined) {
    return page(
      ctx,
      "/runs",
      "Runs",
      html`${searchForm(ctx, params, queues, false)}<p class="none">This store keeps no run history: find a run by its id, or see each queue's waiting runs.</p>`,
    );
  }
  const queue = params.get("queue");
  const query: HistoryQuery = {
    queues: queue ? [queue] : queues,
    limit: PAGE,
    cursor: params.get("cursor"),
    task: params.get("task") ?? undefined,
    state: (params.get("state") || undefined) as RunState | undefined,
    idempotencyKey: params.get("key") ?? undefined,
    from: parseTime(params.get("from")),
    to: parseTime(params.get("to")),
    text: params.get("text") ?? undefined,
  };
  let error: string | null = null;
  let result = { runs: [] as HistoryRun[], cursor: null as string | null, scanned: 0 };
  try {
    result = await history.list(query);
  } catch (e) {
    error = (e as Error).message;
  }
  const keep = Object.fromEntries(FILTERS.map((k) => [k, params.get(k)]));
  const ordered =
    query.state !== undefined && ENDED_STATES.has(query.state)
      ? "newest ended first"
      : "newest enqueued first";
  const short = result.runs.length < PAGE && result.cursor !== null;
  const body = html`${searchForm(ctx, params, queues, history.textSearch)}
${notice(error, "error")}
<p class="dim">${result.runs.length} runs, ${ordered}${short ? html` — looked at ${result.scanned} runs for this page; more may match further back` : ""}.</p>
<table id="runs" class="grid runs"><thead><tr><th>Run</th><th>Task</th><th>Queue</th><th>State</th><th>Attempt</th><th>Enqueued</th><th>Ran</th><th>Key</th></tr></thead>
<tbody>${result.runs.map((r) => runRow(ctx, r))}</tbody></table>
<p class="pager">${params.get("cursor") ? html`<a href="${link(ctx.base, "/runs", keep)}">← Newest</a> ` : ""}${
    result.cursor === null
      ? ""
      : html`<a rel="next" href="${link(ctx.base, "/runs", { ...keep, cursor: result.cursor })}">Older →</a>`
  }</p>`;
  return page(ctx, "/runs", "Runs", body);
}

interface Cont {
  id?: unknown;
  q?: unknown;
}

/** The other steps of a workflow node: ids `<parent>.<n>` and `<parent>.cb`. */
async function stepsOf(app: App, parent: string): Promise<HistoryRun[]> {
  const ids = [...Array.from({ length: 24 }, (_, i) => `${parent}.${i}`), `${parent}.cb`];
  const found = await Promise.all(ids.map((id) => app.getRun(id).status()));
  return found.filter((r) => r !== null) as HistoryRun[];
}

/** One run: state, input, result, progress, the attempts as a timeline, its workflow. */
export async function runPage(
  app: App,
  ctx: PageContext,
  redact: Redactor,
  id: string,
  queue: string | undefined,
  flash: string | null,
): Promise<Html | null> {
  const run: HistoryRun | null =
    (await app.store.history?.get(id, queue)) ?? ((await app.store.getRun(id, queue)) as HistoryRun | null);
  if (run === null) return null;
  const r = redact.run(run);
  const ended = ENDED_STATES.has(run.state);
  const wait = run.startedAt === undefined ? null : run.startedAt - (run.notBefore ?? run.enqueuedAt);
  const ran =
    run.startedAt !== undefined && run.finishedAt !== undefined ? run.finishedAt - run.startedAt : null;
  const errors = r.errors ?? [];
  const timeline = html`<ol id="attempts" class="timeline">
<li class="t-enq">Enqueued ${time(run.enqueuedAt)}${run.notBefore === undefined ? "" : html`, due ${time(run.notBefore)}`}</li>
${errors.map(
  (e) => html`<li data-attempt="${e.attempt}" class="t-fail"><b>Attempt ${e.attempt}</b> failed ${time(e.at)}
<div class="error"><b>${e.name}</b>: ${e.message}</div>${e.stack ? html`<details><summary>stack</summary><pre>${e.stack}</pre></details>` : ""}</li>`,
)}
${
  errors.some((e) => e.attempt === run.attempt)
    ? ""
    : html`<li data-attempt="${run.attempt}" class="t-${run.state}"><b>Attempt ${run.attempt}</b> ${state(run.state)} ${run.startedAt === undefined ? "" : html`started ${time(run.startedAt)}`} ${run.finishedAt === undefined ? "" : html`ended ${time(run.finishedAt)}`}
${r.error !== undefined && run.state !== "succeeded" ? html`<div class="error"><b>${r.error.name}</b>: ${r.error.message}</div>${r.error.stack ? html`<details><summary>stack</summary><pre>${r.error.stack}</pre></details>` : ""}` : ""}</li>`
}
</ol>`;
  const cont = (run.meta?.cont ?? null) as Cont | null;
  const parent = cont !== null && typeof cont.id === "string" ? cont.id : null;
  // A step: its siblings; a workflow's own record (task workflow.chain, …): its steps.
  const isWorkflow = run.task.startsWith("workflow.");
  const steps = parent !== null || isWorkflow ? await stepsOf(app, parent ?? id) : [];
  const workflow =
    parent === null && steps.length === 0
      ? ""
      : html`<h2>Workflow</h2>
${parent === null ? html`<p>This run is a workflow.</p>` : html`<p>Step of <a href="${link(ctx.base, `/runs/${encodeURIComponent(parent)}`, { queue: typeof cont?.q === "string" ? cont.q : undefined })}">${parent}</a>.</p>`}
<table class="grid runs"><thead><tr><th>Run</th><th>Task</th><th>Queue</th><th>State</th><th>Attempt</th><th>Enqueued</th><th>Ran</th><th>Key</th></tr></thead>
<tbody>${steps.map((s) => runRow(ctx, s))}</tbody></table>`;
  const qs = encodeURIComponent(run.queue);
  const body = html`${notice(flash)}
<div class="actions">${ended ? "" : action(ctx, `/runs/${encodeURIComponent(id)}/cancel`, "Cancel", { name: "cancel", danger: true, confirm: `Cancel run ${id}?`, fields: { queue: run.queue } })}
${run.state === "failed" ? action(ctx, `/dead-letters/${encodeURIComponent(id)}/replay`, "Replay", { name: "replay", live: true }) : ""}</div>
<dl class="facts" data-run="${id}">
<dt>State</dt><dd id="state">${state(run.state)}</dd>
<dt>Task</dt><dd>${run.task}</dd>
<dt>Queue</dt><dd><a href="${ctx.base}/queues/${qs}">${run.queue}</a></dd>
<dt>Attempt</dt><dd>${run.attempt} of ${run.maxAttempts}</dd>
<dt>Enqueued</dt><dd>${time(run.enqueuedAt)}</dd>
<dt>Started</dt><dd>${time(run.startedAt)}</dd>
<dt>Ended</dt><dd>${time(run.finishedAt)}</dd>
<dt>Enqueue → start</dt><dd>${duration(wait)}</dd>
<dt>Ran for</dt><dd>${duration(ran)}</dd>
${run.idempotencyKey === undefined ? "" : html`<dt>Idempotency key</dt><dd>${run.idempotencyKey}</dd>`}
${run.expiresAt === undefined ? "" : html`<dt>Expires</dt><dd>${time(run.expiresAt)}</dd>`}
</dl>
<h2>Input</h2>${"input" in r ? json(r.input) : html`<p class="none">Not kept by this store.</p>`}
${r.progress === undefined ? "" : html`<h2>Progress</h2>${json(r.progress)}`}
${run.state === "succeeded" ? html`<h2>Result</h2>${json(r.result)}` : ""}
<h2>Attempts</h2>${timeline}
${workflow}`;
  return page(ctx, "/runs", `Run ${id}`, body);
}
