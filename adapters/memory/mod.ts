/**
 * The in-memory backend: broker and store in one object, for development, tests and
 * single-process apps; the default of `createApp()`. `memory({ eager: true })` runs each task
 * before `enqueue` resolves, through the same executor and the same JSON round trip as
 * production. It lives in the core (the app's default needs it there) and is published here.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * import { memory } from "celeriac/adapters/memory";
 * const app = createApp({ broker: memory({ eager: true }) }); // tests: enqueue runs the task
 * ```
 *
 * @module
 */
export { MemoryBackend, type MemoryOptions, memory } from "../../src/memory/backend.ts";
