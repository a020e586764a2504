/** bench/pool.ts's no-op task module: what a task costs beyond its own work. */
export function run(): null {
  return null;
}
