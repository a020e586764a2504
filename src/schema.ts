/**
 * Standard Schema v1 support: any validator implementing `~standard` (valibot, zod, arktype…)
 * can describe a task's input.
 *
 * @module
 */
import { type SchemaIssue, ValidationError } from "./errors.ts";

/** The part of the Standard Schema v1 interface celeriac uses. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/** A validator's answer. */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
      }>;
    };

/** The input type of a Standard Schema. */
export type InferInput<S> = S extends StandardSchemaV1<infer I, unknown> ? I : unknown;
/** The output type of a Standard Schema. */
export type InferOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : unknown;

/** True when `value` implements Standard Schema v1. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  const std = (value as { "~standard"?: { version?: unknown; validate?: unknown } } | null)?.["~standard"];
  return typeof std === "object" && std !== null && std.version === 1 && typeof std.validate === "function";
}

/**
 * Validates `value`, resolving to the schema's output or rejecting with a {@link ValidationError}
 * that lists the issues. `where` names the value in the message.
 */
export async function validate<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
  where: string,
): Promise<InferOutput<S>> {
  let result = schema["~standard"].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues === undefined) return result.value as InferOutput<S>;
  const issues: SchemaIssue[] = result.issues.map((issue) => {
    const path = issue.path?.map((p) => (typeof p === "object" && p !== null ? p.key : p));
    return path === undefined ? { message: issue.message } : { message: issue.message, path };
  });
  const first = issues[0];
  const at = first?.path?.length ? ` at ${first.path.map(String).join(".")}` : "";
  throw new ValidationError(
    `${where} is invalid${at}: ${first?.message ?? "rejected by schema"}${issues.length > 1 ? ` (+${issues.length - 1} more)` : ""}`,
    issues,
  );
}
