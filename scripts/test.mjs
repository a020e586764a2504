#!/usr/bin/env node
// The whole check, as `npm test` runs it: type check (tsc, deno check), lint, the JSR dry run,
// the package checks and consumer tests (tests/consumers/run.mjs), then the same
// tests/**/*.test.ts files under Node, Deno and Bun. Ends with one line: "N passed, N failed".
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const only = process.argv.slice(2); // optional: runtimes to run (node, deno, bun) or file filters

function findTests(dir) {
  const out = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...findTests(rel));
    else if (entry.name.endsWith(".test.ts")) out.push(rel);
  }
  return out.sort();
}

function run(label, cmd, args, env = {}) {
  return new Promise((resolve) => {
    process.stdout.write(`\n── ${label}: ${[cmd.replace(root, ""), ...args].join(" ")}\n`);
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    child.stdout.on("data", (d) => {
      text += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      text += d;
      process.stderr.write(d);
    });
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), text }));
  });
}

const asked = only.filter((a) => ["node", "deno", "bun"].includes(a));
const runtimes = ["node", "deno", "bun"].filter((r) => asked.length === 0 || asked.includes(r));
const filters = only.filter((a) => !["node", "deno", "bun"].includes(a));
const files = findTests("tests").filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
let passed = 0;
let failed = 0;
const problems = [];

// Static checks first: they are fast and catch most mistakes.
const checks = [
  ["typecheck (tsc)", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]],
  ["typecheck (deno check)", bin("deno"), ["check", "--quiet", "mod.ts", ...entryFiles(), "cli/mod.ts"]],
  ["lint (biome)", bin("biome"), ["check", "--error-on-warnings", "."]],
  [
    "dashboard assets built from their sources",
    process.execPath,
    ["scripts/dashboard-assets.mjs", "--check"],
  ],
  [
    "publish check (deno publish --dry-run)",
    bin("deno"),
    ["publish", "--dry-run", "--allow-dirty", "--quiet"],
  ],
];
function entryFiles() {
  const jsr = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports;
  return Object.values(jsr).filter((f) => f !== "./mod.ts");
}
if (filters.length === 0) {
  for (const [label, cmd, args] of checks) {
    const { code } = await run(label, cmd, args);
    if (code === 0) passed++;
    else {
      failed++;
      problems.push(label);
    }
  }
  // The package as users get it: packed, checked, installed elsewhere, used on every runtime.
  const consumers = await run("package and consumers (tests/consumers/run.mjs)", process.execPath, [
    join(root, "tests", "consumers", "run.mjs"),
  ]);
  const m = /(\d+) passed, (\d+) failed\s*$/.exec(consumers.text);
  const p = Number(m?.[1] ?? 0);
  const f = m === null ? 1 : Number(m[2]);
  passed += p;
  failed += f || (consumers.code === 0 ? 0 : 1);
  if (f > 0 || consumers.code !== 0) problems.push("package and consumers");
}

function count(re, text) {
  let total = 0;
  for (const m of text.matchAll(re)) total += Number(m[1]);
  return total;
}

for (const runtime of runtimes) {
  let result;
  let p = 0;
  let f = 0;
  if (runtime === "node") {
    result = await run("node", bin("tsx"), ["--test", "--test-reporter=spec", ...files]);
    p = count(/^ℹ pass (\d+)$/gm, result.text);
    f = count(/^ℹ fail (\d+)$/gm, result.text) + count(/^ℹ cancelled (\d+)$/gm, result.text);
  } else if (runtime === "deno") {
    result = await run("deno", bin("deno"), ["test", "-A", "--no-check", ...files]);
    for (const m of result.text.matchAll(
      /(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?/g,
    )) {
      p += Number(m[2] ?? m[1]);
      f += Number(m[4] ?? m[3]);
    }
  } else {
    // Bun gives tests and hooks 5 s by default, Node and Deno no limit: a hook that starts a
    // Redis Cluster can take longer on a loaded machine.
    result = await run("bun", bin("bun"), ["test", "--timeout", "60000", ...files.map((x) => `./${x}`)]);
    p = count(/^\s*(\d+) pass$/gm, result.text);
    f = count(/^\s*(\d+) fail$/gm, result.text);
  }
  if (result.code !== 0 && f === 0) f = 1; // a crash or a failed file still fails the run
  if (p === 0 && files.length > 0) f = Math.max(f, 1);
  passed += p;
  failed += f;
  if (f > 0) problems.push(runtime);
  console.log(`── ${runtime}: ${p} passed, ${f} failed`);
}

if (problems.length > 0) console.log(`\nfailed: ${problems.join(", ")}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
