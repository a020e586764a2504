// A consumer's CPU-bound task in a thread of the installed package's pool: the built thread
// program (dist/threads/_thread.js) loads the consumer's own module and runs it.
import { createApp } from "celeriac";
import { memory } from "celeriac/adapters/memory";
import { threadModule, threads } from "celeriac/threads";

const backend = memory();
const app = createApp({ broker: backend, store: backend });
const hash = app.task({
  name: "hash",
  module: threadModule(new URL("./hash.task.mjs", import.meta.url)),
  timeoutMs: 200,
  retry: { maxAttempts: 2, baseMs: 0, jitter: "none" },
});
const pool = threads({ max: 2 });
const worker = app.worker({ concurrency: 2, pool }).start();
const done = await hash.enqueue({ rounds: 1000, hangOn: [] });
const hung = await hash.enqueue({ rounds: 1, hangOn: [1] });
const [a, b] = [await done.result({ timeoutMs: 20_000 }), await hung.result({ timeoutMs: 20_000 })];
await worker.stop();
console.log(
  JSON.stringify({
    digest: a.digest.length,
    thread: a.threadId > 0,
    retried: b.attempt,
    timeouts: pool.stats().recycled.timeout,
  }),
);
