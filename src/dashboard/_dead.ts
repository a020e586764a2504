/**
 * Internal: the dead letters page — each with its reason and error, replay one, delete one, and
 * replay every one matching a filter (its progress streamed to the page).
 *
 * @module
 */
import { html } from "hono/html";
import type { App } from "../app.ts";
import type { DeadLetter } from "../contracts.ts";
import { action, type Html, json, link, notice, type PageContext, page, time } from "./_html.ts";
import type { Redactor } from "./_redact.ts";

/** At most this many dead letters are listed on the page (the store lists newest first). */
const LIST = 200;

/** A dead letter filter from the page's query. */
export interface DeadFilter {
  task?: string;
  reason?: string;
  queue?: string;
}

export function deadFilter(params: URLSearchParams | FormData): DeadFilter {
  const f: DeadFilter = {};
  for (const k of ["task", "reason", "queue"] as const) {
    const v = params.get(k);
    if (typeof v === "string" && v !== "") f[k] = v;
  }
  return f;
}

export function matches(f: DeadFilter, d: DeadLetter): boolean {
  return (
    (f.task === undefined || d.task === f.task) &&
    (f.reason === undefined || d.reason.startsWith(f.reason)) &&
    (f.queue === undefined || d.queue === f.queue)
  );
}

function row(ctx: PageContext, d: DeadLetter, state: string | null): Html {
  const id = encodeURIComponent(d.id);
  return html`<tr data-dead="${d.id}" data-run="${d.id}">
<td><a href="${link(ctx.base, `/runs/${id}`, { queue: d.queue })}">${d.id}</a></td>
<td>${d.task ?? "—"}</td><td>${d.queue}</td>
<td>${d.reason}<div class="error"><b>${d.error.name}</b>: ${d.error.message}</div>
<details><summary>envelope</summary>${json(safeParse(d.body))}</details></td>
<td>${time(d.at)}</td>
<td><span class="badge s-${state ?? "gone"}" data-field="state">${state ?? "—"}</span></td>
<td>${action(ctx, `/dead-letters/${id}/replay`, "Replay", { name: "replay", live: true })}${action(ctx, `/dead-letters/${id}/delete`, "Delete", { name: "delete", danger: true, live: true, confirm: `Delete dead letter ${d.id}?` })}</td>
</tr>`;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The dead letters page. */
export async function deadPage(
  app: App,
  ctx: PageContext,
  redact: Redactor,
  params: URLSearchParams,
  flash: string | null,
): Promise<Html> {
  const f = deadFilter(params);
  const all = await app.deadLetters({ limit: LIST });
  const shown = all.filter((d) => matches(f, d));
  const states = await Promise.all(
    shown.map(async (d) => (await app.getRun(d.id, d.queue).status())?.state ?? null),
  );
  const v = (k: keyof DeadFilter) => f[k] ?? "";
  const bulk = ctx.readOnly
    ? ""
    : html`<form class="act bulk" method="post" action="${ctx.base}/dead-letters/replay" data-progress data-confirm="Replay every dead letter matching this filter?">
<input type="hidden" name="_csrf" value="${ctx.csrf}">
<input type="hidden" name="task" value="${v("task")}"><input type="hidden" name="reason" value="${v("reason")}"><input type="hidden" name="queue" value="${v("queue")}">
<button type="submit" data-action="replay-all">Replay all matching</button> <progress hidden max="1" value="0"></progress> <output></output>
</form>`;
  const body = html`${notice(flash)}
<form class="search" method="get" action="${ctx.base}/dead-letters">
<label>Task <input name="task" value="${v("task")}"></label>
<label>Reason starts with <input name="reason" value="${v("reason")}"></label>
<label>Queue <input name="queue" value="${v("queue")}"></label>
<button type="submit">Filter</button> <a href="${ctx.base}/dead-letters">Clear</a>
</form>
${bulk}
<p class="dim">${shown.length} dead letters${all.length === LIST ? ` among the newest ${LIST}` : ""}.</p>
<table id="dead" class="grid runs"><thead><tr><th>Run</th><th>Task</th><th>Queue</th><th>Reason</th><th>At</th><th>Run state</th><th></th></tr></thead>
<tbody>${shown.map((d, i) => row(ctx, redact.deadLetter(d), states[i] ?? null))}</tbody></table>`;
  return page(ctx, "/dead-letters", "Dead letters", body);
}
