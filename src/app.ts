/**
 * The app: a registry of tasks bound to a broker and a store, and the entry to everything else
 * (enqueue, workers, drain, dead letters, events).
 *
 * @module
 */
import { type AppOptions, type DrainOptions, resolveBackends } from "./app-options.ts";
import { cancelRun } from "./cancel.ts";
import type { Broker, Clock, Store } from "./contracts.ts";
import { type DeadLetters, deadLettersOf, replayDeadLetter } from "./dead-letters.ts";
import { CeleriacError, UnknownTaskError } from "./errors.ts";
import { Emitter, type EventType, type Listener } from "./events.ts";
import { drain, runEager } from "./execute/drain.ts";
import { checkDebounceSupport } from "./flow/debounce.ts";
import { Executor } from "./execute/executor.ts";
import { checkSharedBreaker } from "./flow/breaker-options.ts";
import { composeLedger, type Ledger } from "./execute/ledger.ts";
import { Worker, type WorkerOptions } from "./execute/worker.ts";
import { acquireLock, type LockHandle, type LockOptions, withLock } from "./flow/lock.ts";
import { setInternals } from "./_internals.ts";
import { type AppHosts, appHosts } from "./_app-hosts.ts";
import { control, inspector, metricsText } from "./ops/inspect.ts";
import { StatsCollector } from "./ops/stats.ts";
import type { Control, Inspector } from "./ops/types.ts";
import { sendRuns } from "./send.ts";
import type { Telemetry } from "./telemetry.ts";
import { ResultWaiters, type RunHost, RunHandle } from "./runs.ts";
import { type Router, routerOf } from "./routes.ts";
import {
  type Schedule,
  type ScheduleOptions,
  Scheduler,
  type SchedulerOptions,
} from "./schedule/scheduler.ts";
import { Schedules } from "./schedule/schedules.ts";
import { ScheduleSet } from "./schedule/set.ts";
import { scheduleInfo } from "./schedule/status.ts";
import type { StandardSchemaV1 } from "./schema.ts";
import {
  type EnqueueOptions,
  type ResolvedTask,
  resolveTask,
  type Run,
  type StandardInput,
  type Task,
  type TaskDefinition,
} from "./task.ts";
import { signature } from "./workflow/workflow.ts";
import { WorkflowEngine } from "./workflow/engine.ts";

export type { AppOptions, DrainOptions } from "./app-options.ts";
export { type AppInternals, internals } from "./_internals.ts";

/**
 * A celeriac app. Create it with {@link createApp}.
 */
