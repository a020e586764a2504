/**
 * A loopback HTTP server that speaks the Upstash Redis REST protocol and forwards each command
 * to a real `redis-server` over TCP, so the `@upstash/redis` client can be tested without the
 * network.
 *
 * Protocol served (as documented for Upstash Redis REST):
 * - `POST /` with a JSON array `["SET", "k", "v"]` → `{"result": ...}`;
 * - `POST /pipeline` with an array of commands → `[{"result": ...} | {"error": "..."}, ...]`
 *   (not atomic);
 * - `POST /multi-exec` with an array of commands → same shape, atomic (MULTI/EXEC); a transaction
 *   discarded as a whole (EXECABORT) answers 400 with a single `{"error"}`;
 * - path style `GET|POST /set/k/v?EX=10`, where a POST body is appended as the last argument
 *   before the query parameters;
 * - `Authorization: Bearer <token>` or `?_token=<token>`; otherwise 401 `{"error":"Unauthorized"}`;
 * - `Upstash-Encoding: base64`: every string in a result is base64 of its raw bytes (at any
 *   depth), except a top-level `"OK"`; integers and nulls stay as they are. Without it strings
 *   are UTF-8 decoded (invalid bytes become U+FFFD);
 * - `Upstash-Response-Format`: only `json` is served; `resp2` and anything else answer 400.
 *
 * Status codes: 200 on success (pipeline/multi-exec also when single commands fail), 400 for a
 * Redis error reply or a malformed/unsupported command, 401 for a bad token, 405 for other
 * methods, 503 when Redis is unreachable or does not answer in time (requests never hang while
 * Redis restarts: they wait up to `timeoutMs` for the connection to come back, then up to
 * `timeoutMs` for the answer).
 *
 * Not supported (400, as Upstash REST does not offer them either): blocking commands (BLPOP,
 * BRPOP, BLMOVE, BZPOPMIN, XREAD … BLOCK, …), SUBSCRIBE-family and MONITOR, and commands that
 * change connection state (AUTH, HELLO, SELECT, CLIENT, MULTI, EXEC, DISCARD, WATCH, UNWATCH,
 * QUIT, RESET). The `upstash-sync-token` header is ignored.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Redis } from "ioredis";
import {
  type Arg,
  BridgeError,
  type Command,
  commandName,
  encode,
  header,
  isReplyError,
  parseJson,
  pathCommand,
  type Reply,
  readBody,
  send,
  toBridgeError,
  toCommand,
  toCommands,
} from "./_rest-protocol.ts";

/** How often the bridge retries connecting to Redis, and checking that it is ready, in ms. */
const RECHECK_MS = 50;

/** Options for {@linkcode startUpstashBridge}. */
export interface UpstashBridgeOptions {
  /** Where to forward commands, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** The bearer token clients must send. */
  token: string;
  /**
   * Loopback port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * How long a request waits for a connection to Redis (e.g. while it restarts), and then for
   * its answer, before the bridge answers 503; in milliseconds. Also bounds the first connect.
   * @default 2000
   */
  timeoutMs?: number;
}

/** A running bridge. */
export interface UpstashBridge {
  /** `http://127.0.0.1:PORT`, to pass as `url` to `new Redis({ url, token })`. */
  readonly url: string;
  /** The port the bridge listens on. */
  readonly port: number;
  /** The token the bridge accepts. */
  readonly token: string;
  /** How many HTTP requests the bridge has served so far (read live). */
  readonly requests: number;
  /** Stops listening, drops open connections and disconnects from Redis. */
  close(): Promise<void>;
}

/**
 * Starts a loopback HTTP server that speaks the Upstash Redis REST protocol (single commands,
 * `/pipeline`, `/multi-exec`, bearer auth, base64 responses) and forwards every command to the
 * Redis server at `redisUrl`. It keeps working across restarts of that server: while Redis is
 * down a request waits up to `timeoutMs` and then answers 503.
 *
 * @example
 * ```ts
 * const server = await startRedis();
 * const bridge = await startUpstashBridge({ redisUrl: server.url, token: "test-token" });
 * const redis = new Redis({ url: bridge.url, token: bridge.token });
 * await redis.set("greeting", "hello");
 * await bridge.close();
 * await server.stop();
 * ```
 */
