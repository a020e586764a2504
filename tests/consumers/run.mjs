#!/usr/bin/env node
// The consumer checks of `npm test`: the package packed once, checked (publint, attw, its file
// list), installed into throwaway folders outside the repository the way users install it, and
// used there: Node 20, 22 and 24; tsc with nodenext and bundler resolution; Bun; Deno from the
// installed package and from the source through an import map (as JSR users get it); the
// `celeriac` bin on Node (a .ts app through tsx once installed), Bun and Deno; an edge bundle
// run in workerd. Prints one line per check and ends with "N passed, N failed".
import { execFile } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
const here = new URL(".", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
// The edge bundle's budget. The dependencies alone come to about 210 kB minified (the Upstash
// REST client 80, the QStash client with the Receiver's jose and neverthrow 59, croner 33, hono 21,
// valibot 9, @noble/hashes 7), celeriac's own code about 229 (113 on 2026-12-01; since then the
// registry and heartbeats, inspect/control, metrics, stored schedules, limits, expiry and routes,
// breakers, locks, debounce and throttle, and the run history on Redis (its Lua 8, its reader 4)
// and memory (3), all reachable from the app an edge handler serves; the dashboard is its own
// entry and not in it): 439 kB on 2026-12-02. The budget leaves 5% for growth, so an accidental
// import (a node: polyfill, a second copy, the dashboard) fails.
const EDGE_BUDGET_BYTES = 461_000;
let passed = 0;
let failed = 0;

async function check(label, fn) {
  const started = performance.now();
  try {
    const detail = await fn();
    passed++;
    console.log(`✔ ${label}${detail ? ` — ${detail}` : ""} (${Math.round(performance.now() - started)} ms)`);
  } catch (error) {
    failed++;
    console.log(`✖ ${label}\n${String(error?.stack ?? error).replace(/^/gm, "    ")}`);
  }
}

async function sh(file, args, options = {}) {
  try {
    return await run(file, args, { maxBuffer: 64 * 1024 * 1024, timeout: 180_000, ...options });
  } catch (error) {
    throw new Error(
      `${file} ${args.join(" ")} failed:\n${error.stdout ?? ""}${error.stderr ?? ""}${error.message}`,
    );
  }
}

const work = mkdtempSync(join(tmpdir(), "celeriac-consumers-"));
try {
  // ---- the package ----
  let tarball = "";
  await check("npm pack (runs the build)", async () => {
    await sh("npm", ["pack", "--pack-destination", work, "--silent"], { cwd: root });
    const name = readdirSync(work).find((f) => f.endsWith(".tgz"));
    if (name === undefined) throw new Error("no tarball");
    tarball = join(work, name);
    return name;
  });
  await check("the tarball holds dist, README, LICENSE and package.json only", async () => {
    const { stdout } = await sh("tar", ["tzf", tarball]);
    const files = stdout.trim().split("\n");
    const stray = files.filter(
      (f) => !/^package\/(dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)|README\.md|LICENSE|package\.json)$/.test(f),
    );
    if (stray.length > 0) throw new Error(`unexpected files: ${stray.join(", ")}`);
    const { exports, bin } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    for (const [name, target] of Object.entries(exports)) {
      for (const file of [target.types, target.import]) {
        if (!files.includes(`package/${file.slice(2)}`))
          throw new Error(`export ${name}: ${file} is not in the tarball`);
      }
    }
    for (const [name, file] of Object.entries(bin)) {
      if (!files.includes(`package/${file.slice(2)}`))
        throw new Error(`bin ${name}: ${file} is not in the tarball`);
    }
    return `${files.length} files`;
  });
  await check("publint (strict)", () => sh(bin("publint"), ["run", tarball, "--strict"]).then(() => ""));
  await check("are the types wrong (ESM only, by choice)", () =>
    sh(bin("attw"), [tarball, "--profile", "esm-only"]).then(() => ""),
  );

  // ---- one installed consumer, shared by the runtime checks ----
  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({
      name: "consumer",
      private: true,
      type: "module",
      dependencies: { celeriac: `file:${tarball}` },
    }),
  );
  for (const file of [
    "app.mjs",
    "app.ts",
    "worker.mjs",
    "cli-app.mjs",
    "cli-app.ts",
    "threads.mjs",
    "hash.task.mjs",
    "dashboard.mjs",
  ])
    copyFileSync(join(here, file), join(app, file));
  // The tarball from disk, its dependencies from the npm cache (the registry only for what the
  // cache lacks: `npm install` of the repository leaves tarballs there, not every package's metadata).
  await check("npm install ./celeriac-*.tgz (the tarball, dependencies from the npm cache)", () =>
    sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--silent"], { cwd: app }).then(
      () => "",
    ),
  );
  const expectJs = (stdout) => {
    const out = JSON.parse(stdout.trim().split("\n").pop());
    if (out.result !== 5 || out.rejected !== true || out.state !== "succeeded") throw new Error(stdout);
    return stdout.trim();
  };
  await check(`node ${process.version} app.mjs`, async () =>
    expectJs((await sh(process.execPath, ["app.mjs"], { cwd: app })).stdout),
  );
  for (const major of [22, 24]) {
    await check(`node ${major} app.mjs (npx node@${major})`, async () => {
      const { stdout } = await sh("npx", ["-y", `node@${major}`, "app.mjs"], { cwd: app });
      return expectJs(stdout);
    });
  }
  // The dashboard, its assets built into the package (no build step at the consumer).
  await check(`node ${process.version} dashboard.mjs (a run's page and its assets)`, async () => {
    const { stdout } = await sh(process.execPath, ["dashboard.mjs"], { cwd: app });
    const out = JSON.parse(stdout.trim().split("\n").pop());
    if (out.status !== 200 || !out.succeeded || out.assets !== 2 || !out.built || !out.csp)
      throw new Error(stdout);
    return stdout.trim();
  });
  // A task in the pool's thread, killed at its timeout and retried: Node (worker_threads), Bun
  // and Deno (Web Workers), from the installed package.
  const expectThreads = (stdout) => {
    const out = JSON.parse(stdout.trim().split("\n").pop());
    if (out.digest !== 64 || out.thread !== true || out.retried !== 2 || out.timeouts !== 1)
      throw new Error(stdout);
    return stdout.trim();
  };
  await check(
    `node ${process.version} threads.mjs (a task in a pool thread, killed at its timeout)`,
    async () => expectThreads((await sh(process.execPath, ["threads.mjs"], { cwd: app })).stdout),
  );
  await check("bun threads.mjs", async () =>
    expectThreads((await sh(bin("bun"), ["threads.mjs"], { cwd: app })).stdout),
  );
  await check("deno run threads.mjs (the installed package)", async () =>
    expectThreads(
      (await sh(bin("deno"), ["run", "-A", "--node-modules-dir=manual", "threads.mjs"], { cwd: app })).stdout,
    ),
  );
  const expectTs = (stdout) => {
    const out = JSON.parse(stdout.trim().split("\n").pop());
    if (out.greeting !== "hello Ada" || out.length !== 3) throw new Error(stdout);
    return stdout.trim();
  };
  for (const resolution of ["nodenext", "bundler"]) {
    await check(`tsc --moduleResolution ${resolution} (strict; types flow through the .d.ts)`, async () => {
      const dir = join(work, `tsc-${resolution}`);
      mkdirSync(dir);
      const module = resolution === "nodenext" ? "nodenext" : "esnext";
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "es2022",
            module,
            moduleResolution: resolution,
            strict: true,
            noEmit: true,
            skipLibCheck: false,
            types: [],
            lib: ["es2022", "dom"],
          },
          files: [join(app, "app.ts")],
        }),
      );
      await sh(bin("tsc"), ["-p", join(dir, "tsconfig.json")], { cwd: app });
      return "";
    });
  }
  await check("bun app.ts", async () => expectTs((await sh(bin("bun"), ["app.ts"], { cwd: app })).stdout));
  await check("deno run app.ts (the installed package, node_modules layout)", async () => {
    const { stdout } = await sh(bin("deno"), ["run", "-A", "--node-modules-dir=manual", "app.ts"], {
      cwd: app,
    });
    return expectTs(stdout);
  });
  await check("deno run app.ts (the source through an import map, as from JSR)", async () => {
    const dir = join(work, "jsr");
    mkdirSync(dir);
    copyFileSync(join(here, "app.ts"), join(dir, "app.ts"));
    const manifest = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
    const imports = {};
    for (const [name, file] of Object.entries(manifest.exports)) {
      imports[`celeriac${name.slice(1)}`] = new URL(file, `file://${root}`).href;
    }
    for (const [name, spec] of Object.entries(manifest.imports))
      if (spec.startsWith("npm:")) imports[name] = spec;
    writeFileSync(join(dir, "deno.json"), JSON.stringify({ imports, nodeModulesDir: "manual" }));
    // The npm dependencies come from the installed consumer's node_modules.
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    await sh("ln", ["-s", join(app, "node_modules"), join(dir, "node_modules")]);
    return expectTs((await sh(bin("deno"), ["run", "-A", "app.ts"], { cwd: dir })).stdout);
  });
  // ---- the `celeriac` bin, as npm links it ----
  const celeriac = join(app, "node_modules", ".bin", "celeriac");
  const binScript = join(app, "node_modules", "celeriac", "dist", "cli", "mod.js");
  const enqueueArgs = (module) => [
    "enqueue",
    "math.add",
    '{"a":2,"b":3}',
    "--wait",
    "--json",
    "--app",
    module,
  ];
  const expectSum = (stdout) => {
    const out = JSON.parse(stdout);
    if (out.result !== 5 || out.state !== "succeeded" || typeof out.id !== "string") throw new Error(stdout);
    return stdout.replace(/\s+/g, " ").trim();
  };
  await check("celeriac --help (node_modules/.bin/celeriac)", async () => {
    const { stdout } = await sh(celeriac, ["--help"], { cwd: app });
    if (!/Usage: celeriac/.test(stdout) || !/Exit codes:/.test(stdout)) throw new Error(stdout);
    return "";
  });
  await check(`celeriac enqueue --wait with an .mjs app (node ${process.version})`, async () =>
    expectSum((await sh(celeriac, enqueueArgs("cli-app.mjs"), { cwd: app })).stdout),
  );
  await check("celeriac with a .ts app on Node 20 without tsx: exit 3, saying to install tsx", async () => {
    try {
      await run(process.execPath, [binScript, ...enqueueArgs("cli-app.ts")], { cwd: app });
    } catch (error) {
      if (error.code === 3 && /npm i -D tsx/.test(error.stderr)) return "";
      throw new Error(`exit ${error.code}: ${error.stderr}`);
    }
    if (Number(process.versions.node.split(".")[0]) >= 22) return "skipped: this Node strips types";
    throw new Error("it loaded a .ts module without a loader");
  });
  await check("celeriac enqueue --wait with a .ts app under bun", async () =>
    expectSum((await sh(bin("bun"), [binScript, ...enqueueArgs("cli-app.ts")], { cwd: app })).stdout),
  );
  await check("celeriac enqueue --wait with a .ts app under deno", async () =>
    expectSum(
      (
        await sh(
          bin("deno"),
          ["run", "-A", "--node-modules-dir=manual", binScript, ...enqueueArgs("cli-app.ts")],
          {
            cwd: app,
          },
        )
      ).stdout,
    ),
  );
  await check(
    "celeriac with a .ts app on Node once tsx is installed (its loader, registered by the bin)",
    async () => {
      const tsx = JSON.parse(readFileSync(join(root, "node_modules", "tsx", "package.json"), "utf8")).version;
      await sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--silent", `tsx@${tsx}`], {
        cwd: app,
      });
      return expectSum((await sh(celeriac, enqueueArgs("cli-app.ts"), { cwd: app })).stdout);
    },
  );
  await check(
    `edge bundle (esbuild, browser, workerd conditions) under ${EDGE_BUDGET_BYTES / 1000} kB, run in workerd`,
    async () => {
      const esbuild = await import(join(root, "node_modules", "esbuild", "lib", "main.js"));
      const result = await esbuild.build({
        entryPoints: [join(app, "worker.mjs")],
        absWorkingDir: app,
        bundle: true,
        minify: true,
        format: "esm",
        platform: "browser",
        conditions: ["workerd", "worker", "browser"],
        write: false,
        metafile: true,
        logLevel: "silent",
      });
      const byPackage = {};
      for (const output of Object.values(result.metafile.outputs)) {
        for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
          const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? "app";
          byPackage[pkg] = (byPackage[pkg] ?? 0) + bytesInOutput;
        }
      }
      const breakdown = Object.entries(byPackage)
        .sort((a, b) => b[1] - a[1])
        .map(([pkg, bytes]) => `${pkg} ${(bytes / 1000).toFixed(1)}`)
        .join(", ");
      const code = result.outputFiles[0].text;
      const nodeImports = code.match(/["']node:[a-z_/]+["']/g);
      if (nodeImports !== null)
        throw new Error(`the edge bundle imports ${[...new Set(nodeImports)].join(", ")}`);
      const size = new TextEncoder().encode(code).byteLength;
      if (size > EDGE_BUDGET_BYTES)
        throw new Error(`the edge bundle is ${size} bytes, over ${EDGE_BUDGET_BYTES} (kB: ${breakdown})`);
      const { Miniflare } = await import(join(root, "node_modules", "miniflare", "dist", "src", "index.js"));
      const mf = new Miniflare({
        // Explicit modules: the QStash client's dev-server path has (unreached) dynamic imports.
        modules: [{ type: "ESModule", path: "worker.mjs", contents: code }],
        compatibilityDate: "2024-09-23",
        bindings: { TOKEN: "edge-token" },
      });
      try {
        const unsigned = await mf.dispatchFetch("https://tasks.example.com/qstash", {
          method: "POST",
          body: "{}",
        });
        if (unsigned.status !== 401) throw new Error(`unsigned push answered ${unsigned.status}`);
        await unsigned.text();
        const missing = await mf.dispatchFetch("https://tasks.example.com/runs/nope", {
          headers: { authorization: "Bearer edge-token" },
        });
        const body = await missing.text();
        if (missing.status !== 503 && missing.status !== 404)
          throw new Error(`GET /runs/:id answered ${missing.status}: ${body}`);
      } finally {
        await mf.dispose();
      }
      return `${(size / 1000).toFixed(1)} kB minified, no node: import (kB: ${breakdown})`;
    },
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
