/**
 * BullMQ's sandboxed processor for bench/pool.ts (`new Worker(queue, url, { useWorkerThreads:
 * true })`): BullMQ imports this file in its own worker threads, so it is plain JavaScript. Jobs
 * named `hash` run the same work as celeriac's bench/_pool-hash.task.ts; any other is a no-op.
 *
 * @module
 */
import { sha256Rounds } from "./_pool-hash.mjs";

export default function processor(job) {
  return job.name === "hash" ? sha256Rounds(job.data.rounds) : null;
}
