/**
 * Small HTTP helpers of the handler core, Web APIs only: bounded body reading, JSON answers and a
 * constant-time bearer-token check.
 *
 * @module
 */
import { BackendError, CeleriacError, type SchemaIssue, ValidationError } from "../errors.ts";

const encoder = new TextEncoder();

/** The body was larger than the limit (nothing past the limit was buffered). */
export const TOO_LARGE: unique symbol = Symbol("too large");

/**
 * Reads the raw body bytes once, refusing anything over `limit` bytes: a declared
 * `Content-Length` over the limit is refused without reading; a body without one is read as a
 * stream and abandoned as soon as it passes the limit. Signatures are checked over these bytes;
 * the text is decoded after ({@link utf8}).
 */
export async function readBody(request: Request, limit: number): Promise<Uint8Array | typeof TOO_LARGE> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim())) {
    if (Number(declared) > limit) return TOO_LARGE;
    // HTTP framing holds the body to its declared length; one buffer is the servers' fast path.
    const bytes = new Uint8Array(await request.arrayBuffer());
    return bytes.byteLength > limit ? TOO_LARGE : bytes;
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return TOO_LARGE;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return all;
}

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lossy = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The text of raw body bytes, exactly (a byte-order mark is kept as a character, so it is not
 * silently dropped from what was signed); `valid` is false when the bytes are not UTF-8, and
 * `text` is then a lossy decoding, for the record only.
 */
export function utf8(bytes: Uint8Array): { text: string; valid: boolean } {
  try {
    return { text: strict.decode(bytes), valid: true };
  } catch {
    return { text: lossy.decode(bytes), valid: false };
  }
}

/** A JSON answer. */
export function json(status: number, body: unknown, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** The JSON error shape every route uses: `{ error, message, issues? }`. */
export function problem(
  status: number,
  error: string,
  message: string,
  extra?: { issues?: readonly SchemaIssue[]; headers?: Record<string, string> },
): Response {
  const body: { error: string; message: string; issues?: unknown } = { error, message };
  if (extra?.issues !== undefined) {
    body.issues = extra.issues.map((issue) =>
      issue.path === undefined
        ? { message: issue.message }
        : { message: issue.message, path: issue.path.map(String) },
    );
  }
  return json(status, body, extra?.headers);
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/**
 * A checker of `Authorization: Bearer <token>`. Both sides are hashed to 32 bytes first and
 * compared without an early exit, so the time taken says nothing about the expected token.
 */
export function bearerChecker(token: string): (authorization: string | null) => Promise<boolean> {
  const expected = sha256(token);
  return async (authorization) => {
    const match = authorization === null ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    // Hash something either way, so a missing header costs what a wrong one does.
    const [got, want] = await Promise.all([sha256(match?.[1] ?? ""), expected]);
    let diff = match === null ? 1 : 0;
    for (let i = 0; i < want.length; i++) diff |= (got[i] ?? 0) ^ (want[i] ?? 0);
    return diff === 0;
  };
}

/** 405 with the methods the route takes. */
export function notAllowed(allow: string): Response {
  return problem(405, "MethodNotAllowed", `use ${allow}`, { headers: { allow } });
}

/** 401 for a missing or wrong bearer token. */
export function unauthorized(): Response {
  return problem(401, "Unauthorized", "missing or wrong bearer token", {
    headers: { "www-authenticate": 'Bearer realm="celeriac"' },
  });
}

/** Maps an error from the app to an answer: 400 for bad input, 503 for a backend, else 500. */
export function failure(error: unknown): Response {
  if (error instanceof ValidationError)
    return problem(400, error.name, error.message, { issues: error.issues });
  if (error instanceof BackendError) return problem(503, error.name, error.message);
  if (error instanceof CeleriacError || error instanceof RangeError || error instanceof TypeError) {
    return problem(400, error.name, error.message);
  }
  const name = error instanceof Error ? error.name : "Error";
  return problem(500, name, error instanceof Error ? error.message : String(error));
}
