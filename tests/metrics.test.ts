// The Prometheus text output, read back by two parsers from npm: prom2javascript reads the whole
// document (it groups histogram series by label set and checks +Inf against _count);
// parse-prometheus-text-format decodes label values with the Python client's state machine,
// where prom2javascript misreads `\\n` and a trailing `\\`, and reads NaN and -Inf, which
// prom2javascript rejects (it merges labelled histograms, so it is not used for them).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import parseText from "parse-prometheus-text-format";
import {
  getMetricsFromIterator,
  type PromData,
  type PromHistogramData,
  type PromMetrics,
} from "prom2javascript";
import {
  type Histogram,
  METRICS_CONTENT_TYPE,
  type MetricsSnapshot,
  type QueueMetrics,
  renderMetrics,
  type TaskMetrics,
  taskMetrics,
} from "../src/ops/metrics.ts";
import { BOUNDS_MS, StatsCollector, sumRows } from "../src/ops/stats.ts";
import { checkStructure } from "./support/prometheus-text.ts";

const WEIRD = 'say "hi" to C:\\tmp\nbye'; // double quotes, a backslash and a newline
/** BOUNDS_MS in seconds, as they must be written. */
const LE =
  "0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 300 +Inf".split(
    " ",
  );

function hist(bounds: readonly number[], counts: readonly number[], sumMs: number): Histogram {
  return { bounds, counts, sumMs };
}

function task(name: string, queue: string, over: Partial<TaskMetrics> = {}): TaskMetrics {
  return {
    task: name,
    queue,
    succeeded: 0,
    failed: 0,
    retried: 0,
    rejected: 0,
    runtime: hist([1, 10], [0, 0, 0], 0),
    wait: hist([1, 10], [0, 0, 0], 0),
    ...over,
  };
}

function queue(name: string, over: Partial<QueueMetrics> = {}): QueueMetrics {
  return {
    queue: name,
    waiting: 0,
    scheduled: 0,
    retrying: 0,
    limited: 0,
    active: 0,
    paused: false,
    deadLetters: 0,
    oldestWaitingAgeMs: null,
    workers: 0,
    ...over,
  };
}

const EMPTY: MetricsSnapshot = { tasks: [], queues: [], workers: { worker: 0, push: 0 }, at: 0 };

const SNAPSHOT: MetricsSnapshot = {
  tasks: [
    task("email.send", "io", {
      succeeded: 7,
      failed: 1,
      retried: 2,
      expired: 4,
      runtime: hist([1, 10], [1, 2, 3], 99),
      wait: hist(BOUNDS_MS, BOUNDS_MS.map((_, i) => i % 3).concat(4), 1234.5),
    }),
    task(WEIRD, "default", { rejected: 3 }), // no expired count: written as 0
  ],
  queues: [
    queue("io", {
      waiting: 4,
      scheduled: 1,
      retrying: 2,
      limited: 6,
      active: 3,
      paused: true,
      deadLetters: 5,
      oldestWaitingAgeMs: 1500,
      workers: 2,
    }),
    queue("default"),
  ],
  workers: { worker: 2, push: 1 },
  at: 1_700_000_000_000,
};

const FAMILIES: Record<string, string> = {
  celeriac_tasks_total: "counter",
  celeriac_task_runtime_seconds: "histogram",
  celeriac_task_wait_seconds: "histogram",
  celeriac_queue_messages: "gauge",
  celeriac_queue_dead_letters: "gauge",
  celeriac_queue_paused: "gauge",
  celeriac_queue_oldest_waiting_seconds: "gauge",
  celeriac_queue_workers: "gauge",
  celeriac_workers: "gauge",
};

function parse(text: string): Promise<PromMetrics> {
  return getMetricsFromIterator(text.split("\n")[Symbol.iterator]());
}

/** A parsed family's series (PromData for counters and gauges, PromHistogramData for histograms). */
function dataOf<T extends PromData | PromHistogramData>(parsed: PromMetrics, name: string): T[] {
  const family = parsed[name];
  assert.ok(family !== undefined, `${name} was parsed`);
  return family.data as T[];
}

