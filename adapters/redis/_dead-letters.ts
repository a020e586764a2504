/**
 * The dead letters of the Redis backend: kept per queue (a hash by run id and an index by time,
 * under the queue's hash tag), so a lookup without the queue asks every known queue.
 *
 * @module
 */
import type { DeadLetter } from "../../backend.ts";
import { QueueCall } from "./_call.ts";
import { int, maybeText } from "./_client.ts";
import { deadListResult, decodeDeadLetter } from "./_codec.ts";

/** What the dead letters need from their backend. */
export interface DeadLetterHost {
  readonly prefix: string;
  /** How long a dead letter is kept. */
  readonly retentionMs: number;
  run(call: QueueCall): Promise<unknown[]>;
  /** Every known queue. */
  queues(): Promise<string[]>;
  /** Records a queue in the index of known queues. */
  register(queue: string): Promise<void>;
}

/** Dead-letter operations over every queue of one backend. */
export class DeadLetters {
  readonly #host: DeadLetterHost;

  constructor(host: DeadLetterHost) {
    this.#host = host;
  }

  async add(entry: DeadLetter): Promise<void> {
    await this.#host.register(entry.queue);
    const c = new QueueCall(this.#host.prefix, entry.queue);
    c.deadAdd(entry, this.#host.retentionMs);
    await this.#host.run(c);
  }

  async list(limit: number): Promise<DeadLetter[]> {
    const max = Math.floor(limit);
    if (!(max >= 1)) return [];
    const lists = await this.#everyQueue((c) => c.deadList(max, this.#host.retentionMs));
    return lists
      .flatMap((reply) => deadListResult(reply))
      .sort((a, b) => b.at - a.at)
      .slice(0, max)
      .map((e) => e.entry);
  }

  async take(id: string): Promise<DeadLetter | null> {
    const found = (await this.#everyQueue((c) => c.deadTake(id))).map((r) => maybeText(r, "dead letter"));
    const json = found.find((f) => f !== null);
    return json === undefined || json === null ? null : decodeDeadLetter(json);
  }

  async delete(id: string): Promise<boolean> {
    const found = await this.#everyQueue((c) => c.deadDelete(id));
    return found.some((n) => int(n, "dead letter delete") === 1);
  }

  async purge(): Promise<number> {
    const counts = await this.#everyQueue((c) => c.deadPurge());
    return counts.reduce<number>((sum, n) => sum + int(n, "dead letter purge"), 0);
  }

  /** One op on every known queue, in parallel; resolves to each queue's result. */
  async #everyQueue(add: (c: QueueCall) => void): Promise<unknown[]> {
    return await Promise.all(
      (await this.#host.queues()).map(async (queue) => {
        const c = new QueueCall(this.#host.prefix, queue);
        add(c);
        return (await this.#host.run(c))[0];
      }),
    );
  }
}
