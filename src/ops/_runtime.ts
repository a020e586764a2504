/**
 * Internal: the one place the core asks which runtime it is on (for the worker registry only):
 * the runtime's name and version, and the process id where there is one. Feature checks on
 * globals, no runtime imports.
 *
 * @module
 */

interface Globals {
  navigator?: { userAgent?: unknown };
  process?: { pid?: unknown; versions?: Record<string, unknown> };
  Deno?: { pid?: unknown; version?: { deno?: unknown } };
  Bun?: { version?: unknown };
}

const g = globalThis as Globals;

/** Such as "Node.js/20.19.0", "Deno/2.1.4", "Bun/1.2.3", "Cloudflare-Workers". */
export function runtimeName(): string {
  if (typeof g.Bun?.version === "string") return `Bun/${g.Bun.version}`;
  if (typeof g.Deno?.version?.deno === "string") return `Deno/${g.Deno.version.deno}`;
  const node = g.process?.versions?.node;
  if (typeof node === "string") return `Node.js/${node}`;
  const agent = g.navigator?.userAgent;
  return typeof agent === "string" && agent !== "" ? agent : "unknown";
}

/** The process id, or null where there is none (edge isolates). */
export function processId(): number | null {
  const pid = g.Deno?.pid ?? g.process?.pid;
  return typeof pid === "number" && Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}
