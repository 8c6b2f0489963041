/**
 * Quota benchmark (issue "Quota-aware rate"): the real CLI against the mock provider server
 * enforcing a provider quota, each in its own process.
 *
 * 1. Provider quota 20 req/s (sliding 1 s window), tool at 40 req/s, 2,000 items: every item in
 *    output, the accepted rate settles within 10 % under the quota, 429s under 5 % of requests.
 * 2. The same with `--rate-limit auto` (no rate given).
 * 3. A token quota of 30,000 tokens/min with varied prompt sizes and `--tpm 30000`: no 429 after
 *    the first 10 s.
 *
 * 4. Token quotas as providers count them (issue 15), see `tokenScenarios()`: each scenario runs
 *    with this checkout's CLI and, with `--baseline DIR`, with DIR's (main's) beside it.
 * 5. (issue 17, `--patterns`) real 429 patterns, each run with this tree's CLI and, with
 *    `--baseline DIR`, with the CLI of another tree (main) side by side: see `patterns()`.
 *
 * Usage: bun scripts/bench_quota.ts [--items 2000] [--quota 20] [--rate 40] [--latency 200]
 *                                    [--tpm-items 100] [--skip-tokens] [--skip-requests]
 *                                    [--skip-token-scenarios] [--only-token-scenarios]
 *                                    [--scenario-items 400] [--baseline /path/to/main]
 *        bun scripts/bench_quota.ts --patterns [--baseline /work/main] [--only a,b] [--timeout 120]
 *                                           [--runtimes bun,deno,node] [--out FILE]
 *
 * `--runtimes` runs this tree's CLI under each runtime the way a user starts it (`bun cli.ts`,
 * `deno run -A cli.ts`, the packed npm package's bin on Node), side by side: a run's figures hold
 * only on the runtimes they were measured on.
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { maxPerWindow } from "../tests/mocks/mock_provider.ts";
import { runtimeBinary } from "./_bench_util.ts";
import { prepareClients } from "./_rate_clients.ts";

const ROOT = path.resolve(import.meta.dirname ?? ".", "..");
const BUN = process.execPath;

const { values } = parseArgs({
  options: {
    items: { type: "string", default: "2000" },
    quota: { type: "string", default: "20" },
    rate: { type: "string", default: "40" },
    latency: { type: "string", default: "200" },
    "tpm-items": { type: "string", default: "100" },
    "skip-tokens": { type: "boolean", default: false },
    "skip-requests": { type: "boolean", default: false },
    "skip-token-scenarios": { type: "boolean", default: false },
    "only-token-scenarios": { type: "boolean", default: false },
    "scenario-items": { type: "string", default: "400" },
    baseline: { type: "string" },
    // issue 17
    patterns: { type: "boolean", default: false },
    only: { type: "string" },
    timeout: { type: "string", default: "120" },
    runtimes: { type: "string", default: "bun" },
    out: { type: "string", default: "bench-results/quota_patterns.md" },
  },
});
const ITEMS = Number(values.items);
const QUOTA = Number(values.quota);
const RATE = Number(values.rate);
const LATENCY = Number(values.latency);

interface Arrival {
  t: number;
  status: number;
}

async function startMock(args: string[]): Promise<{ url: string; stop: () => void }> {
  const child = Bun.spawn([
    BUN,
    path.join(ROOT, "scripts/start_mock_provider.ts"),
    "--port",
    "0",
    ...args,
  ], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("mock provider exited before printing its URL");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const { url } = JSON.parse(text.split("\n")[0]);
  return { url, stop: () => child.kill() };
}

async function arrivals(url: string): Promise<Arrival[]> {
  const body = await (await fetch(`${url}/__mock/arrivals`)).json() as { arrivals: Arrival[] };
  return body.arrivals;
}

async function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string; ms: number }> {
  const started = performance.now();
  const child = Bun.spawn([BUN, path.join(ROOT, "cli.ts"), "run", ...args], {
    env: { ...process.env, ...env },
    stdout: "ignore",
    stderr: "pipe",
  });
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  return { code, stderr, ms: performance.now() - started };
}

function lines(file: string): number {
  return fs.existsSync(file)
    ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).length
    : 0;
}

/** Accepted req/s over the second half of the run, when the rate has settled. */
function settledRate(all: Arrival[]): { settled: number; overall: number; maxWindow: number } {
  const ok = all.filter((a) => a.status === 200).map((a) => a.t);
  const first = ok[0];
  const last = ok[ok.length - 1];
  const mid = first + (last - first) / 2;
  const late = ok.filter((t) => t >= mid);
  return {
    settled: ((late.length - 1) * 1000) / (last - late[0]),
    overall: ((ok.length - 1) * 1000) / (last - first),
    maxWindow: maxPerWindow(ok),
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-quota-"));
const rows: string[] = [];
const env = { OPENAI_API_KEY: "bench-key" };

async function requestQuota(label: string, rateArg: string): Promise<void> {
  const mock = await startMock([
    "--latency",
    String(LATENCY),
    "--quota-requests",
    String(QUOTA),
    "--quota-window",
    "1000",
  ]);
  try {
    const input = path.join(dir, "in.jsonl");
    fs.writeFileSync(
      input,
      Array.from(
        { length: ITEMS },
        (_, i) => JSON.stringify({ id: `q${i}`, prompt: `question number ${i}` }),
      ).join("\n") +
        "\n",
    );
    const out = path.join(dir, `${label}-out.jsonl`);
    const errs = path.join(dir, `${label}-errors.jsonl`);
    const r = await runCli(
      [
        input,
        "--provider",
        "openai",
        "--base-url",
        `${mock.url}/v1`,
        "--rate-limit",
        rateArg,
        "--output",
        out,
        "--errors",
        errs,
      ],
      env,
    );
    const all = await arrivals(mock.url);
    const rejected = all.filter((a) => a.status === 429).length;
    const rate = settledRate(all);
    const summary = r.stderr.split("\n").find((l) => l.startsWith("rate:")) ?? "";
    rows.push(
      `| ${label} | ${QUOTA} | ${rateArg} | ${ITEMS} | ${lines(out)} | ${
        lines(errs)
      } | ${all.length} | ${rejected} (${((100 * rejected) / all.length).toFixed(2)} %) | ${
        rate.overall.toFixed(2)
      } | ${rate.settled.toFixed(2)} (${
        ((100 * rate.settled) / QUOTA).toFixed(1)
      } % of quota) | ${rate.maxWindow} | ${(r.ms / 1000).toFixed(1)} s | exit ${r.code} · ${
        summary.replace(/\|/g, "/")
      } |`,
    );
    console.error(rows[rows.length - 1]);
  } finally {
    mock.stop();
  }
}

async function tokenQuota(): Promise<string> {
  const TPM = 30_000;
  const n = Number(values["tpm-items"]);
  const mock = await startMock([
    "--latency",
    String(LATENCY),
    "--token-quota",
    String(TPM),
    "--token-window",
    "60000",
  ]);
  try {
    const input = path.join(dir, "tok.jsonl");
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const filler = "lorem ipsum dolor sit amet consectetur adipiscing elit ".repeat(200);
    fs.writeFileSync(
      input,
      Array.from({ length: n }, (_, i) => {
        const chars = 100 + Math.floor(rnd() * 3900); // 25..1000 prompt tokens
        return JSON.stringify({
          id: `t${i}`,
          prompt: `${i}: ${filler.slice(0, chars)}`,
          max_tokens: 50 + Math.floor(rnd() * 250),
        });
      }).join("\n") + "\n",
    );
    const out = path.join(dir, "tok-out.jsonl");
    const errs = path.join(dir, "tok-errors.jsonl");
    const r = await runCli(
      [
        input,
        "--provider",
        "openai",
        "--base-url",
        `${mock.url}/v1`,
        "--rate-limit",
        "50",
        "--tpm",
        String(TPM),
        "--output",
        out,
        "--errors",
        errs,
      ],
      env,
    );
    const all = await arrivals(mock.url);
    const t0 = all[0]?.t ?? 0;
    const late429 = all.filter((a) => a.status === 429 && a.t - t0 > 10_000).length;
    const early429 = all.filter((a) => a.status === 429 && a.t - t0 <= 10_000).length;
    return `| ${TPM} | ${n} | ${lines(out)} | ${
      lines(errs)
    } | ${all.length} | ${early429} | ${late429} | ${
      (r.ms / 1000).toFixed(1)
    } s | exit ${r.code} |`;
  } finally {
    mock.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Token scenarios (issue 15): token quotas as providers count them.
//
// The mock charges at admission the way the provider does: OpenAI the whole body's bytes / 4
// plus max tokens (`--token-count request`), Gemini the input tokens only (`--token-count
// input`), over a sliding window of 30,000 tokens per 10 s, i.e. the 180,000/min the tool is
// told with `--tpm 180000`, which must therefore not arrive in bursts. Prompts of 100-1,600
// characters (tenfold), max_tokens 100, `--rate-limit 50`. Reported: the share of requests that
// drew a token 429, and the fill (tokens the mock accepted over whole windows from one window
// after the first acceptance, as a share of what the quota allows in them).

const SCENARIO_WINDOW_MS = 10_000;
const SCENARIO_WINDOW_TOKENS = 30_000;
const SCENARIO_TPM = (SCENARIO_WINDOW_TOKENS * 60_000) / SCENARIO_WINDOW_MS;

interface ScenarioResult {
  requests: number;
  token429: number;
  fill: number;
  maxWindow: number;
  output: number;
  errors: number;
  wallS: number;
}

function scenarioInput(file: string, n: number, offset = 0): void {
  let seed = 11 + offset;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const filler = "lorem ipsum dolor sit amet consectetur adipiscing elit ".repeat(40);
  fs.writeFileSync(
    file,
    Array.from({ length: n }, (_, i) => {
      const chars = 100 + Math.floor(rnd() * 1500); // 100..1,600 characters
      return JSON.stringify({
        id: `s${offset}-${i}`,
        prompt: filler.slice(0, chars),
        max_tokens: 100,
      });
    }).join("\n") + "\n",
  );
}

async function runCliAt(
  root: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  const child = Bun.spawn([BUN, path.join(root, "cli.ts"), "run", ...args], {
    env: { ...process.env, ...env },
    stdout: "ignore",
    stderr: "pipe",
  });
  const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
  return { code, stderr };
}

interface Scenario {
  name: string;
  mockArgs: string[];
  provider: "openai" | "gemini";
  /** Jobs on one Redis quota; 1 = a single job without Redis. */
  jobs: number;
}

async function tokenScenario(
  s: Scenario,
  root: string,
  baseline: boolean,
  redisUrl: string | undefined,
): Promise<ScenarioResult> {
  const n = Number(values["scenario-items"]);
  const mock = await startMock([
    "--latency",
    String(LATENCY),
    "--token-quota",
    String(SCENARIO_WINDOW_TOKENS),
    "--token-window",
    String(SCENARIO_WINDOW_MS),
    ...s.mockArgs,
  ]);
  try {
    const started = performance.now();
    const base = s.provider === "openai" ? `${mock.url}/v1` : `${mock.url}/v1beta`;
    const keyEnv: Record<string, string> = s.provider === "openai"
      ? { OPENAI_API_KEY: "bench-key" }
      : { GEMINI_API_KEY: "bench-key" };
    const per = Math.ceil(n / s.jobs);
    // main keeps its token gate per process: its jobs must split the budget between them.
    const tpm = baseline && s.jobs > 1 ? SCENARIO_TPM / s.jobs : SCENARIO_TPM;
    const files: { out: string; errs: string }[] = [];
    const runs = Array.from({ length: s.jobs }, (_, j) => {
      const tag = `${s.name.replace(/\W+/g, "-")}-${baseline ? "base" : "new"}-${j}`;
      const input = path.join(dir, `${tag}.jsonl`);
      scenarioInput(input, per, j * 1000);
      const out = path.join(dir, `${tag}-out.jsonl`);
      const errs = path.join(dir, `${tag}-errors.jsonl`);
      files.push({ out, errs });
      const quotaArgs = redisUrl === undefined
        ? []
        : ["--quota", redisUrl, "--quota-name", `bench-${tag.replace(/-\d+$/, "")}`];
      return runCliAt(root, [
        input,
        "--provider",
        s.provider,
        "--base-url",
        base,
        "--model",
        "bench-model",
        "--rate-limit",
        "50",
        "--tpm",
        String(tpm),
        "--output",
        out,
        "--errors",
        errs,
        ...quotaArgs,
      ], keyEnv);
    });
    const results = await Promise.all(runs);
    for (const r of results) {
      if (r.code !== 0) console.error(`  exit ${r.code}: ${r.stderr.slice(-400)}`);
    }
    const all = await arrivals(mock.url);
    const accepted = (await (await fetch(`${mock.url}/__mock/tokens`)).json() as {
      tokens: { t: number; tokens: number }[];
    }).tokens;
    // Settled fill: whole windows from one window after the first acceptance (a sliding window
    // lets the first one be filled at once) up to the last acceptance, the tokens accepted in
    // them over what the quota allows in them. Whole windows, so that a bursty sender is not
    // credited with more than its busiest window.
    const from = (accepted[0]?.t ?? 0) + SCENARIO_WINDOW_MS;
    const last = accepted[accepted.length - 1]?.t ?? 0;
    const windows = Math.max(0, Math.floor((last - from) / SCENARIO_WINDOW_MS));
    const inSpan = accepted
      .filter((a) => a.t >= from && a.t < from + windows * SCENARIO_WINDOW_MS)
      .reduce((sum, a) => sum + a.tokens, 0);
    let maxWindow = 0;
    let lo = 0;
    let sum = 0;
    for (const a of accepted) {
      sum += a.tokens;
      while (a.t - accepted[lo].t >= SCENARIO_WINDOW_MS) sum -= accepted[lo++].tokens;
      maxWindow = Math.max(maxWindow, sum);
    }
    return {
      requests: all.length,
      token429: all.filter((a) => a.status === 429).length,
      fill: windows > 0 ? inSpan / (SCENARIO_WINDOW_TOKENS * windows) : 0,
      maxWindow,
      output: files.reduce((k, f) => k + lines(f.out), 0),
      errors: files.reduce((k, f) => k + lines(f.errs), 0),
      wallS: (performance.now() - started) / 1000,
    };
  } finally {
    mock.stop();
  }
}

// --- issue 17: real 429 patterns ---------------------------------------------------------------

/** One scenario of the 429-pattern benchmark. */
interface PatternScenario {
  name: string;
  /** Mock provider flags. */
  mock: string[];
  provider: "openai" | "gemini";
  rate: string;
  /** The input lines' prompts (directives included). */
  prompts: string[];
  /** Provider quota in req/s, for goodput; undefined when the scenario has none. */
  quota?: number;
  /** The scenario without faults whose run time this one is compared with. */
  reference?: string;
}

const plain = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag} item ${i}`);

/** The issue's 150-item mix: 10 × 429 once, 20 × 500/503 once or twice, 10 × 500/503/reset, 10 × 400. */
function issueMix(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 150; i++) {
    const k = i % 15; // spread the faults through the input
    const g = Math.floor(i / 15); // 0..9
    let d = "";
    if (k === 3) d = "[[mock:fail=1:429]][[mock:retry-after=1]]";
    else if (k === 6) d = g % 2 ? "[[mock:fail=1:503]]" : "[[mock:fail=1:500]]";
    else if (k === 9) d = g % 2 ? "[[mock:fail=2:500]]" : "[[mock:fail=2:503]]";
    else if (k === 11) d = "[[mock:fail=1:500]][[mock:fail=2:503]][[mock:reset]]";
    else if (k === 13) d = "[[mock:400]]";
    out.push(`mix item ${i} ${d}`);
  }
  return out;
}

function scenarios(): PatternScenario[] {
  const lat = (ms: number) => ["--latency", String(ms)];
  const window = (q: number, ms: number, extra: string[] = []) => [
    ...lat(200),
    "--quota-requests",
    String(q),
    "--quota-window",
    String(ms),
    ...extra,
  ];
  const sporadic = (status: string, pct: number): PatternScenario => ({
    name: `sporadic ${status} ${pct} % @50`,
    mock: [
      ...lat(100),
      "--failure-rate",
      String(pct / 100),
      "--failure-status",
      status,
      "--failure-retry-after",
      "1",
    ],
    provider: "openai",
    rate: "50",
    prompts: plain(400, "s"),
    reference: "no-fault 400 @50",
  });
  return [
    {
      name: "no-fault 150 @50",
      mock: lat(100),
      provider: "openai",
      rate: "50",
      prompts: plain(150, "n"),
    },
    {
      name: "issue mix 150 @50",
      mock: lat(100),
      provider: "openai",
      rate: "50",
      prompts: issueMix(),
      reference: "no-fault 150 @50",
    },
    {
      name: "no-fault 400 @50",
      mock: lat(100),
      provider: "openai",
      rate: "50",
      prompts: plain(400, "n"),
    },
    sporadic("429", 5),
    sporadic("429", 10),
    sporadic("503", 10),
    {
      name: "sliding 20/1 s, retry-after 2, tool 40",
      mock: window(20, 1000, ["--quota-retry-after", "2"]),
      provider: "openai",
      rate: "40",
      prompts: plain(500, "q"),
      quota: 20,
    },
    {
      name: "sliding 20/1 s, retry-after 1, tool 40",
      mock: window(20, 1000, ["--quota-retry-after", "1"]),
      provider: "openai",
      rate: "40",
      prompts: plain(500, "q"),
      quota: 20,
    },
    {
      name: "sliding 15/1 s, exact hint, tool 40",
      mock: window(15, 1000),
      provider: "openai",
      rate: "40",
      prompts: plain(400, "q"),
      quota: 15,
    },
    {
      name: "gemini sliding 20/1 s, 3 violations, retry 2 s, tool 40",
      mock: window(20, 1000, ["--quota-detail", "many", "--quota-retry-after", "2"]),
      provider: "gemini",
      rate: "40",
      prompts: plain(500, "g"),
      quota: 20,
    },
    {
      name: "gemini sliding 20/1 s, no detail, retry 1 s, tool 40",
      mock: window(20, 1000, ["--quota-detail", "none", "--quota-retry-after", "1"]),
      provider: "gemini",
      rate: "40",
      prompts: plain(500, "g"),
      quota: 20,
    },
    {
      name: "gemini fixed 30/2 s, hint to window end, tool 30",
      mock: window(30, 2000, ["--quota-kind", "fixed"]),
      provider: "gemini",
      rate: "30",
      prompts: plain(450, "f"),
      quota: 15,
    },
    {
      name: "gemini fixed 100/10 s, hint to window end, tool 20",
      mock: window(100, 10_000, ["--quota-kind", "fixed"]),
      provider: "gemini",
      rate: "20",
      prompts: plain(500, "f"),
      quota: 10,
    },
    {
      name: "OpenAI headers, 1,200/min sliding, tool 40",
      mock: window(1200, 60_000),
      provider: "openai",
      rate: "40",
      prompts: plain(600, "h"),
      quota: 20,
    },
    {
      name: "auto, sliding 25/1 s, retry-after 1",
      mock: window(25, 1000, ["--quota-retry-after", "1"]),
      provider: "openai",
      rate: "auto",
      prompts: plain(600, "a"),
      quota: 25,
    },
  ];
}

interface PatternResult {
  ms: number;
  timedOut: boolean;
  ok: number;
  errors: number;
  requests: number;
  rejected: number;
  lowest: string;
  /** Accepted req/s over the second half, and over the whole run (first to last accepted). */
  settled: number;
  overall: number;
}

async function runPattern(
  sc: PatternScenario,
  cli: string[],
  tag: string,
): Promise<PatternResult> {
  const mock = await startMock(["--seed", "17", ...sc.mock]);
  try {
    const input = path.join(dir, `${tag}.jsonl`);
    fs.writeFileSync(
      input,
      sc.prompts.map((p, i) => JSON.stringify({ id: `p${i}`, prompt: p })).join("\n") + "\n",
    );
    const out = path.join(dir, `${tag}-out.jsonl`);
    const errs = path.join(dir, `${tag}-errors.jsonl`);
    const base = sc.provider === "gemini" ? mock.url : `${mock.url}/v1`;
    const started = performance.now();
    const child = Bun.spawn([
      ...cli,
      "run",
      input,
      "--provider",
      sc.provider,
      "--base-url",
      base,
      "--rate-limit",
      sc.rate,
      "--output",
      out,
      "--errors",
      errs,
    ], {
      env: {
        ...process.env,
        OPENAI_API_KEY: "bench-key",
        GEMINI_API_KEY: "bench-key",
        DENO_NO_UPDATE_CHECK: "1",
      },
      stdout: "ignore",
      stderr: "pipe",
    });
    let timedOut = false;
    // Stopped (SIGINT: a graceful stop) at the timeout, killed if that stop takes 30 s more.
    let kill: ReturnType<typeof setTimeout> | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGINT");
      kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    }, Number(values.timeout) * 1000);
    const [stderr] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    clearTimeout(timer);
    clearTimeout(kill);
    const ms = performance.now() - started;
    const all = await arrivals(mock.url);
    const rejected = all.filter((a) => a.status === 429).length;
    const rate = all.filter((a) => a.status === 200).length > 2
      ? settledRate(all)
      : { settled: 0, overall: 0, maxWindow: 0 };
    const lowest = /lowest ([0-9.]+)/.exec(stderr)?.[1] ?? "?";
    return {
      ms,
      timedOut,
      ok: lines(out),
      errors: lines(errs),
      requests: all.length,
      rejected,
      lowest,
      settled: rate.settled,
      overall: rate.overall,
    };
  } finally {
    mock.stop();
  }
}

async function tokenScenarios(): Promise<string[]> {
  const scenarios: Scenario[] = [
    {
      name: "OpenAI, no headers",
      mockArgs: ["--token-count", "request"],
      provider: "openai",
      jobs: 1,
    },
    {
      name: "OpenAI, x-ratelimit-*-tokens headers",
      mockArgs: ["--token-count", "request", "--token-headers"],
      provider: "openai",
      jobs: 1,
    },
    {
      name: "Gemini input tokens",
      mockArgs: ["--token-count", "input"],
      provider: "gemini",
      jobs: 1,
    },
    {
      name: "3 jobs on one Redis quota",
      mockArgs: ["--token-count", "request"],
      provider: "openai",
      jobs: 3,
    },
  ];
  const { startRedisServer } = await import("../tests/redis_test_server.ts");
  const redis = await startRedisServer();
  const fmt = (r: ScenarioResult) =>
    `${r.token429} / ${r.requests} (**${(100 * r.token429 / r.requests).toFixed(1)} %**) | **${
      (100 * r.fill).toFixed(1)
    } %** | ${
      (100 * r.maxWindow / SCENARIO_WINDOW_TOKENS).toFixed(1)
    } % | ${r.output} / ${r.errors} | ${r.wallS.toFixed(1)} s`;
  const out: string[] = [];
  try {
    for (const s of scenarios) {
      const url = s.jobs > 1 ? redis.url : undefined;
      const base = values.baseline
        ? await tokenScenario(s, path.resolve(values.baseline), true, url)
        : undefined;
      const mine = await tokenScenario(s, ROOT, false, url);
      const row = `| ${s.name} | ${base ? fmt(base) : "-|-|-|-|-"} | ${fmt(mine)} |`;
      console.error(row);
      out.push(row);
    }
  } finally {
    await redis.stop();
  }
  return [
    `Token scenarios (issue 15): ${
      values["scenario-items"]
    } prompts of 100-1,600 characters, max_tokens 100,`,
    `\`--rate-limit 50 --tpm ${SCENARIO_TPM}\`; the mock allows ${SCENARIO_WINDOW_TOKENS} tokens in any sliding ${
      SCENARIO_WINDOW_MS / 1000
    } s window, charged at admission as the`,
    `provider counts them (OpenAI: body bytes / 4 + max tokens; Gemini: input tokens), latency ${LATENCY} ms.`,
    `"fill": tokens accepted / what the quota allows, over whole windows from one window after the first acceptance; "max window": most tokens in any ${
      SCENARIO_WINDOW_MS / 1000
    } s window / quota. Baseline: ${
      values.baseline ? `\`${values.baseline}\` (main)` : "not run"
    }; its three Redis jobs get \`--tpm ${SCENARIO_TPM / 3}\` each`,
    `(main's token gate is per process), this branch's \`--tpm ${SCENARIO_TPM}\` each (one shared budget).`,
    ``,
    `| scenario | baseline token 429s | baseline fill | baseline max window | baseline output / errors | baseline wall | token 429s | fill | max window | output / errors | wall |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...out,
  ];
}
// End of the token scenarios.
// ---------------------------------------------------------------------------------------------
function patternCell(
  sc: PatternScenario,
  r: PatternResult,
  ref: PatternResult | undefined,
): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  const parts = [
    `${(r.ms / 1000).toFixed(1)} s${r.timedOut ? " (stopped)" : ""}`,
    `${r.ok}+${r.errors}/${sc.prompts.length}`,
    `429 ${pct(r.requests ? r.rejected / r.requests : 0)}`,
  ];
  if (sc.quota) {
    parts.push(`goodput ${pct(r.settled / sc.quota)} settled, ${pct(r.overall / sc.quota)} whole`);
  }
  if (ref) parts.push(`${(r.ms / ref.ms).toFixed(2)}× no-fault`);
  parts.push(`lowest ${r.lowest}`);
  return parts.join(" · ");
}

/** Runs every scenario with this tree's CLI and, with `--baseline`, with the baseline's. */
async function patterns(): Promise<void> {
  const only = values.only?.split(",");
  const list = scenarios().filter((sc) => !only || only.some((o) => sc.name.includes(o)));
  const runtimes = values.runtimes.split(",").map((r) => r.trim());
  const cli = path.join(ROOT, "cli.ts");
  const clis: [string, string[]][] = [];
  for (const runtime of runtimes) {
    if (runtime === "bun") clis.push(["this branch", [BUN, cli]]);
    else if (runtime === "deno") {
      clis.push(["this branch, Deno", [runtimeBinary("deno"), "run", "-A", cli]]);
    } else if (runtime === "node") {
      const { nodeBin } = prepareClients(["node"], path.join(dir, "npm"));
      clis.push(["this branch, Node (npm bin)", ["node", nodeBin!]]);
    } else throw new TypeError(`--runtimes: unknown runtime '${runtime}' (bun, deno, node)`);
  }
  if (values.baseline) {
    clis.unshift(["baseline (main)", [BUN, path.join(values.baseline, "cli.ts")]]);
  }
  const results = new Map<string, PatternResult>();
  const table: string[] = [
    `| scenario | ${clis.map(([n]) => n).join(" | ")} |`,
    `| --- | ${clis.map(() => "---").join(" | ")} |`,
  ];
  let n = 0;
  for (const sc of list) {
    const cells: string[] = [];
    for (const [label, cli] of clis) {
      const r = await runPattern(sc, cli, `p${n++}`);
      results.set(`${label}\u0000${sc.name}`, r);
      const ref = sc.reference ? results.get(`${label}\u0000${sc.reference}`) : undefined;
      cells.push(patternCell(sc, r, ref));
      console.error(`${sc.name} [${label}]: ${cells[cells.length - 1]}`);
    }
    table.push(`| ${sc.name} | ${cells.join(" | ")} |`);
  }
  const report = [
    `# Quota benchmark: real 429 patterns (issue 17)`,
    ``,
    `${
      new Date().toISOString().slice(0, 10)
    } · Bun ${Bun.version} · ${os.cpus().length} cores · \`bun scripts/bench_quota.ts --patterns${
      values.baseline ? " --baseline <main>" : ""
    }${values.runtimes === "bun" ? "" : ` --runtimes ${values.runtimes}`}\``,
    ``,
    `Each cell: run time · output+errors/items · share of requests answered 429 · goodput (accepted`,
    `req/s over the run's second half, and first to last accepted, / the quota) · run time / the`,
    `same run without faults · lowest rate the CLI reports.`,
    ``,
    ...table,
    ``,
  ].join("\n");
  const out = path.resolve(ROOT, values.out);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, report);
  console.log(report);
}

