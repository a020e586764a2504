/**
 * The Lua of the Redis backend: three scripts serve everything, over TCP and REST alike.
 * - `QUEUE_SCRIPT` runs a list of ops against one queue; every key it touches carries the
 *   queue's hash tag, so one call is one slot and one round trip (`queue.ts`, one fragment per
 *   op group).
 * - `KEY_SCRIPT` runs one op on one plain key (`key.ts`).
 * - `OPS_SCRIPT` keeps the worker registry, control messages and task statistics (`ops.ts`).
 * - `SCHEDULES_SCRIPT` keeps the stored schedules, one hash (`schedules.ts`).
 *
 * @module
 */
export { OP, type OpCode } from "./_ops.ts";
export { KEY_SCRIPT } from "./key.ts";
export { OPS_SCRIPT } from "./ops.ts";
export { type HistoryConfig, HISTORY_SCRIPT_SOURCE } from "./history.ts";
export { DEFAULT_HISTORY, QUEUE_SCRIPT, queueScript, type Script } from "./queue.ts";
export { SCHEDULES_SCRIPT } from "./schedules.ts";
