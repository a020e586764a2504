/**
 * Internal: the messages between a pool and its threads (structured clone, one task at a time
 * per thread).
 *
 * @module
 */
import type { PoolCall } from "../src/pool.ts";

/** To a thread. */
export type ToThread =
  /** `heap`: report the heap after each task (the pool recycles by memory). */
  | { t: "init"; threadId: number; heap: boolean }
  | { t: "run"; job: number; call: PoolCall }
  | { t: "abort"; job: number; reason: string };

/** An error as it crosses from a thread. */
export interface ThreadErrorInfo {
  name: string;
  message: string;
  stack: string | undefined;
}

/** From a thread. `heapMb`: its heap in use after the task, when the runtime can tell. */
export type FromThread =
  | { t: "ready" }
  /** The module was loaded for this task (its first in the thread): its time limit starts now. */
  | { t: "started"; job: number }
  | { t: "progress"; job: number; value: unknown }
  | { t: "done"; job: number; ok: true; value: unknown; heapMb: number | null }
  | { t: "done"; job: number; ok: false; error: ThreadErrorInfo; heapMb: number | null };

/** On Deno (a child process): frames on its stdout start with this; other output goes to stderr. */
export const FRAME = "\u001ecel:";
