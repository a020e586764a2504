// A circuit breaker over QStash push: the QStash emulator (on the test's manual clock) pushes
// signed deliveries to the real handler; a delivery that meets the open breaker is answered 200
// and published again for the end of the cooldown, so QStash brings it back then.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { memory } from "../adapters/memory/mod.ts";
import { qstash } from "../adapters/qstash/mod.ts";
import { type QStashEmulator, startQStashEmulator } from "../dev/mod.ts";
import { createApp, manualClock } from "../mod.ts";
import { createHandler } from "../src/hono.ts";
import { freePort, type Listening, serveHere } from "./edge/_support.ts";

const KEYS = { token: "breaker-token", currentSigningKey: "sig_brk_current", nextSigningKey: "sig_brk_next" };
const T0 = Date.UTC(2030, 0, 1);

describe("a circuit breaker over QStash push", () => {
  const clock = manualClock(T0);
  let emulator: QStashEmulator;
  let listening: Listening;
  let app: ReturnType<typeof createApp>;
  const outageEnds = T0 + 30_000;
  const calls: { id: string; attempt: number; at: number }[] = [];

  before(async () => {
    emulator = await startQStashEmulator({ ...KEYS, now: () => clock.now() });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/qstash`;
    app = createApp({
      broker: qstash({ ...KEYS, url, baseUrl: emulator.url }),
      store: memory({ clock }),
      clock,
    });
    app.task({
      name: "sync",
      retry: { maxAttempts: 10, backoff: "fixed", baseMs: 2_000, jitter: "none" },
      breaker: { failureThreshold: 3, windowMs: 10_000, cooldownMs: 10_000, halfOpenProbes: 1 },
      run: (_n: number, ctx) => {
        calls.push({ id: ctx.id, attempt: ctx.attempt, at: clock.now() });
        if (clock.now() < outageEnds) throw new Error("503");
        return "synced";
      },
    });
    const handler = createHandler(app);
    listening = await serveHere((request) => handler.fetch(request), port);
  });

  after(async () => {
    await emulator?.close();
    await listening?.close();
  });

  it("runs nothing while it is open, brings every delivery back after the cooldown, and runs each to success", {
    timeout: 60_000,
  }, async () => {
    const sync = { enqueue: (n: number) => app.enqueue("sync", n) };
    // Three failures open it (each delivered on its own: concurrent pushes would all pass the check).
    const first = [];
    for (let i = 0; i < 3; i++) {
      first.push(await sync.enqueue(i));
      await emulator.idle();
    }
    assert.equal(calls.length, 3);
    const [info] = await app.inspect().breakers();
    assert.equal(info?.state, "open");
    const later = [];
    for (let i = 3; i < 20; i++) later.push(await sync.enqueue(i));
    await emulator.idle();
    assert.equal(calls.length, 3, "deliveries for an open breaker ran nothing");
    assert.equal((await later[0]!.status())?.state, "scheduled");
    const runs = [...first, ...later];
    while (!(await Promise.all(runs.map((r) => r.status()))).every((r) => r?.state === "succeeded")) {
      assert.ok(clock.now() < T0 + 120_000, "every run succeeds within 90 s of the outage's end");
      clock.advance(1_000);
      await emulator.idle();
    }
    const during = calls.filter((c) => c.at < outageEnds).length;
    assert.ok(during <= 3 + 2, `${during} attempts during the outage`);
    for (const run of runs) {
      const attempts = calls.filter((c) => c.id === run.id).map((c) => c.attempt);
      assert.deepEqual(
        attempts,
        attempts.map((_, i) => i + 1),
        "deferrals used no attempt",
      );
    }
    assert.equal(emulator.dlq().length, 0, "QStash never gave up on a delivery");
  });
});
