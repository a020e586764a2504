/**
 * Internal: what the CLI prints — colors (only on a terminal, never with `NO_COLOR`), tables for
 * people, JSON for scripts, ages and durations, and a progress bar that draws only on a terminal.
 *
 * @module
 */
import process from "node:process";

/** A stream the CLI writes to: stdout or stderr. */
export interface OutStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Whether to color what goes to `stream`: never when `NO_COLOR` is set (https://no-color.org)
 * or `FORCE_COLOR` is `0`/`false`; always when `FORCE_COLOR` is otherwise set; else only on a
 * terminal other than `TERM=dumb`.
 */
export function colorsOn(stream: OutStream, env: Record<string, string | undefined> = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  const force = env.FORCE_COLOR;
  if (force === "0" || force === "false") return false;
  if (force !== undefined && force !== "") return true;
  return stream.isTTY === true && env.TERM !== "dumb";
}

/** ANSI styles that are the identity when colors are off. */
export interface Paint {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const SGR: Record<keyof Paint, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
};

/** The styles for one stream (see {@link colorsOn}). */
export function paint(stream: OutStream): Paint {
  const on = colorsOn(stream);
  const style = (name: keyof Paint) => {
    const [open, close] = SGR[name];
    return on ? (text: string) => `\x1b[${open}m${text}\x1b[${close}m` : (text: string) => text;
  };
  return {
    bold: style("bold"),
    dim: style("dim"),
    red: style("red"),
    green: style("green"),
    yellow: style("yellow"),
    cyan: style("cyan"),
  };
}

/** One column of a table: its header and how to show a row's cell. */
export interface Column<T> {
  header: string;
  cell(row: T): string;
  /** Right-aligned (numbers). */
  right?: boolean;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point
const ANSI = /\x1b\[[0-9;]*m/g;
const width = (text: string) => text.replace(ANSI, "").length;

/**
 * A plain-text table: a header row, then one row per item, columns padded to fit. With no rows,
 * the header and `(none)` under it.
 */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[], p: Paint): string {
  const cells = rows.map((row) => columns.map((c) => c.cell(row)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => width(r[i]!))));
  const pad = (text: string, i: number) => {
    const gap = " ".repeat(widths[i]! - width(text));
    return columns[i]!.right ? gap + text : text + gap;
  };
  const line = (row: string[]) => row.map(pad).join("  ").replace(/\s+$/, "");
  const out = [p.bold(line(columns.map((c) => c.header)))];
  for (const row of cells) out.push(line(row));
  if (rows.length === 0) out.push(p.dim("(none)"));
  return `${out.join("\n")}\n`;
}

/** JSON for scripts: one document, pretty-printed, with a trailing newline. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** A duration for people: `850ms`, `12.3s`, `4m 05s`, `2h 10m`, `3d 4h`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(ms)}ms`;
  if (abs < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const s = Math.floor(abs / 1_000);
  const two = (n: number) => String(n).padStart(2, "0");
  if (abs < 3_600_000) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  if (abs < 86_400_000) return `${Math.floor(s / 3_600)}h ${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor(s / 3_600) % 24}h`;
}

/** An interval exactly, in the units `every` takes: `30s`, `5m`, `1h30m`, `1d`, `1500ms`. */
export function formatInterval(ms: number): string {
  const units: [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
    ["ms", 1],
  ];
  let rest = ms;
  let out = "";
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out === "" ? "0ms" : out;
}

/** How long ago (or, for a time ahead, how soon) `at` is: `3.2s ago`, `in 4m 00s`. */
export function formatWhen(at: number | Date | null | undefined, now: number = Date.now()): string {
  if (at === null || at === undefined) return "-";
  const t = at instanceof Date ? at.getTime() : at;
  return t <= now ? `${formatMs(now - t)} ago` : `in ${formatMs(t - now)}`;
}

/** A cell that may be long: cut to `max` characters with an ellipsis. */
export function clip(text: string, max: number): string {
  const one = text.replace(/\s+/g, " ");
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}

/** A progress display for a bulk operation. */
export interface Progress {
  update(done: number, total: number | null): void;
  /** Draws the last state and ends the line (the bar stays on screen). */
  end(): void;
}

/**
 * A progress bar on `stream` when it is a terminal (`label [█████─────] 12/40`, redrawn in place),
 * nothing otherwise: scripts get the result line only.
 */
export function progressBar(stream: OutStream, label: string, p: Paint): Progress {
  if (stream.isTTY !== true) return { update() {}, end() {} };
  let last = "";
  let drawn = false;
  let state: [number, number | null] = [0, null];
  const draw = () => {
    const [done, total] = state;
    const size = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - 30));
    let text: string;
    if (total === null || total <= 0) {
      text = `${label} ${done}`;
    } else {
      const full = Math.min(size, Math.round((done / total) * size));
      const percent = Math.floor((done / total) * 100);
      text = `${label} ${p.green("█".repeat(full))}${p.dim("─".repeat(size - full))} ${done}/${total} ${percent}%`;
    }
    if (text === last) return;
    last = text;
    drawn = true;
    stream.write(`\r\x1b[2K${text}`);
  };
  return {
    update(done, total) {
      state = [done, total];
      draw();
    },
    end() {
      draw();
      if (drawn) stream.write("\n");
    },
  };
}
