import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { claimKey, flatKey, idempotencyKey } from "../backend.ts";

describe("keys", () => {
  it("scopes an idempotency key per task and queue", () => {
    const base = flatKey(idempotencyKey("default", "email.send", "k"));
    assert.notEqual(flatKey(idempotencyKey("default", "email.other", "k")), base);
    assert.notEqual(flatKey(idempotencyKey("io", "email.send", "k")), base);
    assert.equal(flatKey(idempotencyKey("default", "email.send", "k")), base);
    assert.notEqual(flatKey(claimKey("default", "email.send", "k")), base, "the claim is another key");
  });

  it("never lets a separator in a task or queue name make two scopes share a key", () => {
    // Without escaping, task "a:b" with key "c" and task "a" with key "b:c" would collide.
    assert.notEqual(flatKey(idempotencyKey("q", "a:b", "c")), flatKey(idempotencyKey("q", "a", "b:c")));
    assert.notEqual(flatKey(idempotencyKey("q:x", "t", "k")), flatKey(idempotencyKey("q", "x:t", "k")));
  });
});