export async function startUpstashBridge(options: UpstashBridgeOptions): Promise<UpstashBridge> {
  const timeoutMs = options.timeoutMs ?? 2_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  }
  const redis = new Redis(options.redisUrl, {
    lazyConnect: true,
    // Fail fast instead of queueing while disconnected; readiness is awaited per request.
    enableOfflineQueue: false,
    // A command in flight when the connection dropped may or may not have run: never resend it.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    // While Redis is down or starting, try again every RECHECK_MS, so that a request waiting in
    // whenReady() sees it within RECHECK_MS of it answering. That covers both reconnecting and
    // the ready check: a connection accepted while redis-server still loads its data files gets
    // `loading:1` from INFO, and ioredis would otherwise wait a whole second (loading_eta_seconds,
    // at least 1 s) before checking again, longer than a short timeoutMs.
    retryStrategy: () => RECHECK_MS,
    maxLoadingRetryTime: RECHECK_MS,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  redis.setMaxListeners(0);
  redis.on("error", () => {
    // Reconnection is automatic; request handlers report failures to their callers.
  });
  let connectTimer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise<never>((_, reject) => {
        connectTimer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    redis.disconnect();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot connect to ${options.redisUrl}: ${reason}`, { cause: error });
  } finally {
    clearTimeout(connectTimer);
  }

  let closed = false;
  let requests = 0;

  const whenReady = (): Promise<void> => {
    if (redis.status === "ready") return Promise.resolve();
    if (closed) return Promise.reject(new BridgeError(503, "ERR bridge is closed"));
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        redis.off("ready", onReady);
        reject(new BridgeError(503, `ERR redis unavailable: not connected after ${timeoutMs} ms`));
      }, timeoutMs);
      redis.once("ready", onReady);
    });
  };

  /** Waits up to `timeoutMs` for a connection, then up to `timeoutMs` for the answer. */
  const bounded = async <T>(work: () => Promise<T>): Promise<T> => {
    await whenReady();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BridgeError(503, `ERR redis did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([work(), timeout]);
    } catch (error) {
      throw isReplyError(error) ? error : toBridgeError(error, true);
    } finally {
      clearTimeout(timer);
    }
  };

  // The name goes out upper-cased: the TCP client keys its argument/reply rewriting (HGETALL to
  // an object, HSET from an object) on the lower-case name, and the bridge wants raw replies.
  const onWire = (command: Command): [string, ...Arg[]] => [
    commandName(command).toUpperCase(),
    ...command.slice(1),
  ];

  const runOne = (command: Command): Promise<Reply> =>
    bounded(() => redis.callBuffer(...onWire(command)) as Promise<Reply>);

  const runBatch = async (
    commands: Command[],
    atomic: boolean,
    base64: boolean,
  ): Promise<Array<{ result: unknown } | { error: string }>> => {
    const results = await bounded(async () => {
      const batch = atomic ? redis.multi() : redis.pipeline();
      for (const command of commands) batch.callBuffer(...onWire(command));
      return (await batch.exec()) ?? [];
    });
    return results.map(([error, reply]) => {
      if (error === null || error === undefined) {
        return { result: encode(reply as Reply, base64, true) };
      }
      if (!isReplyError(error)) throw toBridgeError(error, true);
      return { error: error.message };
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const authorization = header(req, "authorization");
    const bearer = authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
    const token = bearer ?? url.searchParams.get("_token");
    if (token !== options.token) {
      send(res, 401, { error: "Unauthorized" });
      return;
    }
    const method = req.method ?? "GET";
    if (!["GET", "HEAD", "POST", "PUT"].includes(method)) {
      send(res, 405, { error: "Method Not Allowed" });
      return;
    }
    const format = (header(req, "upstash-response-format") ?? "json").toLowerCase();
    if (format !== "json") {
      throw new BridgeError(400, `ERR response format '${format}' is not supported`);
    }
    const base64 = header(req, "upstash-encoding")?.toLowerCase() === "base64";
    const body = await readBody(req);
    const path = url.pathname.replace(/\/+$/, "");

    if (path === "/pipeline" || path === "/multi-exec") {
      const commands = toCommands(parseJson(body));
      send(res, 200, await runBatch(commands, path === "/multi-exec", base64));
      return;
    }
    const command = path === "" ? toCommand(parseJson(body)) : pathCommand(url, body);
    const reply = await runOne(command);
    send(res, 200, { result: encode(reply, base64, true) });
  };

  const server = createServer((req, res) => {
    requests++;
    handle(req, res).catch((error: unknown) => {
      const failure = toBridgeError(error);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      send(res, failure.status, { error: failure.message });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    token: options.token,
    get requests() {
      return requests;
    },
    async close() {
      if (closed) return;
      closed = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await stopped;
      redis.disconnect();
    },
  };
}
