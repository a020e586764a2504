// A plain JavaScript consumer of the installed package: enqueue, work, read the result.
import { createApp, ValidationError } from "celeriac";
import { memory } from "celeriac/adapters/memory";
import * as v from "valibot";

const backend = memory();
const app = createApp({ broker: backend, store: backend });
const add = app.task({
  name: "math.add",
  input: v.object({ a: v.number(), b: v.number() }),
  run: ({ a, b }) => a + b,
});
const worker = app.worker({ concurrency: 2 }).start();
const run = await add.enqueue({ a: 2, b: 3 });
const result = await run.result({ timeoutMs: 5_000 });
let rejected = false;
try {
  await add.enqueue({ a: "two", b: 3 });
} catch (error) {
  rejected = error instanceof ValidationError;
}
await worker.stop();
console.log(JSON.stringify({ result, rejected, state: (await run.status())?.state }));
