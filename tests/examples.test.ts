import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The command that runs a TypeScript file on the runtime running this test. */
function runtimeCommand(file: string): [string, string[]] {
  const g = globalThis as { Deno?: { execPath(): string }; Bun?: unknown };
  if (g.Deno) return [g.Deno.execPath(), ["run", "-A", file]];
  if (g.Bun) return [process.execPath, [file]];
  return [process.execPath, ["--import", "tsx", file]];
}

function run(file: string, args: string[] = []): Promise<{ code: number; out: string }> {
  const [cmd, base] = runtimeCommand(file);
  return new Promise((resolve) => {
    execFile(cmd, [...base, ...args], { cwd: root, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

describe("examples", () => {
  it("quickstart runs every demo task to success and prints the table", async () => {
    const { code, out } = await run("examples/quickstart.ts");
    assert.equal(code, 0, out);
    assert.match(out, /billing\.charge succeeded on attempt 3/);
    assert.match(out, /welcome emails sent: 1 /);
    assert.match(out, /rejected at enqueue: .*Invalid email/);
    assert.equal(out.match(/\| succeeded \|/g)?.length, 5, out);
  });

  it("worker.ts processes its batch and stops gracefully", async () => {
    const { code, out } = await run("examples/worker.ts", ["--once"]);
    assert.equal(code, 0, out);
    assert.match(out, /stopped: 50 succeeded, 0 failed/);
  });
});
