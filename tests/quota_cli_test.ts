/**
 * The quota-aware rate end to end: the CLI against the mock provider server enforcing a quota.
 * Quota 429s are absorbed without losing items or attempts; a spent daily quota stops the run
 * with exit 3 and the reset time, everything unsent resumable.
 * @module
 */
import { afterEach, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { cliHarness, readJsonl } from "./_cli.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
let dir: string;
let mock: MockProvider | undefined;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-quota-cli-"));
});
afterEach(async () => {
  await mock?.close();
  mock = undefined;
});

const { cli, file } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS|MFT_/,
  env: { OPENAI_API_KEY: KEY, GEMINI_API_KEY: KEY },
});

const lines = (n: number, prefix: string) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, prompt: `question ${i}` }));

test("cli absorbs quota 429s: every item answered, the rate slows to the quota", async () => {
  // The provider allows 5 requests in any second; the tool is told 20.
  mock = await startMockProvider({ latencyMs: 20, quota: { requests: 5, windowMs: 1000 } });
  const n = 40;
  const input = file("q.jsonl", lines(n, "q"));
  const out = path.join(dir, "q-out.jsonl");
  const errs = path.join(dir, "q-errors.jsonl");
  const r = await cli([
    "run",
    input,
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "20",
    "--max-attempts",
    "1",
    "--output",
    out,
    "--errors",
    errs,
  ]);
  expect(r.code).toBe(0);
  expect(readJsonl(out).map((o) => o.id).sort()).toEqual(lines(n, "q").map((l) => l.id).sort());
  expect(readJsonl(errs)).toEqual([]);
  const rejected = mock.stats().rejected429;
  expect(rejected).toBeGreaterThan(0);
  // With one attempt allowed, an item survived its 429s only because they were absorbed.
  const summary = /(\d+) quota 429s absorbed/.exec(r.stderr);
  expect(Number(summary?.[1])).toBe(rejected);
  expect(r.stderr).toMatch(/rate: configured 20\.0 · settled at [\d.]+ \(lowest [\d.]+\)/);
  const settled = Number(/settled at ([\d.]+)/.exec(r.stderr)![1]);
  expect(settled).toBeLessThan(20);
}, 30_000);

test("cli stops on a spent daily quota with exit 3, says when it resets, and resumes", async () => {
  mock = await startMockProvider({ latencyMs: 10, dailyQuota: 8 });
  const n = 40;
  const input = file("d.jsonl", lines(n, "d"));
  const out = path.join(dir, "d-out.jsonl");
  const errs = path.join(dir, "d-errors.jsonl");
  const args = [
    "run",
    input,
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "20",
    "--output",
    out,
    "--errors",
    errs,
  ];
  const r = await cli(args);
  expect(r.code).toBe(3);
  expect(r.stderr).toContain("the daily quota");
  expect(r.stderr).toMatch(/resets in \S+ \(about \d{4}-\d\d-\d\dT/);
  expect(r.stderr).toContain("resume after the reset with:");
  const answered = readJsonl(out);
  expect(answered.length).toBe(8);
  expect(readJsonl(errs)).toEqual([]);
  // It stopped at once instead of spinning through the rest: a few requests past the quota.
  expect(mock.stats().count).toBeLessThan(8 + 10);
  expect(r.stderr).not.toContain(KEY);

  // The quota resets (a fresh provider); --resume sends exactly what is missing.
  await mock.close();
  mock = await startMockProvider({ latencyMs: 10 });
  const resumed = await cli([...args.slice(0, 5), `${mock.url}/v1`, ...args.slice(6), "--resume"]);
  expect(resumed.code).toBe(0);
  const ids = readJsonl(out).map((o) => o.id);
  expect(ids.length).toBe(n);
  expect(new Set(ids).size).toBe(n);
  expect(mock.stats().count).toBe(n - 8);
}, 30_000);

test("gemini: a PerDay quotaId stops the run as a spent daily quota", async () => {
  mock = await startMockProvider({ latencyMs: 10, dailyQuota: 3 });
  const input = file(
    "g.jsonl",
    Array.from({ length: 10 }, (_, i) => ({
      key: `g${i}`,
      request: { contents: [{ role: "user", parts: [{ text: `q ${i}` }] }] },
    })),
  );
  const out = path.join(dir, "g-out.jsonl");
  const r = await cli(
    ["run", input, "--provider", "gemini", "--rate-limit", "10", "--output", out],
    { GEMINI_BASE_URL: mock.url },
  );
  expect(r.code).toBe(3);
  expect(r.stderr).toContain("GenerateRequestsPerDayPerProjectPerModel");
  expect(readJsonl(out).length).toBe(3);
}, 30_000);

for (const provider of ["openai", "gemini"] as const) {
  test(
    `cli --tpm keeps within a ${provider} token quota counted the provider's way: no token 429`,
    async () => {
      // A quota over any 10 s (the tpm the tool is told, per minute), charged at admission as the
      // provider counts it: OpenAI the request body / 4 plus max tokens, Gemini input tokens only.
      // Prompts of 96 to 960 characters, no rate-limit headers; the run needs more than one
      // window's worth, so a burst at the start would draw 429s.
      const tpm = provider === "openai" ? 90_000 : 48_000;
      mock = await startMockProvider({
        latencyMs: 20,
        tokenQuota: {
          tokens: tpm / 6,
          windowMs: 10_000,
          count: provider === "openai" ? "request" : "input",
        },
      });
      const n = 80;
      const input = file(
        `tpm-${provider}.jsonl`,
        Array.from({ length: n }, (_, i) => ({
          id: `t${i}`,
          prompt: "lorem ipsum ".repeat(8 + ((i * 7) % 10) * 8),
          max_tokens: 60,
        })),
      );
      const out = path.join(dir, `tpm-${provider}-out.jsonl`);
      const errs = path.join(dir, `tpm-${provider}-errors.jsonl`);
      const r = await cli([
        "run",
        input,
        "--provider",
        provider,
        "--base-url",
        provider === "openai" ? `${mock.url}/v1` : mock.url,
        "--rate-limit",
        "50",
        "--tpm",
        String(tpm),
        "--output",
        out,
        "--errors",
        errs,
      ]);
      expect(r.code).toBe(0);
      expect(readJsonl(out)).toHaveLength(n);
      const used = mock.tokensAccepted().reduce((sum, a) => sum + a.tokens, 0);
      expect(used).toBeGreaterThan(tpm / 6); // more than one window's worth
      expect(mock.arrivals().filter((a) => a.status === 429)).toEqual([]);
      // And the quota is used, not left idle by charges larger than the provider's (Gemini does
      // not count the output): tokens per ms over the run against the quota's, by the mock's
      // own times.
      const accepted = mock.tokensAccepted();
      const spanMs = accepted[accepted.length - 1].t - accepted[0].t;
      const fill = (used - accepted[accepted.length - 1].tokens) / spanMs / (tpm / 60_000);
      expect(fill).toBeGreaterThan(0.85);
    },
    60_000,
  );
}
