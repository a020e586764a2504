import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { it } from "node:test";

it("runs the README example as written (with celeriac resolved to this checkout)", async () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Example"));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, "README has a ts example under ## Example");
  const dir = new URL("../.tmp/", import.meta.url);
  mkdirSync(dir, { recursive: true });
  const runtime = (globalThis as { Deno?: unknown }).Deno
    ? "deno"
    : (globalThis as { Bun?: unknown }).Bun
      ? "bun"
      : "node";
  const file = new URL(`readme-example-${runtime}.ts`, dir);
  const logged: unknown[] = [];
  const source = code
    .replace(/from "celeriac"/g, `from "${new URL("../mod.ts", import.meta.url).href}"`)
    .replace(/console\.log\(/g, "globalThis.__readmeLog(");
  (globalThis as { __readmeLog?: (v: unknown) => void }).__readmeLog = (v) => logged.push(v);
  writeFileSync(file, `// generated from README.md by tests/readme.test.ts\n// @ts-nocheck\n${source}`);
  await import(file.href);
  assert.deepEqual(logged, [{ sent: true, to: "ada@example.com", attempt: 1 }]);
});
