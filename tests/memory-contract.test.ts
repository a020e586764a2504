import { manualClock } from "../mod.ts";
import { memory } from "../adapters/memory/mod.ts";
import { brokerContract } from "../testing/mod.ts";

brokerContract("memory backend", async () => {
  const clock = manualClock(Date.UTC(2030, 0, 1));
  const backend = memory({ clock });
  return { backend, clock, close: () => backend.close() };
});
