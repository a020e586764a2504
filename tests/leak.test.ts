import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./support/leak-worker.ts", import.meta.url));

/** The current runtime, running a TypeScript file with its garbage collector exposed. */
function command(args: string[]): [string, string[]] {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Bun !== undefined) return [process.execPath, [SCRIPT, ...args]];
  if (g.Deno !== undefined)
    return [process.execPath, ["run", "-A", "--v8-flags=--expose-gc", SCRIPT, ...args]];
  return [process.execPath, ["--expose-gc", "--import", "tsx", SCRIPT, ...args]];
}

it("a long-lived worker retains no heap per async task (200,000 tasks, after GC)", {
  timeout: 120_000,
}, async () => {
  const [file, argv] = command(["50000", "6"]);
  const out = await new Promise<string>((resolve, reject) => {
    execFile(file, argv, { timeout: 110_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${error.message}\n${stdout}${stderr}`)) : resolve(stdout),
    );
  });
  const { bytesPerTask, tasks } = JSON.parse(out.trim().split("\n").pop()!) as {
    bytesPerTask: number;
    tasks: number;
  };
  assert.equal(tasks, 200_000);
  assert.ok(bytesPerTask < 4, `retained ${bytesPerTask.toFixed(2)} bytes of heap per task`);
});
