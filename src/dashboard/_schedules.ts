/**
 * Internal: the schedules page — every schedule with its next and last tick; stored ones can be
 * paused, resumed, edited, removed and run now, and new ones added.
 *
 * @module
 */
import { html } from "hono/html";
import type { App } from "../app.ts";
import type { StoredSchedule } from "../schedule/stored.ts";
import { action, type Html, type PageContext, notice, page, time } from "./_html.ts";

/** The stored definition of a schedule, or null. */
export async function storedDefinition(app: App, id: string): Promise<StoredSchedule | null> {
  const store = app.store.schedules;
  if (store === undefined) return null;
  const found = (await store.list()).find((s) => s.id === id);
  return found === undefined ? null : (JSON.parse(found.json) as StoredSchedule);
}

/** A stored schedule from the add/edit form's fields; throws `TypeError` for a bad one. */
export function fromForm(form: FormData): { id: string; definition: StoredSchedule } {
  const text = (k: string) => {
    const v = form.get(k);
    return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
  };
  const id = text("id");
  const task = text("task");
  if (id === undefined || task === undefined) throw new TypeError("a schedule needs an id and a task");
  const definition: StoredSchedule = { task };
  const cron = text("cron");
  const every = text("every");
  if (cron !== undefined) definition.cron = cron;
  if (every !== undefined) definition.every = /^\d+$/.test(every) ? Number(every) : every;
  const input = text("input");
  if (input !== undefined) {
    try {
      definition.input = JSON.parse(input);
    } catch {
      throw new TypeError("input must be JSON");
    }
  }
  const queue = text("queue");
  if (queue !== undefined) definition.queue = queue;
  const timezone = text("timezone");
  if (timezone !== undefined) definition.timezone = timezone;
  if (form.get("paused") === "on") definition.paused = true;
  return { id, definition };
}

function editForm(ctx: PageContext, id: string, d: StoredSchedule | null): Html {
  if (ctx.readOnly) return html``;
  const v = (x: unknown) => (x === undefined ? "" : typeof x === "string" ? x : JSON.stringify(x));
  return html`<form class="act schedule-form" method="post" action="${ctx.base}/schedules${d === null ? "" : `/${encodeURIComponent(id)}/edit`}">
<input type="hidden" name="_csrf" value="${ctx.csrf}">
<label>Id <input name="id" required value="${id}"${d === null ? "" : html` readonly`}></label>
<label>Task <input name="task" required value="${v(d?.task)}"></label>
<label>Cron <input name="cron" value="${v(d?.cron)}" placeholder="0 2 * * *"></label>
<label>Every <input name="every" value="${v(d?.every)}" placeholder="15m"></label>
<label>Time zone <input name="timezone" value="${v(d?.timezone)}" placeholder="UTC"></label>
<label>Queue <input name="queue" value="${v(d?.queue)}"></label>
<label class="wide">Input (JSON) <textarea name="input" rows="2">${d?.input === undefined ? "" : JSON.stringify(d.input)}</textarea></label>
<button type="submit" data-action="${d === null ? "add-schedule" : "edit-schedule"}">${d === null ? "Add schedule" : "Save"}</button>
</form>`;
}

/** The schedules page (`?edit=<id>` opens a stored one's form). */
export async function schedulesPage(
  app: App,
  ctx: PageContext,
  params: URLSearchParams,
  flash: string | null,
): Promise<Html> {
  const list = await app.schedules.list({ next: 1 });
  const stored = app.store.schedules !== undefined;
  const editing = params.get("edit");
  const editDef = editing === null ? null : await storedDefinition(app, editing);
  const rows = list.map((s) => {
    const id = encodeURIComponent(s.id);
    const own = s.source === "stored";
    return html`<tr data-schedule="${s.id}">
<td>${s.id}</td><td>${s.source}</td><td>${s.task}</td>
<td><code>${s.cron ?? (s.every === null ? "—" : `every ${s.every} ms`)}</code>${s.timezone === null ? "" : ` (${s.timezone})`}</td>
<td>${s.paused ? html`<span class="badge paused">paused</span>` : time(s.nextRuns[0]?.getTime())}</td>
<td>${time(s.lastTick?.getTime())}</td>
<td>${s.lastRun === null ? "—" : html`<a href="${ctx.base}/runs/${encodeURIComponent(s.lastRun.id)}">${s.lastRun.state ?? "expired"}</a>`}</td>
<td>${
      own
        ? html`${s.paused ? action(ctx, `/schedules/${id}/resume`, "Resume", { name: "resume-schedule" }) : action(ctx, `/schedules/${id}/pause`, "Pause", { name: "pause-schedule" })}${action(ctx, `/schedules/${id}/run`, "Run now", { name: "run-schedule" })}${ctx.readOnly ? "" : html`<a class="button" href="${ctx.base}/schedules?edit=${id}">Edit</a>`}${action(ctx, `/schedules/${id}/remove`, "Remove", { name: "remove-schedule", danger: true, confirm: `Remove schedule ${s.id}?` })}`
        : html`<span class="dim">in code</span>`
    }</td>
</tr>`;
  });
  const body = html`${notice(flash)}
<table id="schedules" class="grid"><thead><tr><th>Id</th><th>Source</th><th>Task</th><th>When</th><th>Next</th><th>Last tick</th><th>Last run</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>
${list.length === 0 ? html`<p class="none">No schedules.</p>` : ""}
${!stored ? html`<p class="none">This store keeps no stored schedules.</p>` : ctx.readOnly ? "" : html`<h2>${editDef === null ? "Add a stored schedule" : `Edit ${editing}`}</h2>${editForm(ctx, editing ?? "", editDef)}`}`;
  return page(ctx, "/schedules", "Schedules", body);
}
