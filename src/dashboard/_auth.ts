/**
 * Internal: who may see the dashboard, and that a POST comes from its own pages. A request is
 * let in by a bearer token, by the session cookie a sign-in with the token set, or by the
 * `authorize` hook. Every action is a POST carrying a CSRF token: an HMAC (the dashboard's
 * secret) of a random nonce kept in an HttpOnly, SameSite=Strict cookie, and a cross-site
 * Origin is refused outright.
 *
 * @module
 */
import type { DashboardConfig } from "./_options.ts";

const encoder = new TextEncoder();
/** The session cookie: nonce.signature. */
export const SESSION_COOKIE = "celeriac_session";
/** The CSRF nonce cookie. */
export const CSRF_COOKIE = "celeriac_csrf";

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Equal strings, compared in time that does not depend on where they differ. */
export function sameText(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Signs with the dashboard's secret. */
export class Signer {
  readonly #key: Promise<CryptoKey>;

  constructor(secret: string) {
    this.#key = crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }

  async sign(text: string): Promise<string> {
    return hex(await crypto.subtle.sign("HMAC", await this.#key, encoder.encode(text)));
  }
}

/** A fresh random nonce (hex). */
export function nonce(): string {
  return hex(crypto.getRandomValues(new Uint8Array(16)).buffer as ArrayBuffer);
}

/** The request's cookies. */
export function cookies(request: Request): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** A Set-Cookie value for the dashboard's path. */
export function setCookie(
  request: Request,
  name: string,
  value: string,
  path: string,
  maxAge?: number,
): string {
  const secure = new URL(request.url).protocol === "https:" ? "; Secure" : "";
  const age = maxAge === undefined ? "" : `; Max-Age=${maxAge}`;
  return `${name}=${value}; Path=${path || "/"}; HttpOnly; SameSite=Strict${secure}${age}`;
}

/** Authentication and CSRF of one dashboard. */
export class Guard {
  readonly #config: DashboardConfig;
  readonly #signer: Signer;

  constructor(config: DashboardConfig) {
    this.#config = config;
    this.#signer = new Signer(config.secret);
  }

  /** How the request was let in, or null. */
  async check(request: Request): Promise<"bearer" | "session" | "hook" | null> {
    const { token, authorize } = this.#config;
    if (token !== undefined) {
      const header = request.headers.get("authorization") ?? "";
      if (header.startsWith("Bearer ") && sameText(header.slice(7), token)) return "bearer";
      const session = cookies(request).get(SESSION_COOKIE);
      if (session !== undefined && (await this.validSession(session))) return "session";
    }
    if (authorize !== undefined && (await authorize(request)) === true) return "hook";
    return null;
  }

  /** A session cookie value for a browser that signed in with the token. */
  async session(): Promise<string> {
    const n = nonce();
    return `${n}.${await this.#signer.sign(`session:${n}`)}`;
  }

  async validSession(value: string): Promise<boolean> {
    const [n, sig] = value.split(".");
    if (n === undefined || sig === undefined || !/^[0-9a-f]{32}$/.test(n)) return false;
    return sameText(sig, await this.#signer.sign(`session:${n}`));
  }

  /** Whether `token` is the dashboard's token. */
  signsIn(token: string): boolean {
    return this.#config.token !== undefined && sameText(token, this.#config.token);
  }

  /** The CSRF token the forms carry for this nonce. */
  csrf(csrfNonce: string): Promise<string> {
    return this.#signer.sign(`csrf:${csrfNonce}`);
  }

  /**
   * Whether a POST may act: not cross-site (Origin, Sec-Fetch-Site), and carrying the CSRF token
   * of its nonce cookie — or authenticated by a bearer header, which a browser never adds on its own.
   */
  async postAllowed(request: Request, how: string, field: string | null): Promise<boolean> {
    const site = request.headers.get("sec-fetch-site");
    if (site === "cross-site" || site === "same-site") return false;
    const origin = request.headers.get("origin");
    if (origin !== null && origin !== "null") {
      // The host the browser saw: behind a proxy, the forwarded one.
      const host =
        request.headers.get("x-forwarded-host") ?? request.headers.get("host") ?? new URL(request.url).host;
      let from: string;
      try {
        from = new URL(origin).host;
      } catch {
        return false;
      }
      if (from !== host) return false;
    } else if (origin === "null") return false;
    if (how === "bearer") return true;
    const n = cookies(request).get(CSRF_COOKIE);
    if (n === undefined || field === null || !/^[0-9a-f]{32}$/.test(n)) return false;
    return sameText(field, await this.csrf(n));
  }
}
