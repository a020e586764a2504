/**
 * The app module the CLI tests pass to `celeriac` (`--app`, `CELERIAC_APP`): the app of
 * `cli-tasks.ts` on the Redis at `$CELERIAC_TEST_REDIS_URL`, under `$CELERIAC_TEST_PREFIX`.
 *
 * @module
 */
import process from "node:process";
import { cliTestApp } from "./cli-tasks.ts";

const url = process.env.CELERIAC_TEST_REDIS_URL;
const prefix = process.env.CELERIAC_TEST_PREFIX;
if (url === undefined || prefix === undefined) {
  throw new Error("set CELERIAC_TEST_REDIS_URL and CELERIAC_TEST_PREFIX");
}

export default cliTestApp(url, prefix).app;
