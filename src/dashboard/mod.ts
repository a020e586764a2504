/**
 * celeriac/dashboard: operators' pages for an app, as a Hono sub-app that runs wherever the
 * handler runs (Workers, Deno Deploy, Bun, Node). Overview (every queue's counts, live workers,
 * the last hour per minute), queue pages (tabs per state, pause, resume, purge), the runs table
 * with search and cursor pagination over the store's run history, the run page (input, result,
 * progress, attempts with their errors, its workflow), dead letters (replay one or all matching,
 * delete), schedules (next and last tick; add, edit, pause, remove, run now) and workers
 * (heartbeats, counters; concurrency, shut down). Pages update live over Server-Sent Events.
 *
 * Its script and stylesheet are built with the package and served from it (no CDN); pages carry
 * a strict Content-Security-Policy (no inline script or style). Every page and filter is a URL.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { dashboard } from "celeriac/dashboard";
 * import { createHandler } from "celeriac/hono";
 *
 * // Mounted by the handler at /dashboard …
 * export default createHandler(app, { dashboard: dashboard(app, { token: env.DASHBOARD_TOKEN }) });
 * // … or anywhere in your own Hono app.
 * const site = new Hono();
 * site.route("/ops", dashboard(app, { authorize: (req) => isAdmin(req), readOnly: true }));
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { html } from "hono/html";
import { basePath } from "hono/route";
import type { App } from "../app.ts";
import { ACTIONS } from "./_actions.ts";
import { ASSETS } from "./_assets.gen.ts";
import { CSRF_COOKIE, cookies, Guard, nonce, SESSION_COOKIE, setCookie } from "./_auth.ts";
import { deadFilter, deadPage } from "./_dead.ts";
import { CSP, type Html, ICON, type PageContext } from "./_html.ts";
import { livePoll, liveStream } from "./_live.ts";
import { type DashboardOptions, resolveDashboard } from "./_options.ts";
import { overview, queuePage, workersPage } from "./_pages.ts";
import { Redactor } from "./_redact.ts";
import { runPage, runsPage } from "./_runs.ts";
import { schedulesPage } from "./_schedules.ts";

export type { DashboardOptions, RedactedField } from "./_options.ts";

const FLASH_COOKIE = "celeriac_flash";

function baseOf(c: Context): string {
  const b = basePath(c);
  return b === "/" ? "" : b.replace(/\/+$/, "");
}

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

async function htmlResponse(body: Html, status = 200, headers: Headers = new Headers()): Promise<Response> {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) headers.set(k, v);
  headers.set("content-type", "text/html; charset=utf-8");
  return new Response(String(await body), { status, headers });
}

function loginPage(base: string, title: string, failed: boolean): Html {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · ${title}</title><link rel="icon" href="${ICON}"><link rel="stylesheet" href="${base}/assets/${ASSETS.css.file}"></head>
<body class="login"><main><h1>${title}</h1>
<form method="post" action="${base}/login"><label>Dashboard token <input name="token" type="password" autocomplete="current-password" required autofocus></label>
${failed ? html`<p class="notice error" role="alert">That token is not the dashboard's.</p>` : ""}
<button type="submit">Sign in</button></form></main></body></html>`;
}

/**
 * Creates an app's dashboard: a Hono app to mount (`site.route("/ops", dashboard(app, …))`, or
 * `createHandler(app, { dashboard })`, which mounts it at `/dashboard`). Options are checked here
 * (a bad one throws, naming it); one of `token` or `authorize` is required.
 *
 * @example
 * ```ts
 * const ops = dashboard(app, { token: env.DASHBOARD_TOKEN, redact: (v, { field }) => (field === "input" ? "…" : v) });
 * Deno.serve(ops.fetch);
 * ```
 */
