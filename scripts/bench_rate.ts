/**
 * Rate benchmark: does a run hold the requested rate when every answer takes seconds?
 *
 * For each rate R, several strategies send N small OpenAI chat requests to the mock provider
 * (`tests/mocks/mock_provider.ts`, in its own process, answering after `--latency` ms), and the mock
 * measures what arrived from the second arrival on (`ours` sends its first request alone and
 * waits for its answer): achieved rate `(count - 1) / (last - first)` and the most arrivals in
 * any sliding 1 s window. Strategies:
 *
 * - `ours`: `runRealtime` end to end (parse, `Scheduler`, fire-and-forget, the OpenAI adapter);
 * - `semaphore`: p-limit(R) around an awaited fetch (what "concurrency R" gives: R / latency);
 * - `sleep`: fire a fetch, `await sleep(1000 / R)`, repeat (timer lateness accumulates);
 * - `bottleneck`: `new Bottleneck({ minTime: 1000 / R })`, no maxConcurrent;
 * - `p-throttle`: `pThrottle({ limit: R, interval: 1000 })` (windowed: bursts of R);
 * - `p-throttle-strict` (opt-in): the same with `strict: true`.
 *
 * Usage (Bun re-runs itself with BUN_CONFIG_MAX_HTTP_REQUESTS=65535: Bun's fetch otherwise keeps
 * at most 256 requests open):
 *
 *   bun scripts/bench_rate.ts [--rates 5,60,100,1000,2000] [--latency 2000]
 *     [--strategies ours,semaphore,sleep,bottleneck,p-throttle] [--seconds 6]
 *     [--min-requests 30] [--out bench-results/rate.md] [--mock-runtime bun|deno]
 *   deno run -A scripts/bench_rate.ts …
 *
 * `--out -` prints only. All traffic goes to 127.0.0.1.
 *
 * With `--clients bun,deno,node,binary,node-bare` it measures at the wire instead: each client
 * is its own process, started the way a user starts it (`bun cli.ts`, `deno run -A cli.ts`, the
 * packed npm package's bin on Node, the single executable, and a bare Node client as the
 * baseline: `scripts/_rate_clients.ts`),
 * sending `--seconds` × R requests (default 4 s) to the mock in another process, which records
 * each arrival time. The first request goes alone and waits for its answer (the first-answers
 * gate), so the rate and the windows are measured from the second arrival on. Rows above a
 * client's target rate (Bun 2,000/s, the others 1,000/s) are skipped. Default output
 * `bench-results/rate-wire.md`. `--dump-arrivals DIR` also writes each row's arrival times (ms
 * at the mock, JSON) there, for plotting the lag against the grid.
 * @module
 */
import Bottleneck from "bottleneck";
import process from "node:process";
import { parseArgs } from "node:util";
import pLimit from "p-limit";
import pThrottle from "p-throttle";
import { createProvider } from "../src/providers/create_provider.ts";
import type { Provider } from "../src/providers/provider.ts";
import { runRealtime } from "../src/run.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { maxPerWindow } from "../tests/mocks/mock_provider.ts";
import {
  type Client,
  CLIENT_LABELS,
  clientCommand,
  CLIENTS,
  MAX_TARGET_RATE,
  prepareClients,
  WINDOW_TARGET,
  type WireStats,
  wireStats,
} from "./_rate_clients.ts";
import {
  currentRuntime,
  ensureBunMaxHttpRequests,
  fmt,
  gitRevision,
  machineInfo,
  markdownTable,
  type MockServer,
  rerunCommand,
  type Runtime,
  runtimeVersion,
  sleep,
  stamp,
  startMockServer,
  writeResult,
} from "./_bench_util.ts";

const STRATEGIES = ["ours", "semaphore", "sleep", "bottleneck", "p-throttle", "p-throttle-strict"];
type Strategy = (typeof STRATEGIES)[number];
const DEFAULT_STRATEGIES = "ours,semaphore,sleep,bottleneck,p-throttle";

interface Row {
  rate: number;
  strategy: Strategy;
  requests: number;
  /** At the mock, from the second arrival: see {@linkcode wireStats}. */
  achieved: number;
  maxWindow: number;
  /** Send times in this process: rate and window before the network and the server. */
  clientRate: number;
  clientWindow: number;
  wallMs: number;
  errors: number;
}