describe("renderMetrics", () => {
  it("uses the 0.0.4 text format's content type", () => {
    assert.equal(METRICS_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  });

  it("writes each family once, HELP and TYPE first, with the types the parser reads back", async () => {
    const text = renderMetrics(SNAPSHOT);
    assert.deepEqual(checkStructure(text), Object.keys(FAMILIES));
    const parsed = await parse(text);
    assert.deepEqual(Object.keys(parsed), Object.keys(FAMILIES));
    for (const [name, type] of Object.entries(FAMILIES)) {
      assert.equal(parsed[name]?.type, type, name);
      assert.ok((parsed[name]?.help ?? "").length > 10, `${name} has a HELP text`);
    }
    assert.doesNotMatch(text, /1700000000/, "no timestamps");
  });

  it("counts every outcome of every task, zeros too", async () => {
    const data = dataOf<PromData>(await parse(renderMetrics(SNAPSHOT)), "celeriac_tasks_total");
    assert.deepEqual(
      data.map((d) => d.labels),
      [
        ["email.send", "io"],
        [WEIRD, "default"],
      ].flatMap(([task, queue]) =>
        ["succeeded", "failed", "retried", "rejected", "expired"].map((outcome) => ({
          task,
          queue,
          outcome,
        })),
      ),
    );
    assert.deepEqual(
      data.map((d) => d.value),
      [7, 1, 2, 0, 4, 0, 0, 0, 3, 0],
    );
  });

  it("writes histograms in seconds with cumulative buckets, _sum and _count", async () => {
    const parsed = await parse(renderMetrics(SNAPSHOT));
    const runtime = dataOf<PromHistogramData>(parsed, "celeriac_task_runtime_seconds");
    assert.deepEqual(runtime[0], {
      labels: { task: "email.send", queue: "io" },
      buckets: { "0.001": 1, "0.01": 3, "+Inf": 6 },
      sum: 0.099,
      count: 6,
    });
    assert.deepEqual(runtime[1], {
      labels: { task: WEIRD, queue: "default" },
      buckets: { "0.001": 0, "0.01": 0, "+Inf": 0 },
      sum: 0,
      count: 0,
    });
    const wait = dataOf<PromHistogramData>(parsed, "celeriac_task_wait_seconds")[0]!;
    assert.deepEqual(Object.keys(wait.buckets).sort(byBound), LE, "every bound, in seconds, noise-free");
    const cumulative = [0, 1, 3, 3, 4, 6, 6, 7, 9, 9, 10, 12, 12, 13, 15, 15, 16, 18, 18, 22];
    assert.deepEqual(
      LE.map((le) => wait.buckets[le]),
      cumulative,
    );
    assert.equal(wait.count, 22);
    assert.equal(wait.sum, 1.2345);
  });

  it("converts milliseconds to seconds without float noise", () => {
    // 2.1 / 1000 is 0.0021000000000000003 and 4.1 / 1000 is 0.0040999999999999995 in floats.
    const text = renderMetrics({
      ...EMPTY,
      tasks: [task("t", "q", { runtime: hist([2.1, 4.1], [1, 0, 0], 4.2) })],
    });
    assert.match(text, /_bucket\{task="t",queue="q",le="0\.0021"\} 1\n/);
    assert.match(text, /_bucket\{task="t",queue="q",le="0\.0041"\} 1\n/);
    assert.match(text, /^celeriac_task_runtime_seconds_sum\{task="t",queue="q"\} 0\.0042$/m);
  });

  it("writes queue gauges: messages by state, dead letters, paused, oldest wait, workers", async () => {
    const parsed = await parse(renderMetrics(SNAPSHOT));
    // Each family's series as "labels=value", the label values joined by "/".
    const values = (name: string) =>
      dataOf<PromData>(parsed, name)
        .map((d) => `${Object.values(d.labels).join("/")}=${d.value}`)
        .join(" ");
    assert.equal(
      values("celeriac_queue_messages"),
      "io/waiting=4 io/scheduled=1 io/retrying=2 io/limited=6 io/active=3 " +
        "default/waiting=0 default/scheduled=0 default/retrying=0 default/limited=0 default/active=0",
    );
    assert.equal(values("celeriac_queue_dead_letters"), "io=5 default=0");
    assert.equal(values("celeriac_queue_paused"), "io=1 default=0");
    assert.equal(values("celeriac_queue_oldest_waiting_seconds"), "io=1.5 default=0");
    assert.equal(values("celeriac_queue_workers"), "io=2 default=0");
    assert.equal(values("celeriac_workers"), "worker=2 push=1");
  });

  it("escapes a backslash, a double quote and a newline in label values", async () => {
    const text = renderMetrics(SNAPSHOT);
    assert.ok(
      text.includes('{task="say \\"hi\\" to C:\\\\tmp\\nbye",queue="default",outcome="rejected"} 3\n'),
    );
    const parsed = await parse(text);
    const runtime = dataOf<PromHistogramData>(parsed, "celeriac_task_runtime_seconds");
    assert.equal(runtime[1]?.labels.task, WEIRD, "in histogram series too");
    // A backslash before `n`, and at the very end, read by the Python client's algorithm.
    const hard = ["C:\\new", "end\\", '"', "a\nb", "\\\\n"];
    const families = parseText(
      renderMetrics({
        ...EMPTY,
        tasks: hard.map((name) => task(name, name)),
        queues: hard.map((q) => queue(q)),
      }),
    );
    const total = families.find((f) => f.name === "celeriac_tasks_total")!;
    assert.deepEqual(
      total.metrics
        .filter((s) => s.labels?.outcome === "succeeded")
        .map((s) => [s.labels?.task, s.labels?.queue]),
      hard.map((name) => [name, name]),
    );
    const paused = families.find((f) => f.name === "celeriac_queue_paused")!;
    assert.deepEqual(
      paused.metrics.map((s) => s.labels?.queue),
      hard,
    );
  });

  it("spells NaN, +Inf and -Inf as the format does, and writes integers as they are", () => {
    const text = renderMetrics({
      ...EMPTY,
      tasks: [task("t", "q", { succeeded: Number.NaN, failed: 12_345_678 })],
      queues: [queue("q", { oldestWaitingAgeMs: Infinity, deadLetters: -Infinity })],
    });
    const families = parseText(text);
    const value = (name: string, pick = (_: Record<string, string>) => true) =>
      families.find((f) => f.name === name)?.metrics.find((s) => pick(s.labels ?? {}))?.value;
    assert.equal(
      value("celeriac_tasks_total", (l) => l.outcome === "succeeded"),
      "NaN",
    );
    assert.equal(
      value("celeriac_tasks_total", (l) => l.outcome === "failed"),
      "12345678",
    );
    assert.equal(value("celeriac_queue_oldest_waiting_seconds"), "+Inf");
    assert.equal(value("celeriac_queue_dead_letters"), "-Inf");
    assert.match(text, /^celeriac_workers\{kind="worker"\} 0$/m);
  });

  it("renders an empty snapshot as the workers family alone, and it parses", async () => {
    const text = renderMetrics(EMPTY);
    assert.deepEqual(checkStructure(text), ["celeriac_workers"]);
    assert.equal(
      text,
      "# HELP celeriac_workers Live workers by kind: worker (pulling), push (HTTP handler instances).\n" +
        "# TYPE celeriac_workers gauge\n" +
        'celeriac_workers{kind="worker"} 0\n' +
        'celeriac_workers{kind="push"} 0\n',
    );
    assert.deepEqual(Object.keys(await parse(text)), ["celeriac_workers"]);
    assert.deepEqual(
      parseText(text).map((f) => [f.name, f.type, f.metrics.length]),
      [["celeriac_workers", "GAUGE", 2]],
    );
  });

  it("takes a prefix and rejects one that is no valid name start", async () => {
    const text = renderMetrics(SNAPSHOT, { prefix: "jobs" });
    checkStructure(text);
    assert.deepEqual(
      Object.keys(await parse(text)),
      Object.keys(FAMILIES).map((f) => f.replace(/^celeriac_/, "jobs_")),
    );
    for (const prefix of ["", "1x", "a-b", "a:b", "__x", "é"]) {
      assert.throws(() => renderMetrics(EMPTY, { prefix }), RangeError, JSON.stringify(prefix));
    }
  });

  it("rejects malformed histograms and duplicate series", () => {
    const bad = (runtime: Histogram) => renderMetrics({ ...EMPTY, tasks: [task("t", "q", { runtime })] });
    assert.throws(() => bad(hist([1, 10], [1, 2], 0)), /runtime of task "t" on queue "q": counts must have/);
    assert.throws(() => bad(hist([10, 1], [1, 2, 3], 0)), /strictly ascending/);
    assert.throws(() => bad(hist([1, 1], [1, 2, 3], 0)), /strictly ascending/);
    assert.throws(() => bad(hist([1, Infinity], [1, 2, 3], 0)), /finite/);
    assert.throws(
      () => renderMetrics({ ...EMPTY, tasks: [task("t", "q"), task("t", "q")] }),
      /task "t" on queue "q" appears twice/,
    );
    assert.throws(
      () => renderMetrics({ ...EMPTY, queues: [queue("q"), queue("q")] }),
      /queue "q" appears twice/,
    );
    assert.doesNotThrow(() => renderMetrics({ ...EMPTY, tasks: [task("t", "q"), task("t", "r")] }));
  });
});

describe("checkStructure (the test's own format rules)", () => {
  const ok = renderMetrics(SNAPSHOT);
  const lines = ok.split("\n");
  const broken: Record<string, string> = {
    "a second HELP": ok.replace(/^(# HELP celeriac_queue_paused .*)$/m, "$1\n$1"),
    "a split family": `${ok}${lines.find((l) => l.startsWith("celeriac_tasks_total"))}\n`,
    "a sample before its TYPE": ok.replace(/^# TYPE celeriac_workers gauge\n/m, ""),
    "buckets that are not cumulative": ok.replace(/le="0\.01"\} 3$/m, 'le="0.01"} 0'),
    "a _count unlike the +Inf bucket": ok.replace(
      /(runtime_seconds_count\{task="email\.send",queue="io"\}) 6/,
      "$1 5",
    ),
    "a timestamp": ok.replace(/kind="push"\} 1$/m, 'kind="push"} 1 1700000000000'),
  };
  for (const [what, text] of Object.entries(broken)) {
    it(`rejects ${what}`, () => {
      assert.notEqual(text, ok);
      assert.throws(() => checkStructure(text), assert.AssertionError);
    });
  }
});

describe("taskMetrics", () => {
  it("turns the executor's counted statistics into rendered series", async () => {
    const stats = new StatsCollector();
    const at = 1_700_000_000_000;
    stats.ran("report.build", "default", at, 0.05, 0); // runtime ≤ 0.1 ms, wait 0
    stats.ended("report.build", "default", at, "retried");
    stats.ran("report.build", "default", at + 60_000, 3, 20); // the next minute: another row
    stats.ended("report.build", "default", at + 60_000, "succeeded");
    stats.ran("report.build", "default", at + 60_000, 400_000, 70_000); // above every bound
    stats.ended("report.build", "default", at + 60_000, "failed");
    stats.ended("", "default", at, "rejected"); // an undecodable delivery has no task name
    stats.ended("report.build", "default", at, "expired"); // not run: no runtime
    const metrics = taskMetrics(sumRows(stats.take()));
    assert.deepEqual(
      metrics.map((m) => [m.task, m.succeeded, m.failed, m.retried, m.rejected, m.expired]),
      [
        ["", 0, 0, 0, 1, 0],
        ["report.build", 1, 1, 1, 0, 1],
      ],
    );
    assert.equal(metrics[1]?.runtime.bounds, BOUNDS_MS);

    const parsed = await parse(renderMetrics({ ...EMPTY, tasks: metrics }));
    const [, runtime] = dataOf<PromHistogramData>(parsed, "celeriac_task_runtime_seconds");
    const [, wait] = dataOf<PromHistogramData>(parsed, "celeriac_task_wait_seconds");
    assert.deepEqual(runtime?.labels, { task: "report.build", queue: "default" });
    assert.equal(runtime?.buckets["0.0001"], 1);
    assert.equal(runtime?.buckets["0.0025"], 1);
    assert.equal(runtime?.buckets["0.005"], 2);
    assert.equal(runtime?.buckets["300"], 2);
    assert.equal(runtime?.buckets["+Inf"], 3);
    assert.equal(runtime?.sum, 400.00305);
    assert.equal(wait?.buckets["0.01"], 1);
    assert.equal(wait?.buckets["0.025"], 2);
    assert.equal(wait?.buckets["60"], 2);
    assert.equal(wait?.buckets["300"], 3);
    assert.equal(wait?.sum, 70.02);
    assert.equal(wait?.count, 3);
  });
});

function byBound(a: string, b: string): number {
  const n = (le: string) => (le === "+Inf" ? Infinity : Number(le));
  return n(a) - n(b);
}
