/**
 * The CLI end to end: a real subprocess (`bun cli.ts run …`) against the mock provider server
 * on 127.0.0.1, checking files, exit codes, conservation of lines, resume and interruption.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { MAX_RATE_LIMIT_RETRIES } from "../src/run.ts";
import { cliHarness, readJsonl, ROOT } from "./_cli.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
let mock: MockProvider;
let dir: string;

beforeAll(async () => {
  mock = await startMockProvider({ latencyMs: 30 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-cli-"));
});
afterAll(async () => {
  await mock.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const { spawnCli, cli, file } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS/,
  detached: true, // its own process group, so a test can signal it the way a terminal does
});

const openai = (
  extra: string[] = [],
) => ["--provider", "openai", "--base-url", `${mock.url}/v1`, ...extra];

test("cli --help and --version exit 0", async () => {
  const help = await cli(["--help"]);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain("model-fine-tuner run <input.jsonl | ->");
  expect(help.stdout).toContain("--rate-limit");
  const version = await cli(["--version"]);
  expect(version.code).toBe(0);
  expect(version.stdout).toMatch(/^model-fine-tuner \d+\.\d+\.\d+/);
});

test("cli run on the mock provider answers every line of the shipped example", async () => {
  const out = path.join(dir, "example-out", "output.jsonl");
  const r = await cli([
    "run",
    path.join(ROOT, "examples/prompts.jsonl"),
    "--provider",
    "mock",
    "--output",
    out,
  ]);
  expect(r.code).toBe(0);
  const input = fs.readFileSync(path.join(ROOT, "examples/prompts.jsonl"), "utf8").trim().split(
    "\n",
  );
  const output = readJsonl(out);
  expect(output.length).toBe(input.length);
  expect(readJsonl(path.join(dir, "example-out", "output.errors.jsonl"))).toEqual([]);
  expect(r.stderr).toContain(`ok ${input.length}`);
});

test("cli run keeps every line in exactly one file, with faults, bad lines and duplicates", async () => {
  const hint = "[[mock:retry-after-ms=5]]";
  const lines = [
    { id: "ok1", prompt: "plain question one" },
    { id: "flaky", prompt: `[[mock:fail=1:500]]${hint} flaky once` },
    { id: "reset", prompt: `[[mock:fail=2:reset]] reset twice` },
    { id: "badjson", prompt: `[[mock:fail=1:badjson]]${hint} garbled once` },
    { id: "bad400", prompt: "[[mock:400]] always 400" },
    { id: "always429", prompt: `[[mock:429]]${hint} always 429` },
    { id: "boom", prompt: "[[mock:503]] always 503" },
    "this is not json",
    { id: "unknown", question: "no known format" },
    { id: "badtemp", prompt: "x", temperature: "hot" },
    { id: "ok1", prompt: "duplicate id" },
    {
      custom_id: "oa-1",
      method: "POST",
      url: "/v1/chat/completions",
      body: { model: "m", messages: [{ role: "user", content: "hi" }] },
    },
    {
      key: "g-1",
      request: { contents: [{ role: "user", parts: [{ text: "hello gemini line" }] }] },
    },
    { messages: [{ role: "user", content: "no id, line number is the id" }] },
  ];
  const input = file("faults.jsonl", lines);
  const out = path.join(dir, "faults-out.jsonl");
  const errs = path.join(dir, "faults-errors.jsonl");
  const r = await cli([
    "run",
    input,
    ...openai(["--backoff", "10ms", "--output", out, "--errors", errs]),
  ], {
    OPENAI_API_KEY: KEY,
  });
  expect(r.code).toBe(1);
  const output = readJsonl(out);
  const errors = readJsonl(errs);
  expect(output.length + errors.length).toBe(lines.length);
  const okIds = output.map((o) => String(o.custom_id ?? o.key ?? o.id));
  expect(okIds.sort()).toEqual(["14", "badjson", "flaky", "g-1", "oa-1", "ok1", "reset"].sort());
  const byId = Object.fromEntries(output.map((o) => [String(o.custom_id ?? o.key ?? o.id), o]));
  expect(byId.flaky.attempts).toBe(2);
  expect(byId.reset.attempts).toBe(3);
  expect((byId["oa-1"] as { response: { status_code: number } }).response.status_code).toBe(200);
  expect(String((byId["oa-1"] as { id: string }).id)).toStartWith("batch_req_");
  expect(byId["g-1"].response).toHaveProperty("candidates");
  const err = (id: string) => errors.find((e) => e.id === id)!.error as Record<string, unknown>;
  expect(err("bad400")).toMatchObject({ status: 400, attempts: 1, line: 5 });
  // Quota 429s are absorbed (waiting, slowing down) up to MAX_RATE_LIMIT_RETRIES before they
  // count as attempts; then the usual 3 attempts apply.
  expect(err("always429")).toMatchObject({
    status: 429,
    attempts: MAX_RATE_LIMIT_RETRIES + 3,
    code: "rate_limit_exceeded",
  });
  expect(err("boom")).toMatchObject({ status: 503, attempts: 3 });
  const notJson = errors.find((e) => e.raw === "this is not json")!;
  expect(notJson.error).toMatchObject({ code: "invalid_json", line: 8 });
  expect(err("unknown")).toMatchObject({ code: "unknown_format", line: 9 });
  expect(String(err("badtemp").message)).toMatch(/line 10.*temperature/);
  expect(errors.find((e) => e.prompt === "duplicate id")!.error).toMatchObject({
    code: "duplicate_id",
    line: 11,
  });
  // The key is sent to the provider and never written anywhere.
  for (
    const text of [fs.readFileSync(out, "utf8"), fs.readFileSync(errs, "utf8"), r.stderr, r.stdout]
  ) {
    expect(text).not.toContain(KEY);
  }
});

test("cli run errors.jsonl retries just the failures and nothing is lost", async () => {
  const input = file("retry-in.jsonl", [
    { id: "a", prompt: "fine" },
    { id: "b", prompt: "[[mock:fail=1:400]] fails the first time only" },
  ]);
  const out = path.join(dir, "retry-out.jsonl");
  const first = await cli(["run", input, ...openai(["--output", out])], { OPENAI_API_KEY: KEY });
  expect(first.code).toBe(1);
  const errorsFile = path.join(dir, "retry-out.errors.jsonl");
  expect(readJsonl(errorsFile).map((e) => e.id)).toEqual(["b"]);
  const second = await cli(["run", errorsFile, ...openai(["--output", out, "--resume"])], {
    OPENAI_API_KEY: KEY,
  });
  expect(second.code).toBe(0);
  expect(readJsonl(out).map((o) => o.id).sort()).toEqual(["a", "b"]);
  expect(readJsonl(errorsFile)).toEqual([]);
  expect(fs.readdirSync(dir).filter((f) => f.includes(".retry-"))).toEqual([]);
});

test("cli run talks to Gemini's wire format and --auto picks the provider from the lines", async () => {
  const input = file("gemini.jsonl", [
    { key: "k1", request: { contents: [{ role: "user", parts: [{ text: "one" }] }] } },
    {
      key: "k2",
      request: { contents: [{ parts: [{ text: "two" }] }], generationConfig: { temperature: 0 } },
    },
  ]);
  const out = path.join(dir, "gemini-out.jsonl");
  const r = await cli(["run", input, "--auto", "--output", out], {
    GEMINI_API_KEY: KEY,
    GEMINI_BASE_URL: mock.url,
  });
  expect(r.stderr).toContain("auto: provider gemini");
  expect(r.code).toBe(0);
  const output = readJsonl(out);
  expect(output.map((o) => o.key).sort()).toEqual(["k1", "k2"]);
  const text = (output[0].response as { candidates: { content: { parts: { text: string }[] } }[] })
    .candidates[0]
    .content.parts[0].text;
  expect(text).toStartWith("mock answer: ");
});

test("cli reads stdin and writes stdout with -", async () => {
  const r = await cli(
    ["run", "-", "--provider", "mock", "--output", "-", "--quiet"],
    {},
    '{"prompt":"from stdin"}\n',
  );
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ id: "1", text: "mock answer: from stdin" });
  expect(r.stderr).toBe("");
});

test("cli --dry-run validates and prints the plan without sending", async () => {
  const before = mock.stats().count;
  const input = file("dry.jsonl", [{ prompt: "a" }, { prompt: "b" }, "{broken"]);
  const r = await cli(["run", input, ...openai(["--rate-limit", "0.5", "--dry-run"])], {
    OPENAI_API_KEY: KEY,
  });
  expect(r.code).toBe(1);
  const plan = JSON.parse(r.stdout);
  expect(plan).toMatchObject({
    items: 2,
    invalid_lines: 1,
    provider: "openai",
    rate_per_s: 0.5,
    estimated_duration: "4.0s",
  });
  expect(r.stderr).toContain("line 3: not valid JSON");
  expect(mock.stats().count).toBe(before);
});

test("cli exits 2 with one clear line on usage and configuration errors", async () => {
  const input = file("usage.jsonl", [{ prompt: "a" }]);
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["run", input, "--provider", "openai"], {}, /OPENAI_API_KEY is not set/],
    [["run", input, "--provider", "gemini"], {}, /GEMINI_API_KEY \(or GOOGLE_API_KEY\) is not set/],
    [["run", input, "--provider", "bard"], {}, /unknown provider 'bard'/],
    [
      ["run", path.join(dir, "missing.jsonl"), "--provider", "mock"],
      {},
      /cannot read .*missing\.jsonl: ENOENT/,
    ],
    [
      ["run", input, "--provider", "mock", "--rate-limit", "0"],
      {},
      /--rate-limit must be a number above 0/,
    ],
    [
      ["run", input, "--provider", "mock", "--timeout", "soon"],
      {},
      /--timeout: expected a duration/,
    ],
    [["run", input, "--provider", "mock", "--bogus"], {}, /Unknown option '--bogus'/],
    [["run", input], {}, /cannot pick a provider/],
    [["fly"], {}, /unknown command 'fly'/],
  ];
  for (const [args, env, message] of cases) {
    const r = await cli(args, env);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  }
  const out = file("exists.jsonl", [{ id: 1, text: "previous" }]);
  const r = await cli(["run", input, "--provider", "mock", "--output", out]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("already exists: pass --resume");
  expect(fs.readFileSync(out, "utf8")).toContain("previous");
});

async function waitForLines(p: string, n: number, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (fs.existsSync(p) && fs.readFileSync(p, "utf8").split("\n").length > n) return;
    await Bun.sleep(25);
  }
  throw new Error(`${p} did not reach ${n} lines`);
}

test("cli resume after the process is killed mid-run answers each id exactly once", async () => {
  const n = 120;
  const input = file(
    "kill.jsonl",
    Array.from({ length: n }, (_, i) => ({ id: `k${i}`, prompt: `question ${i}` })),
  );
  const out = path.join(dir, "kill-out.jsonl");
  const args = [
    "run",
    input,
    "--provider",
    "mock",
    "--mock-latency",
    "200ms",
    "--rate-limit",
    "40",
    "--output",
    out,
    "--quiet",
  ];
  const p = spawnCli(args);
  await waitForLines(out, 20);
  // SIGKILL the whole process group: no handler runs, as in a crash or a power cut.
  process.kill(-p.pid, "SIGKILL");
  await p.exited;
  const partial = readJsonl(out).length;
  expect(partial).toBeGreaterThan(0);
  expect(partial).toBeLessThan(n);
  // A crash may leave a half-written last line; simulate the worst case.
  fs.appendFileSync(out, '{"id":"k9999","text":"cut sho');
  const r = await cli([...args.filter((a) => a !== "--quiet"), "--resume"]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("removed an unfinished last line");
  const ids = readJsonl(out).map((o) => o.id);
  expect(ids.length).toBe(n);
  expect(new Set(ids).size).toBe(n);
}, 30_000);

test("cli Ctrl-C stops dispatching, keeps every answer and says how to resume", async () => {
  const n = 200;
  const input = file(
    "int.jsonl",
    Array.from({ length: n }, (_, i) => ({ id: `c${i}`, prompt: `question ${i}` })),
  );
  const out = path.join(dir, "int-out.jsonl");
  const args = ["run", input, ...openai(["--rate-limit", "100", "--output", out])];
  const p = spawnCli(args, { OPENAI_API_KEY: KEY });
  await waitForLines(out, 10);
  process.kill(-p.pid, "SIGINT");
  const [stderr, code] = await Promise.all([new Response(p.stderr!).text(), p.exited]);
  expect(code).toBe(130);
  expect(stderr).toContain("stopping: no new requests");
  expect(stderr).toContain("--resume");
  const done = readJsonl(out).length;
  expect(done).toBeLessThan(n);
  const r = await cli([...args, "--resume"], { OPENAI_API_KEY: KEY });
  expect(r.code).toBe(0);
  const ids = readJsonl(out).map((o) => o.id);
  expect(ids.length).toBe(n);
  expect(new Set(ids).size).toBe(n);
}, 30_000);

test(
  "cli stops at once on billing and auth failures, exit 3, everything unsent resumable",
  async () => {
    const n = 60;
    const lines = Array.from({ length: n }, (_, i) => ({
      id: `b${i}`,
      prompt: i === 5 ? "[[mock:insufficient_quota]] out of credit" : `question ${i}`,
    }));
    const input = file("billing.jsonl", lines);
    const out = path.join(dir, "billing-out.jsonl");
    const errs = path.join(dir, "billing-errors.jsonl");
    const before = mock.stats().count;
    const r = await cli([
      "run",
      input,
      ...openai(["--rate-limit", "20", "--output", out, "--errors", errs]),
    ], {
      OPENAI_API_KEY: KEY,
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("no quota or credit left");
    expect(r.stderr).toContain("insufficient_quota");
    expect(r.stderr).toContain("--resume");
    // It stopped within a few slots of the failure, not after spinning through every line.
    expect(mock.stats().count - before).toBeLessThan(15);
    expect(readJsonl(errs)).toEqual([]);
    expect(readJsonl(out).length).toBeLessThan(n);

    const guarded = await startMockProvider({ requireKey: "the-right-key" });
    try {
      const input2 = file(
        "auth.jsonl",
        Array.from({ length: n }, (_, i) => ({ id: `a${i}`, prompt: `q ${i}` })),
      );
      const r2 = await cli(
        [
          "run",
          input2,
          "--provider",
          "openai",
          "--base-url",
          `${guarded.url}/v1`,
          "--rate-limit",
          "20",
          "--output",
          path.join(dir, "auth-out.jsonl"),
        ],
        { OPENAI_API_KEY: KEY },
      );
      expect(r2.code).toBe(3);
      expect(r2.stderr).toContain("the API key or its project was refused");
      expect(r2.stderr).not.toContain(KEY);
      expect(guarded.stats().count).toBeLessThan(10);
    } finally {
      await guarded.close();
    }
  },
  30_000,
);