export function dashboard(app: App, options: DashboardOptions): Hono {
  const config = resolveDashboard(options);
  const guard = new Guard(config);
  const redact = new Redactor(config.redact);
  const hono = new Hono();

  hono.get("/assets/:file", (c) => {
    const file = c.req.param("file");
    const asset = file === ASSETS.js.file ? ASSETS.js : file === ASSETS.css.file ? ASSETS.css : undefined;
    if (asset === undefined) return c.text("no such asset", 404);
    return new Response(asset.text, {
      headers: {
        "content-type": asset.type,
        "cache-control": "public, max-age=31536000, immutable",
        "x-content-type-options": "nosniff",
      },
    });
  });

  hono.post("/login", async (c) => {
    const base = baseOf(c);
    const form = await c.req.raw.formData().catch(() => new FormData());
    const token = form.get("token");
    const site = c.req.header("sec-fetch-site");
    if (typeof token !== "string" || !guard.signsIn(token) || site === "cross-site") {
      return htmlResponse(loginPage(base, config.title, true), 401);
    }
    const headers = new Headers({ location: `${base}/` });
    headers.append(
      "set-cookie",
      setCookie(c.req.raw, SESSION_COOKIE, await guard.session(), base, 86_400 * 7),
    );
    return new Response(null, { status: 303, headers });
  });

  hono.post("/logout", (c) => {
    const base = baseOf(c);
    const headers = new Headers({ location: `${base}/` });
    headers.append("set-cookie", setCookie(c.req.raw, SESSION_COOKIE, "", base, 0));
    return new Response(null, { status: 303, headers });
  });

  // Everything else needs a signed-in request.
  hono.use("*", async (c, next) => {
    const how = await guard.check(c.req.raw);
    if (how === null) {
      const wantsHtml = (c.req.header("accept") ?? "").includes("text/html");
      if (config.token !== undefined && wantsHtml && c.req.method === "GET") {
        return htmlResponse(loginPage(baseOf(c), config.title, false), 401);
      }
      return c.json({ error: "Unauthorized", message: "sign in to the dashboard" }, 401, {
        "www-authenticate": 'Bearer realm="celeriac dashboard"',
      });
    }
    c.set("how" as never, how as never);
    await next();
  });

  /** The page context of a GET, and the cookies it sets (a CSRF nonce, a consumed notice). */
  async function context(c: Context): Promise<{ ctx: PageContext; headers: Headers; flash: string | null }> {
    const base = baseOf(c);
    const jar = cookies(c.req.raw);
    const headers = new Headers();
    let n = jar.get(CSRF_COOKIE);
    if (n === undefined || !/^[0-9a-f]{32}$/.test(n)) {
      n = nonce();
      headers.append("set-cookie", setCookie(c.req.raw, CSRF_COOKIE, n, base));
    }
    let flash: string | null = null;
    const f = jar.get(FLASH_COOKIE);
    if (f !== undefined && f !== "") {
      try {
        flash = decodeURIComponent(f);
      } catch {
        flash = null;
      }
      headers.append("set-cookie", setCookie(c.req.raw, FLASH_COOKIE, "", base, 0));
    }
    const ctx: PageContext = {
      base,
      title: config.title,
      readOnly: config.readOnly,
      csrf: await guard.csrf(n),
      pollMs: config.pollMs,
      history: app.store.history !== undefined,
    };
    return { ctx, headers, flash };
  }

  const show =
    (
      render: (
        ctx: PageContext,
        params: URLSearchParams,
        flash: string | null,
        c: Context,
      ) => Promise<Html | null>,
    ) =>
    async (c: Context) => {
      const { ctx, headers, flash } = await context(c);
      const params = new URL(c.req.url).searchParams;
      const body = await render(ctx, params, flash, c);
      if (body === null) return htmlResponse(html`<p>Not found.</p>`, 404, headers);
      return htmlResponse(body, 200, headers);
    };

  const home = show((ctx, _p, flash) => overview(app, ctx, flash));
  hono.get("/", home);
  hono.get(
    "/queues/:queue",
    show((ctx, p, flash, c) => queuePage(app, ctx, c.req.param("queue")!, p, flash)),
  );
  hono.get("/runs", async (c) => {
    const params = new URL(c.req.url).searchParams;
    const id = params.get("id")?.trim();
    if (id) {
      const q = params.get("queue");
      return c.redirect(
        `${baseOf(c)}/runs/${encodeURIComponent(id)}${q ? `?queue=${encodeURIComponent(q)}` : ""}`,
        302,
      );
    }
    return show((ctx, p) => runsPage(app, ctx, p))(c);
  });
  hono.get(
    "/runs/:id",
    show((ctx, p, flash, c) =>
      runPage(app, ctx, redact, c.req.param("id")!, p.get("queue") || undefined, flash),
    ),
  );
  hono.get(
    "/dead-letters",
    show((ctx, p, flash) => deadPage(app, ctx, redact, p, flash)),
  );
  hono.get(
    "/schedules",
    show((ctx, p, flash) => schedulesPage(app, ctx, p, flash)),
  );
  hono.get(
    "/workers",
    show((ctx, _p, flash) => workersPage(app, ctx, flash)),
  );
  hono.get("/events", (c) => liveStream(app, c.req.raw, config.liveMs));
  hono.get("/api/live", async (c) =>
    c.json(await livePoll(app, c.req.query("cursor") ?? null), 200, { "cache-control": "no-store" }),
  );

  // Mounted under a path, "/ops/" is not "/ops" to the parent's router: the overview all the same.
  hono.get("/*", (c) => {
    if (c.req.path === `${baseOf(c)}/`) return home(c);
    return htmlResponse(html`<p>No such page.</p>`, 404);
  });

  for (const [pattern, handler] of ACTIONS) {
    hono.post(pattern, async (c) => {
      if (config.readOnly) return c.json({ error: "Forbidden", message: "this dashboard is read-only" }, 403);
      const form = await c.req.raw.formData().catch(() => new FormData());
      const field = form.get("_csrf");
      const how = c.get("how" as never) as unknown as string;
      if (!(await guard.postAllowed(c.req.raw, how, typeof field === "string" ? field : null))) {
        return c.json(
          { error: "Forbidden", message: "missing or wrong CSRF token, or a cross-site request" },
          403,
        );
      }
      const base = baseOf(c);
      const fetched = c.req.header("x-celeriac-fetch") === "1";
      // A bulk replay from the page's script streams its progress.
      if (
        pattern === "/dead-letters/replay" &&
        (c.req.header("accept") ?? "").includes("text/event-stream")
      ) {
        return replayStream(app, form);
      }
      let done: { ok: boolean; message: string; back: string };
      try {
        done = await handler(app, c.req.param() as Record<string, string>, form);
      } catch (error) {
        done = { ok: false, message: (error as Error).message, back: c.req.header("referer") ? "" : "/" };
        if (fetched)
          return c.json(done, error instanceof TypeError || error instanceof RangeError ? 400 : 409);
      }
      if (fetched) return c.json(done, done.ok ? 200 : 409);
      const back = done.back === "" ? (c.req.header("referer") ?? `${base}/`) : `${base}${done.back}`;
      const headers = new Headers({ location: back });
      headers.append(
        "set-cookie",
        setCookie(c.req.raw, FLASH_COOKIE, encodeURIComponent(done.message), base, 60),
      );
      return new Response(null, { status: 303, headers });
    });
  }
  return hono;
}

/** Replays every dead letter matching the form's filter, streaming `progress` events, then `done`. */
function replayStream(app: App, form: FormData): Response {
  const encoder = new TextEncoder();
  const f = deadFilter(form);
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      const send = (event: string, data: unknown) =>
        controller.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      try {
        const n = await app.control.replay({
          ...f,
          all: true,
          onProgress: (p) => send("progress", p),
        });
        send("done", { replayed: n });
      } catch (error) {
        send("error", { message: (error as Error).message });
      }
      controller.close();
    },
  });
  return new Response(stream, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
  });
}
