/**
 * The emulator's HTTP API: QStash v2's publish, batch, messages and dead-letter routes, on top of
 * the message store.
 *
 * @module
 */
import { base64, concat, encoder, multi } from "./_encoding.ts";
import { compileRetryDelay, parseDuration } from "./_durations.ts";
import { parseFlowControl } from "./_flow-control.ts";
import { type Entry, PENDING, type Store } from "./_store.ts";

const METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH"]);

/** A status and a JSON body to answer with. */
export type Reply = { status: number; body: unknown };

/** Answers one API request: method, path, query, raw path (for publish), lower-case headers, body. */
export type Route = (
  method: string,
  path: string,
  query: URLSearchParams,
  rawPath: string,
  headers: Map<string, string>,
  body: Uint8Array<ArrayBuffer>,
) => Promise<Reply>;

/**
 * QStash's error shape: `{ error }` with a status.
 *
 * @example
 * ```ts
 * fail(404, "message msg_1 not found"); // { status: 404, body: { error: "message msg_1 not found" } }
 * ```
 */
export function fail(status: number, error: string): Reply {
  return { status, body: { error } };
}

/**
 * The API routes over `store`; a deduplication id is remembered for `dedupWindow` ms.
 *
 * @example
 * ```ts
 * const store = createStore({ signingKey: "sig_a", now: Date.now, backoff: () => 0 });
 * const route = createRoutes(store, 600_000);
 * const query = new URLSearchParams();
 * await route("GET", "/v2/dlq", query, "/v2/dlq", new Map(), new Uint8Array()); // { status: 200, … }
 * ```
 */
