import assert from "node:assert/strict";
import { hostname } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { after, afterEach, before, describe, it } from "node:test";
import { type RedisServer, startRedis } from "../dev/mod.ts";
import { type CliTestApp, cliTestApp } from "./support/cli-tasks.ts";
import { type CliResult, cli, killLiveClis, startCli, tmuxCli, tmuxMissing } from "./support/cli-runner.ts";
import { freshPrefix, waitFor } from "./support/redis-fixtures.ts";

const APP = fileURLToPath(new URL("./support/cli-app.ts", import.meta.url));
const NOT_AN_APP = fileURLToPath(new URL("./support/cli-not-an-app.ts", import.meta.url));
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[`);
const g = globalThis as { Deno?: unknown; Bun?: unknown };
const onNode = g.Deno === undefined && g.Bun === undefined;

/** Each case spawns CLIs (about half a second each under tsx) and may wait for a heartbeat. */
const T = { timeout: 60_000 };

let server: RedisServer;
const opened: CliTestApp[] = [];

/** A prefix of its own, the env that points the CLI's app at it, and the tests' copy of the app. */
function rig(): { env: Record<string, string>; t: CliTestApp } {
  const prefix = freshPrefix();
  const t = cliTestApp(server.url, prefix);
  opened.push(t);
  return { env: { CELERIAC_TEST_REDIS_URL: server.url, CELERIAC_TEST_PREFIX: prefix, CELERIAC_APP: APP }, t };
}

async function state(t: CliTestApp, id: string): Promise<string | undefined> {
  return (await t.app.getRun(id).status())?.state;
}

/** The JSON a CLI run printed (it must have exited 0; else its stderr is the message). */
function parse<T = Record<string, unknown>>(r: CliResult): T {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

before(async () => {
  server = await startRedis();
});

afterEach(() => killLiveClis());

after(async () => {
  for (const t of opened) {
    await t.app.close();
    t.client.disconnect();
  }
  await server?.stop();
});

describe("celeriac: command line and exit codes", () => {
  it("prints help with every command and the exit codes, exit 0", T, async () => {
    const r = await cli(["--help"], {});
    assert.equal(r.code, 0, r.stderr);
    for (const word of [
      "worker",
      "scheduler",
      "inspect",
      "queues",
      "dlq",
      "enqueue",
      "schedules",
      "Exit codes",
    ]) {
      assert.match(r.stdout, new RegExp(word));
    }
  });

  it("answers --help on every command and subcommand, exit 0", T, async () => {
    const commands = [
      ["worker"],
      ["scheduler"],
      ["enqueue"],
      ...["workers", "active", "queues", "stats", "schedules"].map((v) => ["inspect", v]),
      ...["pause", "resume", "purge"].map((v) => ["queues", v]),
      ...["list", "show", "replay"].map((v) => ["dlq", v]),
      ...["list", "add", "pause", "resume", "remove"].map((v) => ["schedules", v]),
    ];
    const results = await Promise.all(commands.map((c) => cli([...c, "--help"], {})));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, `${commands[i]!.join(" ")} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`Usage: celeriac ${commands[i]!.join(" ")}`));
    });
  });

  it("exits 2 with the help text for an unknown command", T, async () => {
    const r = await cli(["frobnicate"], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
    assert.match(r.stderr, /Usage: celeriac/);
    assert.match(r.stderr, /Commands:/);
  });

  it("exits 2 for an unknown option, a bad value, a missing app and a missing command", T, async () => {
    const [option, value, noApp, none] = await Promise.all([
      cli(["worker", APP, "--frob"], {}),
      cli(["worker", APP, "--concurrency", "zero"], {}),
      cli(["dlq", "list"], { CELERIAC_APP: undefined }),
      cli([], {}),
    ]);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /unknown option '--frob'/);
    assert.equal(value.code, 2);
    assert.match(value.stderr, /--concurrency.*expected an integer of at least 1, got "zero"/);
    assert.equal(noApp.code, 2);
    assert.match(noApp.stderr, /no app module: pass its path \(--app \.\/app\.ts\) or set CELERIAC_APP/);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage: celeriac/);
  });

  it("exits 3 for a module that exports no app, and for a missing module, saying why", T, async () => {
    const [notApp, missing] = await Promise.all([
      cli(["dlq", "list", "--app", NOT_AN_APP], {}),
      cli(["dlq", "list", "--app", "./nowhere/app.ts"], {}),
    ]);
    assert.equal(notApp.code, 3);
    assert.match(notApp.stderr, /does not export a celeriac app: expected `export default app`/);
    assert.match(notApp.stderr, /it exports answer/);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /app module not found: \.\/nowhere\/app\.ts/);
  });

  it(
    "takes the app from its argument, --app or CELERIAC_APP, and refuses two different ones",
    T,
    async () => {
      const { env } = rig();
      const { CELERIAC_APP: _, ...noEnv } = env;
      const [positional, option, fromEnv, both] = await Promise.all([
        cli(["inspect", "schedules", APP, "--json"], noEnv),
        cli(["dlq", "list", "--app", APP, "--json"], noEnv),
        cli(["dlq", "list", "--json"], env),
        cli(["inspect", "schedules", APP, "--app", NOT_AN_APP], noEnv),
      ]);
      assert.equal(positional.code, 0, positional.stderr);
      assert.equal(option.code, 0, option.stderr);
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      assert.deepEqual(parse(fromEnv), []);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /two app modules given/);
    },
  );
});

