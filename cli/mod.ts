#!/usr/bin/env node
/**
 * The `celeriac` command line (the package's bin; Node, and Bun or Deno running it): `worker`,
 * `scheduler`, `inspect`, `queues`, `dlq`, `enqueue`, `schedules`. Run `celeriac --help`.
 *
 * Not part of any import entry: nothing in `mod.ts` or `src/` imports it.
 *
 * @module
 */
import process from "node:process";
import { main } from "./program.ts";

const code = await main(process.argv.slice(2));
// Exit explicitly: clients the app module opened (a Redis connection it passed to redis()) stay
// open after app.close() and would keep the process alive. Flush stdout first (a pipe may lag).
process.stdout.write("", () => process.exit(code));