export function createRoutes(store: Store, dedupWindow: number): Route {
  const { now, entries, deadLetters, dedup, enqueue, cancel } = store;

  async function publish(
    destination: string,
    headerMap: Map<string, string>,
    body: Uint8Array<ArrayBuffer>,
  ): Promise<Reply> {
    const url = destination.replace(/^(https?):\/(?!\/)/i, "$1://");
    if (!/^https?:\/\//i.test(url) || !URL.canParse(url)) {
      return fail(400, `invalid destination "${destination}": only http(s) URLs are emulated`);
    }
    const method = (headerMap.get("upstash-method") ?? "POST").toUpperCase();
    if (!METHODS.has(method)) return fail(400, `invalid Upstash-Method "${method}"`);
    const retriesText = headerMap.get("upstash-retries") ?? "3";
    const maxRetries = Number(retriesText);
    if (!/^\d+$/.test(retriesText.trim())) {
      return fail(400, `invalid Upstash-Retries "${retriesText}"`);
    }
    let notBefore = now();
    const notBeforeText = headerMap.get("upstash-not-before");
    const delayText = headerMap.get("upstash-delay");
    if (notBeforeText !== undefined) {
      if (!/^\d+$/.test(notBeforeText.trim())) {
        return fail(400, `invalid Upstash-Not-Before "${notBeforeText}"`);
      }
      notBefore = Number(notBeforeText) * 1000;
    } else if (delayText !== undefined) {
      const delay = parseDuration(delayText);
      if (delay === undefined) return fail(400, `invalid Upstash-Delay "${delayText}"`);
      notBefore += delay;
    }
    const timeoutText = headerMap.get("upstash-timeout");
    const timeoutMs = timeoutText === undefined ? undefined : parseDuration(timeoutText);
    if (timeoutText !== undefined && !timeoutMs) {
      return fail(400, `invalid Upstash-Timeout "${timeoutText}"`);
    }
    const retryDelay = headerMap.get("upstash-retry-delay");
    let delayFn: ((retried: number) => number) | undefined;
    try {
      delayFn = retryDelay === undefined ? undefined : compileRetryDelay(retryDelay);
    } catch (error) {
      return fail(400, (error as Error).message);
    }
    const flowControl = parseFlowControl(
      headerMap.get("upstash-flow-control-key"),
      headerMap.get("upstash-flow-control-value"),
    );
    if (typeof flowControl === "string") return fail(400, flowControl);
    const headers: Record<string, string> = {};
    for (const [name, value] of headerMap) {
      if (name.startsWith("upstash-forward-")) headers[name.slice(16)] = value;
      else if (name === "content-type") headers[name] = value;
    }
    let dedupKey = headerMap.get("upstash-deduplication-id");
    if (dedupKey === undefined && headerMap.get("upstash-content-based-deduplication") === "true") {
      const parts = [
        url,
        ...Object.entries(headers)
          .sort()
          .map(([k, v]) => `${k}:${v}`),
        "",
      ].join("\n");
      const digest = await crypto.subtle.digest("SHA-256", concat([encoder.encode(parts), body]));
      dedupKey = `content:${base64(new Uint8Array(digest))}`;
    }
    const t = now();
    for (const [key, seen] of dedup) if (seen.expiresAt <= t) dedup.delete(key);
    const seen = dedupKey === undefined ? undefined : dedup.get(dedupKey);
    if (seen !== undefined) {
      store.stats.deduplicated += 1;
      return { status: 202, body: { messageId: seen.messageId, url, deduplicated: true } };
    }
    const optional = {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(dedupKey === undefined ? {} : { deduplicationId: dedupKey }),
      ...(headerMap.has("upstash-callback") ? { callback: headerMap.get("upstash-callback") as string } : {}),
      ...(headerMap.has("upstash-failure-callback")
        ? { failureCallback: headerMap.get("upstash-failure-callback") as string }
        : {}),
      ...(retryDelay === undefined || delayFn === undefined ? {} : { retryDelay, delayFn }),
      ...(flowControl === undefined ? {} : { flowControl }),
    };
    const entry = enqueue({
      url,
      method,
      headers,
      bodyBytes: body,
      maxRetries,
      notBefore,
      isCallback: false,
      ...optional,
    });
    if (dedupKey !== undefined) {
      dedup.set(dedupKey, { messageId: entry.messageId, expiresAt: t + dedupWindow });
    }
    return { status: 201, body: { messageId: entry.messageId, url } };
  }

  async function route(
    method: string,
    path: string,
    query: URLSearchParams,
    rawPath: string,
    headers: Map<string, string>,
    body: Uint8Array<ArrayBuffer>,
  ): Promise<Reply> {
    const [, version, resource, id, extra] = path.split("/").map((part) => decodeURIComponent(part));
    if (version !== "v2") return fail(404, `unknown route ${method} ${path}`);
    if (method === "POST" && resource === "publish") {
      return await publish(rawPath.slice("/v2/publish/".length), headers, body);
    }
    if (method === "POST" && resource === "batch" && id === undefined) return await batch(body);
    if (resource === "messages") {
      const entry = id === undefined ? undefined : entries.get(id);
      if (method === "GET" && id !== undefined) {
        return entry !== undefined && PENDING.has(entry.state)
          ? { status: 200, body: toPayload(entry) }
          : fail(404, `message ${id} not found`);
      }
      if (method === "DELETE" && id !== undefined) {
        if (entry === undefined || !PENDING.has(entry.state)) {
          return fail(404, `message ${id} not found`);
        }
        cancel(entry);
        return { status: 200, body: { cancelled: 1 } };
      }
      if (method === "DELETE") {
        const picked = select(
          [...entries.values()].filter((e) => PENDING.has(e.state)),
          query,
          "messageIds",
        );
        for (const e of picked) cancel(e);
        return { status: 200, body: { cancelled: picked.length } };
      }
    }
    if (resource === "dlq") {
      if (method === "POST" && id === "retry" && extra === undefined) {
        const picked = select([...deadLetters.values()], query, "dlqIds");
        const responses = picked.map((e) => {
          deadLetters.delete(e.dlqId as string);
          const {
            url,
            method: m,
            headers: h,
            bodyBytes,
            maxRetries,
            timeoutMs,
            callback,
            failureCallback,
            retryDelay,
            delayFn,
            flowControl,
          } = e;
          const copy = {
            url,
            method: m,
            headers: h,
            bodyBytes,
            maxRetries,
            notBefore: now(),
            isCallback: e.isCallback,
          };
          const optional = { timeoutMs, callback, failureCallback, retryDelay, delayFn, flowControl };
          for (const [k, v] of Object.entries(optional)) {
            if (v !== undefined) Object.assign(copy, { [k]: v });
          }
          return { messageId: enqueue(copy).messageId };
        });
        return { status: 200, body: { responses } };
      }
      const entry = id === undefined ? undefined : deadLetters.get(id);
      if (method === "GET" && id === undefined) return listDlq(query);
      if (method === "GET") {
        return entry ? { status: 200, body: toPayload(entry) } : fail(404, `dlq message ${id} not found`);
      }
      if (method === "DELETE" && id !== undefined) {
        return deadLetters.delete(id) ? { status: 200, body: {} } : fail(404, `dlq message ${id} not found`);
      }
      if (method === "DELETE") {
        const picked = select([...deadLetters.values()], query, "dlqIds");
        for (const e of picked) deadLetters.delete(e.dlqId as string);
        return { status: 200, body: { deleted: picked.length } };
      }
    }
    return fail(404, `unknown route ${method} ${path}`);
  }

  async function batch(body: Uint8Array<ArrayBuffer>): Promise<Reply> {
    let items: unknown;
    try {
      items = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return fail(400, "batch body must be a JSON array");
    }
    if (!Array.isArray(items)) return fail(400, "batch body must be a JSON array");
    const results: unknown[] = [];
    for (const item of items as Array<{
      destination?: unknown;
      headers?: unknown;
      body?: unknown;
      queue?: unknown;
    }>) {
      if (typeof item?.destination !== "string") {
        return fail(400, "every batch entry needs a destination");
      }
      if (item.queue !== undefined) return fail(400, "queues are not emulated");
      const headerMap = new Map<string, string>();
      for (const [k, v] of Object.entries((item.headers ?? {}) as Record<string, unknown>)) {
        headerMap.set(k.toLowerCase(), String(v));
      }
      const bytes = encoder.encode(typeof item.body === "string" ? item.body : "");
      const reply = await publish(item.destination, headerMap, bytes);
      results.push(reply.body);
    }
    return { status: 201, body: results };
  }

  function listDlq(query: URLSearchParams): Reply {
    const all = select([...deadLetters.values()], query, "dlqIds", true);
    const count = Math.min(Number(query.get("count") ?? 100) || 100, 100);
    const offset = Number(query.get("cursor") ?? 0) || 0;
    const messages = all.slice(offset, offset + count).map(toPayload);
    const cursor = offset + count < all.length ? String(offset + count) : undefined;
    return { status: 200, body: { messages, cursor } };
  }

  return route;
}

