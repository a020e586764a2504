/**
 * The wire format: a versioned JSON envelope, validated with valibot whenever it is decoded.
 *
 * @module
 */
import { limitsOf } from "./flow/limits.ts";
import * as v from "valibot";
import type { AttemptError, Message } from "./contracts.ts";
import { EnvelopeError } from "./errors.ts";

/** The envelope version this build writes and reads. */
export const ENVELOPE_VERSION = 1 as const;

const AttemptErrorSchema: v.GenericSchema<unknown, AttemptError> = v.object({
  attempt: v.number(),
  at: v.number(),
  name: v.string(),
  message: v.string(),
});

const EnvelopeSchema: v.GenericSchema<unknown, Envelope> = v.object({
  v: v.literal(ENVELOPE_VERSION),
  id: v.pipe(v.string(), v.minLength(1)),
  task: v.pipe(v.string(), v.minLength(1)),
  queue: v.pipe(v.string(), v.minLength(1)),
  priority: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(9)),
  attempt: v.pipe(v.number(), v.integer(), v.minValue(1)),
  enqueuedAt: v.number(),
  input: v.unknown(),
  notBefore: v.exactOptional(v.number()),
  expiresAt: v.exactOptional(v.number()),
  idempotencyKey: v.exactOptional(v.string()),
  errors: v.exactOptional(v.array(AttemptErrorSchema)),
  meta: v.exactOptional(v.record(v.string(), v.unknown())),
});

/** One task run as it travels between producer and executor (wire format version 1). */
export interface Envelope {
  v: typeof ENVELOPE_VERSION;
  /** The run id, stable across attempts. */
  id: string;
  task: string;
  queue: string;
  /** 0–9, higher first. */
  priority: number;
  /** 1-based. */
  attempt: number;
  enqueuedAt: number;
  /** The task input as JSON. */
  input: unknown;
  notBefore?: number;
  /**
   * When the run expires (epoch ms): an attempt, retries included, not started by then is not
   * run. Optional, so envelopes written before it decode as they were (version 1 still).
   */
  expiresAt?: number;
  idempotencyKey?: string;
  /** Failed attempts so far. */
  errors?: AttemptError[];
  /** Room for later features (workflows) without a version bump. */
  meta?: Record<string, unknown>;
}

/** Encodes an envelope (whose input is already known to be JSON-safe). */
export function encodeEnvelope(envelope: Envelope): string {
  return JSON.stringify(envelope);
}

/** Decodes and validates an envelope, throwing {@link EnvelopeError} with the reason. */
export function decodeEnvelope(body: string): Envelope {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (cause) {
    throw new EnvelopeError(`envelope is not JSON: ${(cause as Error).message}`, { cause });
  }
  return envelopeFrom(raw);
}

/**
 * Validates an envelope already parsed from JSON (a transport that had to read the body to
 * route it hands it over, so it is parsed once), throwing {@link EnvelopeError} with the reason.
 *
 * @example
 * ```ts
 * const envelope = envelopeFrom(JSON.parse(body));
 * ```
 */
export function envelopeFrom(raw: unknown): Envelope {
  const result = v.safeParse(EnvelopeSchema, raw);
  if (!result.success) {
    const issue = result.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".");
    if ((raw as { v?: unknown } | null)?.v !== ENVELOPE_VERSION && typeof raw === "object" && raw !== null) {
      throw new EnvelopeError(
        `envelope version ${String((raw as { v?: unknown }).v)} is not supported (expected ${ENVELOPE_VERSION})`,
      );
    }
    throw new EnvelopeError(`envelope is malformed${path ? ` at ${path}` : ""}: ${issue.message}`);
  }
  return result.output;
}

/**
 * The identity of one send of an envelope (`Message.key`): `runId:attempt`, so sending the same
 * attempt twice by accident is recognised by a broker that deduplicates; replays and deferrals,
 * counted in `meta`, make a deliberate re-send of the same attempt a new send.
 *
 * @example
 * ```ts
 * sendKey({ id: "r1", attempt: 2, meta: { replays: 1 } }); // "r1:2:r1"
 * ```
 */
export function sendKey(envelope: Pick<Envelope, "id" | "attempt" | "meta">): string {
  let key = `${envelope.id}:${envelope.attempt}`;
  const replays = envelope.meta?.replays;
  const deferrals = envelope.meta?.deferrals;
  if (typeof replays === "number" && replays > 0) key += `:r${replays}`;
  if (typeof deferrals === "number" && deferrals > 0) key += `:d${deferrals}`;
  return key;
}

/** The broker message that carries an envelope. */
export function toMessage(envelope: Envelope): Message {
  const message: Message = {
    id: envelope.id,
    queue: envelope.queue,
    priority: envelope.priority,
    body: encodeEnvelope(envelope),
    attempt: envelope.attempt,
    key: sendKey(envelope),
  };
  if (envelope.notBefore !== undefined) message.notBefore = envelope.notBefore;
  const limits = limitsOf(envelope.meta);
  if (limits !== undefined) message.limits = limits;
  return message;
}
