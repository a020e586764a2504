import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import {
  CeleriacError,
  createApp,
  FlowKeyError,
  manualClock,
  ThrottledError,
  ValidationError,
} from "../mod.ts";
import type { Broker, Message } from "../backend.ts";
import { createRequestHandler } from "../src/http/mod.ts";
import type { Run } from "../mod.ts";

const T0 = Date.UTC(2030, 0, 1);

function rig() {
  const clock = manualClock(T0);
  const backend = memory({ clock });
  const app = createApp({ broker: backend, store: backend, clock });
  return { clock, backend, app };
}

describe("debounce at enqueue (memory, manual clock)", () => {
  it("collapses a burst into one run with the last input, started delayMs after the last enqueue", async () => {
    const { clock, app } = rig();
    const seen: string[] = [];
    const t = app.task({
      name: "reindex",
      input: v.object({ doc: v.string(), rev: v.number() }),
      debounce: { key: (i) => i.doc, delayMs: 1_000 },
      run: (i) => {
        seen.push(`${i.doc}@${i.rev}`);
        return i.rev;
      },
    });
    const a = await t.enqueue({ doc: "d1", rev: 1 });
    clock.advance(600);
    const b = await t.enqueue({ doc: "d1", rev: 2 });
    clock.advance(600);
    const c = await t.enqueue({ doc: "d1", rev: 3 });
    assert.deepEqual([a.debounced, b.debounced, c.debounced], ["scheduled", "replaced", "replaced"]);
    assert.equal(new Set([a.id, b.id, c.id]).size, 1, "one run for the burst");
    assert.equal((await c.status())?.notBefore, T0 + 1_200 + 1_000);
    clock.advance(999);
    assert.equal(await app.drain(), 0, "not before the quiet period has passed");
    clock.advance(1);
    assert.equal(await app.drain(), 1);
    assert.deepEqual(seen, ["d1@3"]);
    assert.equal(await a.result(), 3, "every handle of the burst gets the run's result");
    assert.equal(await app.drain(), 0, "nothing else was left behind");
  });

  it("keeps separate keys independent", async () => {
    const { clock, app } = rig();
    const seen: string[] = [];
    const t = app.task({
      name: "k",
      input: v.object({ k: v.string(), n: v.number() }),
      debounce: { key: (i) => i.k, delayMs: 500 },
      run: (i) => {
        seen.push(`${i.k}${i.n}`);
      },
    });
    const runs = await t.enqueueMany([
      { k: "a", n: 1 },
      { k: "b", n: 1 },
      { k: "a", n: 2 },
    ]);
    assert.deepEqual(
      runs.map((r) => r.debounced),
      ["scheduled", "scheduled", "replaced"],
    );
    assert.equal(runs[0]!.id, runs[2]!.id);
    assert.notEqual(runs[0]!.id, runs[1]!.id);
    clock.advance(200);
    await t.enqueue({ k: "b", n: 2 });
    clock.advance(300);
    assert.equal(await app.drain(), 1, "a is due; b's burst was extended");
    clock.advance(200);
    assert.equal(await app.drain(), 1);
    assert.deepEqual(seen, ["a2", "b2"]);
  });

  it("caps a continuous stream at maxWaitMs after the burst's first enqueue, then begins a new burst", async () => {
    const { clock, app } = rig();
    const ran: { n: number; at: number }[] = [];
    const t = app.task({
      name: "stream",
      debounce: { delayMs: 300, maxWaitMs: 1_000 },
      run: (n: number) => {
        ran.push({ n, at: clock.now() });
      },
    });
    const handles: Run<unknown>[] = [];
    for (let n = 0; n < 25; n++) {
      handles.push(await t.enqueue(n));
      await app.drain();
      clock.advance(100);
    }
    clock.advance(300);
    await app.drain();
    // Bursts began at 0, 1100 and 2200 ms; each was due 1000 ms after its first enqueue.
    assert.deepEqual(ran, [
      { n: 10, at: T0 + 1_000 },
      { n: 21, at: T0 + 2_100 },
      { n: 24, at: T0 + 2_800 },
    ]);
    const ids = [...new Set(handles.map((h) => h.id))];
    assert.equal(ids.length, 3);
    assert.deepEqual(
      handles.filter((h) => h.debounced === "scheduled").map((h) => handles.indexOf(h)),
      [0, 11, 22],
    );
  });

  it("replaces a run that is due but not taken yet, and begins a new burst once a worker has leased it", async () => {
    const { clock, backend, app } = rig();
    const seen: number[] = [];
    const t = app.task({
      name: "due",
      debounce: { delayMs: 100, maxWaitMs: 100 },
      run: (n: number) => seen.push(n),
    });
    const first = await t.enqueue(1);
    clock.advance(150);
    const second = await t.enqueue(2);
    assert.equal(second.debounced, "replaced");
    assert.equal((await second.status())?.state, "queued", "due at once: the cap has passed");
    // A worker leases it: the next enqueue cannot replace it, and begins the next burst.
    const [delivery] = await backend.receive({ queues: ["default"], max: 1, leaseMs: 10_000, waitMs: 0 });
    assert.equal(delivery?.id, first.id);
    const third = await t.enqueue(3);
    assert.equal(third.debounced, "scheduled");
    assert.notEqual(third.id, first.id);
    await backend.release([delivery!]);
    clock.advance(100);
    await app.drain();
    assert.deepEqual(seen.sort(), [2, 3]);
  });

  it("begins a new burst after the run started or was cancelled", async () => {
    const { clock, app } = rig();
    const t = app.task({ name: "again", debounce: { delayMs: 100 }, run: (n: number) => n });
    const a = await t.enqueue(1);
    clock.advance(100);
    await app.drain();
    assert.equal(await a.result(), 1);
    const b = await t.enqueue(2);
    assert.equal(b.debounced, "scheduled");
    assert.notEqual(b.id, a.id);
    assert.equal(await b.cancel(), true);
    const c = await t.enqueue(3);
    assert.equal(c.debounced, "scheduled");
    assert.notEqual(c.id, b.id);
    clock.advance(100);
    await app.drain();
    assert.equal(await c.result(), 3);
  });

  it("checks the idempotency key in the same step: a key a run holds returns that run unchanged", async () => {
    const { clock, app } = rig();
    const t = app.task({
      name: "hook",
      input: v.object({ event: v.string(), n: v.number() }),
      debounce: { delayMs: 100 },
      idempotencyKey: (i) => i.event,
      run: (i) => i.n,
    });
    const a = await t.enqueue({ event: "e1", n: 1 });
    const again = await t.enqueue({ event: "e1", n: 99 });
    assert.equal(again.id, a.id);
    assert.equal(again.debounced, undefined, "a duplicate changes nothing");
    const b = await t.enqueue({ event: "e2", n: 2 });
    assert.equal(b.debounced, "replaced");
    clock.advance(100);
    await app.drain();
    assert.equal(await a.result(), 2);
  });

  it("gives the run the expiry of its last enqueue", async () => {
    const { clock, app } = rig();
    const t = app.task({ name: "fresh", debounce: { delayMs: 1_000 }, expiresInMs: 5_000, run: () => 1 });
    await t.enqueue(1);
    clock.advance(800);
    const last = await t.enqueue(2, { expiresInMs: 2_000 });
    assert.equal((await last.status())?.expiresAt, T0 + 800 + 2_000);
    clock.advance(1_000);
    await app.drain();
    assert.equal(await last.result(), 1);
  });

  it("does not debounce an enqueue that names its run, and rejects delayMs and at", async () => {
    const { app } = rig();
    const t = app.task({ name: "named", debounce: { delayMs: 100 }, run: () => 1 });
    const named = await t.enqueue(null, { id: "mine" });
    assert.equal(named.id, "mine");
    assert.equal(named.debounced, undefined);
    assert.equal((await named.status())?.state, "queued");
    await assert.rejects(t.enqueue(null, { delayMs: 5 }), /debounced.*no delayMs or at/);
    await assert.rejects(t.enqueue(null, { at: T0 + 5 }), TypeError);
  });

  it("surfaces a failing key function as FlowKeyError, and sends nothing", async () => {
    const { backend, app } = rig();
    const t = app.task({
      name: "badkey",
      debounce: {
        key: (i: unknown) => {
          const { k } = i as { k?: unknown };
          if (k === "throw") throw new Error("no key here");
          return k as string;
        },
        delayMs: 100,
      },
      run: () => 1,
    });
    const thrown = await t.enqueue({ k: "throw" }).catch((e: unknown) => e);
    assert.ok(thrown instanceof FlowKeyError);
    assert.equal(thrown.option, "debounce.key");
    assert.match(thrown.message, /no key here/);
    await assert.rejects(
      t.enqueue({ k: 7 }),
      (e: unknown) => e instanceof FlowKeyError && /non-empty string, got 7/.test(e.message),
    );
    await assert.rejects(t.enqueueMany([{ k: "fine" }, { k: "" }]), FlowKeyError);
    assert.deepEqual(backend.stats(), { ready: 0, delayed: 0, leased: 0 }, "nothing was sent");
  });

  it("validates input before any key is computed", async () => {
    const { app } = rig();
    let keyed = 0;
    const t = app.task({
      name: "schema",
      input: v.object({ n: v.number() }),
      debounce: { key: (i) => String(++keyed + i.n), delayMs: 10 },
      run: () => 1,
    });
    await assert.rejects(t.enqueue({ n: "x" } as never), ValidationError);
    assert.equal(keyed, 0);
  });

  it("is refused at definition when the ledger cannot replace a waiting run (QStash, a separate store)", () => {
    const app = createApp({ broker: memory(), store: memory() });
    assert.throws(
      () => app.task({ name: "x", debounce: { delayMs: 10 }, run: () => 1 }),
      /task "x": debounce needs a backend that replaces a waiting run in one step/,
    );
    const push: Broker = { send: (_: readonly Message[]) => Promise.resolve() };
    const pushApp = createApp({ broker: push, store: memory() });
    assert.throws(() => pushApp.task({ name: "y", debounce: { delayMs: 10 }, run: () => 1 }), TypeError);
    // Throttle needs nothing but the store.
    pushApp.task({ name: "z", throttle: { limit: 1, periodMs: 10 }, run: () => 1 });
  });

  it("runs every enqueue at once in eager mode (delays collapsed)", async () => {
    const app = createApp({ broker: memory({ eager: true }) });
    const seen: number[] = [];
    const t = app.task({ name: "eager", debounce: { delayMs: 60_000 }, run: (n: number) => seen.push(n) });
    const a = await t.enqueue(1);
    const b = await t.enqueue(2);
    assert.deepEqual(seen, [1, 2]);
    assert.deepEqual([a.debounced, b.debounced], ["scheduled", "scheduled"]);
  });
});

