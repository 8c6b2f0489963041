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
