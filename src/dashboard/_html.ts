/**
 * Internal: the dashboard's page frame and the small pieces every page uses (times, durations,
 * JSON, state badges, action forms). HTML comes from Hono's `html` template, which escapes every
 * value put into it; no page has inline script or style (the CSP forbids both).
 *
 * @module
 */
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import { ASSETS } from "./_assets.gen.ts";

/** A rendered fragment. */
export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** What every page knows of its request. */
export interface PageContext {
  /** Where the dashboard is mounted ("" or "/ops"). */
  base: string;
  title: string;
  readOnly: boolean;
  /** The CSRF token the page's forms carry. */
  csrf: string;
  pollMs: number;
  /** Features the backends have. */
  history: boolean;
}

/** The Content-Security-Policy of every page: only the dashboard's own script and style. */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const NAV: [path: string, label: string][] = [
  ["/", "Overview"],
  ["/runs", "Runs"],
  ["/dead-letters", "Dead letters"],
  ["/schedules", "Schedules"],
  ["/workers", "Workers"],
];

/**
 * The pages' icon, inline (CSP `img-src data:`): without one a browser asks the site's
 * `/favicon.ico`, which a dashboard mounted under a path does not serve.
 */
export const ICON = `data:image/svg+xml,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="#2f6f4f"/></svg>',
)}`;

/** The URL of an asset, with its content hash (cached for good). */
export function assetUrl(base: string, name: "js" | "css"): string {
  return `${base}/assets/${ASSETS[name].file}`;
}

/** A page: the frame with its navigation, and the body. */
export function page(ctx: PageContext, current: string, title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${ctx.title}</title>
<link rel="icon" href="${ICON}">
<link rel="stylesheet" href="${assetUrl(ctx.base, "css")}">
<script type="module" src="${assetUrl(ctx.base, "js")}"></script>
</head>
<body data-base="${ctx.base}" data-poll-ms="${ctx.pollMs}" data-read-only="${ctx.readOnly ? "1" : "0"}">
<header class="top">
<a class="brand" href="${ctx.base}/">${ctx.title}</a>
<nav>${NAV.map(
    ([path, label]) =>
      html`<a href="${ctx.base}${path}"${raw(current === path ? ' aria-current="page"' : "")}>${label}</a>`,
  )}</nav>
<form class="jump" method="get" action="${ctx.base}/runs"><input name="id" placeholder="Run id" aria-label="Run id"></form>
<span id="live" class="live" title="live updates">●</span>
</header>
<main>
<h1>${title}</h1>
${body}
</main>
</body>
</html>`;
}

/** An epoch-ms time as a `<time>` the script shows in local time and relative to now. */
export function time(ms: number | null | undefined): Html {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return html`<span class="none">—</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}" title="${iso}">${iso.replace("T", " ").slice(0, 19)}</time>`;
}

/** A duration in ms, short. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1_000)} s`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** A JSON value, pretty, in a `<pre>`. */
export function json(value: unknown): Html {
  if (value === undefined) return html`<span class="none">—</span>`;
  let text: string;
  try {
    text = JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    text = String(value);
  }
  return html`<pre class="json">${text}</pre>`;
}

/** A state as a badge; `data-field="state"` lets live updates change it. */
export function state(value: string): Html {
  return html`<span class="badge s-${value}" data-field="state">${value}</span>`;
}

/**
 * A POST form with one button, carrying the CSRF token; nothing in read-only mode. `confirm`:
 * the question the script asks first. `live`: sent without leaving the page (live updates show
 * the effect).
 */
export function action(
  ctx: PageContext,
  path: string,
  label: string,
  options: {
    confirm?: string;
    live?: boolean;
    name: string;
    danger?: boolean;
    fields?: Record<string, string>;
  },
): Html {
  if (ctx.readOnly) return html``;
  const fields = Object.entries(options.fields ?? {}).map(
    ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
  );
  return html`<form class="act" method="post" action="${ctx.base}${path}"${raw(
    options.live === true ? " data-live" : "",
  )}${options.confirm === undefined ? "" : html` data-confirm="${options.confirm}"`}><input type="hidden" name="_csrf" value="${ctx.csrf}">${fields}<button type="submit" data-action="${options.name}"${raw(
    options.danger === true ? ' class="danger"' : "",
  )}>${label}</button></form>`;
}

/** A link with query parameters (empty ones left out). */
export function link(
  base: string,
  path: string,
  params: Record<string, string | number | undefined | null>,
): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const text = q.toString();
  return `${base}${path}${text === "" ? "" : `?${text}`}`;
}

/** A short notice (the outcome of an action, an error). */
export function notice(text: string | null | undefined, kind: "ok" | "error" = "ok"): Html {
  return text === null || text === undefined || text === ""
    ? html``
    : html`<p class="notice ${kind}" role="status">${text}</p>`;
}
