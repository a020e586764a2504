/**
 * The fast path of QStash signature checks: the `Upstash-Signature` JWT checked with HMAC keys
 * prepared once, for the common case only (HS256, a JSON object payload). It answers "valid" or
 * "not sure"; it never rejects on its own. Anything it does not accept goes to the real
 * `Receiver`, which decides and words the error.
 *
 * What "valid" means is what `Receiver.verify` checks (through jose's `jwtVerify`), no less:
 * signature by the current or the next key, `iss` = "Upstash", numeric `iat` when present, `nbf`
 * not in the future and `exp` not past (whole seconds, with the clock tolerance), `sub` = the URL,
 * and `body` = base64url(SHA-256(body)).
 *
 * @module
 */

import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The binary string (one char per byte) of an unpadded base64url text, or undefined. */
function binaryOf(text: string): string | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  try {
    return atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    return undefined;
  }
}

/** Bytes of an unpadded base64url text, or undefined when it is not one. */
export function fromBase64url(text: string): Uint8Array | undefined {
  const binary = binaryOf(text);
  return binary === undefined ? undefined : latin1Bytes(binary);
}

/** The bytes of a binary string (one char per byte, as `atob` gives). */
function latin1Bytes(binary: string): Uint8Array {
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Unpadded base64url of bytes. */
export function toBase64url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i] as number);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const NON_ASCII = /[\u0080-\u00ff]/;

function jsonObject(segment: string): Record<string, unknown> | undefined {
  const binary = binaryOf(segment);
  if (binary === undefined) return undefined;
  try {
    // ASCII text (the usual claims) is its own UTF-8: parse it as it is; anything else decodes.
    const text = NON_ASCII.test(binary) ? decoder.decode(latin1Bytes(binary)) : binary;
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The claims check of jose's `jwtVerify` with `{ issuer: "Upstash", clockTolerance }`, then the URL. */
function claimsHold(payload: Record<string, unknown>, url: string, toleranceSec: number): boolean {
  if (payload.iss !== "Upstash" || payload.sub !== url || typeof payload.body !== "string") return false;
  const { iat, nbf, exp } = payload;
  const now = Math.floor(Date.now() / 1000);
  if (iat !== undefined && typeof iat !== "number") return false;
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > now + toleranceSec)) return false;
  if (exp !== undefined && (typeof exp !== "number" || exp <= now - toleranceSec)) return false;
  return true;
}

/** Equal bytes, compared without an early exit (the time taken says nothing about where they differ). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/**
 * Checks signed tokens against two HMAC-SHA256 keys prepared once. Hashing is synchronous
 * (`@noble/hashes`): a few microseconds per delivery on every runtime, where an awaited WebCrypto
 * call costs tens of microseconds on some (Node runs each one on its thread pool).
 */
export class FastJwtCheck {
  readonly #keys: ReturnType<typeof hmac.create>[];
  readonly #toleranceSec: number;
  /** Header segments already seen to be plain HS256 (QStash sends the same one every time). */
  readonly #plainHeaders = new Set<string>();

  constructor(secrets: readonly string[], toleranceSec: number) {
    this.#toleranceSec = toleranceSec;
    this.#keys = secrets.map((secret) => hmac.create(sha256, encoder.encode(secret)));
  }

  /** True when the token is certainly valid for `body` (raw bytes) and `url`; false means "ask the Receiver". */
  valid(token: string, body: Uint8Array, url: string): boolean {
    const first = token.indexOf(".");
    const second = token.indexOf(".", first + 1);
    if (first < 0 || second < 0 || token.indexOf(".", second + 1) >= 0) return false;
    const head = token.slice(0, first);
    if (!this.#plainHeaders.has(head)) {
      const header = jsonObject(head);
      // Only the plain case: HS256, no critical extensions, no unencoded payload.
      if (header === undefined || header.alg !== "HS256" || "crit" in header || "b64" in header) return false;
      if (this.#plainHeaders.size < 16) this.#plainHeaders.add(head);
    }
    const payload = jsonObject(token.slice(first + 1, second));
    if (payload === undefined || !claimsHold(payload, url, this.#toleranceSec)) return false;
    if ((payload.body as string).replace(/=+$/, "") !== toBase64url(sha256(body))) return false;
    const signature = fromBase64url(token.slice(second + 1));
    if (signature === undefined) return false;
    const signed = encoder.encode(token.slice(0, second));
    for (const key of this.#keys) {
      if (sameBytes(key.clone().update(signed).digest(), signature)) return true;
    }
    return false;
  }
}
