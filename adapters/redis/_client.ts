/**
 * One tiny interface over the Redis clients the backend accepts: ioredis (TCP, blocking waits on
 * duplicated connections) and `@upstash/redis` (REST, no blocking). Scripts go out as EVALSHA
 * and fall back to EVAL on NOSCRIPT; every call is bounded by the command timeout and any
 * failure becomes a `BackendError` with the original error as `cause`.
 *
 * @module
 */
import { BackendError, Deadlines, TimeoutError } from "../../backend.ts";
import type { Script } from "./lua/mod.ts";

/**
 * The part of an ioredis client (`Redis` or `Cluster`) the backend uses. Pass the instance; the
 * backend never imports ioredis. Give it a bounded `maxRetriesPerRequest` and `connectTimeout`;
 * the backend bounds every call by `commandTimeoutMs` anyway.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * const client: IoRedisLike = new Redis("redis://127.0.0.1:6379", { maxRetriesPerRequest: 3 });
 * ```
 */
export interface IoRedisLike {
  /** Sends one command. */
  call(command: string, ...args: string[]): Promise<unknown>;
  /** Opens another connection with the same options (for blocking waits). */
  duplicate(): IoRedisLike;
  /** Closes the connection. */
  disconnect(): void;
  /** Listens to connection errors (and, on a subscribed connection, to messages). */
  on(event: "error", listener: (error: unknown) => void): unknown;
  /** Subscribes the connection to a channel (used on a duplicated connection only). */
  subscribe?(channel: string): Promise<unknown>;
}

/**
 * The part of an `@upstash/redis` `Redis` instance the backend uses. The default client works
 * as it is (automatic deserialization and base64 responses included).
 *
 * @example
 * ```ts
 * import { Redis } from "@upstash/redis";
 * const client: UpstashLike = new Redis({ url: "https://…upstash.io", token: "…" });
 * ```
 */
export interface UpstashLike {
  /** Runs a cached script. */
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown>;
  /** Runs a script from its source. */
  eval(script: string, keys: string[], args: string[]): Promise<unknown>;
}

/**
 * The part of Bun's built-in `RedisClient` the backend uses.
 *
 * @example
 * ```ts
 * const client: BunRedisLike = new Bun.RedisClient("redis://127.0.0.1:6379");
 * ```
 */
export interface BunRedisLike {
  /** Sends one command. */
  send(command: string, args: string[]): Promise<unknown>;
  /** Opens another connection with the same options (for blocking waits). */
  duplicate(): Promise<BunRedisLike>;
  /** Closes the connection. */
  close(): void;
  /** Subscribes the connection to a channel (used on a duplicated connection only). */
  subscribe?(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
}

/**
 * A client the backend accepts: ioredis and Bun's `RedisClient` over TCP (blocking waits), or
 * `@upstash/redis` over REST (polling).
 *
 * @example
 * ```ts
 * const r = redis({ client: new Redis("redis://127.0.0.1:6379") satisfies RedisClientLike });
 * ```
 */
export type RedisClientLike = IoRedisLike | UpstashLike | BunRedisLike;

/** What the backend needs from a connection. */
export interface Transport {
  /** "tcp" can block while waiting for work; "rest" polls. */
  readonly kind: "tcp" | "rest";
  /** Runs a script with KEYS and ARGV; resolves to the raw reply. */
  run(script: Script, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  /**
   * TCP only: waits until one of the marker keys gets a member (and takes it), up to `ms`.
   * Resolves true when woken by a marker, false on timeout or abort.
   */
  block?(keys: readonly string[], ms: number, signal?: AbortSignal): Promise<boolean>;
  /** TCP only: as `block`, resolving to the marker key taken, or undefined on timeout or abort. */
  blockKey?(keys: readonly string[], ms: number, signal?: AbortSignal): Promise<string | undefined>;
  /**
   * TCP only: listens to a pub/sub channel on a connection of its own (opened once, shared by
   * every listener of this transport); resolves once subscribed.
   */
  listen?(channel: string, onMessage: (message: string) => void): Promise<void>;
  /** Drops the connections this transport opened (never the user's client). */
  close(): void;
}

const shas = new Map<string, Promise<string>>();
/** SHA-1s already computed: a call uses them without awaiting anything. */
const knownShas = new Map<string, string>();

function sha1(source: string): Promise<string> {
  let sha = shas.get(source);
  if (sha === undefined) {
    sha = crypto.subtle.digest("SHA-1", new TextEncoder().encode(source)).then((buffer) => {
      const hex = [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
      knownShas.set(source, hex);
      return hex;
    });
    shas.set(source, sha);
  }
  return sha;
}

/** Every call's time bound, on one shared timer (a timer per call costs more than the call's own work). */
const watchdog = new Deadlines();

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isNoScript(error: unknown): boolean {
  return /NOSCRIPT/.test(messageOf(error));
}

/** A short, payload-free description of a transport failure. */
export function describe(error: unknown): string {
  const text = messageOf(error);
  if (/unauthori[sz]ed|\b401\b/i.test(text)) {
    return "the Redis REST endpoint rejected the token (401 Unauthorized): check the token and url";
  }
  // @upstash/redis appends ", command was: [...]" with every argument: drop it.
  const first = (text.split(", command was:")[0] ?? text).split("\n")[0] ?? text;
  return first.length > 300 ? `${first.slice(0, 300)}…` : first;
}

/** Races `work` against a timer; rejects with a BackendError when the timer wins. */
export function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const deadline = watchdog.add(ms, () => {
      const message = `redis did not answer within ${ms} ms (${what})`;
      reject(new BackendError(message, { cause: new TimeoutError(message) }));
    });
    work.then(
      (value) => {
        watchdog.cancel(deadline);
        resolve(value);
      },
      (error: unknown) => {
        // A late failure after the timeout rejects a settled promise: ignored, not unhandled.
        watchdog.cancel(deadline);
        reject(error);
      },
    );
  });
}

