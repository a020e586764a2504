import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { QUEUE_SCRIPT } from "../adapters/redis/lua/mod.ts";
import {
  CANCELLABLE_STATES,
  FINAL_STATES,
  failurePatch,
  isFinal,
  isStartable,
  RUN_STATES,
  START_GUARD,
  STARTABLE_STATES,
  storedState,
  successPatch,
} from "../backend.ts";

describe("run-state", () => {
  it("splits the states into startable and final, with nothing in both", () => {
    for (const state of RUN_STATES) {
      assert.equal(isStartable(state) && isFinal(state), false, state);
    }
    assert.deepEqual([...FINAL_STATES].sort(), ["cancelled", "expired", "failed", "succeeded"]);
    assert.deepEqual([...START_GUARD].sort(), [...STARTABLE_STATES, "missing"].sort());
    // A run may be cancelled until it ends; an active run is startable (its holder died).
    for (const state of FINAL_STATES) assert.equal(CANCELLABLE_STATES.includes(state), false, state);
    assert.equal(CANCELLABLE_STATES.includes("active"), true);
    assert.equal(isStartable("active"), true);
  });

  it("builds a success patch with the result only when there is one", () => {
    assert.deepEqual(successPatch({ at: 5 }), { state: "succeeded", finishedAt: 5, updatedAt: 5 });
    assert.deepEqual(successPatch({ at: 5, result: null }), {
      state: "succeeded",
      finishedAt: 5,
      updatedAt: 5,
      result: null,
    });
    const error = { name: "Error", message: "boom" };
    assert.deepEqual(failurePatch(7, error, []), {
      state: "failed",
      finishedAt: 7,
      updatedAt: 7,
      error,
      errors: [],
    });
  });

  it("is where the Redis script takes its startable states from", () => {
    const line = QUEUE_SCRIPT.source.split("\n").find((l) => l.startsWith("local STARTABLE = "));
    assert.ok(line, "the script declares its startable set");
    for (const state of RUN_STATES) {
      assert.equal(line.includes(`['${storedState(state)}']`), isStartable(state), state);
    }
  });
});