describe("throttle at enqueue (memory, manual clock)", () => {
  it("drops enqueues over the limit in a window, with handles that say so", async () => {
    const { clock, backend, app } = rig();
    const seen: number[] = [];
    const t = app.task({
      name: "sms",
      input: v.object({ to: v.string(), n: v.number() }),
      throttle: { key: (i) => i.to, limit: 2, periodMs: 60_000 },
      run: (i) => seen.push(i.n),
    });
    const runs = await t.enqueueMany([1, 2, 3, 4].map((n) => ({ to: "ada", n })));
    const other = await t.enqueue({ to: "bob", n: 5 });
    assert.deepEqual(
      runs.map((r) => r.throttled),
      [undefined, undefined, "dropped", "dropped"],
    );
    assert.equal(other.throttled, undefined, "another key has its own count");
    const dropped = runs[2]!;
    assert.equal(await dropped.status(), null, "nothing was recorded");
    assert.equal(await dropped.cancel(), false);
    const error = await dropped.result().catch((e: unknown) => e);
    assert.ok(error instanceof ThrottledError);
    assert.equal(error.key, "ada");
    assert.equal(error.retryAt, T0 + 60_000);
    assert.equal(backend.stats().ready, 3);
    await app.drain();
    assert.deepEqual(seen.sort(), [1, 2, 5]);
    clock.advance(60_000);
    const next = await t.enqueue({ to: "ada", n: 6 });
    assert.equal(next.throttled, undefined, "a new window counts afresh");
  });

  it("delays enqueues over the limit to the start of the next window with room", async () => {
    const { clock, app } = rig();
    const ran: { n: number; at: number }[] = [];
    const t = app.task({
      name: "api",
      throttle: { limit: 2, periodMs: 1_000, mode: "delay" },
      run: (n: number) => {
        ran.push({ n, at: clock.now() });
      },
    });
    clock.advance(250);
    const runs = await t.enqueueMany([1, 2, 3, 4, 5]);
    assert.deepEqual(
      runs.map((r) => r.throttled),
      [undefined, undefined, "delayed", "delayed", "delayed"],
    );
    assert.deepEqual(await Promise.all(runs.map(async (r) => (await r.status())?.notBefore)), [
      undefined,
      undefined,
      T0 + 1_000,
      T0 + 1_000,
      T0 + 2_000,
    ]);
    assert.equal(await app.drain(), 2, "the two within the limit run now");
    // In the next window, the delayed ones came first: it is full, and the one after has room for one.
    clock.advance(800);
    const late = await t.enqueue(6);
    assert.equal(late.throttled, "delayed");
    assert.equal((await late.status())?.notBefore, T0 + 2_000);
    const later = await t.enqueue(7);
    assert.equal((await later.status())?.notBefore, T0 + 3_000);
    const last = await t.enqueue(8);
    assert.equal((await last.status())?.notBefore, T0 + 3_000);
    for (let i = 0; i < 4; i++) {
      await app.drain();
      clock.advance(1_000);
    }
    await app.drain();
    const byWindow = new Map<number, number>();
    for (const r of ran) {
      const w = r.at - ((r.at - T0) % 1_000);
      byWindow.set(w, (byWindow.get(w) ?? 0) + 1);
    }
    assert.equal(ran.length, 8);
    assert.ok(
      [...byWindow.values()].every((n) => n <= 2),
      `at most 2 started per window: ${[...byWindow]}`,
    );
  });

  it("keeps an enqueue's own later start when it is delayed", async () => {
    const { app } = rig();
    const t = app.task({ name: "own", throttle: { limit: 1, periodMs: 1_000, mode: "delay" }, run: () => 1 });
    await t.enqueue(null);
    const run = await t.enqueue(null, { delayMs: 5_000 });
    assert.equal(run.throttled, "delayed");
    assert.equal((await run.status())?.notBefore, T0 + 5_000);
  });

  it("does not claim the idempotency key of a dropped enqueue", async () => {
    const { clock, app } = rig();
    const t = app.task({
      name: "idem",
      input: v.string(),
      throttle: { limit: 1, periodMs: 1_000 },
      idempotencyKey: (i) => i,
      run: (i) => i,
    });
    await t.enqueue("a");
    const dropped = await t.enqueue("b");
    assert.equal(dropped.throttled, "dropped");
    clock.advance(1_000);
    const b = await t.enqueue("b");
    assert.equal(b.throttled, undefined);
    await app.drain();
    assert.equal(await b.result(), "b", "b's key was free");
  });

  it("counts nothing for invalid input or a failing key function", async () => {
    const { app } = rig();
    const t = app.task({
      name: "strict",
      input: v.string(),
      throttle: { key: (s) => (s === "bad" ? (undefined as never) : s), limit: 1, periodMs: 1_000 },
      run: () => 1,
    });
    await assert.rejects(t.enqueue(5 as never), ValidationError);
    await assert.rejects(t.enqueueMany(["x", "bad"]), FlowKeyError);
    await assert.rejects(t.enqueue("x", { priority: 12 }), RangeError);
    const run = await t.enqueue("x");
    assert.equal(run.throttled, undefined, "the failed calls counted nothing");
  });
});

