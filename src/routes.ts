/**
 * The routing table (Celery's `task_routes`): `createApp({ routes })` names the queue and priority
 * of tasks whose definitions leave them out, by task name or glob pattern, or by a function.
 *
 * Precedence, for one task: the enqueue's `queue` / `priority` option, then the task
 * definition's, then the route, then `"default"` and 0. Routes apply when a task is registered
 * (`app.task`), so `task.options`, `app.queues()` and a worker started without `queues` see the
 * routed queue.
 *
 * In a table, a pattern without `*` is an exact task name; `*` matches any run of characters,
 * none included, dots included (`"email.*"` matches `"email.send"` and `"email.digest.daily"`, as
 * Celery's glob does); every other character matches itself. An exact name wins over the globs;
 * among globs, the first that matches, in the table's order. A list of tables and functions is
 * tried in order: the first that has a route for the task gives it.
 *
 * @example
 * ```ts
 * import { createApp } from "celeriac";
 * const app = createApp({
 *   routes: { "email.*": { queue: "io" }, "image.*": { queue: "cpu", priority: 3 } },
 * });
 * app.task({ name: "image.resize", run: () => {} }).options.queue; // "cpu"
 * ```
 *
 * @module
 */
import { checkKeys, keysOf } from "./_options.ts";
import { checkQueueName } from "./keys.ts";

/** Where the runs of a task go when its definition does not say. */
export interface Route {
  /** The task's queue. */
  queue?: string;
  /** The task's priority, 0–9. */
  priority?: number;
}

/** Task names or glob patterns (`*`: any run of characters, dots included) and their routes. */
export type RouteTable = { readonly [pattern: string]: Route };

/** A route for a task name, or undefined (or null) for none. */
export type RouteFunction = (task: string) => Route | null | undefined;

/** The `routes` option of `createApp`: a table, a function, or a list of them tried in order. */
export type Routes = RouteTable | RouteFunction | readonly (RouteTable | RouteFunction)[];

/** Finds the route of a task name (undefined: none). */
export type Router = (task: string) => Route | undefined;

const ROUTE_KEYS = keysOf<Route>({ queue: true, priority: true });

/**
 * Checks a route (`where` names it in errors): an object with only `queue` (a queue name) and
 * `priority` (an integer 0–9); undefined or null is no route.
 */
export function checkRoute(route: unknown, where: string): Route | undefined {
  if (route === undefined || route === null) return undefined;
  if (typeof route !== "object" || Array.isArray(route)) {
    throw new TypeError(`${where} must be an object { queue?, priority? }, got ${describe(route)}`);
  }
  checkKeys(route, ROUTE_KEYS, where);
  const { queue, priority } = route as Route;
  if (queue !== undefined) checkQueueName(queue, `${where}: `);
  if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > 9)) {
    throw new RangeError(`${where}: priority must be an integer from 0 to 9, got ${String(priority)}`);
  }
  return route as Route;
}

/**
 * The router of a `routes` option, checked up front (a table's every entry; what a function
 * returns is checked when a task is registered); undefined when there are no routes.
 */
export function routerOf(routes: Routes | undefined): Router | undefined {
  if (routes === undefined) return undefined;
  if (Array.isArray(routes)) {
    const routers = (routes as readonly unknown[]).map((r, i) => compile(r, `routes[${i}]`));
    return (task) => {
      for (const router of routers) {
        const route = router(task);
        if (route !== undefined) return route;
      }
      return undefined;
    };
  }
  return compile(routes, "routes");
}

function compile(routes: unknown, where: string): Router {
  if (typeof routes === "function") {
    const fn = routes as RouteFunction;
    return (task) => fn(task) ?? undefined;
  }
  if (typeof routes !== "object" || routes === null || Array.isArray(routes)) {
    throw new TypeError(
      `${where} must be a table { pattern: route }, a function (task) => route, or a list of them, got ${describe(routes)}`,
    );
  }
  const exact = new Map<string, Route>();
  const globs: { pattern: RegExp; route: Route }[] = [];
  for (const [pattern, value] of Object.entries(routes)) {
    if (pattern.length === 0) throw new TypeError(`${where}: a pattern must not be empty`);
    const route = checkRoute(value, `${where}[${JSON.stringify(pattern)}]`);
    if (route === undefined)
      throw new TypeError(`${where}[${JSON.stringify(pattern)}] must be a route, got ${describe(value)}`);
    if (pattern.includes("*")) globs.push({ pattern: globPattern(pattern), route });
    else exact.set(pattern, route);
  }
  return (task) => exact.get(task) ?? globs.find((g) => g.pattern.test(task))?.route;
}

/** A glob as a regular expression: `*` any run of characters (dots too), the rest literal. */
function globPattern(glob: string): RegExp {
  const body = glob
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`, "s");
}

function describe(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (Array.isArray(value)) return "an array";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
