// A TypeScript consumer, compiled by tsc against the published .d.ts (and run by Bun and Deno):
// the task's input and result types flow from the schema and `run`.
import { createApp, type Run } from "celeriac";
import { memory } from "celeriac/adapters/memory";
import * as v from "valibot";

const backend = memory();
const app = createApp({ broker: backend, store: backend });
const greet = app.task({
  name: "greet",
  input: v.object({ name: v.string() }),
  run: ({ name }) => ({ greeting: `hello ${name}`, length: name.length }),
});
// @ts-expect-error -- the input type comes from the schema: a number is not a name
greet.enqueue({ name: 42 }).catch(() => {});
const worker = app.worker().start();
const run: Run<{ greeting: string; length: number }> = await greet.enqueue({ name: "Ada" });
const result = await run.result({ timeoutMs: 5_000 });
const length: number = result.length;
await worker.stop();
console.log(JSON.stringify({ greeting: result.greeting, length }));
