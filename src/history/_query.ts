/**
 * Internal: what every run history shares — checking a query, the ended states (listed by when
 * they ended), reading an envelope's input and meta, and the text match of a search.
 *
 * @module
 */
import type { RunRecord, RunState } from "../contracts.ts";
import { RUN_STATES } from "../run-state.ts";
import type { HistoryQuery } from "../history-contracts.ts";

/** The states a run ends in: the history lists them by when they ended. */
export const ENDED_STATES: ReadonlySet<RunState> = new Set(["succeeded", "failed", "cancelled", "expired"]);

const STATES: ReadonlySet<string> = new Set(RUN_STATES);

/** The largest page a history hands out. */
export const MAX_PAGE = 500;

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string") throw new TypeError(`${name} must be a string, got ${typeof value}`);
  return value;
}

function optionalTime(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${name} must be a time in epoch ms, got ${String(value)}`);
  }
  return value;
}

/** Checks a query and drops empty filters; throws `TypeError`/`RangeError` naming what is wrong. */
export function checkQuery(query: HistoryQuery): HistoryQuery {
  if (!Array.isArray(query.queues) || query.queues.some((q) => typeof q !== "string")) {
    throw new TypeError("queues must be an array of queue names");
  }
  const limit = query.limit;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new RangeError(`limit must be an integer in [1, ${MAX_PAGE}], got ${String(limit)}`);
  }
  const state = optionalString(query.state, "state");
  if (state !== undefined && !STATES.has(state))
    throw new TypeError(`unknown state: ${JSON.stringify(state)}`);
  const text = optionalString(query.text, "text")?.toLowerCase();
  const out: HistoryQuery = { queues: [...new Set(query.queues)], limit, cursor: query.cursor ?? null };
  const task = optionalString(query.task, "task");
  const idempotencyKey = optionalString(query.idempotencyKey, "idempotencyKey");
  const from = optionalTime(query.from, "from");
  const to = optionalTime(query.to, "to");
  if (task !== undefined) out.task = task;
  if (state !== undefined) out.state = state as RunState;
  if (idempotencyKey !== undefined) out.idempotencyKey = idempotencyKey;
  if (from !== undefined) out.from = from;
  if (to !== undefined) out.to = to;
  if (text !== undefined) out.text = text;
  if (out.cursor !== null && typeof out.cursor !== "string")
    throw new TypeError("cursor must be a string or null");
  return out;
}

/** The input and meta of an envelope's text; nothing when it is not an envelope. */
export function envelopeParts(body: string): { input?: unknown; meta?: Record<string, unknown> } {
  try {
    const e = JSON.parse(body) as { input?: unknown; meta?: unknown };
    const out: { input?: unknown; meta?: Record<string, unknown> } = {};
    if (e === null || typeof e !== "object") return out;
    if ("input" in e) out.input = e.input;
    if (e.meta !== null && typeof e.meta === "object") out.meta = e.meta as Record<string, unknown>;
    return out;
  } catch {
    return {};
  }
}

/** Whether the lower-cased `needle` is in the run's input (its envelope's text), result or error. */
export function matchesText(needle: string, body: string | undefined, record: RunRecord): boolean {
  if (body?.toLowerCase().includes(needle)) return true;
  if (record.result !== undefined && JSON.stringify(record.result).toLowerCase().includes(needle))
    return true;
  const e = record.error;
  return e !== undefined && `${e.name}: ${e.message}`.toLowerCase().includes(needle);
}

/** Where a page of a history starts: below (k, id) in its order, k a time (ms) and id a run's. */
export interface HistoryCursor {
  k: number;
  id: string;
}

/** A cursor as the opaque text `HistoryPage.cursor` carries. */
export function encodeCursor(c: HistoryCursor): string {
  return `${c.k}:${c.id}`;
}

/** A cursor from its text; throws `TypeError` for text that is not one. */
export function decodeCursor(text: string): HistoryCursor {
  const i = text.indexOf(":");
  const k = Number(text.slice(0, i));
  if (i < 1 || !Number.isFinite(k)) throw new TypeError(`not a history cursor of this backend: ${text}`);
  return { k, id: text.slice(i + 1) };
}
