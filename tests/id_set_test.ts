// Tests of src/id_set.ts: the compact id set used for duplicate detection and resume.
import { expect, test } from "bun:test";
import { IdSet } from "../src/id_set.ts";

test("IdSet.add() returns 0 for a new id, then the line it was first added on", () => {
  const ids = new IdSet();
  expect(ids.add("a", 3)).toBe(0);
  expect(ids.add("b", 4)).toBe(0);
  expect(ids.add("a", 9)).toBe(3);
  expect(ids.add("a", 12)).toBe(3);
  expect(ids.add("b", 5)).toBe(4);
});

test("IdSet.add() reports a duplicate even when the first line was 0", () => {
  const ids = new IdSet();
  expect(ids.add("x")).toBe(0);
  expect(ids.add("x")).not.toBe(0);
});

test("IdSet.has() is true only for added ids", () => {
  const ids = new IdSet();
  ids.add("req-1", 1);
  ids.add("", 2);
  expect(ids.has("req-1")).toBe(true);
  expect(ids.has("")).toBe(true);
  expect(ids.has("req-2")).toBe(false);
  expect(ids.has("req-")).toBe(false);
  expect(ids.has("REQ-1")).toBe(false);
});

test("IdSet.size counts distinct ids", () => {
  const ids = new IdSet();
  expect(ids.size).toBe(0);
  ids.add("a", 1);
  ids.add("b", 2);
  ids.add("a", 3);
  expect(ids.size).toBe(2);
});

test("IdSet grows through many resizes: 200,000 ids all found, none of 200,000 others", () => {
  const ids = new IdSet(4);
  const n = 200_000;
  let notNew = 0;
  for (let i = 0; i < n; i++) if (ids.add(`item-${i}`, i + 1) !== 0) notNew++;
  expect(notNew).toBe(0);
  expect(ids.size).toBe(n);
  let missing = 0;
  let wrongLine = 0;
  let falsePositive = 0;
  for (let i = 0; i < n; i++) {
    if (!ids.has(`item-${i}`)) missing++;
    if (ids.add(`item-${i}`, 0) !== i + 1) wrongLine++;
    if (ids.has(`other-${i}`)) falsePositive++;
  }
  expect({ missing, wrongLine, falsePositive }).toEqual({
    missing: 0,
    wrongLine: 0,
    falsePositive: 0,
  });
  expect(ids.size).toBe(n);
});

test("IdSet compares whole ids: near misses, non-ASCII, empty and very long ids", () => {
  const ids = new IdSet(4);
  const long = "x".repeat(3 * 1024 * 1024); // larger than a chunk
  const all = ["", "a", "ab", "ba", "é", "e\u0301", "日本語", "🙂", long, long + "y", "item-1"];
  for (const [i, id] of all.entries()) expect(ids.add(id, i + 1)).toBe(0);
  for (const [i, id] of all.entries()) expect(ids.add(id, 99)).toBe(i + 1);
  for (const id of ["b", "abc", "item-10", "item-", "日本", long.slice(1), "🙃"]) {
    expect(ids.has(id)).toBe(false);
  }
  expect(ids.size).toBe(all.length);
});

test("IdSet agrees with a Set on 300,000 random ids and 300,000 others of the same shape", () => {
  const ids = new IdSet();
  const oracle = new Set<string>();
  let seed = 42;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const id = () => `${random().toString(36)}-${(random() % 1000).toString(36)}`;
  for (let i = 0; i < 300_000; i++) {
    const v = id();
    expect(ids.add(v, 1) === 0).toBe(!oracle.has(v));
    oracle.add(v);
  }
  let disagree = 0;
  for (let i = 0; i < 300_000; i++) {
    const v = id();
    if (ids.has(v) !== oracle.has(v)) disagree++;
  }
  expect(disagree).toBe(0);
  expect(ids.size).toBe(oracle.size);
});

test("IdSet.visit() tells new, answered (skip once) and duplicate apart", () => {
  const ids = new IdSet();
  ids.add("done", 3, { answered: true });
  expect(ids.answered("done")).toBe(true);
  expect(ids.visit("new", 1)).toBe(0);
  expect(ids.visit("done", 2)).toBe(-1); // answered: skipped, first time in the input
  expect(ids.visit("done", 5)).toBe(2); // then a duplicate of line 2
  expect(ids.visit("new", 7)).toBe(1);
  expect(ids.answered("new")).toBe(false);
  expect(ids.answered("missing")).toBe(false);
});
