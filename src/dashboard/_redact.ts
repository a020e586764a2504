/**
 * Internal: the user's redaction applied to what a page shows. A redact function that throws
 * hides the value rather than showing it.
 *
 * @module
 */
import type { DeadLetter, ErrorInfo, HistoryRun } from "../contracts.ts";
import type { DashboardOptions, RedactedField } from "./_options.ts";

const HIDDEN = "[redaction failed]";

/** Applies `redact` to runs and dead letters. */
export class Redactor {
  readonly #redact: DashboardOptions["redact"];

  constructor(redact: DashboardOptions["redact"]) {
    this.#redact = redact;
  }

  value(value: unknown, field: RedactedField, task: string | null, id: string): unknown {
    if (this.#redact === undefined || value === undefined) return value;
    try {
      return this.#redact(value, { field, task, id });
    } catch {
      return HIDDEN;
    }
  }

  #error(e: ErrorInfo, task: string, id: string): ErrorInfo {
    const out = this.value(e, "error", task, id);
    return out !== null && typeof out === "object" && "message" in out
      ? (out as ErrorInfo)
      : { name: "Error", message: String(out) };
  }

  /** A copy of the run with its input, result, progress and errors redacted. */
  run(run: HistoryRun): HistoryRun {
    if (this.#redact === undefined) return run;
    const out: HistoryRun = { ...run };
    const { task, id } = run;
    if ("input" in run) out.input = this.value(run.input, "input", task, id);
    if (run.result !== undefined) out.result = this.value(run.result, "result", task, id);
    if (run.progress !== undefined) out.progress = this.value(run.progress, "progress", task, id);
    if (run.error !== undefined) out.error = this.#error(run.error, task, id);
    if (run.errors !== undefined) out.errors = run.errors.map((e) => ({ ...e, ...this.#error(e, task, id) }));
    return out;
  }

  /** A copy of the dead letter with its body (the envelope) and errors redacted. */
  deadLetter(d: DeadLetter): DeadLetter {
    if (this.#redact === undefined) return d;
    const task = d.task ?? null;
    const body = this.value(d.body, "deadLetter", task, d.id);
    const error = this.#error(d.error, d.task ?? "", d.id);
    return { ...d, body: typeof body === "string" ? body : JSON.stringify(body), error };
  }
}
