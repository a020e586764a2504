/**
 * celeriac quick start: a few realistic tasks on the in-memory default backend, one worker,
 * live events in the terminal, and a final table of runs.
 *
 *   npm start            (Node, via tsx)
 *   bun examples/quickstart.ts
 *   deno run -A examples/quickstart.ts
 */
import * as v from "valibot";
import { createApp, type Run, type RunRecord } from "celeriac";

const app = createApp(); // memory() broker and store

// 1. A flaky call that fails twice, then succeeds on its third attempt (exponential backoff).
let gatewayCalls = 0;
const chargeCard = app.task({
  name: "billing.charge",
  input: v.object({ orderId: v.string(), cents: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  retry: { maxAttempts: 5, backoff: "exponential", baseMs: 100, jitter: "equal" },
  async run({ orderId, cents }, ctx) {
    gatewayCalls++;
    if (ctx.attempt < 3) throw new Error(`payment gateway timeout (attempt ${ctx.attempt})`);
    return { orderId, charged: cents, gatewayCalls };
  },
});

// 2. An email that must go out once per address: enqueued twice, sent once.
let emailsSent = 0;
const sendWelcome = app.task({
  name: "email.welcome",
  input: v.object({ to: v.pipe(v.string(), v.email()) }),
  idempotencyKey: ({ to }) => `welcome:${to}`,
  run({ to }) {
    emailsSent++;
    return { to, sent: true };
  },
});

// 3. A reminder that runs later.
const remind = app.task({
  name: "reminder.send",
  input: v.object({ user: v.string() }),
  run: ({ user }) => `reminded ${user}`,
});

// 4. A report with progress.
const buildReport = app.task({
  name: "report.build",
  input: v.object({ pages: v.pipe(v.number(), v.integer(), v.minValue(1)) }),
  async run({ pages }, ctx) {
    for (let page = 1; page <= pages; page++) {
      await new Promise((resolve) => setTimeout(resolve, 40)); // render a page
      await ctx.progress({ page, pages });
    }
    return { pages };
  },
});

// Live view of what happens.
const started = Date.now();
const at = () => `${String(Date.now() - started).padStart(5)} ms`;
app.on("retrying", (e) =>
  console.log(
    `${at()}  ↻ ${e.task} attempt ${e.attempt} failed: ${e.error.message}; retry in ${e.delayMs} ms`,
  ),
);
app.on("succeeded", (e) => console.log(`${at()}  ✓ ${e.task} succeeded on attempt ${e.attempt}`));
app.on("failed", (e) => console.log(`${at()}  ✗ ${e.task} failed: ${e.error.message}`));
app.on("progress", (e) => {
  const { page, pages } = e.progress as { page: number; pages: number };
  const bar = "█".repeat(page) + "░".repeat(pages - page);
  console.log(`${at()}  … ${e.task} ${bar} ${page}/${pages}`);
});

const worker = app.worker({ concurrency: 4 }).start();

const runs: [string, Run<unknown>][] = [
  ["charge order A-1", await chargeCard.enqueue({ orderId: "A-1", cents: 1999 })],
  ["welcome ada (1st)", await sendWelcome.enqueue({ to: "ada@example.com" })],
  ["welcome ada (2nd)", await sendWelcome.enqueue({ to: "ada@example.com" })],
  ["reminder in 300 ms", await remind.enqueue({ user: "ada" }, { delayMs: 300 })],
  ["report, 5 pages", await buildReport.enqueue({ pages: 5 })],
];

try {
  await sendWelcome.enqueue({ to: "not an address" });
} catch (error) {
  console.log(`${at()}  ! rejected at enqueue: ${(error as Error).message}`);
}

await Promise.all(runs.map(([, run]) => run.result({ timeoutMs: 10_000 })));
await worker.stop();

const records = await Promise.all(runs.map(([, run]) => run.status()));
const rows = runs.map(([label, run], i) => {
  const r = records[i] as RunRecord;
  const duration = r.finishedAt !== undefined ? `${r.finishedAt - r.enqueuedAt} ms` : "-";
  return [label, run.id.slice(0, 8), r.state, String(r.attempt), duration];
});
const head = ["run", "id", "state", "attempts", "enqueue→done"];
const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
const line = (cells: string[]) => `| ${cells.map((cell, c) => cell.padEnd(widths[c]!)).join(" | ")} |`;
console.log(`\n${line(head)}\n|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const row of rows) console.log(line(row));
console.log(`\nwelcome emails sent: ${emailsSent} (enqueued twice, same idempotency key)`);
console.log(`payment gateway calls: ${gatewayCalls}`);
if (emailsSent !== 1 || records.some((r) => r?.state !== "succeeded")) process.exitCode = 1;
