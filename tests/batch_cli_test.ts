/**
 * Batch mode end to end: the CLI in a subprocess (`bun cli.ts run --mode batch …`, `status`,
 * `cancel`) against the mock batch API on 127.0.0.1, with state transitions in milliseconds.
 * @module
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type MockBatchOptions, type MockBatchServer, startMockBatch } from "./mocks/mock_batch.ts";
import { cliHarness, readJsonl } from "./_cli.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-batch-cli-"));
let mock: MockBatchServer | undefined;

afterEach(async () => {
  await mock?.close();
  mock = undefined;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function serve(options: MockBatchOptions = {}): Promise<MockBatchServer> {
  mock = await startMockBatch({
    validatingMs: 20,
    runningMs: 60,
    finalizingMs: 10,
    cancellingMs: 10,
    ...options,
  });
  return mock;
}

const { spawnCli, cli, file: input } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS|^MFT_/,
  env: { MFT_BATCH_POLL_INTERVAL: "10ms" },
  detached: true,
});

const prompts = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ id: `${tag}${i}`, prompt: `question ${tag}${i}` }));

const ids = (records: Record<string, unknown>[]) =>
  records.map((r) => String(r.custom_id ?? r.key ?? r.id));

const openai = (m: MockBatchServer, out: string) => [
  "--provider",
  "openai",
  "--base-url",
  `${m.url}/v1`,
  "--mode",
  "batch",
  "--output",
  out,
];

test("cli run --mode batch puts every line in exactly one file, through split and expired batches", async () => {
  const m = await serve({ itemErrorRate: 0.1, expire: [2], expireAnswered: 0.5 });
  const lines = [...prompts(30, "a"), "not json"];
  const file = input("split.jsonl", lines);
  const out = path.join(dir, "split", "out.jsonl");
  const errors = path.join(dir, "split", "out.errors.jsonl");
  const r = await cli(["run", file, ...openai(m, out)], {
    OPENAI_API_KEY: KEY,
    MFT_BATCH_MAX_ITEMS: "10",
  });
  expect(r.code).toBe(1);
  const ok = readJsonl(out);
  const failed = readJsonl(errors);
  expect(ok.length + failed.length).toBe(lines.length);
  expect(new Set(ids(ok)).size).toBe(ok.length);
  expect(failed.some((e) => e.raw === "not json")).toBe(true);
  expect(ok[0]).toMatchObject({ provider: "openai", attempts: expect.any(Number) });
  expect(m.stats()).toMatchObject({ batches: 4, resubmitted: [], answeredTwice: [] });
  expect(r.stderr).toContain("sent again as p3");
  expect(r.stderr).toMatch(/saving ≈50%/);
  const jobFile = fs.readFileSync(`${out}.batch.json`, "utf8");
  expect(JSON.parse(jobFile)).toMatchObject({ state: "done", provider: "openai", items: 30 });
  expect(fs.existsSync(`${out}.batch`)).toBe(false);
  for (const text of [jobFile, r.stderr, r.stdout, fs.readFileSync(out, "utf8")]) {
    expect(text).not.toContain(KEY);
  }
  const status = await cli(["status", out], { OPENAI_API_KEY: KEY });
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/^job mft-\w+ · openai · model gpt-5-mini · done · age /);
  expect(status.stdout).toContain("p1   batch_");
  expect(status.stdout).toContain("sent again 5");
});

test("cli run --mode batch through Gemini writes Gemini batch records", async () => {
  const m = await serve({ geminiStates: "JOB" });
  const lines = [0, 1, 2].map((i) => ({
    key: `g${i}`,
    request: { contents: [{ role: "user", parts: [{ text: `gemini ${i}` }] }] },
  }));
  const out = path.join(dir, "gemini-out.jsonl");
  const r = await cli(["run", input("gemini.jsonl", lines), "--mode", "batch", "-o", out], {
    GEMINI_API_KEY: KEY,
    GEMINI_BASE_URL: m.url,
  });
  expect(r.stderr).toContain("auto: provider gemini");
  expect(r.code).toBe(0);
  const ok = readJsonl(out);
  expect(ids(ok).sort()).toEqual(["g0", "g1", "g2"]);
  expect(ok[0].response).toHaveProperty("candidates");
});

test("cli re-attaches after a crash between 'batch created' and the job file update", async () => {
  const victim = { pid: 0 };
  const m = await serve({
    onCreate: async (b) => {
      if (b.ordinal !== 2 || victim.pid === 0) return;
      // The provider has the batch; the client dies before it hears back, as in a power cut.
      process.kill(-victim.pid, "SIGKILL");
      await Bun.sleep(100);
    },
  });
  const file = input("crash.jsonl", prompts(30, "c"));
  const out = path.join(dir, "crash-out.jsonl");
  const args = ["run", file, ...openai(m, out)];
  const extra = { OPENAI_API_KEY: KEY, MFT_BATCH_MAX_ITEMS: "10" };
  const p = spawnCli(args, extra);
  victim.pid = p.pid;
  expect(await p.exited).not.toBe(0);
  const job = JSON.parse(fs.readFileSync(`${out}.batch.json`, "utf8"));
  expect(job.parts[1]).toMatchObject({ state: "creating", createSent: true });
  expect(job.parts[1].batchId).toBeUndefined();

  const refused = await cli(args, extra);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("is still running for");
  expect(refused.stderr).toContain("--resume");

  const resumed = await cli([...args, "--resume"], extra);
  expect(resumed.code).toBe(0);
  expect(resumed.stderr).toMatch(/p1: re-attached to batch_/);
  expect(m.batches()).toHaveLength(3);
  expect([...m.submissions().values()].every((n) => n === 1)).toBe(true);
  const ok = readJsonl(out);
  expect(ok).toHaveLength(30);
  expect(new Set(ids(ok)).size).toBe(30);
});

test("cli --deadline cancels a stuck batch and finishes its items through realtime", async () => {
  const m = await serve({ stuck: [1] });
  const file = input("stuck.jsonl", prompts(12, "s"));
  const out = path.join(dir, "stuck-out.jsonl");
  const r = await cli(["run", file, ...openai(m, out), "--deadline", "400ms"], {
    OPENAI_API_KEY: KEY,
    MFT_BATCH_MAX_ITEMS: "6",
  });
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("deadline reached: cancelling 1 open batch");
  expect(r.stderr).toContain("realtime: 6 items through openai");
  expect(m.stats()).toMatchObject({ realtimeRequests: 6, realtimeRepeats: [] });
  const ok = readJsonl(out);
  expect(new Set(ids(ok))).toEqual(new Set(prompts(12, "s").map((p) => p.id)));
  expect(ok).toHaveLength(12);
  expect(r.stderr).toMatch(/6 of 12 items at the batch price .*saving ≈25%/);
});

test("cli Ctrl-C detaches with exit 130; status, cancel, then --resume writes what never ran as errors", async () => {
  const m = await serve({ validatingMs: 600_000 });
  const file = input("detach.jsonl", prompts(5, "d"));
  const out = path.join(dir, "detach-out.jsonl");
  const args = ["run", file, ...openai(m, out)];
  const extra = { OPENAI_API_KEY: KEY };
  const p = spawnCli(args, extra);
  const end = Date.now() + 10_000;
  while (m.batches().length === 0 && Date.now() < end) await Bun.sleep(10);
  await Bun.sleep(50);
  process.kill(-p.pid, "SIGINT");
  const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  expect(code).toBe(130);
  expect(stderr).toContain("the batches keep running at the provider");
  expect(stderr).toContain(`model-fine-tuner cancel ${out}`);

  const status = await cli(["status", out], extra);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/p0 +batch_\w+ +validating +5 items · 0\/5 done.*\(live\)/);

  const cancel = await cli(["cancel", out], extra);
  expect(cancel.code).toBe(0);
  expect(cancel.stdout).toContain("cancel sent for 1 batch");

  const resumed = await cli([...args, "--resume"], extra);
  expect(resumed.code).toBe(1);
  const errors = readJsonl(path.join(dir, "detach-out.errors.jsonl"));
  expect(errors.map((e) => (e.error as { code: string }).code)).toEqual(
    Array(5).fill("batch_cancelled"),
  );
  expect(m.batches()).toHaveLength(1);
});

test("cli --mode auto keeps small inputs on the realtime path", async () => {
  const m = await serve();
  const file = input("auto.jsonl", prompts(4, "r"));
  const out = path.join(dir, "auto-out.jsonl");
  const r = await cli(
    ["run", file, "--provider", "openai", "--base-url", `${m.url}/v1`, "--mode", "auto", "-o", out],
    { OPENAI_API_KEY: KEY },
  );
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("auto: 4 lines <= 10000: realtime");
  expect(m.stats()).toMatchObject({ batches: 0, realtimeRequests: 4 });
  expect(readJsonl(out)).toHaveLength(4);
  expect(fs.existsSync(`${out}.batch.json`)).toBe(false);
});

test("cli batch flags and commands exit 2 with one clear line on misuse", async () => {
  const file = input("misuse.jsonl", prompts(1, "x"));
  const cases: [string[], RegExp][] = [
    [
      ["run", file, "--provider", "mock", "--mode", "fast"],
      /--mode must be realtime, batch or auto/,
    ],
    [["run", file, "--provider", "mock", "--deadline", "1h"], /--deadline needs --mode batch/],
    [
      ["run", file, "--provider", "mock", "--mode", "batch", "--deadline", "soon"],
      /--deadline: expected a duration/,
    ],
    [
      ["run", file, "--provider", "mock", "--mode", "batch"],
      /batch mode needs --provider openai or gemini/,
    ],
    [
      [
        "run",
        file,
        "--provider",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--mode",
        "batch",
        "-o",
        "-",
      ],
      /needs an output file/,
    ],
    [["status", path.join(dir, "nothing.jsonl")], /no batch job for .*nothing\.jsonl/],
    [["cancel"], /cancel takes the output file/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args, { OPENAI_API_KEY: KEY });
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  }
  expect(fs.readFileSync(file, "utf8")).toContain("x0");
});
