/**
 * The behaviour of a store's `schedules` (the stored schedules of `app.schedules`), as one suite
 * run against each backend that keeps them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ScheduleStore } from "../backend.ts";
import type { ContractSubject } from "./broker-contract.ts";

const sorted = (rows: { id: string; json: string }[]) => [...rows].sort((a, b) => (a.id < b.id ? -1 : 1));

/**
 * Registers a `describe(name)` block with the schedule store tests. `make` builds a fresh
 * backend per test whose `schedules` is set.
 *
 * @example
 * ```ts
 * scheduleStoreContract("my backend", async () => ({ backend: myBackend(), close: async () => {} }));
 * ```
 */
export function scheduleStoreContract(name: string, make: () => Promise<ContractSubject>): void {
  const test = (title: string, body: (s: ScheduleStore) => Promise<void>) =>
    it(title, { timeout: 30_000 }, async () => {
      const subject = await make();
      try {
        const schedules = subject.backend.schedules;
        assert.ok(schedules, "the store keeps schedules");
        await body(schedules);
      } finally {
        await subject.close();
      }
    });

  describe(name, () => {
    test("keeps each schedule's JSON text under its id, replacing it on put", async (s) => {
      assert.deepEqual(await s.list(), []);
      const text = JSON.stringify({ task: "t", input: { note: 'zoë ✓ "quoted"' }, cron: "* * * * *" });
      await s.put("a:1", text);
      await s.put("b", '{"task":"t","every":"30s"}');
      await s.put("b", '{"task":"t","every":"1m"}');
      assert.deepEqual(sorted(await s.list()), [
        { id: "a:1", json: text },
        { id: "b", json: '{"task":"t","every":"1m"}' },
      ]);
    });

    test("removes a schedule and says whether there was one", async (s) => {
      await s.put("a", "{}");
      assert.equal(await s.remove("a"), true);
      assert.equal(await s.remove("a"), false);
      assert.equal(await s.remove("never"), false);
      assert.deepEqual(await s.list(), []);
    });

    test("moves its revision on each put and removal, not on reads or a removal of nothing", async (s) => {
      if (s.revision === undefined) return;
      const seen = new Set<string | null>([await s.revision()]);
      await s.put("a", "{}");
      const afterPut = await s.revision();
      assert.ok(!seen.has(afterPut), "a put moves the revision");
      seen.add(afterPut);
      await s.list();
      assert.equal(await s.revision(), afterPut, "a read does not");
      assert.equal(await s.remove("missing"), false);
      assert.equal(await s.revision(), afterPut, "removing nothing does not");
      await s.put("a", "{}");
      const again = await s.revision();
      assert.ok(!seen.has(again), "a put of the same text moves it too");
      seen.add(again);
      await s.remove("a");
      assert.ok(!seen.has(await s.revision()), "a removal moves it");
    });
  });
}