async function evalWith(
  script: Script,
  evalsha: (sha: string) => Promise<unknown>,
  evalSource: () => Promise<unknown>,
): Promise<unknown> {
  const sha = knownShas.get(script.source) ?? (await sha1(script.source));
  try {
    return await evalsha(sha);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return await evalSource();
  }
}

function wrap(error: unknown, what: string): BackendError {
  if (error instanceof BackendError) return error;
  return new BackendError(`redis ${what} failed: ${describe(error)}`, { cause: error });
}

/** A TCP connection as the transport sees it: commands, a way to open another, a way to close. */
interface Conn {
  send(command: string, args: readonly string[]): Promise<unknown>;
  open(): Promise<Conn>;
  close(): void;
  /** Puts this connection in subscriber mode on `channel`. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
}

function ioredisConn(client: IoRedisLike): Conn {
  return {
    send: (command, args) => client.call(command, ...args),
    open: () => {
      const dup = client.duplicate();
      dup.on("error", () => {
        // reconnection is automatic; a waiting call reports its own failure
      });
      return Promise.resolve(ioredisConn(dup));
    },
    close: () => client.disconnect(),
    async subscribe(channel, onMessage) {
      if (client.subscribe === undefined) throw new TypeError("this client cannot subscribe");
      (client.on as (event: string, listener: (channel: string, message: string) => void) => unknown)(
        "message",
        (ch, message) => {
          if (ch === channel) onMessage(message);
        },
      );
      await client.subscribe(channel);
    },
  };
}

function bunConn(client: BunRedisLike): Conn {
  return {
    send: (command, args) => client.send(command, [...args]),
    open: async () => bunConn(await client.duplicate()),
    close: () => client.close(),
    async subscribe(channel, onMessage) {
      if (client.subscribe === undefined) throw new TypeError("this client cannot subscribe");
      await client.subscribe(channel, (message) => onMessage(String(message)));
    },
  };
}

function tcp(main: Conn, timeoutMs: number): Transport {
  const idle: Conn[] = [];
  const busy = new Set<Conn>();
  let closed = false;
  let subscriber: Promise<Conn> | undefined;
  const listeners = new Map<string, Set<(message: string) => void>>();
  return {
    kind: "tcp",
    async listen(channel, onMessage) {
      let set = listeners.get(channel);
      const fresh = set === undefined;
      if (set === undefined) {
        set = new Set();
        listeners.set(channel, set);
      }
      set.add(onMessage);
      if (!fresh) return;
      const every = set;
      try {
        subscriber ??= bounded(main.open(), timeoutMs, "a subscriber connection");
        const conn = await subscriber;
        await bounded(
          conn.subscribe(channel, (message) => {
            for (const listener of every) listener(message);
          }),
          timeoutMs,
          "a subscription",
        );
      } catch (error) {
        // Not subscribed: the next listen tries again (its waiters poll meanwhile).
        listeners.delete(channel);
        subscriber = undefined;
        throw wrap(error, "subscribe");
      }
    },
    async run(script, keys, args) {
      const n = String(keys.length);
      try {
        return await bounded(
          evalWith(
            script,
            (sha) => main.send("EVALSHA", [sha, n, ...keys, ...args]),
            () => main.send("EVAL", [script.source, n, ...keys, ...args]),
          ),
          timeoutMs,
          `${script.name} script`,
        );
      } catch (error) {
        throw wrap(error, `${script.name} script`);
      }
    },
    async block(keys, ms, signal) {
      return (await this.blockKey!(keys, ms, signal)) !== undefined;
    },
    async blockKey(keys, ms, signal) {
      if (closed || signal?.aborted) return undefined;
      let conn: Conn | undefined;
      let broken = false;
      const drop = () => {
        broken = true;
        conn?.close();
      };
      signal?.addEventListener("abort", drop, { once: true });
      try {
        conn = idle.pop() ?? (await bounded(main.open(), timeoutMs, "a blocking connection"));
        busy.add(conn);
        if (signal?.aborted || closed) {
          drop();
          return undefined;
        }
        const seconds = (Math.max(1, Math.ceil(ms)) / 1000).toFixed(3);
        const reply = await bounded(
          conn.send("BZPOPMIN", [...keys, seconds]),
          ms + timeoutMs,
          "a blocking wait",
        );
        if (reply === null || reply === undefined) return undefined;
        const key = Array.isArray(reply) ? reply[0] : undefined;
        return typeof key === "string" ? key : String(key ?? keys[0]);
      } catch (error) {
        if (signal?.aborted || closed) return undefined;
        drop();
        throw wrap(error, "blocking wait");
      } finally {
        signal?.removeEventListener("abort", drop);
        if (conn !== undefined) {
          busy.delete(conn);
          if (!broken && !closed) idle.push(conn);
        }
      }
    },
    close() {
      closed = true;
      subscriber?.then((conn) => conn.close()).catch(() => {});
      for (const conn of [...idle, ...busy]) conn.close();
      idle.length = 0;
      busy.clear();
    },
  };
}

function rest(client: UpstashLike, timeoutMs: number): Transport {
  return {
    kind: "rest",
    async run(script, keys, args) {
      const k = [...keys];
      const a = [...args];
      try {
        return await bounded(
          evalWith(
            script,
            (sha) => client.evalsha(sha, k, a),
            () => client.eval(script.source, k, a),
          ),
          timeoutMs,
          `${script.name} script`,
        );
      } catch (error) {
        throw wrap(error, `${script.name} script`);
      }
    },
    close() {},
  };
}

/** Wraps a user's client, detecting which kind it is. */
export function transport(client: RedisClientLike, timeoutMs: number): Transport {
  const c = client as unknown as Record<string, unknown>;
  if (typeof c.call === "function" && typeof c.duplicate === "function") {
    return tcp(ioredisConn(client as IoRedisLike), timeoutMs);
  }
  if (typeof c.send === "function" && typeof c.duplicate === "function" && typeof c.close === "function") {
    return tcp(bunConn(client as BunRedisLike), timeoutMs);
  }
  if (typeof c.evalsha === "function" && typeof c.eval === "function") {
    return rest(client as UpstashLike, timeoutMs);
  }
  throw new TypeError(
    "client must be an ioredis client (new Redis(url)), an @upstash/redis Redis instance " +
      "(new Redis({ url, token })) or Bun's RedisClient",
  );
}

// ---- reply decoding ----

/** A reply had an unexpected shape. */
function bad(what: string, value: unknown): never {
  throw new BackendError(`unexpected reply from redis for ${what}: ${JSON.stringify(value)?.slice(0, 100)}`);
}

/** A `~`-prefixed string from a script. */
export function text(value: unknown, what = "a string"): string {
  if (typeof value === "string" && value.startsWith("~")) return value.slice(1);
  return bad(what, value);
}

/** A `~`-prefixed string or nil. */
export function maybeText(value: unknown, what = "a string"): string | null {
  return value === null || value === undefined ? null : text(value, what);
}

/** An integer reply. */
export function int(value: unknown, what = "an integer"): number {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^-?\d+$/.test(value)) return Number(value);
  return bad(what, value);
}

/** An array reply. */
export function list(value: unknown, what = "a list"): unknown[] {
  if (Array.isArray(value)) return value;
  // Lua returns an empty table; some clients hand it back as an empty object.
  if (value !== null && typeof value === "object" && Object.keys(value).length === 0) return [];
  return bad(what, value);
}
