/**
 * The rig of the handler suites: the QStash emulator, a real redis-server behind the Upstash
 * REST bridge, a handler target, and HTTP helpers that talk to it the way producers and QStash do.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Client } from "@upstash/qstash";
import type { RunRecord } from "../../mod.ts";
import {
  type EmulatorMessage,
  type QStashEmulator,
  type RedisServer,
  signQStashDelivery,
  startQStashEmulator,
  startRedis,
  startUpstashBridge,
  type UpstashBridge,
} from "../../dev/mod.ts";
import { KEYS, MAX_BODY_BYTES, type TestEnv } from "./_app.ts";

/** A handler target that is up. */
export interface Target {
  /** `http://127.0.0.1:PORT`: the handler is mounted at the root. */
  origin: string;
  close(): Promise<void>;
}

/** Starts a target whose env is built from its own origin. */
export type Starter = (envFor: (origin: string) => TestEnv) => Promise<Target>;

/** What a test gets: the running emulator and target, and HTTP helpers. */
export interface Rig {
  emulator: QStashEmulator;
  redis: RedisServer;
  bridge: UpstashBridge;
  target: Target;
  client: Client;
  deliveryUrl: string;
  /** Calls the handler; `auth: false` sends no bearer token. */
  call(path: string, init?: RequestInit & { auth?: boolean | string }): Promise<Response>;
  enqueue(task: string, input: unknown): Promise<string>;
  status(id: string): Promise<RunRecord | null>;
  /** Emulator messages carrying this run. */
  messagesOf(id: string): EmulatorMessage[];
  /** POSTs a delivery straight to the handler, signed as asked. */
  deliver(body: string, sign?: Partial<Parameters<typeof signQStashDelivery>[0]> | null): Promise<Response>;
}

/** A version-1 envelope for `task`, with a fresh run id. */
export function envelope(
  task: string,
  input: unknown,
  extra: Record<string, unknown> = {},
): { id: string; body: string } {
  const id = crypto.randomUUID();
  const body = JSON.stringify({
    v: 1,
    id,
    task,
    queue: "default",
    priority: 0,
    attempt: 1,
    enqueuedAt: Date.now(),
    input,
    ...extra,
  });
  return { id, body };
}

let prefixes = 0;

/** Stops what {@link startRig} started. */
export async function stopRig(rig: Rig | undefined): Promise<void> {
  await rig?.emulator.close();
  await rig?.target.close();
  await rig?.bridge.close();
  await rig?.redis.stop();
}

/** Starts the emulator, redis-server with the REST bridge, and a target; builds the helpers. */
export async function startRig(start: Starter): Promise<Rig> {
  const emulator = await startQStashEmulator({
    token: KEYS.token,
    currentSigningKey: KEYS.current,
    nextSigningKey: KEYS.next,
    backoff: () => 0, // QStash's own retries (after a 5xx) come at once
  });
  const redis = await startRedis();
  const bridge = await startUpstashBridge({ redisUrl: redis.url, token: KEYS.redis });
  let deliveryUrl = "";
  const target = await start((origin) => {
    deliveryUrl = `${origin}/qstash`;
    return {
      QSTASH_TOKEN: KEYS.token,
      QSTASH_URL: emulator.url,
      QSTASH_CURRENT_SIGNING_KEY: KEYS.current,
      QSTASH_NEXT_SIGNING_KEY: KEYS.next,
      CELERIAC_DELIVERY_URL: deliveryUrl,
      CELERIAC_TOKEN: KEYS.producer,
      MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      REDIS_REST_URL: bridge.url,
      REDIS_REST_TOKEN: KEYS.redis,
      REDIS_PREFIX: `e2e${++prefixes}`,
    };
  });
  const client = new Client({
    baseUrl: emulator.url,
    token: KEYS.token,
    devMode: false,
    enableTelemetry: false,
  });
  const call: Rig["call"] = (path, init = {}) => {
    const { auth = true, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (auth !== false) headers.set("authorization", `Bearer ${auth === true ? KEYS.producer : auth}`);
    return fetch(`${target.origin}${path}`, { ...rest, headers });
  };
  return {
    emulator,
    redis,
    bridge,
    target,
    client,
    deliveryUrl,
    call,
    async enqueue(task, input) {
      const res = await call("/runs", { method: "POST", body: JSON.stringify({ task, input }) });
      const body = (await res.json()) as { id?: string };
      assert.equal(res.status, 202, JSON.stringify(body));
      assert.equal(typeof body.id, "string");
      return body.id as string;
    },
    async status(id) {
      const res = await call(`/runs/${encodeURIComponent(id)}`);
      if (res.status === 404) {
        await res.body?.cancel();
        return null;
      }
      assert.equal(res.status, 200);
      return (await res.json()) as RunRecord;
    },
    messagesOf(id) {
      return emulator.messages().filter((m) => {
        try {
          return (JSON.parse(m.body) as { id?: unknown }).id === id;
        } catch {
          return false;
        }
      });
    },
    async deliver(body, sign = {}) {
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "upstash-message-id": `msg_direct_${crypto.randomUUID()}`,
        "upstash-retried": "0",
      };
      if (sign !== null) {
        headers["upstash-signature"] = await signQStashDelivery({
          signingKey: KEYS.current,
          url: deliveryUrl,
          body,
          ...sign,
        });
      }
      return fetch(deliveryUrl, { method: "POST", headers, body });
    },
  };
}
