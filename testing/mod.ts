/**
 * celeriac/backend/testing: the contract suite every broker + store of celeriac passes (memory,
 * Redis over TCP, REST and Bun's client), for adapter authors to run against their own. It is
 * written with `node:test` and `node:assert/strict`, so it runs under `node --test`, `deno test`
 * and `bun test` alike; it is kept out of `celeriac/backend` so that entry bundles for the edge.
 *
 * @example
 * ```ts
 * // my-backend.test.ts — run with `node --test`, `deno test -A` or `bun test`
 * import { brokerContract, scheduleStoreContract } from "celeriac/backend/testing";
 * import { myBackend } from "./my-backend.ts";
 *
 * const make = async () => {
 *   const backend = myBackend();
 *   return { backend, close: () => backend.close() };
 * };
 * brokerContract("my backend", make);
 * scheduleStoreContract("my backend's schedules", make); // when it keeps Store.schedules
 * ```
 *
 * @module
 */
export { brokerContract, type ContractClock, type ContractSubject } from "./broker-contract.ts";
export { scheduleStoreContract } from "./schedule-store-contract.ts";
