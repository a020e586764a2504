import assert from "node:assert/strict";
import { it } from "node:test";
import { newRunId } from "../src/_ids.ts";

it("starts every run id with a letter or digit, so a command line never reads one as an option", () => {
  const ids = Array.from({ length: 20_000 }, () => newRunId());
  for (const id of ids) assert.match(id, /^[A-Za-z0-9]/, id);
  assert.equal(new Set(ids).size, ids.length, "unique");
  assert.ok(new Set(ids.map((id) => id[0])).size > 50, "the first character still varies widely");
});