/** A sender of one chat request; resolves true on a 2xx answer (body read), false otherwise. */
type Send = (i: number) => Promise<boolean>;

function prompt(i: number): string {
  return `Benchmark request ${i}: answer with one short sentence about rate limits.`;
}

function* lines(n: number): Generator<string> {
  for (let i = 0; i < n; i++) yield JSON.stringify({ id: `r${i}`, prompt: prompt(i) });
}

/** Sends straight with fetch, noting the time of each call in `times`. */
function makeSend(chatUrl: string, times: number[]): Send {
  return async (i) => {
    times.push(performance.now());
    try {
      const res = await fetch(chatUrl, {
        method: "POST",
        headers: { authorization: "Bearer x", "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-bench",
          messages: [{ role: "user", content: prompt(i) }],
        }),
        signal: AbortSignal.timeout(30_000),
      });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  };
}

/** Counts the false results. */
async function failures(results: Promise<boolean>[]): Promise<number> {
  return (await Promise.all(results)).filter((ok) => !ok).length;
}

async function runStrategy(
  strategy: Strategy,
  rate: number,
  n: number,
  baseUrl: string,
  times: number[],
): Promise<number> {
  const send = makeSend(`${baseUrl}/v1/chat/completions`, times);
  const idx = Array.from({ length: n }, (_, i) => i);
  switch (strategy) {
    case "ours": {
      const provider = createProvider({
        provider: "openai",
        baseUrl: `${baseUrl}/v1`,
        apiKey: "x",
        model: "gpt-bench",
        timeoutMs: 30_000,
      });
      // The same adapter, noting when each request leaves (after the scheduler, before ky).
      const timed: Provider = {
        ...provider,
        send(item, options) {
          times.push(performance.now());
          return provider.send(item, options);
        },
      };
      // One attempt: a retry would add arrivals the count would then have to explain.
      const run = runRealtime(ReadableStream.from(lines(n)), {
        provider: timed,
        rate,
        retry: 1,
        timeoutMs: 30_000,
      });
      let errors = 0;
      for await (const r of run.results) if (r.type === "error") errors++;
      await run.done;
      return errors;
    }
    case "semaphore": {
      const limit = pLimit(rate);
      return await failures(idx.map((i) => limit(send, i)));
    }
    case "sleep": {
      const results: Promise<boolean>[] = [];
      for (let i = 0; i < n; i++) {
        results.push(send(i));
        if (i < n - 1) await sleep(1000 / rate);
      }
      return await failures(results);
    }
    case "bottleneck": {
      const limiter = new Bottleneck({ minTime: 1000 / rate });
      const errors = await failures(idx.map((i) => limiter.schedule(() => send(i))));
      await limiter.stop({ dropWaitingJobs: false });
      return errors;
    }
    case "p-throttle":
    case "p-throttle-strict": {
      const throttled = pThrottle({
        limit: rate,
        interval: 1000,
        strict: strategy === "p-throttle-strict",
      })(send);
      return await failures(idx.map((i) => throttled(i)));
    }
    default:
      throw new Error(`unknown strategy ${strategy}`);
  }
}

async function mockJson<T>(url: string, method = "GET"): Promise<T> {
  const res = await fetch(url, { method });
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

function requestsFor(rate: number, seconds: number, minRequests: number): number {
  return Math.max(Math.ceil(rate * seconds), minRequests);
}

function numberList(name: string, text: string): number[] {
  const list = text.split(",").map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((r) => !Number.isFinite(r) || r <= 0)) {
    throw new TypeError(
      `--${name} must be a comma-separated list of numbers above 0: got '${text}'`,
    );
  }
  return list;
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new TypeError(`--${name} must be a number above 0: got '${text}'`);
  }
  return n;
}

/** Within 1 % of R, and no sliding 1 s window above ceil(R) + 1. */
function holds(row: Row): boolean {
  return Math.abs(row.achieved / row.rate - 1) <= 0.01 &&
    row.maxWindow <= Math.ceil(row.rate) + 1;
}

function tableRows(rows: Row[]): string[][] {
  return rows.map((r) => [
    String(r.rate),
    r.strategy,
    String(r.requests),
    fmt(r.achieved, 2),
    fmt(r.achieved / r.rate, 3),
    String(r.maxWindow),
    fmt(r.clientRate / r.rate, 3),
    String(r.clientWindow),
    `${fmt(r.wallMs / 1000, 1)} s`,
    String(r.errors),
    holds(r) ? "yes" : "no",
  ]);
}

