/**
 * Verification of QStash push deliveries with the real `@upstash/qstash` `Receiver`.
 *
 * @module
 */
import { Receiver } from "@upstash/qstash";
import { SignatureError } from "../../backend.ts";
import { FastJwtCheck } from "./_jwt.ts";

const encoder = new TextEncoder();
// A byte-order mark stays in the text: the Receiver then hashes exactly the bytes received.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The two signing keys QStash signs with (rotated in turn), from the Upstash console. */
export interface SigningKeys {
  /** The key QStash signs with now (`QSTASH_CURRENT_SIGNING_KEY`). */
  currentSigningKey: string;
  /** The key QStash signs with after the next rotation (`QSTASH_NEXT_SIGNING_KEY`). */
  nextSigningKey: string;
}

/** Options of {@link qstashVerifier}. */
export interface VerifierOptions extends SigningKeys {
  /** Seconds of clock skew tolerated on `exp`/`nbf`. @default 0 */
  clockToleranceSec?: number;
}

/** What a delivery carries that the signature covers. */
export interface SignedDelivery {
  /** The `Upstash-Signature` header, or null when it is missing. */
  signature: string | null | undefined;
  /**
   * The raw body exactly as received (read once, before any parsing): its bytes, or its text
   * when the caller holds only that (then its UTF-8 encoding is what is checked).
   */
  body: Uint8Array | string;
  /** The public URL the message was published to: the token's `sub` claim must equal it. */
  url: string;
}

/** Checks one delivery; rejects with {@link SignatureError} when it is not from QStash. */
export type Verifier = (delivery: SignedDelivery) => Promise<void>;

/**
 * Builds a verifier for QStash deliveries: the `Upstash-Signature` JWT must be signed with the
 * current or the next signing key, unexpired, issued by Upstash, for exactly `url`, over exactly
 * `body`. Anything else rejects with celeriac's {@link SignatureError} (the cause holds the
 * Receiver's error).
 *
 * Keys are prepared once, and a plain HS256 token is checked with them directly
 * (the same checks the `Receiver` makes); any token that check does not accept is handed to the
 * real `Receiver`, which has the last word and words the rejection.
 *
 * @example
 * ```ts
 * import { qstashVerifier } from "celeriac/adapters/qstash";
 * const verify = qstashVerifier({ currentSigningKey: "sig_…", nextSigningKey: "sig_…" });
 * const body = await request.text();
 * await verify({ signature: request.headers.get("upstash-signature"), body, url: "https://my.app/qstash" });
 * ```
 */
export function qstashVerifier(options: VerifierOptions): Verifier {
  for (const name of ["currentSigningKey", "nextSigningKey"] as const) {
    const value = options[name];
    if (typeof value !== "string" || value.length === 0) {
      throw new TypeError(`${name} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
  }
  const clockTolerance = options.clockToleranceSec ?? 0;
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
    throw new RangeError(`clockToleranceSec must be a non-negative number, got ${String(clockTolerance)}`);
  }
  // devMode: false — never swap in the QStash dev server's keys because of an environment variable.
  const receiver = new Receiver({
    currentSigningKey: options.currentSigningKey,
    nextSigningKey: options.nextSigningKey,
    devMode: false,
  });
  const fast = new FastJwtCheck([options.currentSigningKey, options.nextSigningKey], clockTolerance);
  return async ({ signature, body, url }) => {
    if (typeof signature !== "string" || signature.length === 0) {
      throw new SignatureError("missing Upstash-Signature header");
    }
    const bytes = typeof body === "string" ? encoder.encode(body) : body;
    let certain = false;
    try {
      certain = fast.valid(signature, bytes, url);
    } catch {
      // not sure: the Receiver decides
    }
    if (certain) return;
    // The Receiver hashes the UTF-8 encoding of a string: it can judge a body that is text.
    let text: string;
    if (typeof body === "string") text = body;
    else {
      try {
        text = strict.decode(body);
      } catch {
        throw new SignatureError(
          "invalid Upstash-Signature: the body is not UTF-8 and the token is not one the fast check accepts",
        );
      }
    }
    try {
      await receiver.verify({ signature, body: text, url, clockTolerance });
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new SignatureError(`invalid Upstash-Signature: ${reason}`, { cause });
    }
  };
}
