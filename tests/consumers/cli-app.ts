// The TypeScript app module of the bin checks: as cli-app.mjs, with types; it needs a loader on
// Node 20 (tsx), and loads natively on Bun and Deno.
import { createApp } from "celeriac";
import { memory } from "celeriac/adapters/memory";

const backend = memory({ eager: true });
const app = createApp({ broker: backend, store: backend });
app.task({ name: "math.add", run: ({ a, b }: { a: number; b: number }): number => a + b });
export default app;