describe("flow control over HTTP (POST /runs)", () => {
  it("says in the answer what debounce and throttle did", async () => {
    const { app } = rig();
    app.task({ name: "db", debounce: { delayMs: 100 }, run: () => 1 });
    app.task({ name: "th", throttle: { limit: 1, periodMs: 60_000 }, run: () => 1 });
    const handle = createRequestHandler(app, { token: "tok" });
    const post = async (task: string) => {
      const res = await handle(
        new Request("https://app.example/runs", {
          method: "POST",
          headers: { authorization: "Bearer tok" },
          body: JSON.stringify({ task, input: null }),
        }),
      );
      assert.equal(res.status, 202);
      const { id: _, ...rest } = (await res.json()) as Record<string, unknown>;
      return rest;
    };
    assert.deepEqual(await post("db"), { task: "db", debounced: "scheduled" });
    assert.deepEqual(await post("db"), { task: "db", debounced: "replaced" });
    assert.deepEqual(await post("th"), { task: "th" });
    assert.deepEqual(await post("th"), { task: "th", throttled: "dropped" });
  });
});

describe("flow options at definition", () => {
  const app = createApp();
  const define = (extra: Record<string, unknown>) =>
    app.task({ name: `t${Math.random()}`, run: () => 1, ...extra } as never);

  const cases: [Record<string, unknown>, RegExp, ErrorConstructor][] = [
    [{ debounce: 5 }, /debounce must be an object/, TypeError],
    [{ debounce: { delayMs: 0 } }, /debounce\.delayMs must be a positive integer, got 0/, RangeError],
    [{ debounce: {} }, /debounce\.delayMs must be a positive integer, got undefined/, RangeError],
    [
      { debounce: { delayMs: 100, maxWaitMs: 50 } },
      /maxWaitMs must be at least delayMs \(100\), got 50/,
      RangeError,
    ],
    [{ debounce: { delayMs: 10, key: "id" } }, /debounce\.key must be a function/, TypeError],
    [{ debounce: { delayMs: 10, wait: 1 } }, /unknown option "wait" of task "t[^"]*": debounce/, TypeError],
    [
      { throttle: { limit: 0, periodMs: 10 } },
      /throttle\.limit must be a positive integer, got 0/,
      RangeError,
    ],
    [
      { throttle: { limit: 1, periodMs: 1.5 } },
      /throttle\.periodMs must be a positive integer, got 1.5/,
      RangeError,
    ],
    [
      { throttle: { limit: 1, periodMs: 10, mode: "queue" } },
      /throttle\.mode must be "drop" or "delay", got "queue"/,
      RangeError,
    ],
    [{ throttle: { limit: 1, periodMs: 10, burst: 2 } }, /unknown option "burst"/, TypeError],
    [
      { throttle: { limit: 1, periodMs: 10 }, debounce: { delayMs: 10 } },
      /debounce and throttle cannot both be set/,
      TypeError,
    ],
    [
      { debounce: { delayMs: 1_000 }, expiresInMs: 1_000 },
      /expiresInMs \(1000\) must be longer than debounce\.delayMs \(1000\)/,
      RangeError,
    ],
  ];
  for (const [extra, message, type] of cases) {
    it(`rejects ${JSON.stringify(extra)}`, () => {
      assert.throws(
        () => define(extra),
        (e: unknown) => e instanceof type && message.test((e as Error).message),
      );
    });
  }

  it("types the key functions from the schema's output, and the handle's fields", async () => {
    const typed = createApp();
    const t = typed.task({
      name: "typed",
      input: v.object({ id: v.string() }),
      // @ts-expect-error the key function gets the schema's output: no field "nope"
      debounce: { key: (i) => i.nope, delayMs: 10 },
      run: () => 1,
    });
    assert.ok(t);
    const u = typed.task({ name: "typed2", throttle: { limit: 1, periodMs: 10 }, run: () => 1 });
    const run = await u.enqueue(null);
    const mode: "dropped" | "delayed" | undefined = run.throttled;
    // @ts-expect-error debounced is one of two strings
    const wrong: "other" | undefined = run.debounced;
    assert.equal(mode, undefined);
    assert.equal(wrong, undefined);
    assert.ok(new ThrottledError("t", "k", 1) instanceof CeleriacError);
  });
});
