/// <reference lib="dom" />
/**
 * The dashboard's script, bundled into the package at build time (`scripts/dashboard-assets.mjs`).
 * Pages work without it; with it: local times, confirmations, actions sent without leaving the
 * page, bulk replay progress, and live updates over Server-Sent Events (or a slow poll where a
 * stream cannot stay open).
 */

interface RunChange {
  id: string;
  queue: string;
  task: string;
  state: string;
  at: number;
}
type Counts = Record<string, string | number | boolean | null> & { queue: string };

const body = document.body;
const base = body.dataset.base ?? "";
const pollMs = Number(body.dataset.pollMs ?? "10000");

/** Local times, and how long ago. */
function localTimes(root: ParentNode): void {
  for (const el of root.querySelectorAll<HTMLTimeElement>("time[datetime]")) {
    const d = new Date(el.dateTime);
    if (Number.isNaN(d.getTime())) continue;
    el.textContent = d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
    el.title = `${el.dateTime} (${ago(d.getTime())})`;
  }
}

function ago(ms: number): string {
  const s = Math.round((Date.now() - ms) / 1000);
  const a = Math.abs(s);
  const text =
    a < 60
      ? `${a} s`
      : a < 3600
        ? `${Math.round(a / 60)} min`
        : a < 86400
          ? `${Math.round(a / 3600)} h`
          : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

function toast(text: string, ok: boolean): void {
  let box = document.getElementById("toast");
  if (box === null) {
    box = document.createElement("p");
    box.id = "toast";
    box.setAttribute("role", "status");
    document.querySelector("main")?.prepend(box);
  }
  box.className = `notice ${ok ? "ok" : "error"}`;
  box.textContent = text;
}

/** Confirmations, actions sent in place, and the bulk replay's progress. */
function forms(): void {
  document.addEventListener("submit", (event) => {
    const form = event.target as HTMLFormElement;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
    const question = form.dataset.confirm;
    if (question !== undefined && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (form.hasAttribute("data-progress")) {
      event.preventDefault();
      void progress(form);
    } else if (form.hasAttribute("data-live")) {
      event.preventDefault();
      void send(form);
    }
  });
}

async function send(form: HTMLFormElement): Promise<void> {
  const button = form.querySelector("button");
  if (button) button.disabled = true;
  try {
    const res = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "x-celeriac-fetch": "1" },
      credentials: "same-origin",
    });
    const answer = (await res.json().catch(() => ({ ok: false, message: res.statusText }))) as {
      ok: boolean;
      message: string;
    };
    toast(answer.message, res.ok && answer.ok);
  } catch (error) {
    toast(String(error), false);
  } finally {
    if (button) button.disabled = false;
  }
}

async function progress(form: HTMLFormElement): Promise<void> {
  const bar = form.querySelector("progress");
  const out = form.querySelector("output");
  if (bar) bar.hidden = false;
  const res = await fetch(form.action, {
    method: "POST",
    body: new FormData(form),
    headers: { accept: "text/event-stream", "x-celeriac-fetch": "1" },
    credentials: "same-origin",
  });
  if (!res.ok || res.body === null) {
    toast(`replay failed: ${res.status}`, false);
    return;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "{}") as Record<
        string,
        number | null | string
      >;
      if (event === "progress") {
        const total = typeof data.total === "number" ? data.total : null;
        if (bar && total !== null) {
          bar.max = Math.max(1, total);
          bar.value = Number(data.done);
        }
        if (out) out.textContent = `${data.done}${total === null ? "" : ` of ${total}`}`;
      } else if (event === "done") {
        toast(`Replayed ${data.replayed} dead letters.`, true);
      } else if (event === "error") {
        toast(String(data.message), false);
      }
    }
  }
}

/** A run's new state, on every element that shows it. */
function applyRun(change: RunChange): void {
  for (const holder of document.querySelectorAll<HTMLElement>(`[data-run="${CSS.escape(change.id)}"]`)) {
    for (const el of holder.querySelectorAll<HTMLElement>('[data-field="state"]')) {
      el.textContent = change.state;
      el.className = `badge s-${change.state}`;
    }
    holder.dataset.state = change.state;
  }
}

function applyCounts(list: Counts[]): void {
  for (const c of list) {
    const row = document.querySelector<HTMLElement>(`tr[data-queue="${CSS.escape(c.queue)}"]`);
    if (row === null) continue;
    for (const [key, value] of Object.entries(c)) {
      const cell = row.querySelector<HTMLElement>(`[data-count="${key}"]`);
      if (cell !== null && String(value) !== cell.textContent) {
        cell.textContent = String(value);
        cell.classList.add("changed");
        setTimeout(() => cell.classList.remove("changed"), 800);
      }
    }
    row.dataset.paused = String(c.paused);
  }
}

function indicator(mode: "live" | "poll" | "off"): void {
  const dot = document.getElementById("live");
  if (dot === null) return;
  dot.className = `live ${mode}`;
  dot.title =
    mode === "live"
      ? "live updates (Server-Sent Events)"
      : mode === "poll"
        ? `updates every ${pollMs / 1000} s`
        : "no updates";
  body.dataset.live = mode;
}

/** Live updates over SSE; after repeated failures to connect, a slow poll of the JSON route. */
function live(): void {
  if (typeof EventSource === "undefined") {
    poll(null);
    return;
  }
  const source = new EventSource(`${base}/events`);
  let failures = 0;
  source.addEventListener("open", () => {
    failures = 0;
    indicator("live");
  });
  source.addEventListener("run", (e) => applyRun(JSON.parse((e as MessageEvent<string>).data) as RunChange));
  source.addEventListener("counts", (e) =>
    applyCounts(JSON.parse((e as MessageEvent<string>).data) as Counts[]),
  );
  source.addEventListener("error", () => {
    if (++failures >= 3) {
      source.close();
      poll(null);
    } else indicator("off");
  });
}

function poll(cursor: string | null): void {
  indicator("poll");
  const tick = async (c: string | null): Promise<void> => {
    let next = c;
    try {
      const res = await fetch(`${base}/api/live${c === null ? "" : `?cursor=${encodeURIComponent(c)}`}`, {
        credentials: "same-origin",
      });
      if (res.ok) {
        const data = (await res.json()) as { changes: RunChange[]; cursor: string | null; counts: Counts[] };
        if (c !== null) for (const change of data.changes) applyRun(change);
        applyCounts(data.counts);
        next = data.cursor;
      }
    } catch {
      indicator("off");
    }
    setTimeout(() => void tick(next), pollMs);
  };
  void tick(cursor);
}

localTimes(document);
forms();
live();
