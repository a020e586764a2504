/**
 * Signs a request the way QStash signs a delivery, so a handler's signature check can be tested
 * without the emulator (or with deliberately invalid tokens).
 *
 * @module
 */
import { base64, base64Json, encoder, randomId } from "./_encoding.ts";

/** Arguments of {@linkcode signQStashDelivery}. */
export interface SignQStashDeliveryArgs {
  /** The key to sign with (QStash signs with its current key). */
  signingKey: string;
  /** Destination URL (`sub` claim). */
  url: string;
  /** Raw body as sent; its SHA-256 goes in the `body` claim. */
  body: string | Uint8Array;
  /** Wall-clock epoch milliseconds used for `iat`, `nbf` and `exp`. @default Date.now() */
  now?: number;
  /** `exp` claim, epoch seconds. @default now + 300 */
  exp?: number;
  /** `nbf` claim, epoch seconds. @default now */
  nbf?: number;
  /** `iss` claim. @default "Upstash" */
  iss?: string;
}

/**
 * Signs a delivery the way QStash does: an HS256 JWT with `iss` "Upstash", `sub` the destination
 * URL, `iat`/`nbf`/`exp` (5 minutes), a unique `jti` and `body` = base64url(SHA-256(body)).
 * Override `exp`, `nbf` or `iss` to build expired or otherwise invalid tokens.
 *
 * @example
 * ```ts
 * const url = "http://127.0.0.1:3000/task";
 * const signature = await signQStashDelivery({ signingKey: "sig_current", url, body: "{}" });
 * await new Receiver({ currentSigningKey: "sig_current", nextSigningKey: "sig_next" })
 *   .verify({ signature, body: "{}", url });
 * ```
 */
export async function signQStashDelivery(args: SignQStashDeliveryArgs): Promise<string> {
  const seconds = Math.floor((args.now ?? Date.now()) / 1000);
  const bytes = typeof args.body === "string" ? encoder.encode(args.body) : new Uint8Array(args.body);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const claims = {
    iss: args.iss ?? "Upstash",
    sub: args.url,
    exp: args.exp ?? seconds + 300,
    nbf: args.nbf ?? seconds,
    iat: seconds,
    jti: `jwt_${randomId(24)}`,
    body: base64(digest, true),
  };
  const input = `${base64Json({ alg: "HS256", typ: "JWT" })}.${base64Json(claims)}`;
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(args.signingKey),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(input)));
  return `${input}.${base64(mac, true).replace(/=+$/, "")}`;
}
