import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memory } from "../adapters/memory/mod.ts";
import { decodeEnvelope } from "../backend.ts";
import { type App, type AppOptions, createApp } from "../mod.ts";

const noop = () => null;

function appWith(routes: AppOptions["routes"]): App {
  const backend = memory();
  return createApp({ broker: backend, store: backend, routes });
}

/** The queue and priority a task's runs get (from its resolved options). */
function placed(app: App, name: string, def: { queue?: string; priority?: number } = {}) {
  const task = app.task({ name, run: noop, ...def });
  return [task.options.queue, task.options.priority];
}

describe("routes (task_routes)", () => {
  it("routes by exact name before globs, and by the first matching glob in order", () => {
    const app = appWith({
      "email.*": { queue: "io" },
      "image.*": { queue: "cpu", priority: 3 },
      "email.send.urgent": { queue: "fast", priority: 9 },
      "email.send.*": { queue: "never" }, // after "email.*": never the first glob to match
      "*": { queue: "rest" },
    });
    assert.deepEqual(placed(app, "email.send"), ["io", 0]);
    assert.deepEqual(placed(app, "email.send.urgent"), ["fast", 9], "an exact name wins over globs");
    assert.deepEqual(placed(app, "email.send.bulk"), ["io", 0], "* crosses dots; the first glob wins");
    assert.deepEqual(placed(app, "image.resize"), ["cpu", 3]);
    assert.deepEqual(placed(app, "report"), ["rest", 0]);
  });

  it("matches * against any run of characters, none included, and everything else literally", () => {
    const app = appWith({ "a.b*": { queue: "ab" }, "x+y(*)": { queue: "lit" }, "*.z": { queue: "z" } });
    assert.deepEqual(placed(app, "a.b"), ["ab", 0], "* matches nothing too");
    assert.deepEqual(placed(app, "a.bc.d"), ["ab", 0]);
    assert.deepEqual(placed(app, "aXb"), ["default", 0], "a dot is a dot, not any character");
    assert.deepEqual(placed(app, "x+y(1)"), ["lit", 0]);
    assert.deepEqual(placed(app, "xxy(1)"), ["default", 0]);
    assert.deepEqual(placed(app, "q.z"), ["z", 0]);
    assert.deepEqual(placed(app, "q.z.w"), ["default", 0], "anchored at both ends");
  });

  it("takes a function, and a list of tables and functions tried in order (exact > glob > function)", () => {
    const seen: string[] = [];
    const byName = (task: string) => {
      seen.push(task);
      return task.startsWith("billing") ? { queue: "money", priority: 5 } : undefined;
    };
    assert.deepEqual(placed(appWith(byName), "billing.charge"), ["money", 5]);
    const app = appWith([{ "billing.refund": { queue: "exact" }, "billing.*": { queue: "glob" } }, byName]);
    seen.length = 0;
    assert.deepEqual(placed(app, "billing.refund"), ["exact", 0]);
    assert.deepEqual(placed(app, "billing.charge"), ["glob", 0]);
    assert.deepEqual(seen, [], "the table answered first");
    const fallback = appWith([{ "email.*": { queue: "io" } }, byName, () => ({ queue: "last" })]);
    assert.deepEqual(placed(fallback, "billing.charge"), ["money", 5], "the function, when no table route");
    assert.deepEqual(placed(fallback, "other"), ["last", 0]);
    assert.deepEqual(
      placed(
        appWith(() => null),
        "any",
      ),
      ["default", 0],
      "null: no route",
    );
  });

  it("lets a task's own queue and priority override its route, each on its own", () => {
    const app = appWith({ "image.*": { queue: "cpu", priority: 3 } });
    assert.deepEqual(placed(app, "image.a", { queue: "gpu" }), ["gpu", 3]);
    assert.deepEqual(placed(app, "image.b", { priority: 0 }), ["cpu", 0]);
    assert.deepEqual(placed(app, "image.c", { queue: "gpu", priority: 7 }), ["gpu", 7]);
  });

  it("lets an enqueue's queue and priority override the task and the route", async () => {
    const app = appWith({ "image.*": { queue: "cpu", priority: 3 } });
    const resize = app.task({ name: "image.resize", run: noop });
    await resize.enqueue(null);
    await resize.enqueue(null, { queue: "elsewhere", priority: 8 });
    const receive = (queue: string) =>
      app.broker.receive!({ queues: [queue], max: 10, leaseMs: 60_000, waitMs: 0 });
    const [routed] = await receive("cpu");
    const [overridden] = await receive("elsewhere");
    assert.deepEqual([decodeEnvelope(routed!.body).queue, decodeEnvelope(routed!.body).priority], ["cpu", 3]);
    assert.deepEqual(
      [decodeEnvelope(overridden!.body).queue, decodeEnvelope(overridden!.body).priority],
      ["elsewhere", 8],
    );
  });

  it("makes the routed queues the app's queues, which a worker without queues serves", async () => {
    const app = appWith({ "email.*": { queue: "io" }, "image.*": { queue: "cpu" } });
    const send = app.task({ name: "email.send", run: (to: string) => `sent to ${to}` });
    const resize = app.task({ name: "image.resize", run: (n: number) => n * 2 });
    assert.deepEqual(app.queues().sort(), ["cpu", "default", "io"]);
    const worker = app.worker({ pollMs: 1_000 }).start();
    try {
      const [a, b] = [await send.enqueue("ada"), await resize.enqueue(21)];
      assert.equal(await a.result({ timeoutMs: 5_000 }), "sent to ada");
      assert.equal(await b.result({ timeoutMs: 5_000 }), 42);
      assert.equal((await a.status())?.queue, "io");
    } finally {
      await worker.stop();
    }
  });

  it("checks routes up front, and a function's answer when a task is registered", () => {
    const bad: [unknown, RegExp, ErrorConstructor][] = [
      [
        5,
        /^routes must be a table \{ pattern: route \}, a function \(task\) => route, or a list of them, got 5$/,
        TypeError,
      ],
      [[{}, "x"], /^routes\[1\] must be a table/, TypeError],
      [
        { "email.*": { queue: "a b" } },
        /^routes\["email\.\*"\]: queue must be a non-empty string/,
        TypeError,
      ],
      [{ "email.*": { queue: "{io}" } }, /^routes\["email\.\*"\]: queue must be/, TypeError],
      [
        { x: { queu: "io" } },
        /^unknown option "queu" of routes\["x"\] \(known: queue, priority\)$/,
        TypeError,
      ],
      [
        { x: { priority: 10 } },
        /^routes\["x"\]: priority must be an integer from 0 to 9, got 10$/,
        RangeError,
      ],
      [{ x: { priority: 1.5 } }, /priority must be an integer/, RangeError],
      [{ x: "io" }, /^routes\["x"\] must be an object \{ queue\?, priority\? \}, got "io"$/, TypeError],
      [{ x: null }, /^routes\["x"\] must be a route, got null$/, TypeError],
      [{ "": { queue: "io" } }, /^routes: a pattern must not be empty$/, TypeError],
    ];
    for (const [routes, message, type] of bad) {
      assert.throws(
        () => createApp({ routes: routes as AppOptions["routes"] }),
        (error: unknown) => {
          assert.ok(error instanceof type, `${JSON.stringify(routes)}: ${String(error)}`);
          assert.match((error as Error).message, message);
          return true;
        },
      );
    }
    const app = appWith((task) => (task === "bad" ? { queue: "" } : ({ queue: "ok", lane: 1 } as never)));
    assert.throws(() => app.task({ name: "bad", run: noop }), {
      name: "TypeError",
      message: 'the route of task "bad": queue must be a non-empty string without braces or spaces, got ""',
    });
    assert.throws(
      () => app.task({ name: "other", run: noop }),
      /unknown option "lane" of the route of task "other"/,
    );
    assert.equal(app.tasks.size, 0, "nothing was registered");
  });
});