const HEADER = [
  "R",
  "strategy",
  "requests",
  "achieved req/s",
  "ratio to R",
  "max in any 1 s window",
  "client: ratio",
  "client: max 1 s window",
  "wall time",
  "errors",
  "holds R (±1 %, window ≤ R+1)",
];

/** How to read the table; the same for every run. */
const READING = [
  "How to read it:",
  "",
  "- *client* columns: the times the benchmark process called fetch (for `ours`: the adapter's",
  "  `send`, right after the scheduler's slot). The gap to the mock's columns is transport:",
  "  connection setup and delivery jitter, with client and mock sharing the same cores.",
  "- `semaphore` sends R at once and the next R when those answer: with N = 6R that is six",
  "  bursts over 5 latencies, so the ratio reads ≈ 0.6; the long-run rate is R / latency (0.5).",
  "- `p-throttle` (windowed) sends R at once at the start of each interval: six bursts over 5 s",
  "  read ≈ 1.2; the long-run rate is R, but a sliding window straddling two bursts holds up to 2R.",
  "- `sleep` and `bottleneck` are capped by timer resolution and per-job overhead at high R.",
];

async function main(): Promise<void> {
  const code = gitRevision(); // before the run: the code the run loads
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      rates: { type: "string" },
      latency: { type: "string", default: "2000" },
      strategies: { type: "string", default: DEFAULT_STRATEGIES },
      seconds: { type: "string" },
      "min-requests": { type: "string", default: "30" },
      out: { type: "string" },
      "mock-runtime": { type: "string" },
      clients: { type: "string" },
      "dump-arrivals": { type: "string" },
    },
    strict: true,
  });
  if (values.clients !== undefined) return await wireMain(values, code);
  values.out ??= "bench-results/rate.md";
  const rates = numberList("rates", values.rates ?? "5,60,100,1000,2000");
  const latency = positive("latency", values.latency);
  const seconds = positive("seconds", values.seconds ?? "6");
  const minRequests = positive("min-requests", values["min-requests"]);
  const strategies = values.strategies.split(",").map((s) => s.trim()) as Strategy[];
  for (const s of strategies) {
    if (!STRATEGIES.includes(s)) {
      throw new TypeError(`unknown strategy '${s}': use some of ${STRATEGIES.join(", ")}`);
    }
  }
  const mockRuntime = (values["mock-runtime"] ?? currentRuntime()) as Runtime;
  if (mockRuntime !== "bun" && mockRuntime !== "deno") {
    throw new TypeError(`--mock-runtime must be bun or deno: got '${mockRuntime}'`);
  }

  const log = (text: string) => process.stderr.write(text + "\n");
  const mock: MockServer = await startMockServer(mockRuntime, [
    "--port",
    "0",
    "--latency",
    String(latency),
  ]);
  log(`mock provider (${mockRuntime}) at ${mock.url}, latency ${latency} ms`);
  const rows: Row[] = [];
  const started = performance.now();
  try {
    for (const rate of rates) {
      const n = requestsFor(rate, seconds, minRequests);
      for (const strategy of strategies) {
        await mockJson(`${mock.url}/__mock/reset`, "POST");
        const times: number[] = [];
        const t0 = performance.now();
        const errors = await runStrategy(strategy, rate, n, mock.url, times);
        const wallMs = performance.now() - t0;
        // From the second arrival, as at the wire: `ours` sends its first request alone and
        // waits for the answer (the first-answers gate), which is not a rate.
        const { arrivals } = await mockJson<{ arrivals: { t: number }[] }>(
          `${mock.url}/__mock/arrivals`,
        );
        const stats = wireStats(arrivals.map((a) => a.t));
        const sent = times.slice(1);
        const clientSpan = sent.length > 1 ? sent[sent.length - 1] - sent[0] : 0;
        const row: Row = {
          rate,
          strategy,
          requests: stats.count,
          achieved: stats.achieved,
          maxWindow: stats.maxWindow,
          clientRate: clientSpan > 0 ? ((sent.length - 1) * 1000) / clientSpan : 0,
          clientWindow: maxPerWindow(sent),
          wallMs,
          errors,
        };
        rows.push(row);
        log(
          `R=${rate} ${strategy}: ${stats.count}/${n} arrived, ${fmt(row.achieved, 2)} req/s ` +
            `(×${fmt(row.achieved / rate, 3)}), max/1s ${row.maxWindow}; client ` +
            `×${fmt(row.clientRate / rate, 3)}, max/1s ${row.clientWindow}; ` +
            `${fmt(wallMs / 1000, 1)} s, ${errors} errors`,
        );
        // Let the last connections go idle before the next measurement starts.
        await sleep(300);
      }
    }
  } finally {
    await mock.stop();
  }
  const totalS = (performance.now() - started) / 1000;

  const table = markdownTable(HEADER, tableRows(rows));
  console.log(table);
  if (values.out !== "-") {
    const command = rerunCommand("scripts/bench_rate.ts");
    const text = [
      "# Rate benchmark",
      "",
      `- date: ${stamp()}`,
      `- runtime: ${runtimeVersion()}; mock provider in its own ${mockRuntime} process`,
      `- machine: ${machineInfo()}`,
      `- command: \`${command}\``,
      `- code: ${code}`,
      `- mock latency ${latency} ms; N = max(${seconds} × R, ${minRequests}) requests per row;` +
      ` measured at the mock from the 2nd arrival (ours sends the 1st alone and waits for its` +
      ` answer): achieved = (arrivals − 1) / span, window = most arrivals in any sliding` +
      ` [t, t + 1 s); client columns likewise from the 2nd send; total ${fmt(totalS, 0)} s`,
      "",
      table,
      "",
      ...READING,
      "",
    ].join("\n");
    log(`wrote ${writeResult(values.out, text)}`);
  }
}