if (values.patterns) {
  await patterns();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

// --- end issue 17 --------------------------------------------------------------------------------

console.error(
  `bench_quota: ${ITEMS} items, provider quota ${QUOTA} req/s, tool at ${RATE} req/s, latency ${LATENCY} ms`,
);
const only = values["only-token-scenarios"];
if (!values["skip-requests"] && !only) {
  await requestQuota("fixed", String(RATE));
  await requestQuota("auto", "auto");
}
const tokenRow = values["skip-tokens"] || only ? undefined : await tokenQuota();
const scenarioRows = values["skip-token-scenarios"] ? [] : await tokenScenarios();

const report = [
  `# Quota benchmark`,
  ``,
  `${
    new Date().toISOString().slice(0, 10)
  } · Bun ${Bun.version} · ${os.cpus().length} cores · mock latency ${LATENCY} ms`,
  only
    ? `· \`bun scripts/bench_quota.ts --only-token-scenarios --scenario-items ${
      values["scenario-items"]
    }${values.baseline ? ` --baseline ${values.baseline}` : ""}\``
    : `· \`bun scripts/bench_quota.ts --items ${ITEMS} --quota ${QUOTA} --rate ${RATE}\``,
  ``,
  ...(rows.length === 0 ? [] : [
    `Requests: the mock provider allows ${QUOTA} accepted requests in any sliding 1 s window and answers the rest 429 at once`,
    `with \`retry-after-ms\`. "settled" is the accepted rate over the second half of the run.`,
    ``,
    `| mode | quota req/s | --rate-limit | items | output | errors | requests | 429s | accepted req/s (whole run) | settled req/s | max accepted in 1 s | wall | CLI summary |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...rows,
    ``,
  ]),
  ...(tokenRow
    ? [
      `Tokens: the mock allows 30,000 tokens (prompt chars/4 + max_tokens) in any sliding 60 s window; prompts of 25-1,000`,
      `tokens and max_tokens of 50-300, \`--tpm 30000 --rate-limit 50\`.`,
      ``,
      `| tpm quota | items | output | errors | requests | 429s in first 10 s | 429s after 10 s | wall | exit |`,
      `| --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
      tokenRow,
    ]
    : []),
  ``,
  ...scenarioRows,
  ``,
].join("\n");
fs.mkdirSync(path.join(ROOT, "bench-results"), { recursive: true });
fs.writeFileSync(
  path.join(ROOT, only ? "bench-results/quota-tokens.md" : "bench-results/quota.md"),
  report,
);
console.log(report);
fs.rmSync(dir, { recursive: true, force: true });
