/**
 * The dashboard in a real browser (headless Chromium driven by playwright-core), served over
 * real HTTP from an app on a real redis-server: what an operator sees and does, live updates
 * over Server-Sent Events, read-only mode and the strict CSP with the page's script running.
 *
 * Screenshots of the pages go to .artifacts/dashboard/; CELERIAC_DASHBOARD_SCREENSHOT=1 also
 * writes docs/dashboard.png (the README's picture of the overview).
 *
 * @module
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import type { Server } from "node:http";
import process from "node:process";
import { after, afterEach, before, describe, it } from "node:test";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { type Browser, chromium } from "playwright-core";
import type { Broker, Store } from "../backend.ts";
import { createApp, NonRetryableError } from "../mod.ts";
import { dashboard } from "../src/dashboard/mod.ts";
import { type RedisRig, startRig, waitFor } from "./support/redis-fixtures.ts";

const CHROMIUM = "/usr/bin/chromium";
const TOKEN = "browser-test-token";
const SHOTS = ".artifacts/dashboard";
const WAIT = 15_000;

/** The backend every scenario runs on: Redis, with a prefix of its own. */
function backendFor(rig: RedisRig): { backend: Broker & Store; close(): Promise<void> } {
  return rig.backend("tcp");
}

/** A gate a task waits on, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

/**
 * Serves a fetch handler on a free loopback port. The server leaves the global Request and
 * Response alone (its default swaps in lighter ones: Bun runs every test file in one process,
 * and the other files' Bun.serve must see the real ones).
 */