/** Filters by ids (`idKey` query values) or by `url`, `messageId`, `responseStatus`; `all=true` takes all. */
function select(list: Entry[], query: URLSearchParams, idKey: string, listAll = false): Entry[] {
  const ids = query.getAll(idKey);
  if (ids.length > 0) {
    return list.filter((e) => ids.includes(idKey === "dlqIds" ? (e.dlqId ?? "") : e.messageId));
  }
  const filters: Array<[string, (e: Entry) => string]> = [
    ["url", (e) => e.url],
    ["messageId", (e) => e.messageId],
    ["responseStatus", (e) => String(e.attempts.at(-1)?.status ?? "")],
  ];
  const active = filters.filter(([key]) => query.has(key));
  if (active.length === 0 && !listAll && query.get("all") !== "true") return [];
  return list.filter((e) => active.every(([key, get]) => get(e) === query.get(key)));
}

/** The message as QStash's API describes it (`Message` / `DlqMessage`). */
function toPayload(entry: Entry): Record<string, unknown> {
  const last = entry.attempts.at(-1);
  let utf8 = true;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(entry.bodyBytes);
  } catch {
    utf8 = false;
  }
  return {
    messageId: entry.messageId,
    url: entry.url,
    method: entry.method,
    header: multi(entry.headers),
    ...(utf8 ? { body: entry.body } : { bodyBase64: base64(entry.bodyBytes) }),
    maxRetries: entry.maxRetries,
    notBefore: entry.notBefore,
    createdAt: entry.createdAt,
    callback: entry.callback,
    failureCallback: entry.failureCallback,
    retryDelayExpression: entry.retryDelay,
    callerIP: "127.0.0.1",
    ...(entry.dlqId === undefined
      ? {}
      : {
          dlqId: entry.dlqId,
          responseStatus: last?.status,
          responseHeader: multi(last?.responseHeaders ?? {}),
          responseBody: last?.responseBody,
        }),
  };
}
