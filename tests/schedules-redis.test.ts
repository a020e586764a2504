import { after, before, describe, it } from "node:test";
import { manualClock } from "../mod.ts";
import {
  freshPrefix,
  type RedisRig,
  startRig,
  TRANSPORTS,
  type Transport,
} from "./support/redis-fixtures.ts";
import { storedSchedulesScenario } from "./support/schedules-scenario.ts";

describe("stored schedules on redis", () => {
  let rig: RedisRig;
  before(async () => {
    rig = await startRig();
  });
  after(async () => {
    await rig?.stop();
  });

  /** Three replicas, each with a client of its own, on one prefix. */
  const replicas = (kinds: Transport[]) => async () => {
    const prefix = freshPrefix();
    const handles = kinds.map((kind) => rig.backend(kind, { prefix }));
    try {
      await storedSchedulesScenario(
        handles.map((h) => h.backend),
        manualClock(0),
      );
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }
  };

  for (const kind of TRANSPORTS) {
    it(
      `fires each tick once across three replicas over ${kind} while schedules change`,
      { timeout: 60_000 },
      replicas([kind, kind, kind]),
    );
  }
  it(
    "fires each tick once across replicas on TCP and REST clients of one Redis",
    { timeout: 60_000 },
    replicas(["tcp", "rest", "tcp"]),
  );
});