function listen(fetch: (request: Request) => Response | Promise<Response>) {
  return new Promise<{ url: string; close(): Promise<void> }>((resolve) => {
    const server = serve({ fetch, port: 0, hostname: "127.0.0.1", overrideGlobalObjects: false }, (info) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            (server as Server).closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}

describe("dashboard in a browser", () => {
  let rig: RedisRig;
  let browser: Browser;
  /** What each scenario opened, closed after it (last first). */
  let opened: (() => Promise<void>)[] = [];

  before(async () => {
    // A real browser or a failure that says how to get one (as the Redis suites need redis-server).
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    mkdirSync(SHOTS, { recursive: true });
    [rig, browser] = await Promise.all([
      startRig(),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] }),
    ]);
  });

  async function closeOpened() {
    const closing = opened.reverse();
    opened = [];
    for (const close of closing) await close();
  }

  afterEach(closeOpened);

  after(async () => {
    await closeOpened();
    await browser?.close();
    await rig?.stop();
  });

  /**
   * An app on the backend, its dashboard mounted at /ops and served over HTTP, and a signed-in
   * page. `problems` collects the page's console errors and uncaught exceptions.
   */
  async function scene(options: { readOnly?: boolean } = {}) {
    const { backend, close } = backendFor(rig);
    const app = createApp({ broker: backend, store: backend });
    const site = new Hono();
    site.route("/ops", dashboard(app, { token: TOKEN, liveMs: 100, ...options }));
    const server = await listen(site.fetch);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    opened.push(async () => {
      await app.close();
      await close();
    });
    opened.push(() => server.close());
    opened.push(() => context.close());
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    const dialogs: string[] = [];
    /** How the page's confirmation dialogs are answered. */
    const answer = { accept: true };
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void (answer.accept ? d.accept() : d.dismiss());
    });
    const base = `${server.url}/ops`;
    // Signing in: any page answers the sign-in form; the token sets the session cookie.
    assert.equal((await page.goto(`${base}/`))?.status(), 401);
    await page.fill('input[name="token"]', TOKEN);
    await page.click('button[type="submit"]');
    await page.locator("main h1", { hasText: "Overview" }).waitFor();
    assert.equal(page.url(), `${base}/`);
    assert.deepEqual(problems, [
      "console: Failed to load resource: the server responded with a status of 401 (Unauthorized)",
    ]);
    problems.length = 0; // the sign-in page was a 401 on purpose
    const shot = (name: string) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
    /** Resolves once the page shows live updates over its event stream. */
    const live = () => page.waitForFunction(() => document.body.dataset.live === "live");
    return { app, page, base, problems, dialogs, answer, shot, live };
  }

  it("shows every queue's counts with runs in every state", { timeout: 30_000 }, async () => {
    const { app, page, base, problems, shot, live } = await scene();
    const g = gate();
    let started = false;
    const send = app.task({ name: "mail.send", queue: "mail", run: (to: string) => ({ sent: to }) });
    const flaky = app.task({
      name: "mail.flaky",
      queue: "mail",
      retry: { maxAttempts: 3, backoff: "fixed", baseMs: 600_000, jitter: "none" },
      run: () => {
        throw new Error("the mail server said no");
      },
    });
    const doomed = app.task({
      name: "mail.doomed",
      queue: "mail",
      run: () => {
        throw new NonRetryableError("no such mailbox");
      },
    });
    const block = app.task({
      name: "mail.digest",
      queue: "mail",
      run: async () => {
        started = true;
        await g.opened;
        return "sent";
      },
    });
    const report = app.task({ name: "reports.daily", queue: "reports", run: () => 1 });
    // One slot and no prefetch: while the blocked run holds it, the next run stays waiting.
    const worker = app.worker({ queues: ["mail"], concurrency: 1, prefetch: 0, heartbeatMs: 200 }).start();
    try {
      await (await send.enqueue("a@example.com")).result({ timeoutMs: WAIT });
      await assert.rejects((await doomed.enqueue(undefined)).result({ timeoutMs: WAIT }), /no such mailbox/);
      const retrying = await flaky.enqueue(undefined);
      await waitFor(async () => (await retrying.status())?.state === "retrying", WAIT, "a retrying run");
      const cancelled = await send.enqueue("c@example.com", { delayMs: 600_000 });
      assert.equal(await cancelled.cancel(), true);
      await send.enqueue("later@example.com", { delayMs: 600_000 });
      const blocked = await block.enqueue(undefined);
      await waitFor(() => started, WAIT, "the blocked run to start");
      const waiting = await send.enqueue("w@example.com");
      for (let i = 0; i < 3; i++) await report.enqueue(undefined);
      assert.equal((await blocked.status())?.state, "active");
      assert.equal((await waiting.status())?.state, "queued");
      assert.equal((await cancelled.status())?.state, "cancelled");
      await waitFor(async () => (await app.inspect().workers()).length === 1, WAIT, "the worker to register");
      // What a worker counted reaches the store with its heartbeat; reading the stats sends it now.
      await app.inspect().stats({ windowMs: 3_600_000 });

      await page.goto(`${base}/`);
      const mail = page.locator('#queues tr[data-queue="mail"]');
      const count = async (row: typeof mail, name: string) =>
        (await row.locator(`[data-count="${name}"]`).textContent())?.trim();
      const counts = async (row: typeof mail) => ({
        waiting: await count(row, "waiting"),
        scheduled: await count(row, "scheduled"),
        retrying: await count(row, "retrying"),
        active: await count(row, "active"),
        deadLetters: await count(row, "deadLetters"),
        workers: await count(row, "workers"),
      });
      assert.deepEqual(await counts(mail), {
        waiting: "1",
        scheduled: "1",
        retrying: "1",
        active: "1",
        deadLetters: "1",
        workers: "1",
      });
      assert.deepEqual(await counts(page.locator('#queues tr[data-queue="reports"]')), {
        waiting: "3",
        scheduled: "0",
        retrying: "0",
        active: "0",
        deadLetters: "0",
        workers: "0",
      });
      assert.equal(await page.locator('[data-total="waiting"]').textContent(), "4");
      assert.equal(await page.locator('[data-total="workers"]').textContent(), "1");
      assert.equal(await page.locator('[data-total="dead"]').textContent(), "1");
      assert.equal(
        await page.locator("figure.chart [data-total]").textContent(),
        "2",
        "the chart: one run succeeded and one failed (a retry has not ended)",
      );
      await live();
      await shot("overview");
      if (process.env.CELERIAC_DASHBOARD_SCREENSHOT === "1") {
        await page.screenshot({ path: "docs/dashboard.png" });
      }

      // Released, the blocked run ends and the waiting one runs: the counts follow live.
      g.open();
      await blocked.result({ timeoutMs: WAIT });
      await waiting.result({ timeoutMs: WAIT });
      await mail.locator('[data-count="active"]', { hasText: /^0$/ }).waitFor({ timeout: WAIT });
      await mail.locator('[data-count="waiting"]', { hasText: /^0$/ }).waitFor({ timeout: WAIT });
      assert.deepEqual(problems, []);
    } finally {
      g.open();
      await worker.stop();
    }
  });

  it("finds a run by its idempotency key and shows both attempts with the first one's error", {
    timeout: 30_000,
  }, async () => {
    const { app, page, base, problems, shot } = await scene();
    assert.ok(app.store.history, "the backend keeps a run history to search");
    const flaky = app.task({
      name: "orders.charge",
      queue: "orders",
      retry: { maxAttempts: 2, backoff: "fixed", baseMs: 1, jitter: "none" },
      run: (order: { id: number }, ctx) => {
        if (ctx.attempt === 1) throw new Error(`card declined for order ${order.id}`);
        return { charged: order.id };
      },
    });
    const runs = [
      await flaky.enqueue({ id: 41 }, { idempotencyKey: "order-41" }),
      await flaky.enqueue({ id: 42 }, { idempotencyKey: "order-42" }),
      await flaky.enqueue({ id: 420 }, { idempotencyKey: "order-420" }),
      await flaky.enqueue({ id: 43 }),
    ];
    const worker = app.worker({ queues: ["orders"], heartbeatMs: 200 }).start();
    try {
      for (const run of runs) await run.result({ timeoutMs: WAIT });
      const wanted = runs[1]!;

      await page.goto(`${base}/runs`);
      await page.locator("#runs tbody tr[data-run]").first().waitFor();
      await page.fill('#search input[name="key"]', "order-42");
      await Promise.all([
        page.waitForURL((url) => url.searchParams.get("key") === "order-42"),
        page.click('#search button[type="submit"]'),
      ]);
      const rows = page.locator("#runs tbody tr[data-run]");
      assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-run"))), [
        wanted.id,
      ]);
      assert.equal(await page.inputValue('#search input[name="key"]'), "order-42", "the filter stays");
      await shot("runs-search");

      await Promise.all([page.waitForURL(/\/ops\/runs\/[^?]+/), rows.first().locator("a").click()]);
      assert.equal(await page.locator("h1").textContent(), `Run ${wanted.id}`);
      const attempts = page.locator("ol#attempts li[data-attempt]");
      assert.deepEqual(
        await attempts.evaluateAll((lis) => lis.map((li) => [li.dataset.attempt, li.className])),
        [
          ["1", "t-fail"],
          ["2", "t-succeeded"],
        ],
      );
      assert.match(
        (await attempts.nth(0).locator(".error").textContent()) ?? "",
        /Error: card declined for order 42/,
      );
      assert.equal(await page.locator('#state [data-field="state"]').textContent(), "succeeded");
      await shot("run");
      assert.deepEqual(problems, []);
    } finally {
      await worker.stop();
    }
  });

  it("replays a dead letter and shows its run's new state live, without reloading", {
    timeout: 30_000,
  }, async () => {
    const { app, page, base, problems, shot, live } = await scene();
    let calls = 0;
    const webhook = app.task({
      name: "hooks.deliver",
      queue: "hooks",
      run: (url: string) => {
        if (++calls === 1) throw new NonRetryableError(`${url} answered 410`);
        return { delivered: url };
      },
    });
    const other = app.task({
      name: "hooks.broken",
      queue: "hooks",
      run: () => {
        throw new NonRetryableError("always broken");
      },
    });
    const worker = app.worker({ queues: ["hooks"], heartbeatMs: 200 }).start();
    try {
      const run = await webhook.enqueue("https://example.com/hook");
      await assert.rejects(run.result({ timeoutMs: WAIT }), /answered 410/);
      const untouched = await other.enqueue(undefined);
      await assert.rejects(untouched.result({ timeoutMs: WAIT }), /always broken/);

      await page.goto(`${base}/dead-letters`);
      const row = page.locator(`#dead tr[data-dead="${run.id}"]`);
      const badge = row.locator('[data-field="state"]');
      assert.equal(await badge.textContent(), "failed");
      assert.equal(await page.locator("#dead tbody tr[data-dead]").count(), 2);
      await live();
      await page.evaluate(() => {
        (window as unknown as { __marker: number }).__marker = 1;
      });
      await row.locator('button[data-action="replay"]').click();
      await page.locator("#toast", { hasText: `Dead letter ${run.id} replayed` }).waitFor({ timeout: WAIT });
      await row.locator('[data-field="state"]', { hasText: /^succeeded$/ }).waitFor({ timeout: WAIT });
      assert.equal(await row.getAttribute("data-state"), "succeeded");
      assert.equal(
        await page.evaluate(() => (window as unknown as { __marker?: number }).__marker),
        1,
        "the page was not reloaded",
      );
      assert.deepEqual(await run.result({ timeoutMs: WAIT }), { delivered: "https://example.com/hook" });
      assert.equal(
        await page.locator(`#dead tr[data-dead="${untouched.id}"] [data-field="state"]`).textContent(),
        "failed",
        "the other dead letter is left as it was",
      );
      await shot("dead-letters");
      assert.deepEqual(problems, []);
    } finally {
      await worker.stop();
    }
  });

  it("pauses a queue from its page: a running worker leaves its runs waiting until it is resumed", {
    timeout: 30_000,
  }, async () => {
    const { app, page, base, problems, dialogs, shot } = await scene();
    const resize = app.task({ name: "images.resize", queue: "images", run: (n: number) => n * 2 });
    const ping = app.task({ name: "ops.ping", queue: "ping", run: () => "pong" });
    const worker = app.worker({ queues: ["images", "ping"], concurrency: 2, heartbeatMs: 200 }).start();
    try {
      await (await resize.enqueue(1)).result({ timeoutMs: WAIT });
      await page.goto(`${base}/queues/images`);
      assert.equal(await page.locator(`tr[data-queue="images"] .badge.paused`).count(), 0);
      await Promise.all([
        page.waitForURL(`${base}/queues/images`),
        page.click('button[data-action="pause"]'),
      ]);
      await page.locator("p.notice", { hasText: "Queue images paused." }).waitFor();
      await page.locator('tr[data-queue="images"] .badge.paused').waitFor();
      assert.equal(await page.locator('button[data-action="resume"]').count(), 1);
      assert.equal((await app.inspect().queues()).find((q) => q.queue === "images")?.paused, true);

      const held = await resize.enqueue(21);
      // The worker asks its queues in turn, images first, one receive at a time. The second ping
      // is taken by a later receive than the first ping's, so by one begun after `held` was
      // enqueued: by then the worker has asked the paused queue for work and got none.
      await (await ping.enqueue(undefined)).result({ timeoutMs: WAIT });
      await (await ping.enqueue(undefined)).result({ timeoutMs: WAIT });
      assert.equal((await held.status())?.state, "queued", "a paused queue's run stays queued");
      assert.deepEqual(
        (await app.inspect().workers()).map((w) => w.id),
        [worker.id],
        "while its worker is running",
      );

      await page.goto(`${base}/queues/images?state=waiting`);
      const row = page.locator(`tr[data-run="${held.id}"]`);
      assert.equal(await row.locator('[data-field="state"]').textContent(), "waiting");
      assert.equal(await page.locator('tr[data-queue="images"] [data-count="waiting"]').textContent(), "1");
      await shot("queue-paused");

      await Promise.all([
        page.waitForURL(/\/ops\/queues\/images$/),
        page.click('button[data-action="resume"]'),
      ]);
      await page.locator("p.notice", { hasText: "Queue images resumed." }).waitFor();
      assert.equal(await held.result({ timeoutMs: WAIT }), 42);
      await page
        .locator('tr[data-queue="images"] [data-count="waiting"]', { hasText: /^0$/ })
        .waitFor({ timeout: WAIT });
      assert.equal(await page.locator('tr[data-queue="images"] .badge.paused').count(), 0);
      assert.deepEqual(dialogs, [], "pausing and resuming ask nothing");
      assert.deepEqual(problems, []);
    } finally {
      await worker.stop();
    }
  });

  it("in read-only mode shows no action anywhere and answers a forged POST with 403", {
    timeout: 30_000,
  }, async () => {
    const { app, page, base, problems, shot } = await scene({ readOnly: true });
    const report = app.task({ name: "reports.build", queue: "reports", run: (n: number) => n });
    const broken = app.task({
      name: "reports.broken",
      queue: "reports",
      run: () => {
        throw new NonRetryableError("no data");
      },
    });
    await app.schedules.add("nightly", { task: "reports.build", input: 1, cron: "0 2 * * *" });
    const worker = app.worker({ queues: ["reports"], heartbeatMs: 200 }).start();
    try {
      await (await report.enqueue(1)).result({ timeoutMs: WAIT });
      const dead = await broken.enqueue(undefined);
      await assert.rejects(dead.result({ timeoutMs: WAIT }), /no data/);
      await report.enqueue(2, { delayMs: 600_000 });
      await waitFor(async () => (await app.inspect().workers()).length === 1, WAIT, "the worker to register");

      const pages = {
        overview: "/",
        queue: "/queues/reports",
        run: `/runs/${dead.id}?queue=reports`,
        "dead-letters": "/dead-letters",
        schedules: "/schedules",
        workers: "/workers",
      };
      for (const [name, path] of Object.entries(pages)) {
        await page.goto(`${base}${path}`);
        await page.locator("main h1").waitFor();
        assert.equal(await page.getAttribute("body", "data-read-only"), "1", path);
        assert.equal(await page.locator("button[data-action], form[data-action]").count(), 0, path);
        assert.equal(await page.locator('form[method="post"]').count(), 0, `${path}: no POST form`);
        await shot(`read-only-${name}`);
      }
      // What the pages would show with actions is there: the run, the dead letter, the worker.
      await page.goto(`${base}/dead-letters`);
      assert.equal(await page.locator(`#dead tr[data-dead="${dead.id}"]`).count(), 1);
      await page.goto(`${base}/workers`);
      assert.equal(await page.locator(`#workers tr[data-worker="${worker.id}"]`).count(), 1);

      // A forged POST from the signed-in page (cookies sent), and one with the bearer token.
      const statuses = await page.evaluate(
        (b) =>
          Promise.all(
            ["/queues/reports/pause", "/dead-letters/replay"].map((path) =>
              fetch(`${b}${path}`, {
                method: "POST",
                body: new URLSearchParams({ _csrf: "0".repeat(64) }),
                headers: { "x-celeriac-fetch": "1" },
                credentials: "same-origin",
              }).then((r) => r.status),
            ),
          ),
        base,
      );
      assert.deepEqual(statuses, [403, 403]);
      const postedAt = Date.now();
      const direct = await fetch(`${base}/workers/${encodeURIComponent(worker.id)}/shutdown`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(direct.status, 403);
      assert.equal((await direct.json()).message, "this dashboard is read-only");
      assert.equal((await app.inspect().queues()).find((q) => q.queue === "reports")?.paused, false);
      assert.equal((await app.deadLetters()).length, 1, "the dead letter was not replayed");
      // A shutdown would reach the worker with its next heartbeat: two beats later it still runs.
      await waitFor(
        async () => ((await app.inspect().workers())[0]?.beatAt ?? 0) > postedAt + 200,
        WAIT,
        "two more heartbeats",
      );
      assert.equal(worker.running, true, "the worker was not shut down");
      // The only errors the page saw are the two refused requests.
      assert.equal(problems.length, 2, problems.join("\n"));
      for (const p of problems) assert.match(p, /status of 403/);
    } finally {
      await worker.stop();
    }
  });

  it("runs its script under the strict CSP on every page, with no console error", {
    timeout: 30_000,
  }, async () => {
    const { app, page, base, problems, dialogs, answer, shot, live } = await scene();
    await page.addInitScript(`
      window.__violations = [];
      document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
    `);
    const violations = () =>
      page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);
    const thumb = app.task({ name: "media.thumb", queue: "media", run: (n: number) => ({ size: n }) });
    const bad = app.task({
      name: "media.bad",
      queue: "media",
      run: () => {
        throw new NonRetryableError("unreadable file");
      },
    });
    await app.schedules.add("sweep", { task: "media.thumb", input: 64, every: "1h" });
    const worker = app.worker({ queues: ["media"], heartbeatMs: 200 }).start();
    try {
      const done = await thumb.enqueue(128);
      await done.result({ timeoutMs: WAIT });
      const dead = await bad.enqueue(undefined);
      await assert.rejects(dead.result({ timeoutMs: WAIT }), /unreadable file/);
      await thumb.enqueue(256, { delayMs: 600_000 });
      await waitFor(async () => (await app.inspect().workers()).length === 1, WAIT, "the worker to register");

      const pages = {
        "csp-overview": "/",
        queue: "/queues/media?state=scheduled",
        runs: "/runs",
        "run-succeeded": `/runs/${done.id}?queue=media`,
        "run-failed": `/runs/${dead.id}?queue=media`,
        "csp-dead-letters": "/dead-letters",
        schedules: "/schedules",
        workers: "/workers",
      };
      let timesSeen = 0;
      for (const [name, path] of Object.entries(pages)) {
        const res = await page.goto(`${base}${path}`);
        assert.equal(res?.status(), 200, path);
        const csp = res?.headers()["content-security-policy"] ?? "";
        assert.match(csp, /script-src 'self';/, path);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
        // The script ran: it opened the event stream and showed the times in local time.
        await live();
        const times = await page
          .locator("time[datetime]")
          .evaluateAll((els) =>
            els.map((el) => ({ text: el.textContent ?? "", title: el.getAttribute("title") ?? "" })),
          );
        timesSeen += times.length;
        for (const t of times) {
          assert.doesNotMatch(
            t.text,
            /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/,
            `${path}: a local time, not the server's`,
          );
          assert.match(t.title, /\((?:.+ ago|in .+)\)$/, `${path}: how long ago`);
        }
        // The stylesheet applied: the header is laid out by it.
        assert.equal(await page.locator("header.top").evaluate((el) => getComputedStyle(el).display), "flex");
        assert.deepEqual(await violations(), [], path);
        await shot(name);
      }
      assert.ok(timesSeen >= 5, `times shown: ${timesSeen}`);
      assert.deepEqual(problems, []);

      // The script asks before a purge: dismissed, nothing is purged.
      await page.goto(`${base}/queues/media`);
      answer.accept = false;
      await page.click('button[data-action="purge"]');
      assert.deepEqual(dialogs, ["Remove every waiting and delayed run of media? Their runs end cancelled."]);
      assert.equal(page.url(), `${base}/queues/media`);
      assert.equal((await app.inspect().queues()).find((q) => q.queue === "media")?.scheduled, 1);

      // The policy is enforced: an inline script is refused, reported, and does not run.
      await page.evaluate(() => {
        const script = document.createElement("script");
        script.textContent = "window.__inline = 1";
        document.head.append(script);
      });
      await page.waitForFunction(
        () => (window as unknown as { __violations: string[] }).__violations.length > 0,
      );
      assert.deepEqual(await violations(), ["script-src-elem"]);
      assert.equal(await page.evaluate(() => "__inline" in window), false);
      assert.equal(problems.length, 1);
      assert.match(problems[0] ?? "", /Content Security Policy/);
    } finally {
      await worker.stop();
    }
  });
});
