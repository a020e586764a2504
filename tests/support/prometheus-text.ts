// Structural rules of the Prometheus text format (0.0.4) that parsers are lenient about,
// checked line by line for tests/metrics.test.ts.
import assert from "node:assert/strict";

const NAME = "[a-zA-Z_][a-zA-Z0-9_]*";

/**
 * Checks one HELP then one TYPE per family before its samples, samples only of the family just
 * declared (so no family is split or interleaved), no timestamps, no blank lines, a final
 * newline, and histogram series as buckets with ascending bounds and cumulative counts ending
 * in `le="+Inf"`, then `_sum`, then `_count` equal to the +Inf bucket. Returns the families in
 * order.
 */
export function checkStructure(text: string): string[] {
  assert.ok(text.endsWith("\n"), "the last line ends with a newline");
  const seen: string[] = [];
  let family = "";
  let type: string | undefined;
  let buckets: { le: number; value: number }[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    assert.notEqual(line, "", "no blank lines");
    const help = new RegExp(`^# HELP (${NAME}) \\S`).exec(line);
    const typed = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram)$`).exec(line);
    if (help !== null) {
      assert.ok(!seen.includes(help[1]!), `${help[1]} has one HELP and is not split`);
      assert.equal(buckets.length, 0, `${family}: a histogram series ends with _count`);
      family = help[1]!;
      seen.push(family);
      type = undefined;
      continue;
    }
    if (typed !== null) {
      assert.equal(typed[1], family, "TYPE follows the HELP of its family");
      assert.equal(type, undefined, `${family} has one TYPE`);
      type = typed[2]!;
      continue;
    }
    const m = new RegExp(`^(${NAME})(\\{.*\\})? (\\S+)$`).exec(line);
    assert.ok(m !== null, `a sample line without a timestamp: ${line}`);
    assert.ok(type !== undefined, `${line}: its family's HELP and TYPE come first`);
    const [, name = "", labels = "", value] = m;
    assert.ok(name.startsWith(family), `${name} belongs to ${family}, the family just declared`);
    const suffix = name.slice(family.length);
    if (type !== "histogram") {
      assert.equal(suffix, "", `${name}: a ${type} has no suffix`);
      continue;
    }
    const v = Number(value);
    if (suffix === "_bucket") {
      const le = /,?le="([^"]+)"\}$/.exec(labels)?.[1];
      assert.ok(le !== undefined, `${line}: le is the last label`);
      const bound = le === "+Inf" ? Infinity : Number(le);
      const last = buckets.at(-1);
      if (last !== undefined) {
        assert.ok(bound > last.le, `${line}: bounds ascend`);
        assert.ok(v >= last.value, `${line}: buckets are cumulative`);
      }
      buckets.push({ le: bound, value: v });
    } else if (suffix === "_sum") {
      assert.equal(buckets.at(-1)?.le, Infinity, `${line}: _sum follows the +Inf bucket`);
    } else {
      assert.equal(suffix, "_count", `${name}: a histogram has _bucket, _sum and _count`);
      assert.equal(v, buckets.at(-1)?.value, `${line}: _count equals the +Inf bucket`);
      buckets = [];
    }
  }
  assert.equal(buckets.length, 0, "the last histogram series ends with _count");
  return seen;
}
