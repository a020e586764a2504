import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Receiver } from "@upstash/qstash";
import { FastJwtCheck, toBase64url } from "../adapters/qstash/_jwt.ts";
import { qstashVerifier } from "../adapters/qstash/mod.ts";
import { SignatureError } from "../mod.ts";

const CURRENT = "sig_diff_current";
const NEXT = "sig_diff_next";
const URL_ = "https://tasks.example.com/qstash";
const encoder = new TextEncoder();

const b64Json = (value: unknown) => toBase64url(encoder.encode(JSON.stringify(value)));

async function hmac(key: string, input: string, hash = "SHA-256"): Promise<string> {
  const imported = await crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash }, false, [
    "sign",
  ]);
  return toBase64url(new Uint8Array(await crypto.subtle.sign("HMAC", imported, encoder.encode(input))));
}

async function bodyHash(body: string): Promise<string> {
  return toBase64url(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(body))));
}

interface TokenSpec {
  key?: string;
  header?: Record<string, unknown>;
  /** Replaces or removes (undefined) claims of a valid token. */
  claims?: Record<string, unknown>;
  /** The raw payload segment, instead of encoded claims. */
  rawPayload?: string;
  hash?: string;
}

async function token(body: string, spec: TokenSpec = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: "Upstash",
    sub: URL_,
    exp: now + 300,
    nbf: now,
    iat: now,
    jti: `jwt_${now}`,
    body: await bodyHash(body),
    ...spec.claims,
  };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  const header = spec.header ?? { alg: "HS256", typ: "JWT" };
  const input = `${b64Json(header)}.${spec.rawPayload ?? b64Json(claims)}`;
  return `${input}.${await hmac(spec.key ?? CURRENT, input, spec.hash)}`;
}

interface Case {
  label: string;
  signature: string;
  body: string;
  url?: string;
  toleranceSec?: number;
  /** What the real Receiver must decide (checked, so the case means what its label says). */
  valid: boolean;
  /** The fast path accepts it on its own (false: it defers to the Receiver). */
  fast: boolean;
}

