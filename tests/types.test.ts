// Type-level tests: `npm test` type-checks this file, so each @ts-expect-error line must stay an
// error. The runtime assertions make the file a real test under every runtime too.
import assert from "node:assert/strict";
import { it } from "node:test";
import * as v from "valibot";
import { memory } from "../adapters/memory/mod.ts";
import { createApp, type Run } from "../mod.ts";

it("infers enqueue's input, run's input and result's type from the schema", async () => {
  const app = createApp({ broker: memory({ eager: true }) });
  const parse = app.task({
    name: "parse",
    input: v.object({
      raw: v.pipe(
        v.string(),
        v.transform((s) => Number.parseInt(s, 10)),
      ),
    }),
    run: (input) => {
      const n: number = input.raw; // output type: number
      // @ts-expect-error: the output is a number, not a string
      const s: string = input.raw;
      void s;
      return { n, ok: true as const };
    },
  });
  // @ts-expect-error: enqueue takes the schema's input type (raw is a string)
  void parse.enqueue({ raw: 5 }).catch(() => {});
  // @ts-expect-error: a required key is missing
  void parse.enqueue({}).catch(() => {});
  const run: Run<{ n: number; ok: true }> = await parse.enqueue({ raw: "7" });
  const result = await run.result();
  const n: number = result.n;
  // @ts-expect-error: result has no such property
  void result.missing;
  assert.equal(n, 7);
});

it("accepts any JSON input when a task has no schema", async () => {
  const app = createApp({ broker: memory({ eager: true }) });
  const anything = app.task({ name: "anything", run: (input) => typeof input });
  const run = await anything.enqueue([1, "two"]);
  const kind: string = await run.result();
  assert.equal(kind, "object");
});
