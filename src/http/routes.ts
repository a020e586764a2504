/**
 * The handler's routes besides push delivery: the producer API (enqueue, run status, dead
 * letters), health, and the cron tick.
 *
 * @module
 */
import * as v from "valibot";
import type { Config } from "./options.ts";
import { workerHealth } from "./_ops-routes.ts";
import { failure, json, problem, readBody, TOO_LARGE, unauthorized, utf8 } from "./_http.ts";
import type { App } from "../app.ts";
import type { SchemaIssue } from "../errors.ts";
import type { EnqueueOptions } from "../task.ts";

const EnqueueBody = v.strictObject({
  task: v.pipe(v.string(), v.minLength(1)),
  input: v.optional(v.unknown()),
  delayMs: v.optional(v.pipe(v.number(), v.minValue(0))),
  at: v.optional(v.union([v.number(), v.pipe(v.string(), v.isoTimestamp())])),
  priority: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(9))),
  queue: v.optional(v.pipe(v.string(), v.minLength(1))),
  idempotencyKey: v.optional(v.pipe(v.string(), v.minLength(1))),
  id: v.optional(v.pipe(v.string(), v.minLength(1))),
  expiresAt: v.optional(v.union([v.number(), v.pipe(v.string(), v.isoTimestamp())])),
  expiresInMs: v.optional(v.pipe(v.number(), v.gtValue(0))),
});

/** Answers when the producer bearer token is missing or wrong (or the producer API is off). */
async function guard(config: Config, request: Request): Promise<Response | undefined> {
  if (config.producer === undefined)
    return problem(404, "NotFound", "the producer API is not enabled (no token)");
  return (await config.producer(request.headers.get("authorization"))) ? undefined : unauthorized();
}

/** `POST /runs`: validates the request and the input, then enqueues; 202 with the run id. */
export async function enqueue(config: Config, request: Request): Promise<Response> {
  const denied = await guard(config, request);
  if (denied !== undefined) return denied;
  const body = await readBody(request, config.maxBodyBytes);
  if (body === TOO_LARGE) return problem(413, "PayloadTooLarge", `body is over ${config.maxBodyBytes} bytes`);
  const { text, valid } = utf8(body);
  if (!valid) return problem(400, "InvalidJSON", "body is not valid UTF-8");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return problem(400, "InvalidJSON", `body is not JSON: ${(error as Error).message}`);
  }
  const parsed = v.safeParse(EnqueueBody, raw);
  if (!parsed.success) {
    const issues: SchemaIssue[] = parsed.issues.map((issue) => ({
      message: issue.message,
      path: issue.path?.map((p) => p.key as PropertyKey) ?? [],
    }));
    return problem(400, "InvalidRequest", "body must be { task, input, ...options }", { issues });
  }
  const { task, input, at, expiresAt, ...rest } = parsed.output;
  const run = config.enqueuer(task);
  if (run === undefined) return problem(404, "UnknownTask", `no task named "${task}" can be enqueued here`);
  const options: EnqueueOptions = {};
  for (const [key, value] of Object.entries(rest))
    if (value !== undefined) Object.assign(options, { [key]: value });
  if (at !== undefined) options.at = typeof at === "number" ? at : Date.parse(at);
  if (expiresAt !== undefined)
    options.expiresAt = typeof expiresAt === "number" ? expiresAt : Date.parse(expiresAt);
  try {
    const { id, debounced, throttled } = await run(input, options);
    // What flow control did, when it did something (a dropped enqueue sent nothing).
    const flow = {
      ...(debounced === undefined ? {} : { debounced }),
      ...(throttled === undefined ? {} : { throttled }),
    };
    return json(202, { id, task, ...flow });
  } catch (error) {
    return failure(error);
  }
}

/** `GET /runs/:id`: the run's record. */
export async function status(app: App, config: Config, request: Request, id: string): Promise<Response> {
  const denied = await guard(config, request);
  if (denied !== undefined) return denied;
  const queue = new URL(request.url).searchParams.get("queue") ?? undefined;
  try {
    const record = await app.getRun(id, queue).status();
    if (record === null)
      return problem(404, "NotFound", `no run ${id} (it never existed, or its record expired)`);
    return json(200, record);
  } catch (error) {
    return failure(error);
  }
}

