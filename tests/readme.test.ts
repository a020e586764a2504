import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { it } from "node:test";

const runtime = (globalThis as { Deno?: unknown }).Deno
  ? "deno"
  : (globalThis as { Bun?: unknown }).Bun
    ? "bun"
    : "node";

/** Writes the first ts block under `heading` as a module, celeriac resolved to this checkout. */
function moduleOf(heading: string, name: string): URL {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf(heading));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, `README has a ts example under ${heading}`);
  const dir = new URL("../.tmp/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`readme-${name}-${runtime}.ts`, dir);
  const source = code
    .replace(/from "celeriac"/g, `from "${new URL("../mod.ts", import.meta.url).href}"`)
    .replace(/from "celeriac\/otel"/g, `from "${new URL("../adapters/otel/mod.ts", import.meta.url).href}"`)
    .replace(
      /from "celeriac\/adapters\/memory"/g,
      `from "${new URL("../adapters/memory/mod.ts", import.meta.url).href}"`,
    )
    .replace(/console\.log\(/g, "globalThis.__readmeLog(");
  writeFileSync(file, `// generated from README.md by tests/readme.test.ts\n// @ts-nocheck\n${source}`);
  return file;
}

it("runs the README example as written (with celeriac resolved to this checkout)", async () => {
  const logged: unknown[] = [];
  (globalThis as { __readmeLog?: (v: unknown) => void }).__readmeLog = (v) => logged.push(v);
  await import(moduleOf("## Example", "example").href);
  assert.deepEqual(logged, [{ sent: true, to: "ada@example.com", attempt: 1 }]);
});

it("runs the README tracing example as written (celeriac/otel's names, createApp's option)", async () => {
  await import(moduleOf("## Tracing", "tracing").href);
});

it("runs the README debounce and throttle example as written", async () => {
  const logged: unknown[] = [];
  (globalThis as { __readmeLog?: (v: unknown) => void }).__readmeLog = (v) => logged.push(v);
  await import(moduleOf("## Debounce and throttle", "flow").href);
  assert.deepEqual(logged, [
    ["scheduled", "replaced", true],
    "indexed readme@2",
    [undefined, undefined, undefined, "dropped"],
  ]);
});

it("runs the README dashboard example as written", async () => {
  const logged: unknown[] = [];
  (globalThis as { __readmeLog?: (v: unknown) => void }).__readmeLog = (v) => logged.push(v);
  await import(moduleOf("## Dashboard", "dashboard").href);
  assert.deepEqual(logged, [[200, true], 401]);
});

it("runs the README operations example as written (inspect, control)", async () => {
  const logged: unknown[] = [];
  (globalThis as { __readmeLog?: (v: unknown) => void }).__readmeLog = (v) => logged.push(v);
  await import(moduleOf("## Operating it", "operating").href);
  assert.deepEqual(logged, [["cpu"], [0, 1], 1]);
});

it("runs the README circuit breaker example as written (open, waiting runs, closed by a probe)", async () => {
  const logged: unknown[] = [];
  (globalThis as { __readmeLog?: (v: unknown) => void }).__readmeLog = (v) => logged.push(v);
  await import(moduleOf("## Circuit breakers", "breaker").href);
  assert.deepEqual(logged, ["stripe open after 3 failures", ["open", "scheduled"], "closed"]);
});

it("runs the README locks example as written (app.lock, await using, withLock, ctx.lock)", async () => {
  const logged: unknown[] = [];
  (globalThis as { __readmeLog?: (v: unknown) => void }).__readmeLog = (v) => logged.push(v);
  await import(moduleOf("## Locks", "locks").href);
  assert.deepEqual(logged, [1, true, 2, { index: "products", token: 1 }]);
});
