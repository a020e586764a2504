/**
 * The test edge function, bundled by esbuild (`edge-light` conditions, as Vercel builds Edge
 * Functions) and evaluated in Vercel's edge-runtime, which serves it through `fetch` events.
 * Configuration arrives as the `CELERIAC_ENV` global the test injects.
 *
 * @module
 */
import { buildApp, type TestEnv } from "./_app.ts";

interface FetchEvent {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
}

const scope = globalThis as unknown as {
  CELERIAC_ENV: TestEnv;
  addEventListener(type: "fetch", listener: (event: FetchEvent) => void): void;
};
const { handler } = buildApp(scope.CELERIAC_ENV);
scope.addEventListener("fetch", (event) => event.respondWith(handler.fetch(event.request)));
