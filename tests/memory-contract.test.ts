import { manualClock } from "../mod.ts";
import { memory } from "../adapters/memory/mod.ts";
import { brokerContract, scheduleStoreContract } from "../testing/mod.ts";

brokerContract("memory backend", async () => {
  const clock = manualClock(Date.UTC(2030, 0, 1));
  const backend = memory({ clock });
  return { backend, clock, close: () => backend.close() };
});

scheduleStoreContract("memory backend's schedules", async () => {
  const backend = memory();
  return { backend, close: () => backend.close() };
});
