/**
 * Small encodings the emulator shares: base64 (QStash's `body` claim is base64url with padding),
 * random ids, byte concatenation and QStash's multi-valued header maps.
 *
 * @module
 */

/** UTF-8 encoder shared by the emulator's modules. */
export const encoder: TextEncoder = new TextEncoder();

/**
 * Base64 (or base64url with padding, as QStash's `body` claim).
 *
 * @example
 * ```ts
 * base64(new Uint8Array([251, 255]), true); // "-_8="
 * ```
 */
export function base64(bytes: Uint8Array, url = false): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  const text = btoa(binary);
  return url ? text.replaceAll("+", "-").replaceAll("/", "_") : text;
}

/**
 * A JWT segment: the value as JSON, base64url without padding.
 *
 * @example
 * ```ts
 * base64Json({ alg: "HS256" }); // "eyJhbGciOiJIUzI1NiJ9"
 * ```
 */
export function base64Json(value: unknown): string {
  return base64(encoder.encode(JSON.stringify(value)), true).replace(/=+$/, "");
}

/**
 * A random alphanumeric id of `length` characters.
 *
 * @example
 * ```ts
 * const messageId = `msg_${randomId(26)}`;
 * ```
 */
export function randomId(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(crypto.getRandomValues(new Uint8Array(length)), (b) => alphabet[b % 62]).join("");
}

/**
 * The chunks joined into one byte array.
 *
 * @example
 * ```ts
 * concat([encoder.encode("a"), encoder.encode("b")]); // bytes of "ab"
 * ```
 */
export function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Headers as QStash's API lists them: every name maps to an array of values.
 *
 * @example
 * ```ts
 * multi({ "content-type": "application/json" }); // { "content-type": ["application/json"] }
 * ```
 */
export function multi(headers: Readonly<Record<string, string>>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
}