interface WireRow {
  client: Client;
  rate: number;
  n: number;
  stats: WireStats;
  exitCode: number;
  wallMs: number;
  /** The CLI's warnings (stderr), e.g. that the runtime cannot hold the rate. */
  warning: string;
}

/** Within 1 % of R, the client's window target, and at most R + 1 in the first second. */
function wireHolds(row: WireRow): boolean {
  const { stats, rate } = row;
  return Math.abs(stats.achieved / rate - 1) <= 0.01 &&
    stats.maxWindow <= WINDOW_TARGET[row.client] * rate &&
    stats.firstSecond <= Math.ceil(rate) + 1 &&
    stats.count === row.n;
}

function runClient(argv: string[], env: Record<string, string>): Promise<{
  code: number;
  stderr: string;
}> {
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (c, signal) => resolve({ code: c ?? (signal ? 128 : 1), stderr }));
  });
}

async function wireMain(
  values: {
    rates?: string;
    latency: string;
    seconds?: string;
    out?: string;
    clients?: string;
    "dump-arrivals"?: string;
  },
  code: string,
): Promise<void> {
  const rates = numberList("rates", values.rates ?? "200,500,1000,2000");
  const latency = positive("latency", values.latency);
  const seconds = positive("seconds", values.seconds ?? "4");
  const clients = values.clients!.split(",").map((s) => s.trim()) as Client[];
  for (const c of clients) {
    if (!CLIENTS.includes(c)) {
      throw new TypeError(`unknown client '${c}': use some of ${CLIENTS.join(", ")}`);
    }
  }
  const out = values.out ?? "bench-results/rate-wire.md";
  const log = (text: string) => process.stderr.write(text + "\n");
  const dir = fs.mkdtempSync("/tmp/i11-wire-rate-bench-");
  const prepared = prepareClients(clients, dir);
  const mock = await startMockServer("bun", ["--port", "0", "--latency", String(latency)]);
  log(`mock provider (bun) at ${mock.url}, latency ${latency} ms; clients in ${dir}`);
  const rows: WireRow[] = [];
  try {
    for (const client of clients) {
      for (const rate of rates) {
        if (rate > MAX_TARGET_RATE[client]) continue;
        const n = Math.ceil(rate * seconds) + 1;
        const input = path.join(dir, `input-${n}.jsonl`);
        if (!fs.existsSync(input)) fs.writeFileSync(input, [...lines(n)].join("\n") + "\n");
        const outDir = fs.mkdtempSync(path.join(dir, `${client}-${rate}-`));
        await mockJson(`${mock.url}/__mock/reset`, "POST");
        const { argv, env } = clientCommand(client, prepared, {
          input,
          outDir,
          rate,
          baseUrl: mock.url,
          n,
        });
        const t0 = performance.now();
        const { code: exitCode, stderr } = await runClient(argv, env);
        const wallMs = performance.now() - t0;
        const { arrivals } = await mockJson<{ arrivals: { t: number }[] }>(
          `${mock.url}/__mock/arrivals`,
        );
        const stats = wireStats(arrivals.map((a) => a.t));
        if (values["dump-arrivals"]) {
          // For profiling: each row's arrival times (ms at the mock), to plot lag against the grid.
          fs.mkdirSync(values["dump-arrivals"], { recursive: true });
          const file = path.join(values["dump-arrivals"], `${client}-${rate}-${Date.now()}.json`);
          fs.writeFileSync(file, JSON.stringify(arrivals.map((a) => a.t)));
        }
        const warning = stderr.split("\n").filter((l) => /warning/i.test(l)).join(" ").trim();
        const row: WireRow = { client, rate, n, stats, exitCode, wallMs, warning };
        rows.push(row);
        log(
          `${client} R=${rate}: ${stats.count}/${n} arrived, ${fmt(stats.achieved, 1)} req/s ` +
            `(×${fmt(stats.achieved / rate, 3)}), max/1s ${stats.maxWindow} ` +
            `(×${fmt(stats.maxWindow / rate, 3)}), first 1 s ${stats.firstSecond}, ` +
            `max/250ms ${stats.maxQuarter}; exit ${exitCode}, ${fmt(wallMs / 1000, 1)} s` +
            (warning ? `; ${warning}` : "") +
            (exitCode > 1 ? `\n${stderr.slice(0, 2000)}` : ""),
        );
        fs.rmSync(outDir, { recursive: true, force: true });
        await sleep(300);
      }
    }
  } finally {
    await mock.stop();
  }
  const header = [
    "client (how a user starts it)",
    "R",
    "arrived",
    "achieved req/s",
    "ratio to R",
    "max in any 1 s window",
    "window ÷ R",
    "first 1 s",
    "max in 250 ms",
    "holds",
    "CLI warning",
  ];
  const table = markdownTable(
    header,
    rows.map((r) => [
      CLIENT_LABELS[r.client],
      String(r.rate),
      `${r.stats.count}/${r.n}`,
      fmt(r.stats.achieved, 1),
      fmt(r.stats.achieved / r.rate, 3),
      String(r.stats.maxWindow),
      fmt(r.stats.maxWindow / r.rate, 3),
      String(r.stats.firstSecond),
      String(r.stats.maxQuarter),
      wireHolds(r) ? "yes" : "no",
      r.warning.replaceAll("|", "/") || "",
    ]),
  );
  console.log(table);
  if (out !== "-") {
    const text = [
      "# Rate at the wire, per runtime",
      "",
      `- date: ${stamp()}`,
      `- bench runtime: ${runtimeVersion()}; Node ${nodeVersion()}; the mock provider (Bun) in its own process`,
      `- machine: ${machineInfo()}`,
      `- command: \`${rerunCommand("scripts/bench_rate.ts")}\``,
      `- code: ${code}`,
      `- answers after ${latency} ms; ${seconds} s of work per row (N = R × ${seconds} + 1);` +
      " measured at the mock from the 2nd arrival (the 1st goes alone and waits for its answer):" +
      " achieved = (arrivals − 1) / span, window = most arrivals in any sliding [t, t + 1 s)," +
      " first 1 s = arrivals in the second after the 2nd arrival",
      "- holds: achieved within 1 % of R, window ≤ 1.05 × R (Bun) or 1.10 × R (Node, Deno)," +
      " first 1 s ≤ R + 1, every request arrived",
      "",
      table,
      "",
    ].join("\n");
    log(`wrote ${writeResult(out, text)}`);
  }
}

function nodeVersion(): string {
  try {
    return execFileSync("node", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "not found";
  }
}

if (import.meta.main) {
  await ensureBunMaxHttpRequests();
  try {
    await main();
  } catch (error) {
    console.error(`bench_rate: ${(error as Error).message}`);
    process.exit(2);
  }
}
