/**
 * Internal: the dashboard's actions. Each is a POST (CSRF-checked by the router) that answers a
 * redirect back with a notice, or JSON `{ ok, message }` to the page's script.
 *
 * @module
 */
import type { App } from "../app.ts";
import { deadFilter } from "./_dead.ts";
import { fromForm, storedDefinition } from "./_schedules.ts";

/** What an action did: a notice and where to go back to. */
export interface Done {
  ok: boolean;
  message: string;
  /** The page to return to, below the dashboard's base. */
  back: string;
}

type Handler = (app: App, params: Record<string, string>, form: FormData) => Promise<Done>;

const enc = encodeURIComponent;

/** The action routes, by pattern (`:x` a path segment). */
export const ACTIONS: [pattern: string, handler: Handler][] = [
  [
    "/queues/:queue/pause",
    async (app, { queue }) => {
      await app.control.pause(queue!);
      return { ok: true, message: `Queue ${queue} paused.`, back: `/queues/${enc(queue!)}` };
    },
  ],
  [
    "/queues/:queue/resume",
    async (app, { queue }) => {
      await app.control.resume(queue!);
      return { ok: true, message: `Queue ${queue} resumed.`, back: `/queues/${enc(queue!)}` };
    },
  ],
  [
    "/queues/:queue/purge",
    async (app, { queue }) => {
      const n = await app.control.purge(queue!);
      return { ok: true, message: `Purged ${n} runs of ${queue}.`, back: `/queues/${enc(queue!)}` };
    },
  ],
  [
    "/runs/:id/cancel",
    async (app, { id }, form) => {
      const queue = form.get("queue");
      const done = await app
        .getRun(id!, typeof queue === "string" && queue !== "" ? queue : undefined)
        .cancel();
      return {
        ok: done,
        message: done ? `Run ${id} cancelled.` : `Run ${id} had already ended.`,
        back: `/runs/${enc(id!)}`,
      };
    },
  ],
  [
    "/dead-letters/replay",
    async (app, _p, form) => {
      const f = deadFilter(form);
      const n = await app.control.replay({ ...f, all: true });
      return { ok: true, message: `Replayed ${n} dead letters.`, back: "/dead-letters" };
    },
  ],
  [
    "/dead-letters/:id/replay",
    async (app, { id }) => {
      const run = await app.replay(id!);
      return { ok: true, message: `Dead letter ${id} replayed as run ${run.id}.`, back: "/dead-letters" };
    },
  ],
  [
    "/dead-letters/:id/delete",
    async (app, { id }) => {
      const done = await app.deadLetters.delete(id!);
      return {
        ok: done,
        message: done ? `Dead letter ${id} deleted.` : `No dead letter ${id}.`,
        back: "/dead-letters",
      };
    },
  ],
  [
    "/schedules",
    async (app, _p, form) => {
      const { id, definition } = fromForm(form);
      await app.schedules.add(id, definition);
      return { ok: true, message: `Schedule ${id} added.`, back: "/schedules" };
    },
  ],
  [
    "/schedules/:id/edit",
    async (app, { id }, form) => {
      const { definition } = fromForm(form);
      const current = await storedDefinition(app, id!);
      if (current === null) return { ok: false, message: `No stored schedule ${id}.`, back: "/schedules" };
      // Every field the form has replaces the stored one; a field left empty is removed.
      await app.schedules.update(id!, {
        task: definition.task,
        cron: definition.cron ?? null,
        every: definition.every ?? null,
        timezone: definition.timezone ?? null,
        queue: definition.queue ?? null,
        input: definition.input ?? null,
      });
      return { ok: true, message: `Schedule ${id} saved.`, back: "/schedules" };
    },
  ],
  [
    "/schedules/:id/pause",
    async (app, { id }) => {
      await app.schedules.pause(id!);
      return { ok: true, message: `Schedule ${id} paused.`, back: "/schedules" };
    },
  ],
  [
    "/schedules/:id/resume",
    async (app, { id }) => {
      await app.schedules.resume(id!);
      return { ok: true, message: `Schedule ${id} resumed.`, back: "/schedules" };
    },
  ],
  [
    "/schedules/:id/remove",
    async (app, { id }) => {
      const done = await app.schedules.remove(id!);
      return {
        ok: done,
        message: done ? `Schedule ${id} removed.` : `No stored schedule ${id}.`,
        back: "/schedules",
      };
    },
  ],
  [
    "/schedules/:id/run",
    async (app, { id }) => {
      const d = await storedDefinition(app, id!);
      if (d === null) return { ok: false, message: `No stored schedule ${id}.`, back: "/schedules" };
      const options = d.queue === undefined ? {} : { queue: d.queue };
      const run = await app.enqueue(d.task, d.input ?? {}, options);
      return { ok: true, message: `Schedule ${id} ran now: run ${run.id}.`, back: `/runs/${enc(run.id)}` };
    },
  ],
  [
    "/workers/:id/concurrency",
    async (app, { id }, form) => {
      const n = Number(form.get("concurrency"));
      const done = await app.control.concurrency(id!, n);
      return {
        ok: done,
        message: done
          ? `Worker ${id} takes concurrency ${n} with its next heartbeat.`
          : `No live worker ${id}.`,
        back: "/workers",
      };
    },
  ],
  [
    "/workers/:id/shutdown",
    async (app, { id }) => {
      const done = await app.control.shutdown(id!);
      return {
        ok: done,
        message: done ? `Worker ${id} stops with its next heartbeat.` : `No live worker ${id}.`,
        back: "/workers",
      };
    },
  ],
];
