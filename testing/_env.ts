/**
 * What each contract test gets: the backend, its clock, and waiting helpers; and the messages and
 * records the tests send.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Broker, DeadLetter, Delivery, Message, ReceiveOptions, RunRecord, Store } from "../backend.ts";

/** A clock the suite can move (the memory backend's `manualClock()`). */
export interface ContractClock {
  now(): number;
  advance(ms: number): void;
}

/** One fresh backend for one test. */
export interface ContractSubject {
  /** Broker and store in one (pass the same instance as both to `createApp`). */
  backend: Broker & Store;
  /** When given, the backend's time moves only through it; otherwise real time is used. */
  clock?: ContractClock;
  close(): Promise<void>;
}

export const DEADLINE_MS = 5_000;

/** What a test body gets. */
export interface Env {
  b: Broker & Store;
  clock: ContractClock | undefined;
  now(): number;
  /** Lets `ms` of the backend's time pass. */
  advance(ms: number): Promise<void>;
  /** Calls `fn` until `ok` holds, up to a deadline. */
  eventually<T>(fn: () => Promise<T>, ok: (value: T) => boolean, what: string): Promise<T>;
  receive(queues: string[], options?: Partial<ReceiveOptions>): Promise<Delivery[]>;
  /**
   * Polls `poll` (letting a little time pass between polls) until it hands out something, and
   * checks it was withheld before `at`: at least one poll answered empty before `at`, and none
   * answered non-empty before `at`. Robust to a slow machine: only answers are timed.
   */
  withheldUntil(at: number, poll: () => Promise<Delivery[]>, what: string): Promise<Delivery[]>;
}

export const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function env(subject: ContractSubject): Env {
  const b = subject.backend;
  const clock = subject.clock;
  return {
    b,
    clock,
    now: () => clock?.now() ?? Date.now(),
    async advance(ms) {
      if (clock !== undefined) {
        clock.advance(ms);
        return;
      }
      const until = Date.now() + ms + 1;
      while (Date.now() < until) await tick(Math.min(10, until - Date.now()));
    },
    async eventually(fn, ok, what) {
      const deadline = Date.now() + DEADLINE_MS;
      for (;;) {
        const value = await fn();
        if (ok(value)) return value;
        if (Date.now() > deadline)
          assert.fail(`timed out waiting for ${what}: last ${JSON.stringify(value)}`);
        await tick(10);
      }
    },
    receive(queues, options = {}) {
      return b.receive!({ queues, max: 10, leaseMs: 30_000, waitMs: 0, ...options });
    },
    async withheldUntil(at, poll, what) {
      const now = () => clock?.now() ?? Date.now();
      const deadline = Date.now() + DEADLINE_MS;
      let early = 0;
      for (;;) {
        const got = await poll();
        const answeredAt = now();
        if (got.length > 0) {
          assert.ok(answeredAt >= at, `${what} came ${at - answeredAt} ms early`);
          assert.ok(early > 0, `${what} was never seen withheld (the machine is too slow for this test)`);
          return got;
        }
        if (answeredAt < at) early++;
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        if (clock !== undefined) clock.advance(25);
        else await tick(10);
      }
    },
  };
}

export function msg(id: string, queue = "q", priority = 0, notBefore?: number): Message {
  const m: Message = { id, queue, priority, body: JSON.stringify({ id, text: 'héllo \u2603 "quoted"' }) };
  if (notBefore !== undefined) m.notBefore = notBefore;
  return m;
}

export const ids = (ds: readonly Delivery[]) => ds.map((d) => d.id);

export function record(id: string, queue = "q", state: RunRecord["state"] = "queued"): RunRecord {
  return { id, task: "t", queue, state, attempt: 0, maxAttempts: 3, enqueuedAt: 1, updatedAt: 1 };
}

export function dead(id: string, queue: string, at: number): DeadLetter {
  const error = { name: "Error", message: `boom ${id}` };
  return { id, queue, task: "t", reason: `because ${id}`, error, errors: [], body: `{"id":"${id}"}`, at };
}
