/**
 * The Upstash Redis REST protocol as the bridge serves it: reading commands from JSON bodies and
 * paths, refusing what REST cannot offer (blocking and connection-state commands), encoding
 * replies (plain or `Upstash-Encoding: base64`) and mapping failures to HTTP statuses.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { IncomingMessage, ServerResponse } from "node:http";

/** One command argument. */
export type Arg = string | Buffer;
/** A command: its name, then its arguments. */
export type Command = Arg[];
/** A raw reply as the TCP client returns it (`callBuffer`). */
export type Reply = Buffer | string | number | null | undefined | Error | Reply[];

/** An error that maps directly to an HTTP status and an `{"error"}` body. */
export class BridgeError extends Error {
  /** Makes an error answered with `status` and `{"error": message}`. */
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "BridgeError";
  }
}

const BLOCKING = new Set([
  "blpop",
  "brpop",
  "brpoplpush",
  "blmove",
  "blmpop",
  "bzpopmin",
  "bzpopmax",
  "bzmpop",
  "wait",
  "waitaof",
]);
const UNSUPPORTED = new Set([
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
  "monitor",
  "auth",
  "hello",
  "select",
  "client",
  "multi",
  "exec",
  "discard",
  "watch",
  "unwatch",
  "quit",
  "reset",
  "sync",
  "psync",
]);
const OK = Buffer.from("OK");

/**
 * The command's name, lower-cased.
 *
 * @example
 * ```ts
 * commandName(["SET", "k", "v"]); // "set"
 * ```
 */
export function commandName(command: Command): string {
  const first = command[0];
  return (typeof first === "string" ? first : (first?.toString("utf8") ?? "")).toLowerCase();
}

/** Throws a 400 for blocking, subscribe-family and connection-state commands. */
function checkSupported(command: Command): void {
  const name = commandName(command);
  const blocking =
    BLOCKING.has(name) ||
    ((name === "xread" || name === "xreadgroup") &&
      command.some((arg) => typeof arg === "string" && arg.toLowerCase() === "block"));
  if (blocking) {
    throw new BridgeError(400, `ERR blocking command '${name}' is not supported over REST`);
  }
  if (UNSUPPORTED.has(name)) {
    throw new BridgeError(400, `ERR command '${name}' is not supported over REST`);
  }
}

/**
 * A command from a JSON value: a non-empty array of strings and finite numbers; throws a 400
 * otherwise or for an unsupported command.
 *
 * @example
 * ```ts
 * toCommand(["SET", "k", "v", "EX", 100]); // ["SET", "k", "v", "EX", "100"]
 * ```
 */
export function toCommand(value: unknown): Command {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BridgeError(400, "ERR a command must be a non-empty JSON array");
  }
  const command = value.map((arg, index): string => {
    if (typeof arg === "string") return arg;
    if (typeof arg === "number" && Number.isFinite(arg)) return String(arg);
    throw new BridgeError(
      400,
      `ERR command argument ${index} must be a string or a number, got ${JSON.stringify(arg)}`,
    );
  });
  checkSupported(command);
  return command;
}

/**
 * The commands of a `/pipeline` or `/multi-exec` body: a non-empty array of commands.
 *
 * @example
 * ```ts
 * toCommands([["INCR", "n"], ["GET", "n"]]);
 * ```
 */
export function toCommands(value: unknown): Command[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BridgeError(400, "ERR the body must be a non-empty JSON array of commands");
  }
  return value.map(toCommand);
}

/**
 * The body as JSON; throws a 400 when it is not.
 *
 * @example
 * ```ts
 * parseJson(Buffer.from('["PING"]')); // ["PING"]
 * ```
 */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new BridgeError(400, "ERR the request body is not valid JSON");
  }
}

/**
 * Path style: `/cmd/arg1/arg2?NAME=value`, a POST body appended before the query pairs.
 *
 * @example
 * ```ts
 * pathCommand(new URL("http://127.0.0.1/set/k/v?EX=10"), Buffer.alloc(0)); // ["set", "k", "v", "EX", "10"]
 * ```
 */
export function pathCommand(url: URL, body: Buffer): Command {
  const command: Command = url.pathname
    .slice(1)
    .split("/")
    .filter((segment) => segment !== "")
    .map((segment) => decodeURIComponent(segment));
  if (body.length > 0) command.push(body);
  for (const [name, value] of url.searchParams) {
    if (name === "_token") continue;
    command.push(name);
    if (value !== "") command.push(value);
  }
  if (command.length === 0) throw new BridgeError(400, "ERR empty command");
  checkSupported(command);
  return command;
}

/**
 * A reply as JSON: strings UTF-8 decoded, or base64 of their bytes at any depth when `base64`
 * (except a top-level `"OK"`); numbers and nulls as they are.
 *
 * @example
 * ```ts
 * encode(Buffer.from("hi"), true, true); // "aGk="
 * ```
 */
export function encode(reply: Reply, base64: boolean, topLevel: boolean): unknown {
  if (reply === null || reply === undefined) return null;
  if (typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map((item) => encode(item, base64, false));
  if (reply instanceof Error) return encode(Buffer.from(reply.message), base64, false);
  const bytes = Buffer.isBuffer(reply) ? reply : Buffer.from(String(reply));
  if (!base64) return bytes.toString("utf8");
  if (topLevel && bytes.equals(OK)) return "OK";
  return bytes.toString("base64");
}

/**
 * Whether `error` is an error reply from Redis (rather than a connection failure).
 *
 * @example
 * ```ts
 * if (isReplyError(error)) return { error: error.message };
 * ```
 */
export function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === "ReplyError";
}

/**
 * A Redis error reply is a 400; a failure talking to Redis (connection, timeout) a 503 when
 * `fromRedis`; anything else is a bug in the bridge (500).
 *
 * @example
 * ```ts
 * toBridgeError(new Error("Connection is closed."), true).status; // 503
 * ```
 */
export function toBridgeError(error: unknown, fromRedis = false): BridgeError {
  if (error instanceof BridgeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (isReplyError(error)) {
    // EXECABORT carries the queueing errors that discarded the transaction.
    const previous = (error as { previousErrors?: unknown }).previousErrors;
    const causes = Array.isArray(previous)
      ? previous.map((cause) => (cause instanceof Error ? cause.message : String(cause)))
      : [];
    return new BridgeError(400, causes.length > 0 ? `${message} ${causes.join("; ")}` : message);
  }
  if (fromRedis) return new BridgeError(503, `ERR redis unavailable: ${message}`);
  return new BridgeError(500, `ERR bridge failure: ${message}`);
}

/**
 * The whole request body.
 *
 * @example
 * ```ts
 * const body = await readBody(req);
 * ```
 */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

/**
 * Answers with `status` and `body` as JSON.
 *
 * @example
 * ```ts
 * send(res, 401, { error: "Unauthorized" });
 * ```
 */
export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * A request header's (first) value.
 *
 * @example
 * ```ts
 * const encoding = header(req, "upstash-encoding");
 * ```
 */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
