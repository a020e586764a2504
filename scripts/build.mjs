#!/usr/bin/env node
// The npm build: `tsc -p tsconfig.build.json` into a fresh dist/ — ESM .js (relative imports
// rewritten from .ts to .js), .d.ts and source maps, one file per source file.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
rmSync(join(root, "dist"), { recursive: true, force: true });
const tsc = join(root, "node_modules", ".bin", "tsc");
const result = spawnSync(tsc, ["-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
process.exit(result.status ?? 1);
