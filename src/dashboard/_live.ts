/**
 * Internal: live updates. `GET /events` is a Server-Sent Events stream: `run` events (a run's
 * new state, from the store's change log, so changes made by any process show) and `counts`
 * events (every queue's counts, when they change). It reads the log every `liveMs`, and at once
 * when this process's app emits a lifecycle event. `GET /api/live` answers the same as JSON for
 * a browser that cannot keep a stream open (it polls slowly).
 *
 * @module
 */
import type { App } from "../app.ts";
import type { RunChange } from "../contracts.ts";
import type { EventType } from "../events.ts";
import { knownQueues } from "./_runs.ts";

const LIFECYCLE: readonly EventType[] = [
  "enqueued",
  "active",
  "succeeded",
  "retrying",
  "failed",
  "expired",
  "cancelled",
  "deadLettered",
];
/** Counts are read at most this often (ms). */
const COUNTS_MS = 2_000;
/** A comment line this often keeps proxies from closing an idle stream (ms). */
const KEEPALIVE_MS = 15_000;

/** One queue's counts as live updates carry them. */
type Counts = Record<string, number | boolean | string | null>;

async function counts(app: App): Promise<Counts[]> {
  if (app.broker.queueOps === undefined) return [];
  const queues = await app.inspect().queues();
  return queues.map((q) => ({
    queue: q.queue,
    waiting: q.waiting,
    scheduled: q.scheduled,
    retrying: q.retrying,
    limited: q.limited,
    active: q.active,
    deadLetters: q.deadLetters,
    workers: q.workers,
    paused: q.paused,
  }));
}

/** What `GET /api/live` answers: changes after `cursor`, the cursor to ask with next, the counts. */
export async function livePoll(
  app: App,
  cursor: string | null,
): Promise<{ changes: RunChange[]; cursor: string | null; counts: Counts[] }> {
  const history = app.store.history;
  const [log, c] = await Promise.all([
    history === undefined ? undefined : history.changes(await knownQueues(app), cursor, 500),
    counts(app),
  ]);
  return { changes: log?.changes ?? [], cursor: log?.cursor ?? null, counts: c };
}

/** The `GET /events` stream; it ends when the request is aborted. */
export function liveStream(app: App, request: Request, liveMs: number): Response {
  const encoder = new TextEncoder();
  const history = app.store.history;
  let stop = (): void => {};
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      let open = true;
      let wake: (() => void) | undefined;
      const offs: (() => void)[] = [];
      // In-process events carry runs this process sees; without a history they are all there is.
      const local: RunChange[] = [];
      for (const type of LIFECYCLE) {
        offs.push(
          app.on(type, (event) => {
            const e = event as { id: string; task?: string; queue?: string };
            if (history === undefined && type !== "deadLettered") {
              const state = type === "enqueued" ? "queued" : type === "retrying" ? "retrying" : type;
              local.push({
                id: e.id,
                queue: e.queue ?? "",
                task: e.task ?? "",
                state: state as RunChange["state"],
                at: app.clock.now(),
              });
            }
            wake?.();
          }),
        );
      }
      stop = () => {
        open = false;
        for (const off of offs) off();
        wake?.();
      };
      request.signal?.addEventListener("abort", stop, { once: true });
      const send = (text: string) => {
        if (!open) return;
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          stop();
        }
      };
      const event = (name: string, data: unknown) =>
        send(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      send("retry: 3000\n\n");
      let cursor: string | null = null;
      let lastCounts = "";
      let countsAt = 0;
      let beatAt = Date.now();
      try {
        const queues = await knownQueues(app);
        if (history !== undefined) cursor = (await history.changes(queues, null, 1)).cursor;
        while (open) {
          if (history !== undefined) {
            const log = await history.changes(await knownQueues(app), cursor, 500);
            cursor = log.cursor;
            for (const c of log.changes) event("run", c);
          }
          for (const c of local.splice(0)) event("run", c);
          if (Date.now() - countsAt >= COUNTS_MS) {
            countsAt = Date.now();
            const text = JSON.stringify(await counts(app));
            if (text !== lastCounts) {
              lastCounts = text;
              send(`event: counts\ndata: ${text}\n\n`);
            }
          }
          if (Date.now() - beatAt >= KEEPALIVE_MS) {
            beatAt = Date.now();
            send(": keepalive\n\n");
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, liveMs);
            // Woken by this process's events: read soon, but at most every 100 ms under load.
            wake = () => {
              clearTimeout(timer);
              wake = undefined;
              setTimeout(resolve, open ? 100 : 0);
            };
          });
          wake = undefined;
        }
      } catch (error) {
        event("error", { message: (error as Error).message });
      } finally {
        stop();
        try {
          controller.close();
        } catch {
          // already closed by the reader
        }
      }
    },
    cancel() {
      stop();
    },
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