async function cases(): Promise<Case[]> {
  const now = Math.floor(Date.now() / 1000);
  const body = '{"id":"run_1","task":"send"}';
  const valid = await token(body);
  const [head, payload, sig] = valid.split(".") as [string, string, string];
  return [
    { label: "valid, current key", signature: valid, body, valid: true, fast: true },
    { label: "valid, next key", signature: await token(body, { key: NEXT }), body, valid: true, fast: true },
    {
      label: "valid, unicode body",
      signature: await token('{"name":"Zoë ✓"}'),
      body: '{"name":"Zoë ✓"}',
      valid: true,
      fast: true,
    },
    {
      label: "valid, non-ASCII URL in the claims",
      signature: await token(body, { claims: { sub: `${URL_}/zoë-✓` } }),
      body,
      url: `${URL_}/zoë-✓`,
      valid: true,
      fast: true,
    },
    {
      label: "valid, no exp/nbf/iat",
      signature: await token(body, { claims: { exp: undefined, nbf: undefined, iat: undefined } }),
      body,
      valid: true,
      fast: true,
    },
    {
      label: "valid, padded body claim",
      signature: await token(body, { claims: { body: `${await bodyHash(body)}=` } }),
      body,
      valid: true,
      fast: true,
    },
    {
      label: "valid, HS512 (left to the Receiver)",
      signature: await token(body, { header: { alg: "HS512", typ: "JWT" }, hash: "SHA-512" }),
      body,
      valid: true,
      fast: false,
    },
    {
      label: "expired inside the clock tolerance",
      signature: await token(body, { claims: { exp: now - 30 } }),
      body,
      toleranceSec: 60,
      valid: true,
      fast: true,
    },
    {
      label: "not yet valid inside the clock tolerance",
      signature: await token(body, { claims: { nbf: now + 30 } }),
      body,
      toleranceSec: 60,
      valid: true,
      fast: true,
    },
    {
      label: "forged key",
      signature: await token(body, { key: "sig_other" }),
      body,
      valid: false,
      fast: false,
    },
    { label: "tampered body", signature: valid, body: `${body} `, valid: false, fast: false },
    {
      label: "tampered payload",
      signature: `${head}.${b64Json({ iss: "Upstash" })}.${sig}`,
      body,
      valid: false,
      fast: false,
    },
    {
      label: "truncated signature",
      signature: `${head}.${payload}.${sig.slice(0, 20)}`,
      body,
      valid: false,
      fast: false,
    },
    {
      label: "expired",
      signature: await token(body, { claims: { exp: now - 10 } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "exp is now",
      signature: await token(body, { claims: { exp: now } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "not yet valid",
      signature: await token(body, { claims: { nbf: now + 60 } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "another URL",
      signature: valid,
      body,
      url: "https://evil.example/qstash",
      valid: false,
      fast: false,
    },
    {
      label: "no sub",
      signature: await token(body, { claims: { sub: undefined } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "wrong issuer",
      signature: await token(body, { claims: { iss: "Someone" } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "no issuer",
      signature: await token(body, { claims: { iss: undefined } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "no body claim",
      signature: await token(body, { claims: { body: undefined } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "iat not a number",
      signature: await token(body, { claims: { iat: "yesterday" } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "exp not a number",
      signature: await token(body, { claims: { exp: String(now + 300) } }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "alg none",
      signature: `${b64Json({ alg: "none" })}.${payload}.`,
      body,
      valid: false,
      fast: false,
    },
    {
      label: "unknown critical header",
      signature: await token(body, { header: { alg: "HS256", crit: ["x-celeriac"], "x-celeriac": 1 } }),
      body,
      valid: false,
      fast: false,
    },
    { label: "two segments", signature: `${head}.${payload}`, body, valid: false, fast: false },
    { label: "four segments", signature: `${valid}.${sig}`, body, valid: false, fast: false },
    {
      label: "payload not base64url",
      signature: await token(body, { rawPayload: "!!!" }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "payload not JSON",
      signature: await token(body, { rawPayload: toBase64url(encoder.encode("not json")) }),
      body,
      valid: false,
      fast: false,
    },
    {
      label: "payload a JSON array",
      signature: await token(body, { rawPayload: b64Json(["Upstash"]) }),
      body,
      valid: false,
      fast: false,
    },
    { label: "empty", signature: "..", body, valid: false, fast: false },
  ];
}

async function receiverAccepts(c: Case): Promise<boolean> {
  const receiver = new Receiver({ currentSigningKey: CURRENT, nextSigningKey: NEXT, devMode: false });
  try {
    await receiver.verify({
      signature: c.signature,
      body: c.body,
      url: c.url ?? URL_,
      clockTolerance: c.toleranceSec ?? 0,
    });
    return true;
  } catch {
    return false;
  }
}

describe("QStash signature checks: the fast path against the real Receiver", () => {
  it("the Receiver decides every case as its label says", async () => {
    for (const c of await cases()) assert.equal(await receiverAccepts(c), c.valid, c.label);
  });

  it("the fast path accepts only what the Receiver accepts, and the plain HS256 cases on its own", async () => {
    for (const c of await cases()) {
      const fast = new FastJwtCheck([CURRENT, NEXT], c.toleranceSec ?? 0);
      const accepted = await fast.valid(c.signature, new TextEncoder().encode(c.body), c.url ?? URL_);
      assert.equal(accepted, c.fast, c.label);
      if (accepted) assert.ok(await receiverAccepts(c), `${c.label}: accepted by the fast path only`);
    }
  });

  it("one fast-path instance decides every case as a fresh one does, in either order", async () => {
    const all = await cases();
    for (const order of [all, [...all].reverse()]) {
      // Tolerance is per instance: one instance per tolerance, shared by its cases.
      const shared = new Map<number, FastJwtCheck>();
      for (const c of order) {
        const tolerance = c.toleranceSec ?? 0;
        let fast = shared.get(tolerance);
        if (fast === undefined) {
          fast = new FastJwtCheck([CURRENT, NEXT], tolerance);
          shared.set(tolerance, fast);
        }
        assert.equal(
          fast.valid(c.signature, new TextEncoder().encode(c.body), c.url ?? URL_),
          c.fast,
          c.label,
        );
      }
    }
  });

  it("qstashVerifier decides exactly as the Receiver, rejecting with SignatureError", async () => {
    for (const c of await cases()) {
      const verify = qstashVerifier(
        c.toleranceSec === undefined
          ? { currentSigningKey: CURRENT, nextSigningKey: NEXT }
          : { currentSigningKey: CURRENT, nextSigningKey: NEXT, clockToleranceSec: c.toleranceSec },
      );
      const attempt = verify({ signature: c.signature, body: c.body, url: c.url ?? URL_ });
      if (c.valid) await attempt;
      else {
        await assert.rejects(attempt, (error: unknown) => {
          assert.ok(error instanceof SignatureError, c.label);
          assert.match((error as Error).message, /^invalid Upstash-Signature: /, c.label);
          return true;
        });
      }
    }
  });
});