/** `GET /dead-letters?limit=`: dead letters, newest first. */
export async function deadLetters(app: App, config: Config, request: Request): Promise<Response> {
  const denied = await guard(config, request);
  if (denied !== undefined) return denied;
  const text = new URL(request.url).searchParams.get("limit") ?? "100";
  const limit = /^[0-9]{1,4}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
    return problem(
      400,
      "InvalidRequest",
      `limit must be an integer from 1 to 1000, got ${JSON.stringify(text)}`,
    );
  }
  try {
    return json(200, { deadLetters: await app.deadLetters({ limit }) });
  } catch (error) {
    return failure(error);
  }
}

/**
 * `GET /health`: pings the store and the broker (when it is another object), with latency; each
 * probe is bounded by `healthTimeoutMs` and one that does not answer in time counts as down.
 */
export async function health(app: App, config: Config): Promise<Response> {
  const targets: [string, { ping?: () => Promise<void> }][] = [["store", app.store]];
  if ((app.broker as unknown) !== app.store) targets.push(["broker", app.broker]);
  const checks: Record<string, { ok: boolean; latencyMs: number; error?: string }> = {};
  await Promise.all(
    targets.map(async ([name, target]) => {
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${name} did not answer within ${config.healthTimeoutMs} ms`)),
          config.healthTimeoutMs,
        );
      });
      try {
        await Promise.race([target.ping?.(), late]);
        checks[name] = { ok: true, latencyMs: round(performance.now() - started) };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        checks[name] = { ok: false, latencyMs: round(performance.now() - started), error: message };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  let ok = Object.values(checks).every((c) => c.ok);
  if (!ok) return json(503, { ok, checks });
  // The backends answer: now the workers, bounded like the pings.
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${config.healthTimeoutMs} ms`)),
      config.healthTimeoutMs,
    );
  });
  try {
    const w = await Promise.race([workerHealth(app, config), late]);
    if (w === undefined) return json(200, { ok, checks });
    const { queues, workers, ...check } = w;
    checks.workers = { ...check, latencyMs: round(performance.now() - started) };
    ok = w.ok;
    return json(ok ? 200 : 503, { ok, checks, workers, queues });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    checks.workers = { ok: false, latencyMs: round(performance.now() - started), error: message };
    return json(503, { ok: false, checks });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `GET|POST /cron`: one tick of the app's schedules (each due tick enqueued exactly once, however
 * often this is called). Authorized by a push provider's signature (a QStash schedule) or a
 * bearer token.
 */
export async function cron(app: App, config: Config, request: Request): Promise<Response> {
  if (config.cron === undefined && config.push.size === 0) {
    return problem(404, "NotFound", "the cron route is not enabled (no token, cronSecret or push receiver)");
  }
  const signer = [...config.push.values()].find((receiver) => receiver.signs(request));
  if (signer !== undefined) {
    const body = await readBody(request, config.maxBodyBytes);
    if (body === TOO_LARGE)
      return problem(413, "PayloadTooLarge", `body is over ${config.maxBodyBytes} bytes`);
    try {
      await signer.verify(request, body, "cron");
    } catch (error) {
      return problem(401, "SignatureError", (error as Error).message);
    }
  } else if (!(await config.cron?.(request.headers.get("authorization")))) {
    return unauthorized();
  }
  try {
    const result = await app.scheduler().tick();
    const errors = result.errors.map((e) => ({
      schedule: e.schedule,
      tick: e.tick,
      error: e.error instanceof Error ? `${e.error.name}: ${e.error.message}` : String(e.error),
    }));
    // A failed schedule answers 500: a platform cron shows it, and QStash retries (ticks are idempotent).
    return json(errors.length === 0 ? 200 : 500, { ...result, errors });
  } catch (error) {
    return failure(error);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
