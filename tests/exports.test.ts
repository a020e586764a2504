import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

const read = (name: string) => JSON.parse(readFileSync(new URL(`../${name}`, import.meta.url), "utf8"));

describe("published entry points", () => {
  it("lists the same entries for npm (built dist/), JSR (source) and the repo's own imports", () => {
    type NpmExport = { types: string; import: string; default: string };
    const npm = read("package.json").exports as Record<string, NpmExport>;
    const jsr = read("deno.json").exports as Record<string, string>;
    const paths = read("tsconfig.json").compilerOptions.paths as Record<string, string[]>;
    assert.deepEqual(Object.keys(npm).sort(), Object.keys(jsr).sort());
    for (const [name, source] of Object.entries(jsr)) {
      const built = `./dist/${source.slice(2, -3)}`;
      assert.deepEqual(
        npm[name],
        { types: `${built}.d.ts`, import: `${built}.js`, default: `${built}.js` },
        name,
      );
      assert.deepEqual(paths[`celeriac${name.slice(1)}`], [source], `tsconfig paths ${name}`);
    }
  });

  it("pins the same versions of runtime and peer dependencies for npm and Deno", () => {
    const pkg = read("package.json");
    const imports = read("deno.json").imports as Record<string, string>;
    const ranges = { ...pkg.dependencies, ...pkg.peerDependencies } as Record<string, string>;
    for (const [name, range] of Object.entries(ranges)) {
      assert.equal(imports[name], `npm:${name}@${range}`, `deno.json imports ${name}`);
    }
  });

  it("exposes every entry point as a loadable module", async () => {
    const jsr = read("deno.json").exports as Record<string, string>;
    for (const file of Object.values(jsr)) {
      const mod = await import(new URL(`../${file}`, import.meta.url).href);
      assert.ok(Object.keys(mod).length > 0, `${file} exports something`);
    }
  });

  it("maps every published name to its file for Deno, as the examples import them", () => {
    const jsr = read("deno.json").exports as Record<string, string>;
    const imports = read("deno.json").imports as Record<string, string>;
    for (const [name, file] of Object.entries(jsr)) {
      assert.equal(imports[`celeriac${name.slice(1)}`], file, `deno.json imports celeriac${name.slice(1)}`);
    }
  });

  it("keeps what applications use in celeriac and what backend authors need in celeriac/backend", async () => {
    const app = await import("../mod.ts");
    const backend = await import("../backend.ts");
    const values = Object.keys(app).sort();
    // Values only (types are erased): the app, errors, workflows, clocks, the cron trigger.
    assert.ok(values.length <= 25, `celeriac exports ${values.length} values: ${values.join(", ")}`);
    for (const internal of [
      "Executor",
      "Emitter",
      "composeLedger",
      "encodeEnvelope",
      "decodeEnvelope",
      "errorInfo",
    ]) {
      assert.equal(internal in app, false, `celeriac does not export ${internal}`);
    }
    for (const name of [
      "composeLedger",
      "decodeEnvelope",
      "encodeEnvelope",
      "processDelivery",
      "successPatch",
    ]) {
      assert.equal(
        typeof (backend as Record<string, unknown>)[name],
        "function",
        `celeriac/backend exports ${name}`,
      );
    }
    const made = app.createApp();
    for (const hidden of ["executor", "ledger", "events"]) {
      assert.equal(hidden in made, false, `an App does not expose ${hidden}`);
    }
  });
});
