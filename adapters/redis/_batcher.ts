/**
 * Batching of queue calls: calls on the same queue made before the current microtask checkpoint
 * ends go out as one script call (one EVALSHA, one write, one reply). Under load, every worker
 * slot that finished in the same turn shares a round trip; alone, a call goes out at once.
 *
 * @module
 */
import { QueueCall } from "./_call.ts";
import { list, type Transport } from "./_client.ts";
import { checkResults } from "./_ledger.ts";
import type { Script } from "./lua/mod.ts";

/** A queue call waiting to go out with others. */
interface Pending {
  call: QueueCall;
  resolve(results: unknown[]): void;
  reject(error: unknown): void;
}

/** Sends the queue calls of one backend, merging those of the same turn. */
export class CallBatcher {
  readonly #t: Transport;
  readonly #prefix: string;
  readonly #script: Script;
  /** Queue calls waiting for the end of this microtask checkpoint, by queue. */
  readonly #batches = new Map<string, Pending[]>();

  constructor(t: Transport, prefix: string, script: Script) {
    this.#t = t;
    this.#prefix = prefix;
    this.#script = script;
  }

  /** Runs a queue call; resolves to one result per op. A failure fails every call of its batch. */
  run(call: QueueCall): Promise<unknown[]> {
    const q = call.queue;
    let batch = this.#batches.get(q);
    if (batch === undefined) {
      const waiting: Pending[] = [];
      batch = waiting;
      this.#batches.set(q, waiting);
      queueMicrotask(() => this.#flush(q, waiting));
    }
    const waiting = batch;
    return new Promise((resolve, reject) => waiting.push({ call, resolve, reject }));
  }

  #flush(q: string, waiting: Pending[]): void {
    this.#batches.delete(q);
    // Two halves: Redis runs the first while this process writes the second and then handles
    // the first's replies, so both sides work at once instead of taking turns.
    const half = Math.ceil(waiting.length / 2);
    const groups = half === waiting.length ? [waiting] : [waiting.slice(0, half), waiting.slice(half)];
    for (const group of groups) {
      const merged = group.length === 1 ? group[0]!.call : new QueueCall(this.#prefix, q);
      const from = group.length === 1 ? [0] : group.map((w) => merged.absorb(w.call));
      this.#send(merged).then(
        (results) => {
          for (const [i, w] of group.entries()) w.resolve(results.slice(from[i], from[i]! + w.call.size));
        },
        (error: unknown) => {
          for (const w of group) w.reject(error);
        },
      );
    }
  }

  async #send(call: QueueCall): Promise<unknown[]> {
    const reply = await this.#t.run(this.#script, call.keys, call.args);
    return checkResults(list(reply, "queue script"), call.size);
  }
}
