import assert from "node:assert/strict";
import { it } from "node:test";
import { bySlot, slotOf } from "../adapters/redis/_slot.ts";

it("maps keys to Redis Cluster slots as Redis does (CRC16 of the hash tag, mod 16384)", () => {
  // Values from CLUSTER KEYSLOT on a real server.
  assert.equal(slotOf("foo"), 12182);
  assert.equal(slotOf("{user1000}.following"), slotOf("{user1000}.followers"));
  assert.equal(slotOf("{user1000}.following"), slotOf("user1000"));
  assert.equal(slotOf("foo{}{bar}"), slotOf("foo{}{bar}"), "an empty tag hashes the whole key");
  assert.deepEqual(
    bySlot(["{a}:w", "{b}:w", "{a}:x"]).map((g) => g.length),
    [2, 1],
  );
});