export class App {
  /** The broker tasks travel through. */
  readonly broker: Broker;
  /** The store that keeps state, results and dead letters. */
  readonly store: Store;
  /** The time source. */
  readonly clock: Clock;
  /** The random source used for jitter. */
  readonly random: () => number;
  readonly #events: Emitter = new Emitter();
  readonly #ledger: Ledger;
  readonly #executor: Executor;
  readonly #tasks = new Map<string, ResolvedTask>();
  readonly #queues = new Set<string>(["default"]);
  readonly #waiters: ResultWaiters;
  readonly #schedules: ScheduleSet = new ScheduleSet(this);
  /** This app's running workers and schedulers: `close()` stops them before closing the backends. */
  readonly #running = new Set<Worker | Scheduler>();
  readonly #track = (runner: Worker | Scheduler, on: boolean): void => {
    if (on) this.#running.add(runner);
    else this.#running.delete(runner);
  };
  readonly #hosts: AppHosts;
  readonly #telemetry: Telemetry | undefined;
  /** What this process counted and has not reported yet. */
  readonly #stats = new StatsCollector();
  /** The routing table (`routes`): queues and priorities of tasks that do not name theirs. */
  readonly #route: Router | undefined;

  constructor(options: AppOptions = {}) {
    const { broker, store } = resolveBackends(options);
    this.#route = routerOf(options.routes);
    this.broker = broker;
    this.store = store;
    this.deadLetters = deadLettersOf(store);
    this.clock = options.clock ?? { now: () => Date.now() };
    this.random = options.random ?? Math.random;
    this.#telemetry = options.telemetry;
    this.#ledger = this.broker.ledger?.(this.store) ?? composeLedger(this.broker, this.store);
    this.#waiters = new ResultWaiters(this.store);
    this.#hosts = appHosts({
      broker,
      store,
      clock: this.clock,
      events: this.#events,
      ledger: this.#ledger,
      telemetry: this.#telemetry,
      waiters: this.#waiters,
      tasks: this.#tasks,
      queues: this.#queues,
      stats: this.#stats,
      run: (id, queue) => this.getRun(id, queue),
      enqueue: (task, inputs, options, internal) =>
        sendRuns(this.#hosts.send, task, inputs, options, internal),
      replay: (id) => this.replay(id),
      schedules: async () => (await this.schedules.list({ next: 1 })).map(scheduleInfo),
      runEager: () => this.#runEager(),
    });
    this.#executor = new Executor({
      workflow: new WorkflowEngine(this.#hosts.workflow),
      tasks: this.#tasks,
      broker: this.broker,
      store: this.store,
      clock: this.clock,
      random: this.random,
      events: this.#events,
      ledger: this.#ledger,
      settled: (id) => this.#waiters.settled(id),
      stats: store.ops === undefined ? undefined : this.#stats,
      telemetry: this.#telemetry,
    });
    const stats = store.ops === undefined ? undefined : this.#stats;
    setInternals(this, { executor: this.#executor, ledger: this.#ledger, events: this.#events, stats });
    this.control = control(this.#hosts.ops);
  }

  /** Registered tasks by name. */
  get tasks(): ReadonlyMap<string, ResolvedTask> {
    return this.#tasks;
  }

  /** Every queue this app's tasks (and enqueue overrides) have used. */
  queues(): string[] {
    return [...this.#queues];
  }

  /**
   * Registers a task. The name must be unique in the app; options are validated here. A
   * definition without `queue` or `priority` takes it from the app's `routes`.
   *
   * @example
   * ```ts
   * const add = app.task({
   *   name: "math.add",
   *   input: v.object({ a: v.number(), b: v.number() }),
   *   run: ({ a, b }) => a + b,
   * });
   * ```
   */
  task<S extends StandardSchemaV1 = StandardSchemaV1<unknown, unknown>, R = unknown>(
    definition: TaskDefinition<S, R>,
  ): Task<StandardInput<S>, Awaited<R>> {
    const resolved = resolveTask(definition, this.#route);
    checkDebounceSupport(resolved, this.#ledger);
    if (this.#tasks.has(resolved.name)) {
      throw new CeleriacError(`a task named "${resolved.name}" is already registered on this app`);
    }
    checkSharedBreaker(this.#tasks.values(), resolved);
    this.#tasks.set(resolved.name, resolved);
    this.#queues.add(resolved.queue);
    return {
      name: resolved.name,
      options: resolved,
      enqueue: (input, options) =>
        sendRuns(this.#hosts.send, resolved, [input], options ?? {}).then((runs) => runs[0]!),
      enqueueMany: (inputs, options) => sendRuns(this.#hosts.send, resolved, inputs, options ?? {}),
      with: (...args: unknown[]) => signature(this.#hosts.workflow, resolved.name, args),
    } as Task<StandardInput<S>, Awaited<R>>;
  }

  /**
   * Listens to lifecycle events; returns a function that stops listening.
   *
   * @example
   * ```ts
   * const off = app.on("failed", (e) => console.error(e.task, e.error.message));
   * ```
   */
  on<T extends EventType>(type: T, listener: Listener<T>): () => void {
    return this.#events.on(type, listener);
  }

  /**
   * Creates a pull worker (not started).
   *
   * @example
   * ```ts
   * const worker = app.worker({ queues: ["io", "default"], concurrency: 50 }).start();
   * ```
   */
  worker(options: WorkerOptions = {}): Worker {
    const host = {
      broker: this.broker,
      executor: this.#executor,
      events: this.#events,
      clock: this.clock,
      queues: () => this.queues(),
      running: this.#track,
      ops: this.store.ops,
      stats: this.#stats,
    };
    return new Worker(host, options);
  }

  /**
   * Defines a schedule (`cron` or `every`) that enqueues `task` on each tick, exactly once across
   * replicas; validated here (an invalid one throws, naming the schedule). Nothing fires until a
   * scheduler runs: `app.scheduler().start()`, or `tick()` from a platform cron.
   *
   * @example
   * ```ts
   * app.schedule("nightly", { cron: "0 2 * * *", timezone: "Europe/Berlin", task: cleanup, input: {} });
   * ```
   */
  schedule<I>(id: string, options: ScheduleOptions<I>): Schedule {
    return this.#schedules.define(id, options);
  }

  /**
   * Schedules kept in the store, changed at runtime by any process (a stored one hides a code one
   * with its id): `add`, `update`, `pause`, `resume`, `remove`, and `list` (code ones too).
   * @example
   * ```ts
   * await app.schedules.add("digest", { task: "email.digest", input: {}, every: "1h" });
   * ```
   */
  readonly schedules: Schedules = new Schedules(this, this.#schedules, this.#running);

  /**
   * Creates a scheduler over this app's schedules (not started).
   *
   * @example
   * ```ts
   * const scheduler = app.scheduler().start(); // long-lived: croner timers
   * await app.scheduler().tick(); // edge cron: enqueue what is due now
   * ```
   */
  scheduler(options: SchedulerOptions = {}): Scheduler {
    const host = { store: this.store, clock: this.clock, events: this.#events, running: this.#track };
    return new Scheduler(host, this.#schedules, options);
  }

  /**
   * Runs everything queued and due on a pull broker, then resolves with the number of deliveries
   * processed. Deterministic in tests: no waiting, no timers.
   *
   * @example
   * ```ts
   * await task.enqueue(input);
   * await app.drain();
   * ```
   */
  drain(options: DrainOptions = {}): Promise<number> {
    return drain(this.broker, this.#executor, options.queues ?? this.queues(), options.concurrency ?? 1);
  }

  /**
   * A handle on a run by id (from another process, a URL, a log line).
   *
   * @example
   * ```ts
   * const record = await app.getRun(id).status();
   * ```
   */
  getRun<R = unknown>(id: string, queue?: string): Run<R> {
    this.#runs ??= {
      status: (id, queue) => this.store.getRun(id, queue),
      result: (id, queue, timeoutMs) => this.#waiters.result(id, queue, timeoutMs),
      cancel: (id, queue) => cancelRun(this.#hosts.cancel, id, queue),
    };
    return new RunHandle<R>(this.#runs, id, queue);
  }

  /** What every run handle of this app calls (one set of closures per app, not per run). */
  #runs: RunHost | undefined;

  /**
   * Enqueues a registered task by name, exactly as `task.enqueue()` does (for callers holding a
   * name, such as the HTTP enqueue API). Rejects with `UnknownTaskError` for an unknown name.
   *
   * @example
   * ```ts
   * const run = await app.enqueue("email.send", { to: "a@b.co" }, { delayMs: 5000 });
   * ```
   */
  async enqueue(name: string, input: unknown, options: EnqueueOptions = {}): Promise<Run<unknown>> {
    const task = this.#tasks.get(name);
    if (task === undefined) throw new UnknownTaskError(name);
    const [run] = await sendRuns(this.#hosts.send, task, [input], options);
    return run!;
  }

  /**
   * The dead letters: `await app.deadLetters()` lists them, newest first;
   * `app.deadLetters.delete(id)` and `app.deadLetters.purge()` remove them.
   *
   * @example
   * ```ts
   * for (const dl of await app.deadLetters()) console.log(dl.id, dl.reason);
   * ```
   */
  readonly deadLetters: DeadLetters;

  /**
   * Sends a dead-lettered run again with a fresh attempt budget, under the same run id.
   *
   * @example
   * ```ts
   * const run = await app.replay(deadLetter.id);
   * ```
   */
  async replay(id: string): Promise<Run<unknown>> {
    const host = { store: this.store, ledger: this.#ledger, tasks: this.#tasks, now: () => this.clock.now() };
    const run = await replayDeadLetter(host, id);
    this.#queues.add(run.queue);
    if (this.broker.eager) await this.#runEager();
    return this.getRun(run.id, run.queue);
  }

  /**
   * Takes a distributed lock on `key`, held by one holder at a time across every process on the
   * store, for `ttlMs` unless renewed. Rejects with `LockedError` when another holder has it (at
   * once, or when `waitMs` runs out). The handle's `token` grows with every holder (a fencing
   * token); `release()` and `renew()` act only while the lock is still this holder's.
   *
   * @example
   * ```ts
   * await using lock = await app.lock("report:daily", { ttlMs: 60_000, waitMs: 5_000 });
   * await buildReport({ fencingToken: lock.token }); // released at the end of the block
   * ```
   */
  lock(key: string, options: LockOptions): Promise<LockHandle> {
    return acquireLock(this, key, options);
  }

  /**
   * Runs `fn` holding the lock on `key` (see {@link App.lock}), releasing it when `fn` returns
   * or throws; resolves to what `fn` returns.
   *
   * @example
   * ```ts
   * const report = await app.withLock("report:daily", { ttlMs: 60_000 }, (lock) => buildReport(lock.token));
   * ```
   */
  withLock<T>(key: string, options: LockOptions, fn: (lock: LockHandle) => T | Promise<T>): Promise<T> {
    return withLock(this, key, options, fn);
  }

  /**
   * Read-only views for operators: live workers, running runs, queue counts, task statistics,
   * schedules.
   *
   * @example
   * ```ts
   * for (const q of await app.inspect().queues()) console.log(q.queue, q.waiting, q.workers);
   * ```
   */
  inspect(): Inspector {
    return inspector(this.#hosts.ops);
  }

  /**
   * Steering for operators: pause, resume and purge queues, cancel and replay in bulk, change a
   * worker's concurrency or shut it down.
   *
   * @example
   * ```ts
   * await app.control.pause("emails");
   * ```
   */
  readonly control: Control;

  /**
   * The app's metrics in the Prometheus text format (serve it with the content type
   * `METRICS_CONTENT_TYPE`; the handler serves it at `GET /metrics`).
   *
   * @example
   * ```ts
   * const text = await app.metrics();
   * ```
   */
  metrics(): Promise<string> {
    return metricsText(this.#hosts.ops);
  }

  /**
   * Stops the app's workers and schedulers (each as its own `stop()` does: in-flight tasks get
   * their grace period), then closes the broker and store.
   *
   * @example
   * ```ts
   * await app.close();
   * ```
   */
  async close(): Promise<void> {
    await Promise.all([...this.#running].map((r) => r.stop()));
    await this.broker.close?.();
    if ((this.store as unknown) !== this.broker) await this.store.close?.();
  }

  #runEager(): Promise<void> {
    return runEager(this.broker, this.#executor, this.queues());
  }
}

/**
 * Creates an app. With no options it runs on the in-memory backend.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * const app = createApp();
 * const hello = app.task({ name: "hello", run: () => "world" });
 * const run = await hello.enqueue(undefined);
 * app.worker().start();
 * console.log(await run.result()); // "world"
 * ```
 */
export function createApp(options: AppOptions = {}): App {
  return new App(options);
}
