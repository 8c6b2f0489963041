/**
 * The CLI end to end against the mock provider answering the way Gemini and OpenAI really do:
 * stops after the last line, misconfigured runs, answers without text, translated finish reasons
 * and reasoning-model parameters. Exit codes, stderr and both files are checked.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { cliHarness, readJsonl } from "./_cli.ts";

/** Made-up keys for this run only (keys never live in the source). */
const OPENAI_KEY = `test-key-${crypto.randomUUID()}`;
const GEMINI_KEY = `test-key-${crypto.randomUUID()}`;
const WRONG_GEMINI_KEY = `wrong-key-${crypto.randomUUID()}`;
let mock: MockProvider;
let strict: MockProvider;
let dir: string;

beforeAll(async () => {
  mock = await startMockProvider({ latencyMs: 30 });
  // A provider that knows only its real models.
  strict = await startMockProvider({
    latencyMs: 30,
    knownModels: ["gpt-5-mini", "gemini-2.5-flash"],
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-real-"));
});
afterAll(async () => {
  await mock.close();
  await strict.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const { cli, file } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS/,
});

type Shape = "openai" | "gemini";
const KEYS = { OPENAI_API_KEY: OPENAI_KEY, GEMINI_API_KEY: GEMINI_KEY };
const via = (shape: Shape, m: MockProvider = mock) =>
  shape === "openai"
    ? ["--provider", "openai", "--base-url", `${m.url}/v1`]
    : ["--provider", "gemini", "--base-url", m.url];

/** Runs `lines` through the CLI; returns the result and the two files' records. */
async function run(name: string, lines: unknown[], args: string[]) {
  const input = file(`${name}.jsonl`, lines);
  const output = path.join(dir, `${name}-out.jsonl`);
  const errors = path.join(dir, `${name}-errors.jsonl`);
  const argv = ["run", input, "--output", output, "--errors", errors, ...args];
  const r = await cli(argv, KEYS);
  return { ...r, argv, output, errors, out: readJsonl(output), errs: readJsonl(errors) };
}

for (const shape of ["openai", "gemini"] as const) {
  test(
    `${shape}: a billing stop on the last line, after the whole input was read, exits 3 with the reason and the resume command, even with --quiet`,
    async () => {
      const lines = Array.from({ length: 5 }, (_, i) => ({
        id: `f${i}`,
        prompt: i === 4
          ? `[[mock:fail=1:${shape === "openai" ? "insufficient_quota" : "limit0"}]] last`
          : `q ${i}`,
      }));
      const r = await run(`last-${shape}`, lines, [...via(shape), "--rate-limit", "1000", "-q"]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(
        shape === "openai"
          ? "stopped: the account has no quota or credit left"
          : "stopped: gemini-2.5-flash has no quota at all on this project's tier (limit: 0",
      );
      expect(r.stderr).toContain(shape === "openai" ? "insufficient_quota" : "limit: 0");
      expect(r.stderr).toContain("--resume");
      // The four answered lines are in the output; the fifth is in neither file: resumable.
      expect(r.out.map((o) => o.id).sort()).toEqual(["f0", "f1", "f2", "f3"]);
      expect(r.errs).toEqual([]);
      const again = await cli([...r.argv.filter((a) => a !== "-q"), "--resume"], KEYS);
      expect(again.code).toBe(0);
      expect(readJsonl(r.output).map((o) => o.id).sort()).toEqual(["f0", "f1", "f2", "f3", "f4"]);
    },
    30_000,
  );
}

test(
  "gemini: a per-day violation named second among three is a daily stop (exit 3, reset time)",
  async () => {
    const lines = Array.from({ length: 4 }, (_, i) => ({
      id: `d${i}`,
      prompt: i === 3 ? "[[mock:daily_second]] q" : `q ${i}`,
    }));
    const before = mock.stats().count;
    const r = await run("daily-second", lines, [...via("gemini"), "--rate-limit", "1000"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("the daily quota GenerateRequestsPerDayPerProjectPerModel is spent");
    expect(r.stderr).toContain("It resets in");
    expect(r.stderr).toContain("resume after the reset");
    // It did not wait the 40 s hint and try again: one request for that line.
    expect(mock.stats().count - before).toBe(4);
    expect(r.out.length).toBe(3);
    expect(r.errs).toEqual([]);
  },
  30_000,
);

test(
  "gemini: a 429 without any detail is a rate limit: waited out, retried, answered",
  async () => {
    const r = await run("no-detail", [{ id: "n1", prompt: "[[mock:fail=1:quota_no_detail]] q" }], [
      ...via("gemini"),
      "--backoff",
      "50ms",
    ]);
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(1);
    expect(r.out[0].attempts).toBe(2);
    expect(r.stderr).toContain("1 quota 429s absorbed");
  },
  30_000,
);

for (const shape of ["openai", "gemini"] as const) {
  test(
    `${shape}: an unknown model stops after the first request (exit 3, the model named, nothing written)`,
    async () => {
      const lines = Array.from({ length: 200 }, (_, i) => ({ id: `m${i}`, prompt: `q ${i}` }));
      const model = shape === "openai" ? "gpt-5-mimi" : "gemini-2.5-flashy";
      const before = strict.stats().count;
      const r = await run(`model-${shape}`, lines, [
        ...via(shape, strict),
        "--model",
        model,
        "--rate-limit",
        "1000",
      ]);
      expect(r.code).toBe(3);
      expect(strict.stats().count - before).toBe(1);
      expect(r.stderr).toContain("refused the run's configuration");
      expect(r.stderr).toContain(model);
      expect(r.stderr).toContain(shape === "openai" ? "model_not_found" : "NOT_FOUND");
      expect(r.stderr).toContain("--resume");
      expect(r.out).toEqual([]);
      expect(r.errs).toEqual([]);
      // Fixed, the same command with --resume answers every line.
      const fixed = r.argv.map((
        a,
      ) => (a === model
        ? model.replace(/mimi|flashy/, (x) => x === "mimi" ? "mini" : "flash")
        : a)
      );
      const again = await cli([...fixed, "--resume"], KEYS);
      expect(again.code).toBe(0);
      expect(readJsonl(r.output).length).toBe(200);
    },
    60_000,
  );
}

test(
  "openai: when the first answers all fail the same way, the run stops after three requests",
  async () => {
    const lines = Array.from(
      { length: 200 },
      (_, i) => ({ id: `s${i}`, prompt: `[[mock:400]] ${i}` }),
    );
    const before = mock.stats().count;
    const r = await run("same-400", lines, [...via("openai"), "--rate-limit", "1000"]);
    expect(r.code).toBe(3);
    expect(mock.stats().count - before).toBe(3);
    expect(r.stderr).toContain("the first 3 answers all failed the same way");
    expect(r.out).toEqual([]);
    // The first two were item failures when they came; the third stopped the run, unsent.
    expect(r.errs.map((e) => e.id)).toEqual(["s0", "s1"]);
  },
  30_000,
);

test(
  "openai: after a success, an unknown model on one line is that line's failure, not a stop",
  async () => {
    const lines = [
      { id: "a", prompt: "fine" },
      { id: "b", prompt: "wrong model", model: "gpt-nope" },
      { id: "c", prompt: "fine too" },
    ];
    const r = await run("line-model", lines, [...via("openai", strict), "--rate-limit", "1000"]);
    expect(r.code).toBe(1);
    expect(r.out.map((o) => o.id).sort()).toEqual(["a", "c"]);
    expect(r.errs.map((e) => [e.id, (e.error as { code: string }).code])).toEqual([
      ["b", "model_not_found"],
    ]);
  },
  30_000,
);

test(
  "gemini: a wrong key (400 INVALID_ARGUMENT, API_KEY_INVALID) stops at once with exit 3",
  async () => {
    const lines = Array.from({ length: 50 }, (_, i) => ({ id: `k${i}`, prompt: `q ${i}` }));
    const guarded = await startMockProvider({ latencyMs: 30, requireKey: GEMINI_KEY });
    try {
      const input = file("badkey.jsonl", lines);
      const r = await cli([
        "run",
        input,
        ...via("gemini", guarded),
        "--output",
        path.join(dir, "badkey-out.jsonl"),
      ], { GEMINI_API_KEY: WRONG_GEMINI_KEY });
      expect(r.code).toBe(3);
      expect(r.stderr).toContain("the API key or its project was refused");
      expect(r.stderr).toContain("400 INVALID_ARGUMENT: API key not valid");
      expect(r.stderr).not.toContain(WRONG_GEMINI_KEY);
      expect(guarded.stats().count).toBe(1);
    } finally {
      await guarded.close();
    }
  },
  30_000,
);

for (const shape of ["openai", "gemini"] as const) {
  test(
    `${shape}: answers without text go to the errors file with their kind and are counted; cut answers carry finish_reason`,
    async () => {
      const lines = [
        { id: "ok", prompt: "a normal question" },
        { id: "blocked", prompt: "[[mock:blocked]] q" },
        { id: "safety", prompt: "[[mock:safety]] q" },
        { id: "thought", prompt: "[[mock:thought_cutoff]] q", max_tokens: 64 },
        { id: "refusal", prompt: "[[mock:refusal]] q" },
        { id: "flaky", prompt: "[[mock:fail=1:empty]] q" },
        { id: "cut", prompt: "a question with a long answer", max_tokens: 3 },
      ];
      const r = await run(`notext-${shape}`, lines, [...via(shape), "--backoff", "50ms"]);
      expect(r.code).toBe(1);
      const out = Object.fromEntries(r.out.map((o) => [o.id, o]));
      expect(Object.keys(out).sort()).toEqual(["cut", "flaky", "ok"]);
      expect(out.ok.finish_reason).toBe("stop");
      expect(typeof out.ok.text).toBe("string");
      expect(out.flaky.attempts).toBe(2); // an empty answer is worth one more attempt
      expect(out.cut.finish_reason).toBe("length");
      expect((out.cut.text as string).length).toBeGreaterThan(0);
      const errs = Object.fromEntries(
        r.errs.map((e) => [e.id, e.error as Record<string, unknown>]),
      );
      expect(errs.blocked.code).toBe("blocked");
      expect(errs.blocked.status).toBe(200);
      expect(errs.blocked.finish_reason).toBe("content_filter");
      expect(errs.blocked.response).toBeDefined();
      expect(errs.safety.code).toBe("blocked");
      expect(errs.thought.code).toBe("cut_off");
      expect(errs.thought.finish_reason).toBe("length");
      expect(errs.thought.message).toContain("raise max_tokens");
      // Gemini has no refusal field: its refusals come as SAFETY blocks.
      expect(errs.refusal.code).toBe(shape === "openai" ? "refused" : "blocked");
      expect(errs.blocked.attempts).toBe(1); // a block would come back the same: not retried
      const refused = shape === "openai" ? 1 : 0;
      expect(r.stderr).toContain(
        `answers without text: 4 (blocked ${
          3 - refused
        } · cut off 1 · refused ${refused} · empty 0)`,
      );
      expect(r.stderr).toContain("answers cut at max tokens with partial text: 1");
    },
    30_000,
  );
}

test(
  "an OpenAI batch line answered by Gemini keeps the real finish reason (MAX_TOKENS → length)",
  async () => {
    const lines = [{
      custom_id: "c1",
      method: "POST",
      url: "/v1/chat/completions",
      body: {
        model: "gemini-2.5-flash",
        messages: [{ role: "user", content: "tell me a long story" }],
        max_tokens: 3,
      },
    }];
    const r = await run("convert", lines, [...via("gemini")]);
    expect(r.code).toBe(0);
    const body = (r.out[0].response as { body: { choices: { finish_reason: string }[] } }).body;
    expect(body.choices[0].finish_reason).toBe("length");
  },
  30_000,
);

test(
  "openai: a reasoning model gets max_completion_tokens and no temperature, with one warning",
  async () => {
    // The mock answers like OpenAI: gpt-5 models refuse max_tokens and a temperature but 1.
    const lines = Array.from({ length: 5 }, (_, i) => ({
      id: `r${i}`,
      prompt: `q ${i}`,
      max_tokens: 200,
      temperature: 0.3,
    }));
    const r = await run("reasoning", lines, [
      ...via("openai", strict),
      "--model",
      "gpt-5-mini",
      "-q",
    ]);
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(5);
    const warnings = r.stderr.split("\n").filter((l) => l.startsWith("warning:"));
    expect(warnings).toEqual([
      "warning: gpt-5-mini takes no temperature (got 0.3): dropped from every request to it, the model's default applies",
    ]);
    // A plain OpenAI-compatible model keeps max_tokens and temperature as they are.
    const plain = await run("plain", lines, [...via("openai"), "--model", "llama3", "-q"]);
    expect(plain.code).toBe(0);
    expect(plain.stderr).toBe("");
  },
  30_000,
);