describe("celeriac enqueue and worker", () => {
  it("enqueues a run that a worker started by the CLI then runs", T, async () => {
    const { env, t } = rig();
    const enqueued = await cli(["enqueue", "echo", '{"json":1}', "--json"], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const { id, task, queue } = parse<{ id: string; task: string; queue: string }>(enqueued);
    assert.deepEqual([task, queue], ["echo", "default"]);
    assert.equal(await state(t, id), "queued");

    const worker = startCli(["worker", "--queues", "default", "--concurrency", "2"], env);
    await worker.waitForStderr(/celeriac worker .*started · queues default · concurrency 2 · prefetch 2/);
    await waitFor(async () => (await state(t, id)) === "succeeded", 30_000, "the run to succeed");
    assert.deepEqual(await t.app.getRun(id).result(), { json: 1 });
    await worker.waitForStderr(new RegExp(`✔ echo ${id}`));

    const waited = await cli(["enqueue", "echo", '{"n":2}', "--wait", "--json"], env);
    assert.equal(waited.code, 0, waited.stderr);
    assert.deepEqual(parse(waited).result, { n: 2 });
    assert.equal(parse(waited).state, "succeeded");

    worker.signal("SIGINT");
    assert.equal((await worker.exit()).code, 0);
  });

  it("prints the bare run id for people and passes --delay, --queue and --priority on", T, async () => {
    const { env, t } = rig();
    const r = await cli(
      ["enqueue", "echo", "{}", "--delay", "5m", "--queue", "later", "--priority", "7"],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.match(id, /^\S+$/);
    const record = await t.app.getRun(id, "later").status();
    assert.equal(record?.state, "scheduled");
    assert.equal(record?.queue, "later");
  });

  it(
    "reads the input from stdin with -, and rejects bad JSON (2), an unknown task (1) and --delay 5 (2)",
    T,
    async () => {
      const { env, t } = rig();
      const [stdin, badJson, unknown, unitless] = await Promise.all([
        cli(["enqueue", "echo", "-", "--json"], env, '{"from":"stdin"}'),
        cli(["enqueue", "echo", "{nope"], env),
        cli(["enqueue", "no.such.task", "{}"], env),
        cli(["enqueue", "echo", "{}", "--delay", "5"], env),
      ]);
      assert.equal(stdin.code, 0, stdin.stderr);
      const id = parse<{ id: string }>(stdin).id;
      await t.app.drain();
      assert.deepEqual(await t.app.getRun(id).result(), { from: "stdin" });
      assert.equal(badJson.code, 2);
      assert.match(badJson.stderr, /input: expected JSON/);
      assert.equal(unknown.code, 1);
      assert.match(
        unknown.stderr,
        /unknown task "no\.such\.task"; the app's tasks are: echo, fail, hang, slow/,
      );
      assert.equal(unitless.code, 2);
      assert.match(unitless.stderr, /expected a duration with a unit/);
    },
  );

  it("stops gracefully on SIGINT: the running task finishes, then exit 0", T, async () => {
    const { env, t } = rig();
    const worker = startCli(["worker", "--concurrency", "1"], env);
    await worker.waitForStderr(/started/);
    const run = await t.app.enqueue("slow", { ms: 1_000 });
    await waitFor(async () => (await state(t, run.id)) === "active", 30_000, "the slow run to start");
    worker.signal("SIGINT");
    const ended = await worker.exit();
    assert.equal(ended.code, 0, ended.stderr);
    assert.match(ended.stderr, /SIGINT: stopping the worker, waiting up to 10\.0s for 1 running task/);
    assert.match(ended.stderr, /worker stopped/);
    assert.equal(await state(t, run.id), "succeeded");
  });

  it("exits 130 at once on a second SIGINT while waiting for a running task", T, async () => {
    const { env, t } = rig();
    const worker = startCli(["worker", "--concurrency", "1", "--shutdown-grace", "10m"], env);
    await worker.waitForStderr(/started/);
    const run = await t.app.enqueue("hang", {});
    await waitFor(async () => (await state(t, run.id)) === "active", 30_000, "the hanging run to start");
    worker.signal("SIGINT");
    await worker.waitForStderr(/SIGINT: stopping the worker/);
    worker.signal("SIGINT");
    const ended = await worker.exit(10_000);
    assert.equal(ended.code, 130, ended.stderr);
    assert.match(ended.stderr, /SIGINT again: exiting now; 1 running task\(s\) return to their queue/);
  });

  it("stops on SIGTERM too (exit 0)", T, async () => {
    const { env } = rig();
    const worker = startCli(["worker"], env);
    await worker.waitForStderr(/started/);
    worker.signal("SIGTERM");
    const ended = await worker.exit();
    assert.equal(ended.code, 0, ended.stderr);
    assert.match(ended.stderr, /SIGTERM: stopping the worker/);
  });

  it("runs a scheduler until SIGINT (exit 0)", T, async () => {
    const { env } = rig();
    const scheduler = startCli(["scheduler"], env);
    await scheduler.waitForStderr(/celeriac scheduler started/);
    scheduler.signal("SIGINT");
    const ended = await scheduler.exit();
    assert.equal(ended.code, 0, ended.stderr);
    assert.match(ended.stderr, /scheduler stopped/);
  });
});

describe("celeriac dlq", () => {
  it("lists, shows and replays one dead letter", T, async () => {
    const { env, t } = rig();
    const runs = [await t.app.enqueue("fail", { n: 1 }), await t.app.enqueue("echo", {})];
    await t.app.drain();
    const listed = await cli(["dlq", "list", "--json"], env);
    assert.equal(listed.code, 0, listed.stderr);
    const letters = parse<{ id: string; task: string; reason: string }[]>(listed);
    assert.deepEqual(
      letters.map((d) => [d.id, d.task]),
      [[runs[0]!.id, "fail"]],
    );
    const [table, filtered, shown, missing] = await Promise.all([
      cli(["dlq", "list"], env),
      cli(["dlq", "list", "--task", "echo", "--json"], env),
      cli(["dlq", "show", runs[0]!.id, "--json"], env),
      cli(["dlq", "show", "no-such-id"], env),
    ]);
    assert.match(table.stdout, /^ID\s+TASK\s+QUEUE\s+WHEN\s+REASON\s+ERROR\n/);
    assert.match(table.stdout, new RegExp(`${runs[0]!.id}\\s+fail\\s+default`));
    assert.deepEqual(parse(filtered), []);
    assert.equal(parse(shown).id, runs[0]!.id);
    assert.match(String(parse(shown).body), /"n":1/);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no dead letter with id no-such-id/);

    const replayed = await cli(["dlq", "replay", runs[0]!.id, "--json"], env);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.deepEqual(parse(replayed), { replayed: 1, id: runs[0]!.id });
    assert.equal(await state(t, runs[0]!.id), "queued");
    assert.deepEqual(await t.app.deadLetters(), []);
  });

  it("refuses a replay that does not say which (exit 2)", T, async () => {
    const { env } = rig();
    const [none, both] = await Promise.all([
      cli(["dlq", "replay"], env),
      cli(["dlq", "replay", "some-id", "--all"], env),
    ]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /say which dead letters/);
    assert.equal(both.code, 2);
  });
});

describe("celeriac output: colors only on a terminal", () => {
  it(
    "writes no ANSI escapes when stdout is not a terminal, or with NO_COLOR; FORCE_COLOR forces them",
    T,
    async () => {
      const { env, t } = rig();
      await t.app.enqueue("fail", {});
      await t.app.drain();
      const [plain, noColor, forced, bad] = await Promise.all([
        cli(["dlq", "list"], env),
        cli(["dlq", "list"], { ...env, NO_COLOR: "1", FORCE_COLOR: "1" }),
        cli(["dlq", "list"], { ...env, FORCE_COLOR: "1" }),
        cli(["frobnicate"], { ...env, NO_COLOR: "1" }),
      ]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.doesNotMatch(plain.stdout + plain.stderr, ANSI);
      assert.doesNotMatch(noColor.stdout + noColor.stderr, ANSI);
      assert.doesNotMatch(bad.stdout + bad.stderr, ANSI);
      assert.match(forced.stdout, ANSI); // the check above can see escapes
      const worker = startCli(["worker"], env);
      await worker.waitForStderr(/started/);
      worker.signal("SIGINT");
      const ended = await worker.exit();
      assert.doesNotMatch(ended.stderr, ANSI);
    },
  );
});

describe("celeriac inspect and queues", () => {
  it("inspect queues --json shows each queue's counts", T, async () => {
    const { env, t } = rig();
    for (let i = 0; i < 3; i++) await t.app.enqueue("echo", { i }, { queue: "counted" });
    await t.app.enqueue("echo", {}, { queue: "counted", delayMs: 600_000 });
    const r = await cli(["inspect", "queues", APP, "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const counted = parse<{ queue: string; waiting: number; scheduled: number; paused: boolean }[]>(r).find(
      (q) => q.queue === "counted",
    );
    assert.equal(counted?.waiting, 3);
    assert.equal(counted?.scheduled, 1);
    assert.equal(counted?.paused, false);
    const table = await cli(["inspect", "queues", APP], env);
    assert.match(table.stdout, /^QUEUE\s+WAITING\s+SCHEDULED/);
    assert.match(table.stdout, /counted\s+3\s+1/);
    // Deep links to the dashboard: a LINK column, a url per row in JSON, from the flag or the env.
    const linked = await cli(["inspect", "queues", APP, "--dashboard", "https://ops.example.com/ops/"], env);
    assert.match(linked.stdout, /LINK/);
    assert.match(linked.stdout, /counted .* https:\/\/ops\.example\.com\/ops\/queues\/counted$/m);
    const fromEnv = await cli(["inspect", "queues", APP, "--json"], {
      ...env,
      CELERIAC_DASHBOARD_URL: "https://ops.example.com/ops",
    });
    assert.equal(
      parse<{ queue: string; url: string }[]>(fromEnv).find((q) => q.queue === "counted")?.url,
      "https://ops.example.com/ops/queues/counted",
    );
    const bad = await cli(["inspect", "queues", APP, "--dashboard", "ops.example.com"], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--dashboard must be an http\(s\) URL/);
  });

  it("queues pause stops a worker taking from the queue; resume lets it take again", T, async () => {
    const { env, t } = rig();
    const paused = await cli(["queues", "pause", "held", "--json"], env);
    assert.equal(paused.code, 0, paused.stderr);
    assert.deepEqual(parse(paused), { queue: "held", paused: true });
    const worker = startCli(["worker", "--queues", "held,free"], env);
    await worker.waitForStderr(/started · queues held, free/);
    const held = await t.app.enqueue("echo", { q: "held" }, { queue: "held" });
    const free = await t.app.enqueue("echo", { q: "free" }, { queue: "free" });
    // The worker serves "held" first: once it has run the later run on "free", it has passed
    // over the paused queue's.
    await waitFor(async () => (await state(t, free.id)) === "succeeded", 30_000, "the free run to succeed");
    assert.equal(await state(t, held.id), "queued");
    const inspected = await cli(["inspect", "queues", "--json"], env);
    assert.equal(
      parse<{ queue: string; paused: boolean }[]>(inspected).find((q) => q.queue === "held")?.paused,
      true,
    );

    const resumed = await cli(["queues", "resume", "held"], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    await waitFor(async () => (await state(t, held.id)) === "succeeded", 30_000, "the held run to succeed");
    worker.signal("SIGINT");
    assert.equal((await worker.exit()).code, 0);
  });

  it(
    "inspect workers shows a running worker under the id it printed; control.shutdown stops it (exit 0)",
    T,
    async () => {
      const { env, t } = rig();
      const worker = startCli(
        ["worker", "--queues", "seen", "--concurrency", "3", "--heartbeat", "200ms"],
        env,
      );
      await worker.waitForStderr(/started/);
      const id = /celeriac worker (\S+) started/.exec(worker.stderr())?.[1];
      assert.ok(id, `the startup line names the worker: ${worker.stderr()}`);
      let workers: { id: string; queues: string[]; concurrency: number; hostname: string }[] = [];
      await waitFor(
        async () => {
          const r = await cli(["inspect", "workers", "--json"], env);
          workers = parse(r);
          return workers.some((w) => w.id === id);
        },
        30_000,
        "the worker to be listed",
      );
      const w = workers.find((x) => x.id === id)!;
      assert.deepEqual([w.queues, w.concurrency, w.hostname], [["seen"], 3, hostname()]);
      const table = await cli(["inspect", "workers"], env);
      assert.match(table.stdout, /^ID\s+KIND\s+HOST/);
      assert.match(table.stdout, new RegExp(`${id}\\s+worker`));
      // Told to shut down through app.control, the CLI's worker stops and exits 0 by itself.
      assert.equal(await t.app.control.shutdown(id), true);
      const ended = await worker.exit();
      assert.equal(ended.code, 0, ended.stderr);
      assert.match(ended.stderr, /worker stopped; closing the app/);
    },
  );

  it(
    "worker --pool threads runs module tasks in threads, recycled per --max-tasks-per-child; inspect shows the pool",
    T,
    async () => {
      const { env, t } = rig();
      const refused = await cli(["worker", "--max-tasks-per-child", "2"], env);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /the pool options need --pool threads/);
      const worker = startCli(
        [
          "worker",
          "--pool",
          "threads",
          "--pool-max",
          "1",
          "--max-tasks-per-child",
          "2",
          "--heartbeat",
          "200ms",
        ],
        env,
      );
      await worker.waitForStderr(/started/);
      const id = /celeriac worker (\S+) started/.exec(worker.stderr())?.[1];
      const threadIds: number[] = [];
      for (let i = 0; i < 3; i++) {
        const run = await t.app.enqueue("spin", { ms: 1 });
        threadIds.push(((await run.result({ timeoutMs: 30_000 })) as { threadId: number }).threadId);
      }
      assert.deepEqual(threadIds, [1, 1, 2], "a new thread after two tasks");
      type Listed = { id: string; pool?: { max: number; completed: number; recycled: { tasks: number } } };
      let listed: Listed | undefined;
      await waitFor(
        async () => {
          listed = (parse(await cli(["inspect", "workers", "--json"], env)) as Listed[]).find(
            (w) => w.id === id,
          );
          return listed?.pool?.completed === 3;
        },
        30_000,
        "the worker's pool in the registry",
      );
      assert.deepEqual([listed?.pool?.max, listed?.pool?.recycled.tasks], [1, 1]);
      const table = await cli(["inspect", "workers"], env);
      assert.match(table.stdout, /POOL/);
      assert.match(table.stdout, /\d\/\d \(max 1, 1 recycled\)/);
      worker.signal("SIGINT");
      assert.equal((await worker.exit()).code, 0);
    },
  );

  it("purge --yes purges; without a terminal and without --yes it refuses (exit 2)", T, async () => {
    const { env, t } = rig();
    for (let i = 0; i < 2; i++) await t.app.enqueue("echo", { i }, { queue: "junk" });
    const refused = await cli(["queues", "purge", "junk"], env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /not purging junk: stdin is not a terminal to confirm on; pass --yes/);
    const [before] = await t.backend.queueOps!.counts(["junk"]);
    assert.equal(before?.waiting, 2);
    const purged = await cli(["queues", "purge", "junk", "--yes", "--json"], env);
    assert.equal(purged.code, 0, purged.stderr);
    assert.deepEqual(parse(purged), { queue: "junk", purged: 2 });
    const [afterPurge] = await t.backend.queueOps!.counts(["junk"]);
    assert.equal(afterPurge?.waiting, 0);
  });

  it("dlq replay --task sends that task's dead letters again", T, async () => {
    const { env, t } = rig();
    for (let i = 0; i < 3; i++) await t.app.enqueue("fail", { i });
    await t.app.drain();
    assert.equal((await t.app.deadLetters()).length, 3);
    const r = await cli(["dlq", "replay", "--task", "fail", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parse(r), { replayed: 3 });
    assert.doesNotMatch(r.stderr, /replaying/); // no progress bar without a terminal
    assert.deepEqual(await t.app.deadLetters(), []);
  });
});

describe("celeriac schedules", () => {
  it("adds, lists, pauses, resumes and removes stored schedules; lists the ones in code", T, async () => {
    const { env } = rig();
    const added = await cli(
      ["schedules", "add", "tick", "--task", "echo", "--every", "1h", "--input", '{"s":1}'],
      env,
    );
    assert.equal(added.code, 0, added.stderr);
    type Row = { id: string; source: string; task: string; every: number | null; paused: boolean };
    const list = async () => parse<Row[]>(await cli(["schedules", "list", "--json"], env));
    const row = (await list()).find((s) => s.id === "tick");
    assert.deepEqual([row?.source, row?.task, row?.every, row?.paused], ["stored", "echo", 3_600_000, false]);
    assert.equal((await cli(["schedules", "pause", "tick"], env)).code, 0);
    assert.equal((await list()).find((s) => s.id === "tick")?.paused, true);
    assert.equal((await cli(["schedules", "resume", "tick"], env)).code, 0);
    assert.equal((await list()).find((s) => s.id === "tick")?.paused, false);
    const inspected = await cli(["inspect", "schedules", "--json"], env);
    assert.ok(parse<{ id: string }[]>(inspected).some((s) => s.id === "tick"));
    const table = await cli(["schedules", "list"], env);
    assert.match(table.stdout, /^ID\s+SOURCE\s+TASK\s+WHEN/);
    assert.match(table.stdout, /new-year\s+code\s+echo\s+0 2 1 1 \*/);
    assert.match(table.stdout, /tick\s+stored\s+echo\s+every 1h\s/);
    const scheduler = startCli(["scheduler"], env);
    await scheduler.waitForStderr(/celeriac scheduler started · 2 schedule\(s\), 1 stored/);
    scheduler.signal("SIGINT");
    assert.equal((await scheduler.exit()).code, 0);
    assert.equal((await cli(["schedules", "remove", "tick"], env)).code, 0);
    assert.equal(
      (await list()).find((s) => s.id === "tick"),
      undefined,
    );
    const again = await cli(["schedules", "remove", "tick"], env);
    assert.equal(again.code, 1);
    const [neither, badCron, cron] = await Promise.all([
      cli(["schedules", "add", "x", "--task", "echo"], env),
      cli(["schedules", "add", "y", "--task", "echo", "--cron", "99 * * * *"], env),
      cli(
        [
          "schedules",
          "add",
          "z",
          "--task",
          "echo",
          "--cron",
          "0 8 * * 1",
          "--timezone",
          "Europe/Berlin",
          "--json",
        ],
        env,
      ),
    ]);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /exactly one of --cron and --every/);
    assert.equal(badCron.code, 1);
    assert.match(badCron.stderr, /invalid cron pattern "99 \* \* \* \*"/);
    assert.equal(cron.code, 0, cron.stderr);
    const z = (await list()).find((s) => s.id === "z") as Row & {
      cron: string;
      timezone: string;
      nextRuns: string[];
    };
    assert.deepEqual(
      [z.cron, z.timezone, new Date(z.nextRuns[0]!).getUTCDay()],
      ["0 8 * * 1", "Europe/Berlin", 1],
    );
  });
});

describe("celeriac in a terminal (tmux)", { skip: !onNode && "the terminal tests run on Node" }, () => {
  before(async () => {
    const missing = await tmuxMissing();
    if (missing !== null) throw new Error(missing);
  });

  it("purge asks y/N: n purges nothing, y purges", T, async () => {
    const { env, t } = rig();
    for (let i = 0; i < 3; i++) await t.app.enqueue("echo", { i }, { queue: "asked" });
    const waiting = async () => (await t.backend.queueOps!.counts(["asked"]))[0]?.waiting;

    const no = await tmuxCli(["queues", "purge", "asked"], env);
    try {
      await no.waitForScreen(/Purge 3 waiting and 0 delayed message\(s\) of queue "asked"\? \[y\/N\]/);
      await no.keys("n", "Enter");
      assert.equal(await no.exit(), 1);
      assert.match(await no.screen(), /not purged/);
    } finally {
      await no.close();
    }
    assert.equal(await waiting(), 3);

    const yes = await tmuxCli(["queues", "purge", "asked"], env);
    try {
      await yes.waitForScreen(/\[y\/N\]/);
      await yes.keys("y", "Enter");
      assert.equal(await yes.exit(), 0);
      assert.match(await yes.screen(), /purged 3 message\(s\) from asked/);
    } finally {
      await yes.close();
    }
    assert.equal(await waiting(), 0);
  });

  it("dlq replay draws a progress bar", T, async () => {
    const { env, t } = rig();
    for (let i = 0; i < 25; i++) await t.app.enqueue("fail", { i });
    await t.app.drain();
    const replay = await tmuxCli(["dlq", "replay", "--all"], env);
    try {
      assert.equal(await replay.exit(), 0);
      const screen = await replay.screen();
      assert.match(screen, /replaying █+ 25\/25 100%/);
      assert.match(screen, /replayed 25 dead letters/);
    } finally {
      await replay.close();
    }
    assert.deepEqual(await t.app.deadLetters(), []);
  });

  it("colors its tables on a terminal, and not with NO_COLOR", T, async () => {
    const { env, t } = rig();
    await t.app.enqueue("fail", {});
    await t.app.drain();
    const list = await tmuxCli(["dlq", "list"], env);
    const plain = await tmuxCli(["dlq", "list"], { ...env, NO_COLOR: "1" });
    try {
      assert.equal(await list.exit(), 0);
      assert.match(await list.screen(), /ID\s+TASK\s+QUEUE/);
      assert.match(await list.screen({ escapes: true }), ANSI);
      assert.equal(await plain.exit(), 0);
      assert.doesNotMatch(await plain.screen({ escapes: true }), ANSI);
    } finally {
      await plain.close();
      await list.close();
    }
  });
});

// The CLI's children must not outlive a cancelled run of this file.
process.on("exit", () => killLiveClis());
