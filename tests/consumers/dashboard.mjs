// The dashboard from the installed package: its built assets are inside it, served by the page.
import { createApp } from "celeriac";
import { dashboard } from "celeriac/dashboard";
import { createHandler } from "celeriac/hono";

const app = createApp();
const hello = app.task({ name: "hello", run: () => "world" });
const run = await hello.enqueue(undefined);
await app.drain();
const handler = createHandler(app, { dashboard: dashboard(app, { token: "consumer-dashboard" }) });
const headers = { authorization: "Bearer consumer-dashboard" };
const page = await handler.request(`/dashboard/runs/${run.id}`, { headers });
const html = await page.text();
const assets = [...html.matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((m) => m[1]);
const sizes = await Promise.all(assets.map(async (a) => (await (await handler.request(a)).text()).length));
console.log(
  JSON.stringify({
    status: page.status,
    succeeded: html.includes('data-field="state">succeeded<'),
    assets: assets.length,
    built: sizes.every((n) => n > 1_000),
    csp: page.headers.get("content-security-policy")?.includes("script-src 'self'") === true,
  }),
);
await app.close();
