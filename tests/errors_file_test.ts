/**
 * The errors file end to end (`src/cli/errors_file.ts`): named after the output, so jobs in one folder
 * keep their own; `--resume` keeps every failure it does not re-run, through Ctrl-C and kill -9.
 * Real `bun cli.ts run` processes against the mock provider server on 127.0.0.1.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { defaultErrorsFile } from "../src/cli/errors_file.ts";
import { cliHarness, readJsonl } from "./_cli.ts";
import { alive, childrenOf, waitFor } from "./_processes.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
let mock: MockProvider;
let dir: string;
beforeAll(async () => {
  mock = await startMockProvider({ latencyMs: 20 });
  dir = fs.mkdtempSync("/tmp/i10-lifecycle-errors-");
});
afterAll(async () => {
  await mock.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const { spawnCli, cli, file } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS|MFT_/,
  env: { OPENAI_API_KEY: KEY },
  detached: true,
});
const openai = (out: string, rate = "200") => [
  "--provider",
  "openai",
  "--base-url",
  `${mock.url}/v1`,
  "--rate-limit",
  rate,
  "--output",
  out,
];
/** `n` lines; those whose number is in `failing` always get a 400. */
const lines = (tag: string, from: number, to: number, failing: number[]) =>
  Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    return {
      id: `${tag}${i}`,
      prompt: failing.includes(i) ? `[[mock:400]] q ${i}` : `q ${i}`,
    };
  });
const errorIds = (f: string) => readJsonl(f).map((e) => e.id).sort();

test("defaultErrorsFile() derives the errors file from the output's name", () => {
  expect(defaultErrorsFile("out.jsonl")).toBe("out.errors.jsonl");
  expect(defaultErrorsFile("a/b/run1.jsonl")).toBe(path.join("a/b", "run1.errors.jsonl"));
  expect(defaultErrorsFile("results")).toBe("results.errors.jsonl");
  expect(defaultErrorsFile("-")).toBe("errors.jsonl");
});

test("two jobs in one folder keep their own errors files", async () => {
  const a = file("job-a.jsonl", lines("a", 0, 5, [1]));
  const b = file("job-b.jsonl", lines("b", 0, 5, [2]));
  const outA = path.join(dir, "jobs", "a.jsonl");
  const outB = path.join(dir, "jobs", "b.jsonl");
  expect((await cli(["run", a, ...openai(outA)])).code).toBe(1);
  expect((await cli(["run", b, ...openai(outB)])).code).toBe(1);
  expect(errorIds(path.join(dir, "jobs", "a.errors.jsonl"))).toEqual(["a1"]);
  expect(errorIds(path.join(dir, "jobs", "b.errors.jsonl"))).toEqual(["b2"]);
  expect(fs.existsSync(path.join(dir, "jobs", "errors.jsonl"))).toBe(false);
});

test("--resume with another input keeps the failures of the first", async () => {
  const out = path.join(dir, "more.jsonl");
  const first = file("more-1.jsonl", lines("m", 0, 4, [0]));
  const second = file("more-2.jsonl", lines("m", 4, 8, [6]));
  expect((await cli(["run", first, ...openai(out)])).code).toBe(1);
  const r = await cli(["run", second, ...openai(out), "--resume"]);
  expect(r.code).toBe(1);
  expect(errorIds(path.join(dir, "more.errors.jsonl"))).toEqual(["m0", "m6"]);
  expect(readJsonl(out).length).toBe(6);
  expect(fs.existsSync(path.join(dir, "more.errors.jsonl.prev"))).toBe(false);
});

test(
  "--resume stopped by Ctrl-C or kill -9 keeps the failures it did not reach, each once",
  async () => {
    const out = path.join(dir, "long.jsonl");
    const errors = path.join(dir, "long.errors.jsonl");
    // Run 1 answers the tail of the input: the failure at 290 is in the errors file.
    const tail = file("long-tail.jsonl", lines("l", 250, 300, [290]));
    expect((await cli(["run", tail, ...openai(out)])).code).toBe(1);
    expect(errorIds(errors)).toEqual(["l290"]);
    const all = file("long-all.jsonl", lines("l", 0, 300, [3, 290]));
    const slow = ["run", all, ...openai(out, "40"), "--resume"];
    const lineCount = () => readJsonl(out).length;

    // Run 2: Ctrl-C long before line 290. Line 3 failed again, 290 was never reached: both kept.
    const two = spawnCli(slow);
    await waitFor("answers", () => lineCount() >= 70);
    process.kill(-two.pid, "SIGINT");
    expect(await two.exited).toBe(130);
    expect(errorIds(errors)).toEqual(["l290", "l3"]);

    // Run 3: kill -9 mid-run, a new failure written meanwhile (the .prev file stays behind).
    const more = file("long-more.jsonl", lines("l", 0, 300, [3, 100, 290]));
    const three = spawnCli(["run", more, ...openai(out, "40"), "--resume"]);
    await waitFor("answers", () => errorIds(errors).includes("l100") || undefined);
    const group = [three.pid, ...childrenOf(three.pid)];
    process.kill(-three.pid, "SIGKILL");
    await three.exited;
    await waitFor("the group to die", () => !group.some(alive));
    expect(fs.existsSync(`${errors}.prev`)).toBe(true);

    // Run 4 completes: every failure once, every other line in output once.
    const r = await cli(["run", more, ...openai(out), "--resume"]);
    expect(r.code).toBe(1);
    expect(errorIds(errors)).toEqual(["l100", "l290", "l3"]);
    const ids = readJsonl(out).map((o) => o.id);
    expect(ids.length).toBe(297);
    expect(new Set(ids).size).toBe(297);
    expect(fs.existsSync(`${errors}.prev`)).toBe(false);
  },
  60_000,
);
