// Resume through one id set (RunOptions.seen): answered ids are skipped the first time the input
// has them, a second time is a duplicate, and new ids run.
import { expect, test } from "bun:test";
import { IdSet } from "../src/id_set.ts";
import { createMockProvider } from "../src/providers/mock.ts";
import { runRealtime } from "../src/run.ts";

test("runRealtime() with a seen set of answered ids skips them once and reports repeats as duplicates", async () => {
  const seen = new IdSet();
  seen.add("a", 1, { answered: true });
  seen.add("b", 2, { answered: true });
  const lines = ["a", "c", "b", "a", "d"].map((id) => JSON.stringify({ id, prompt: `q ${id}` }));
  const run = runRealtime(ReadableStream.from(lines), {
    provider: createMockProvider({ latencyMs: 1 }),
    rate: 1000,
    seen,
  });
  const records = [];
  for await (const r of run.results) records.push(r);
  const stats = await run.done;
  expect(stats).toMatchObject({ read: 5, skipped: 2, ok: 2, invalid: 1 });
  expect(records.filter((r) => r.type === "ok").map((r) => r.id).sort()).toEqual(["c", "d"]);
  const dup = records.find((r) => r.type === "error")!;
  expect(dup.record.error).toMatchObject({ code: "duplicate_id", line: 4 });
  expect(dup.id).toBe("a");
  expect(seen.size).toBe(4);
});
