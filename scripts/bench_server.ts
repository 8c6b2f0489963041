/**
 * Server benchmark (issue "HTTP server", "Must show"): what does the server cost per request
 * compared with the CLI on the same mock, and does it hold the shared rate with 10 callers?
 *
 * Every process is separate: the mock provider (`tests/mocks/mock_provider.ts`), the CLI
 * (`cli.ts run`) or the server (`cli.ts serve`), and this script as the caller. The CLI and the
 * server are started with `BUN_CONFIG_MAX_HTTP_REQUESTS` already set, so they do not re-exec
 * themselves and the pid we watch is the one doing the work.
 *
 * 1. Overhead: the mock answers after `--latency` ms (200); N items (5,000) at R req/s (500)
 *    a. `cli.ts run IN --provider openai --base-url MOCK/v1 --rate-limit R -o -` (results read
 *       from its stdout as they come),
 *    b. the same N lines POSTed in one request to `cli.ts serve … --rate-limit R --port 0`, the
 *       response stream read to the end.
 *    For each: wall time, the mock's achieved rate (ratio to R) and most arrivals in a 1 s
 *    window, the lag of each result line behind its ideal time `i/R + latency` (from the spawn
 *    or the POST; and relative to item 0, which takes the CLI's start-up out), `latency_ms` of
 *    the records (the provider request alone), and CPU time (utime + stime from /proc) per
 *    request. The CLI's CPU is taken when it is reaped (cutime/cstime of this process); its
 *    start-up CPU is measured by a 1-item run and subtracted for the marginal figure. The
 *    server's is read from /proc/PID/stat when it is listening and when the stream has ended.
 *    The overhead ratio is server CPU per request / CLI CPU per request.
 * 2. Shared quota: the server at `--shared-rate` (100) req/s, the mock at `--shared-latency` ms
 *    (2,000); `--callers` (10) callers POST `--caller-items` (200) lines each at the same time.
 *    Checked: no 1 s window at the mock above R + 1, the achieved total rate over R, each
 *    caller's share of the result lines over the span when all were receiving (min/max against
 *    1/callers), and when each caller got its first result.
 * 3. The scheduler alone (`src/scheduler.ts` in this process, no network) at the same rates and
 *    lanes: its own release times, to tell its windows apart from the loopback hop's jitter.
 *
 * Usage (Bun re-runs itself with BUN_CONFIG_MAX_HTTP_REQUESTS set):
 *
 *   bun scripts/bench_server.ts [--items 5000] [--rate 500] [--latency 200] [--callers 10]
 *     [--caller-items 200] [--shared-rate 100] [--shared-latency 2000]
 *     [--idle-ms 1500] [--repeat 3] [--runtime bun|deno] [--skip-overhead] [--skip-callers]
 *     [--skip-scheduler] [--out bench-results/server.md]
 *
 * `--idle-ms` is how long the server sits listening before the first POST (default 1,500: longer
 * than the scheduler's 1 s catch-up allowance, as for a server that has been up a while; below
 * 1 s the first run gets the idle time's slots as a burst, then a pause).
 * `--repeat` runs part 1 that many times (CLI then server, each time) and reports the median.
 * `--runtime` is the runtime of the CLI, the server and the mock (default bun). `--out -`
 * prints only. Linux only (/proc). All traffic goes to 127.0.0.1.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Scheduler } from "../src/scheduler.ts";
import { type Arrival, maxPerWindow, type MockStats } from "../tests/mocks/mock_provider.ts";
import {
  currentRuntime,
  ensureBunMaxHttpRequests,
  fmt,
  machineInfo,
  markdownTable,
  type MockServer,
  ROOT,
  type Runtime,
  runtimeBinary,
  runtimeVersion,
  scriptCommand,
  sleep,
  stamp,
  startMockServer,
  writeResult,
} from "./_bench_util.ts";

// ---------------------------------------------------------------------------------------------
// options

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    items: { type: "string", default: "5000" },
    rate: { type: "string", default: "500" },
    latency: { type: "string", default: "200" },
    callers: { type: "string", default: "10" },
    "caller-items": { type: "string", default: "200" },
    "shared-rate": { type: "string", default: "100" },
    "shared-latency": { type: "string", default: "2000" },
    "idle-ms": { type: "string", default: "1500" },
    repeat: { type: "string", default: "3" },
    runtime: { type: "string", default: "bun" },
    "skip-overhead": { type: "boolean", default: false },
    "skip-callers": { type: "boolean", default: false },
    "skip-scheduler": { type: "boolean", default: false },
    out: { type: "string", default: "bench-results/server.md" },
  },
  strict: true,
});

function positive(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new TypeError(`--${name} must be a number above 0: got '${text}'`);
  }
  return n;
}

const ITEMS = Math.round(positive("items", values.items));
const RATE = positive("rate", values.rate);
const LATENCY = positive("latency", values.latency);
const CALLERS = Math.round(positive("callers", values.callers));
const CALLER_ITEMS = Math.round(positive("caller-items", values["caller-items"]));
const SHARED_RATE = positive("shared-rate", values["shared-rate"]);
const SHARED_LATENCY = positive("shared-latency", values["shared-latency"]);
const REPEAT = Math.round(positive("repeat", values.repeat));
const IDLE_MS = Number(values["idle-ms"]);
if (!(IDLE_MS >= 0)) throw new TypeError(`--idle-ms must be 0 or more: got '${values["idle-ms"]}'`);
if (values.runtime !== "bun" && values.runtime !== "deno") {
  throw new TypeError(`--runtime must be bun or deno: got '${values.runtime}'`);
}
const RUNTIME = values.runtime as Runtime;

// ---------------------------------------------------------------------------------------------
// processes and CPU time

/** Every child we started and have not seen exit; killed on the way out whatever happens. */
const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

/** Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`; 100 on Linux x86). */
const CLK_TCK = 100;

/** Fields of /proc/PID/stat after the command name: index 0 is field 3 (state). */
function statFields(pid: number | "self"): string[] {
  const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return text.slice(text.lastIndexOf(")") + 2).trim().split(" ");
}

/** utime + stime of a live process, in ms. */
function cpuMsOf(pid: number): number {
  const f = statFields(pid);
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** cutime + cstime of this process (CPU of its reaped children), in ms. */
function reapedChildrenCpuMs(): number {
  const f = statFields("self");
  return ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
}

/** Environment of the CLI and the server: a key for the openai adapter, Bun's fetch cap off. */
const CHILD_ENV = {
  ...process.env,
  OPENAI_API_KEY: "bench-key",
  BUN_CONFIG_MAX_HTTP_REQUESTS: "65535",
  NO_COLOR: "1",
};

function cliCommand(args: string[]): string[] {
  return scriptCommand(RUNTIME, path.join(ROOT, "cli.ts"), args);
}

/** `cli.ts …` as a shell line for the report (paths relative to the repository). */
function shown(args: string[]): string {
  return [RUNTIME === "deno" ? "deno run -A" : "bun", "cli.ts", ...args].join(" ");
}

/** Rejects after `ms` with `what` in the message; the caller kills what it started. */
function deadline<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no end after ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// the mock

async function mockGet<T>(mock: MockServer, route: string): Promise<T> {
  const res = await fetch(`${mock.url}/__mock/${route}`);
  if (!res.ok) throw new Error(`mock ${route}: HTTP ${res.status}`);
  return await res.json() as T;
}

async function mockReset(mock: MockServer): Promise<void> {
  const res = await fetch(`${mock.url}/__mock/reset`, { method: "POST" });
  await res.body?.cancel();
}

async function arrivalTimes(mock: MockServer): Promise<number[]> {
  const { arrivals } = await mockGet<{ arrivals: Arrival[] }>(mock, "arrivals");
  return arrivals.map((a) => a.t);
}

/** Mean of `arrival[k] - arrival[0] - k/R` and its largest value: how far sending fell behind. */
function dispatchLag(times: number[], rate: number): { mean: number; max: number } {
  if (times.length === 0) return { mean: NaN, max: NaN };
  let total = 0;
  let max = -Infinity;
  for (let k = 0; k < times.length; k++) {
    const lag = times[k] - times[0] - (k * 1000) / rate;
    total += lag;
    if (lag > max) max = lag;
  }
  return { mean: total / times.length, max };
}

/**
 * Where the mock saw more than `limit` arrivals in a 1 s window: for each run of overlapping
 * offending windows, its start (ms after the first arrival) and its highest count.
 */
function windowsOver(times: number[], limit: number): { atMs: number; count: number }[] {
  const out: { atMs: number; count: number }[] = [];
  let j = 0;
  let lastOver = -Infinity;
  for (let i = 0; i < times.length; i++) {
    while (j < times.length && times[j] < times[i] + 1000) j++;
    const count = j - i;
    if (count <= limit) continue;
    const current = out[out.length - 1];
    if (current && times[i] - lastOver < 1000) current.count = Math.max(current.count, count);
    else out.push({ atMs: times[i] - times[0], count });
    lastOver = times[i];
  }
  return out;
}

function showWindows(list: { atMs: number; count: number }[]): string {
  if (list.length === 0) return "none";
  const shown = list.slice(0, 6).map((w) => `${w.count} at ${fmt(w.atMs / 1000, 2)} s`);
  return shown.join(", ") + (list.length > 6 ? ` (+${list.length - 6} more)` : "");
}

// ---------------------------------------------------------------------------------------------
// numbers

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

interface Dist {
  min: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

function dist(values: number[]): Dist {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / (sorted.length || 1);
  return {
    min: sorted[0] ?? NaN,
    mean,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

function showDist(d: Dist, digits = 0): string {
  return `${fmt(d.min, digits)} / ${fmt(d.mean, digits)} / ${fmt(d.p50, digits)} / ${
    fmt(d.p99, digits)
  } / ${fmt(d.max, digits)}`;
}

// ---------------------------------------------------------------------------------------------
// streams of result lines

/** One result line as it arrived: ms since our start mark, and the parsed record. */
interface Received {
  t: number;
  record: Record<string, unknown>;
}

/** Splits text chunks into lines, stamping each with the time its chunk arrived. */
class LineCollector {
  readonly lines: Received[] = [];
  summary: Record<string, unknown> | undefined;
  private rest = "";
  constructor(private readonly start: number) {}

  push(chunk: string): void {
    const t = performance.now() - this.start;
    const text = this.rest + chunk;
    const parts = text.split("\n");
    this.rest = parts.pop() ?? "";
    for (const line of parts) this.add(line, t);
  }

  end(): void {
    if (this.rest.trim() !== "") this.add(this.rest, performance.now() - this.start);
    this.rest = "";
  }

  private add(line: string, t: number): void {
    if (line.trim() === "") return;
    const record = JSON.parse(line) as Record<string, unknown>;
    if (record.summary && typeof record.summary === "object") {
      this.summary = record.summary as Record<string, unknown>;
    } else {
      this.lines.push({ t, record });
    }
  }
}

/** Index `i` of an id `PREFIX{i}`. */
function indexOf(record: Record<string, unknown>, prefix: string): number {
  const id = String(record.id ?? "");
  return id.startsWith(prefix) ? Number(id.slice(prefix.length)) : NaN;
}

function inputLines(prefix: string, n: number): string {
  let text = "";
  for (let i = 0; i < n; i++) {
    text += JSON.stringify({ id: `${prefix}${i}`, prompt: `${prefix} question number ${i}` }) +
      "\n";
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// the CLI

interface CliResult {
  code: number;
  wallMs: number;
  cpuMs: number;
  /** Largest utime + stime seen while polling /proc (a cross-check of `cpuMs`). */
  polledCpuMs: number;
  received: LineCollector;
  stderr: string;
  /** The command line for the report. */
  command: string;
}

async function runCli(
  inputFile: string,
  rate: number,
  mock: MockServer,
  dir: string,
): Promise<CliResult> {
  const args = [
    "run",
    inputFile,
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    String(rate),
    "--output",
    "-",
    "--errors",
    path.join(dir, "errors.jsonl"),
    "--overwrite",
  ];
  const [bin, ...rest] = cliCommand(args);
  const reapedBefore = reapedChildrenCpuMs();
  const start = performance.now();
  const child = track(spawn(bin, rest, { env: CHILD_ENV, stdio: ["ignore", "pipe", "pipe"] }));
  const received = new LineCollector(start);
  let stderr = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => received.push(chunk));
  child.stderr!.on("data", (chunk: string) => void (stderr += chunk));
  let polledCpuMs = 0;
  const poll = setInterval(() => {
    try {
      polledCpuMs = Math.max(polledCpuMs, cpuMsOf(child.pid!));
    } catch {
      // gone already
    }
  }, 20);
  const stdoutDone = new Promise<void>((resolve) => child.stdout!.on("end", () => resolve()));
  const code = await deadline(
    ((ITEMS / rate) + LATENCY / 1000 + 120) * 1000,
    "cli.ts run",
    new Promise<number>((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 128 : 1)))),
  ).finally(() => clearInterval(poll));
  await deadline(10_000, "cli.ts stdout", stdoutDone);
  received.end();
  const wallMs = performance.now() - start;
  // 'exit' comes after the child was reaped, so its CPU is now in our cutime/cstime.
  await sleep(20);
  const cpuMs = reapedChildrenCpuMs() - reapedBefore;
  return {
    code,
    wallMs,
    cpuMs,
    polledCpuMs,
    received,
    stderr,
    command: shown(args.map((a) => (a === inputFile ? "IN.jsonl" : a)))
      .replace(mock.url, "MOCK")
      .replace(path.join(dir, "errors.jsonl"), "ERR.jsonl"),
  };
}

// ---------------------------------------------------------------------------------------------
// the server

interface Server {
  url: string;
  pid: number;
  child: ChildProcess;
  command: string;
  /** CPU (ms) when it printed its URL: start-up. */
  startCpuMs: number;
  stop(): Promise<void>;
}

async function startServer(mock: MockServer, rate: number): Promise<Server> {
  const args = [
    "serve",
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    String(rate),
    "--port",
    "0",
  ];
  const [bin, ...rest] = cliCommand(args);
  const child = track(spawn(bin, rest, { env: CHILD_ENV, stdio: ["ignore", "pipe", "pipe"] }));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  child.stderr!.setEncoding("utf8");
  let stderr = "";
  child.stderr!.on("data", (chunk: string) => void (stderr += chunk));
  child.stdout!.setEncoding("utf8");
  const url = await deadline(
    30_000,
    "cli.ts serve start",
    new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (chunk: string) => {
        out += chunk;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on("exit", (code) => reject(new Error(`server exited (code ${code}): ${stderr}`)));
    }),
  );
  child.stdout!.resume();
  // Let the start-up work settle before the CPU baseline, and leave the server idle for a while
  // as a long-running one is: its shared scheduler counts from when the app was built.
  await sleep(IDLE_MS);
  return {
    url,
    pid: child.pid!,
    child,
    command: shown(args).replace(mock.url, "MOCK"),
    startCpuMs: cpuMsOf(child.pid!),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await deadline(10_000, "server stop", exited).catch(() => {
        child.kill("SIGKILL");
        return exited;
      });
    },
  };
}

/** POSTs `body` to the server and reads the result stream to its end. */
async function postRun(server: Server, body: string, start: number): Promise<LineCollector> {
  const received = new LineCollector(start);
  const res = await fetch(`${server.url}/v1/runs`, {
    method: "POST",
    headers: { "content-type": "application/x-ndjson" },
    body,
  });
  if (!res.ok || res.body === null) {
    throw new Error(`POST /v1/runs: HTTP ${res.status} ${await res.text()}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    received.push(value);
  }
  received.end();
  return received;
}

// ---------------------------------------------------------------------------------------------
// 1. overhead

interface Side {
  name: string;
  command: string;
  wallMs: number;
  ok: number;
  /** Total CPU of the process (start-up included), ms. */
  cpuMs: number;
  /** CPU of the work alone: CLI total - a 1-item run; server delta from listening to done. */
  workCpuMs: number;
  mock: MockStats;
  dispatch: { mean: number; max: number };
  /** 1 s windows at the mock above R + 1. */
  over: { atMs: number; count: number }[];
  /** Records whose `latency_ms` is over the mock's latency + 50 ms, and the first index of one. */
  slow: number;
  /** `latency_ms` of the first item sent, minus the mock's latency: the cold first request. */
  coldMs: number;
  firstResultMs: number;
  lag: Dist;
  lagFromFirst: Dist;
  latency: Dist;
}

/** When the earliest-sent record of a stream was sent (arrival − `latency_ms`), and its latency. */
function firstSentAt(received: LineCollector): { at: number; latency: number } {
  let best = { at: Infinity, latency: NaN };
  for (const { t, record } of received.lines) {
    if (typeof record.latency_ms !== "number") continue;
    const at = t - record.latency_ms;
    if (at < best.at) best = { at, latency: record.latency_ms };
  }
  return best;
}

/** `latency_ms` of the earliest-sent record. */
function firstSent(received: LineCollector): number {
  return firstSentAt(received).latency;
}

function side(
  name: string,
  command: string,
  wallMs: number,
  received: LineCollector,
  cpuMs: number,
  workCpuMs: number,
  mock: MockStats,
  times: number[],
): Side {
  const lags: number[] = [];
  const latencies: number[] = [];
  let first = Infinity;
  for (const { t, record } of received.lines) {
    const i = indexOf(record, "q");
    if (typeof record.latency_ms === "number") latencies.push(record.latency_ms);
    if (!Number.isFinite(i)) continue;
    lags.push(t - ((i * 1000) / RATE + LATENCY));
    first = Math.min(first, t);
  }
  const item0 = received.lines.find((r) => indexOf(r.record, "q") === 0);
  const base = item0 ? item0.t - LATENCY : 0;
  return {
    name,
    command,
    wallMs,
    ok: received.lines.filter((r) => r.record.error === undefined).length,
    cpuMs,
    workCpuMs,
    mock,
    dispatch: dispatchLag(times, RATE),
    over: windowsOver(times, RATE + 1),
    slow: latencies.filter((l) => l > LATENCY + 50).length,
    coldMs: firstSent(received) - LATENCY,
    firstResultMs: first,
    lag: dist(lags),
    lagFromFirst: dist(lags.map((l) => l - base)),
    latency: dist(latencies),
  };
}

interface Overhead {
  cli: Side;
  server: Side;
  cliStartupCpuMs: number;
}

async function overhead(dir: string): Promise<Overhead> {
  const input = path.join(dir, "in.jsonl");
  fs.writeFileSync(input, inputLines("q", ITEMS));
  const one = path.join(dir, "one.jsonl");
  fs.writeFileSync(one, inputLines("q", 1));
  const mock = await startMockServer(RUNTIME, ["--latency", String(LATENCY)]);
  track(mock.child);
  try {
    // a. the CLI: a 1-item run for its start-up CPU, then the real one
    const startup = await runCli(one, RATE, mock, dir);
    if (startup.code !== 0) throw new Error(`1-item CLI run failed: ${startup.stderr}`);
    await mockReset(mock);
    console.error(`overhead: CLI, ${ITEMS} items at ${RATE} req/s …`);
    const cli = await runCli(input, RATE, mock, dir);
    if (cli.code !== 0) console.error(`cli.ts run exit ${cli.code}:\n${cli.stderr}`);
    const cliStats = await mockGet<MockStats>(mock, "stats");
    const cliTimes = await arrivalTimes(mock);
    const cliCpu = cli.cpuMs > 0 ? cli.cpuMs : cli.polledCpuMs;
    const cliSide = side(
      "CLI (`run`)",
      cli.command,
      cli.wallMs,
      cli.received,
      cliCpu,
      cliCpu - startup.cpuMs,
      cliStats,
      cliTimes,
    );
    console.error(
      `  wall ${fmt(cli.wallMs / 1000, 2)} s, CPU ${fmt(cliCpu, 0)} ms (polled ${
        fmt(cli.polledCpuMs, 0)
      }), start-up ${fmt(startup.cpuMs, 0)} ms, ${cliSide.ok} ok`,
    );

    // b. the server: the same lines in one POST
    await mockReset(mock);
    console.error(`overhead: server, ${ITEMS} items in one POST at ${RATE} req/s …`);
    const server = await startServer(mock, RATE);
    try {
      const body = fs.readFileSync(input, "utf8");
      const start = performance.now();
      const received = await deadline(
        ((ITEMS / RATE) + LATENCY / 1000 + 120) * 1000,
        "POST /v1/runs",
        postRun(server, body, start),
      );
      const wallMs = performance.now() - start;
      // The stream ends after the summary is written; give the last timers a moment.
      await sleep(200);
      const endCpu = cpuMsOf(server.pid);
      const serverStats = await mockGet<MockStats>(mock, "stats");
      const serverTimes = await arrivalTimes(mock);
      const serverSide = side(
        "server (`serve`, 1 POST)",
        `${server.command}; POST /v1/runs with the ${ITEMS} lines`,
        wallMs,
        received,
        endCpu,
        endCpu - server.startCpuMs,
        serverStats,
        serverTimes,
      );
      if (received.summary === undefined) console.error("server: no summary line!");
      console.error(
        `  wall ${fmt(wallMs / 1000, 2)} s, CPU ${fmt(endCpu, 0)} ms (start-up ${
          fmt(server.startCpuMs, 0)
        }), ${serverSide.ok} ok, summary ${JSON.stringify(received.summary)}`,
      );
      return { cli: cliSide, server: serverSide, cliStartupCpuMs: startup.cpuMs };
    } finally {
      await server.stop();
    }
  } finally {
    await mock.stop();
  }
}

function overheadReport(o: Overhead): string {
  const { cli, server } = o;
  const perReq = (s: Side, cpu: number) => (1000 * cpu) / Math.max(1, s.ok);
  const header = ["", cli.name, server.name, "server / CLI"];
  const ratio = (a: number, b: number) => (b > 0 ? `${fmt(a / b, 2)}×` : "–");
  const row = (label: string, f: (s: Side) => number, digits = 1): string[] => [
    label,
    fmt(f(cli), digits),
    fmt(f(server), digits),
    ratio(f(server), f(cli)),
  ];
  const rows: string[][] = [
    ["results ok", String(cli.ok), String(server.ok), ""],
    row("wall time (s)", (s) => s.wallMs / 1000, 2),
    row("mock: achieved req/s", (s) => s.mock.rate, 1),
    row("mock: achieved / R", (s) => s.mock.rate / RATE, 3),
    row("mock: most arrivals in 1 s", (s) => s.mock.maxPerWindow, 0),
    [
      `mock: 1 s windows above R + 1 = ${RATE + 1} (most, where)`,
      showWindows(cli.over),
      showWindows(server.over),
      "",
    ],
    [
      "mock: dispatch lag behind k/R, mean / max (ms)",
      `${fmt(cli.dispatch.mean, 1)} / ${fmt(cli.dispatch.max, 1)}`,
      `${fmt(server.dispatch.mean, 1)} / ${fmt(server.dispatch.max, 1)}`,
      "",
    ],
    row("first result line after start (ms)", (s) => s.firstResultMs, 0),
    [
      "result line − (i/R + latency) from start, min / mean / p50 / p99 / max (ms)",
      showDist(cli.lag),
      showDist(server.lag),
      "",
    ],
    [
      "the same relative to item 0 (start-up taken out)",
      showDist(cli.lagFromFirst),
      showDist(server.lagFromFirst),
      "",
    ],
    [
      "`latency_ms` of the records, min / mean / p50 / p99 / max",
      showDist(cli.latency),
      showDist(server.latency),
      "",
    ],
    row(`records with \`latency_ms\` > latency + 50 ms`, (s) => s.slow, 0),
    row("first request sent: `latency_ms` − latency (ms) ²", (s) => s.coldMs, 0),
    row("CPU, whole process (ms)", (s) => s.cpuMs, 0),
    row("CPU per request, whole process (µs)", (s) => perReq(s, s.cpuMs), 0),
    row("CPU of the work alone (ms) ¹", (s) => s.workCpuMs, 0),
    row("**CPU per request, work alone (µs)** ¹", (s) => perReq(s, s.workCpuMs), 0),
  ];
  return markdownTable(header, rows);
}

// ---------------------------------------------------------------------------------------------
// 2. callers sharing one quota

interface Caller {
  index: number;
  received: LineCollector;
  first: number;
  last: number;
  ok: number;
}

interface Shared {
  command: string;
  callers: Caller[];
  wallMs: number;
  mock: MockStats;
  times: number[];
  maxWindow: number;
  over: { atMs: number; count: number }[];
  /** Result records whose `latency_ms` is over the mock's latency + 50 ms. */
  slow: number;
  /** `latency_ms` of the first item sent, minus the mock's latency. */
  coldMs: number;
  /** Accepted rate over the whole run (mock): `(n - 1) / (last - first)`. */
  achieved: number;
  /** Over the common span, each caller's share of the result lines. */
  span: [number, number];
  shares: number[];
  /** Shares in each whole second of the common span: the lowest and highest seen. */
  secondShares: { min: number; max: number };
  cpuMs: number;
}

async function sharedQuota(): Promise<Shared> {
  const mock = await startMockServer(RUNTIME, ["--latency", String(SHARED_LATENCY)]);
  track(mock.child);
  try {
    const server = await startServer(mock, SHARED_RATE);
    try {
      const bodies = Array.from({ length: CALLERS }, (_, k) => inputLines(`c${k}-`, CALLER_ITEMS));
      console.error(
        `shared: ${CALLERS} callers × ${CALLER_ITEMS} lines at ${SHARED_RATE} req/s, latency ${SHARED_LATENCY} ms …`,
      );
      const start = performance.now();
      const cpuBefore = cpuMsOf(server.pid);
      const all = await deadline(
        ((CALLERS * CALLER_ITEMS) / SHARED_RATE + SHARED_LATENCY / 1000 + 120) * 1000,
        "callers",
        Promise.all(bodies.map((body) => postRun(server, body, start))),
      );
      const wallMs = performance.now() - start;
      await sleep(200);
      const cpuMs = cpuMsOf(server.pid) - cpuBefore;
      const stats = await mockGet<MockStats>(mock, "stats");
      const times = await arrivalTimes(mock);
      const callers: Caller[] = all.map((received, index) => ({
        index,
        received,
        first: received.lines[0]?.t ?? NaN,
        last: received.lines[received.lines.length - 1]?.t ?? NaN,
        ok: received.lines.filter((r) => r.record.error === undefined).length,
      }));
      const span: [number, number] = [
        Math.max(...callers.map((c) => c.first)),
        Math.min(...callers.map((c) => c.last)),
      ];
      const inSpan = callers.map((c) =>
        c.received.lines.filter((r) => r.t >= span[0] && r.t <= span[1]).length
      );
      const total = inSpan.reduce((s, n) => s + n, 0);
      const shares = inSpan.map((n) => n / Math.max(1, total));
      // Per whole second of the span: each caller's share of that second's lines.
      let minShare = Infinity;
      let maxShare = -Infinity;
      for (let t = span[0]; t + 1000 <= span[1]; t += 1000) {
        const counts = callers.map((c) =>
          c.received.lines.filter((r) => r.t >= t && r.t < t + 1000).length
        );
        const sum = counts.reduce((s, n) => s + n, 0);
        if (sum === 0) continue;
        for (const n of counts) {
          minShare = Math.min(minShare, n / sum);
          maxShare = Math.max(maxShare, n / sum);
        }
      }
      return {
        command: `${server.command}; ${CALLERS} concurrent POST /v1/runs of ${CALLER_ITEMS} lines`,
        callers,
        wallMs,
        mock: stats,
        times,
        maxWindow: maxPerWindow(times),
        over: windowsOver(times, SHARED_RATE + 1),
        coldMs: ([...all.map(firstSentAt)].sort((a, b) => a.at - b.at)[0]?.latency ?? NaN) -
          SHARED_LATENCY,
        slow: callers.reduce(
          (n, c) =>
            n +
            c.received.lines.filter((r) =>
              typeof r.record.latency_ms === "number" &&
              r.record.latency_ms > SHARED_LATENCY + 50
            ).length,
          0,
        ),
        achieved: times.length > 1
          ? ((times.length - 1) * 1000) / (times[times.length - 1] - times[0])
          : NaN,
        span,
        shares,
        secondShares: { min: minShare, max: maxShare },
        cpuMs,
      };
    } finally {
      await server.stop();
    }
  } finally {
    await mock.stop();
  }
}

function sharedReport(s: Shared): { summary: string; perCaller: string } {
  const fair = 1 / CALLERS;
  const firsts = s.callers.map((c) => c.first);
  const minShare = Math.min(...s.shares);
  const maxShare = Math.max(...s.shares);
  const allOk = s.callers.every((c) => c.ok === CALLER_ITEMS);
  const fromStart = Math.max(...firsts) <= SHARED_LATENCY + 3000;
  const summary = markdownTable(["", "value", "check"], [
    ["requests at the mock", String(s.mock.count), `${CALLERS * CALLER_ITEMS} expected`],
    [
      "most arrivals in any 1 s window",
      String(s.maxWindow),
      s.maxWindow <= SHARED_RATE + 1 ? `≤ R + 1 = ${SHARED_RATE + 1} ✔` : `> R + 1 ✘`,
    ],
    [`1 s windows above R + 1 (most, where)`, showWindows(s.over), ""],
    [
      "arrivals < 1 ms after the previous one; largest gap (ms), the grid's is " +
      fmt(1000 / SHARED_RATE, 0),
      `${s.times.slice(1).filter((t, i) => t - s.times[i] < 1).length}; ${
        fmt(Math.max(...s.times.slice(1).map((t, i) => t - s.times[i])), 1)
      }`,
      "",
    ],
    [`records with \`latency_ms\` > latency + 50 ms`, String(s.slow), ""],
    ["first request sent: `latency_ms` − latency (ms) ²", fmt(s.coldMs, 0), ""],
    [
      "achieved total rate (req/s), ratio to R",
      `${fmt(s.achieved, 2)} (${fmt(s.achieved / SHARED_RATE, 3)} × R)`,
      Math.abs(s.achieved / SHARED_RATE - 1) <= 0.05 ? "within 5 % ✔" : "off by > 5 % ✘",
    ],
    [
      "common span (all callers receiving), s",
      `${fmt(s.span[0] / 1000, 2)} – ${fmt(s.span[1] / 1000, 2)}`,
      "",
    ],
    [
      `caller share over the span, min / max (fair ${fmt(fair, 3)})`,
      `${fmt(minShare, 4)} / ${fmt(maxShare, 4)}`,
      Math.abs(minShare - fair) <= 0.1 * fair && Math.abs(maxShare - fair) <= 0.1 * fair
        ? "within 10 % of fair ✔"
        : "outside 10 % ✘",
    ],
    [
      "caller share in each whole second of the span, min / max",
      `${fmt(s.secondShares.min, 3)} / ${fmt(s.secondShares.max, 3)}`,
      "",
    ],
    [
      "first result per caller, earliest / latest (ms after the POSTs)",
      `${fmt(Math.min(...firsts), 0)} / ${fmt(Math.max(...firsts), 0)}`,
      fromStart ? `all within latency + 3 s ✔` : "some caller waited ✘",
    ],
    [
      "every caller got all its lines ok",
      s.callers.map((c) => c.ok).join(", "),
      allOk ? "✔" : "✘",
    ],
    ["wall time (s)", fmt(s.wallMs / 1000, 2), ""],
    [
      "server CPU during the run (ms), per request (µs)",
      `${fmt(s.cpuMs, 0)}, ${fmt((1000 * s.cpuMs) / Math.max(1, s.mock.count), 0)}`,
      "",
    ],
  ]);
  const perCaller = markdownTable(
    ["caller", "ok", "first result (ms)", "last result (ms)", "share over the span"],
    s.callers.map((c, k) => [
      `c${c.index}`,
      String(c.ok),
      fmt(c.first, 0),
      fmt(c.last, 0),
      fmt(s.shares[k], 4),
    ]),
  );
  return { summary, perCaller };
}

// ---------------------------------------------------------------------------------------------
// 3. the scheduler alone

interface SchedulerRow {
  rate: number;
  lanes: number;
  releases: number;
  maxWindow: number;
  over: { atMs: number; count: number }[];
  bunched: number;
  achieved: number;
}

/**
 * The slots `src/scheduler.ts` hands out, timed where they are released (this process, no
 * network): tells the scheduler's own windows apart from what the loopback hop adds at the mock.
 */
async function schedulerAlone(rate: number, lanes: number, perLane: number): Promise<SchedulerRow> {
  const scheduler = new Scheduler({ rate });
  const times: number[] = [];
  try {
    await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
      for (let i = 0; i < perLane; i++) times.push(await scheduler.acquire({ lane }));
    }));
  } finally {
    scheduler.close();
  }
  times.sort((a, b) => a - b);
  return {
    rate,
    lanes,
    releases: times.length,
    maxWindow: maxPerWindow(times),
    over: windowsOver(times, rate + 1),
    bunched: times.slice(1).filter((t, i) => t - times[i] < 1).length,
    achieved: ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]),
  };
}

function schedulerReport(rows: SchedulerRow[]): string {
  return markdownTable(
    [
      "R",
      "lanes",
      "releases",
      "released req/s",
      "most in 1 s",
      "windows above R + 1 (most, where)",
      "releases < 1 ms after the previous",
    ],
    rows.map((r) => [
      String(r.rate),
      String(r.lanes),
      String(r.releases),
      fmt(r.achieved, 2),
      String(r.maxWindow),
      showWindows(r.over),
      String(r.bunched),
    ]),
  );
}

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  if (!fs.existsSync("/proc/self/stat")) throw new Error("this benchmark needs Linux /proc");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-server-"));
  const sections: string[] = [];
  const loadBefore = os.loadavg();
  const childVersion = await versionOf(RUNTIME);
  try {
    if (!values["skip-overhead"]) {
      const perReq = (s: Side, cpu: number) => cpu / Math.max(1, s.ok);
      const ratios = (r: Overhead) => ({
        work: perReq(r.server, r.server.workCpuMs) / perReq(r.cli, r.cli.workCpuMs),
        total: perReq(r.server, r.server.cpuMs) / perReq(r.cli, r.cli.cpuMs),
      });
      const reps: Overhead[] = [];
      for (let k = 0; k < REPEAT; k++) {
        console.error(`overhead: repetition ${k + 1} of ${REPEAT}`);
        reps.push(await overhead(dir));
      }
      // The table shows the repetition with the median work ratio; the headline all of them.
      const ranked = [...reps].sort((a, b) => ratios(a).work - ratios(b).work);
      const o = ranked[Math.floor((ranked.length - 1) / 2)];
      const { work: workRatio, total: totalRatio } = ratios(o);
      const list = (f: (r: Overhead) => number, digits: number) =>
        reps.map((r) => fmt(f(r), digits)).join(", ");
      const line = `**Overhead: server CPU per request / CLI CPU per request = ${
        fmt(workRatio, 2)
      }× (median of ${REPEAT}, work alone; ${
        fmt(totalRatio, 2)
      }× whole process); mock achieved rate / R: CLI ${fmt(o.cli.mock.rate / RATE, 3)}, server ${
        fmt(o.server.mock.rate / RATE, 3)
      }.**\n\nAll ${REPEAT} repetitions, in order: work-alone ratio ${
        list((r) => ratios(r).work, 2)
      }; whole-process ratio ${list((r) => ratios(r).total, 2)}; CLI µs/request ${
        list((r) => perReq(r.cli, r.cli.workCpuMs) * 1000, 0)
      }; server µs/request ${
        list((r) => perReq(r.server, r.server.workCpuMs) * 1000, 0)
      }; mock achieved / R, CLI ${list((r) => r.cli.mock.rate / RATE, 3)}, server ${
        list((r) => r.server.mock.rate / RATE, 3)
      }. The table below is the median repetition.`;
      sections.push(
        `## 1. Server overhead per request vs the CLI`,
        ``,
        `${ITEMS} items, R = ${RATE} req/s, mock latency ${LATENCY} ms; the same input file for both.`,
        ``,
        "```sh",
        o.cli.command,
        o.server.command,
        "```",
        ``,
        line,
        ``,
        overheadReport(o),
        ``,
        `¹ CLI: whole-process CPU minus that of a 1-item run (${
          fmt(o.cliStartupCpuMs, 0)
        } ms: start-up, one request, exit). Server: CPU from when it had been listening for ${IDLE_MS} ms (\`--idle-ms\`) to the end of the stream. CPU is utime + stime from /proc at ${CLK_TCK} ticks/s (10 ms resolution).`,
        ``,
        `"Result line − (i/R + latency)": when line i reached this process, minus when it would at a perfect i/R schedule with the mock's latency, counted from the CLI's spawn or the start of the POST. "Relative to item 0" counts from item 0's arrival minus the latency instead, which takes the CLI's start-up out. Dispatch lag is the same measure at the mock (arrival k − arrival 0 − k/R).`,
        ``,
      );
    }
    if (!values["skip-callers"]) {
      const s = await sharedQuota();
      const { summary, perCaller } = sharedReport(s);
      const minShare = Math.min(...s.shares);
      const maxShare = Math.max(...s.shares);
      sections.push(
        `## 2. ${CALLERS} concurrent callers on one quota`,
        ``,
        `R = ${SHARED_RATE} req/s, mock latency ${SHARED_LATENCY} ms, ${CALLERS} callers each POSTing ${CALLER_ITEMS} lines at the same moment.`,
        ``,
        "```sh",
        s.command,
        "```",
        ``,
        `**Rate held with ${CALLERS} callers: ${fmt(s.achieved, 2)} req/s = ${
          fmt(s.achieved / SHARED_RATE, 3)
        } × R, most in 1 s ${s.maxWindow} (limit R + 1 = ${SHARED_RATE + 1}); caller share ${
          fmt(minShare, 3)
        }–${fmt(maxShare, 3)} (fair ${fmt(1 / CALLERS, 3)}).**`,
        ``,
        summary,
        ``,
        `Shares count each caller's result lines received while all callers were receiving (from the latest first line to the earliest last line); the mock records no request body, so the result lines are what tells callers apart.`,
        ``,
        perCaller,
        ``,
      );
    }
    if (!values["skip-scheduler"]) {
      console.error("scheduler alone …");
      const rows = [
        await schedulerAlone(RATE, 1, ITEMS),
        await schedulerAlone(SHARED_RATE, CALLERS, CALLER_ITEMS),
      ];
      sections.push(
        `## 3. The scheduler alone`,
        ``,
        `\`src/scheduler.ts\` in this process, no network: each lane acquires its slots one after another, as many as in 1 and 2; times are the release times it returns.`,
        ``,
        schedulerReport(rows),
        ``,
      );
    }
    sections.push(
      `## Reading the 1 s windows`,
      ``,
      `The mock stamps a request when its handler runs, after the loopback hop and its own event loop, so its windows are the sends plus transport jitter:`,
      ``,
      `- ² The first request of a run opens a new connection to a mock that has answered nothing yet; it reaches the mock that many ms late (the rest arrive on time). The 1 s window starting at that late arrival then holds up to R × delay / 1000 more of the following ones, so the mock can count R + 1 to R + 3 at 0.00 s although the sends kept to the grid.`,
      `- Mid-run windows above R + 1 come with bunched arrivals (several < 1 ms apart): a timer that fires late releases the overdue slots together. Section 3 shows whether the scheduler's own release times already exceed R + 1; where they do, the window bound's tolerance (min(2 ms, half a slot) off the oldest of the last R releases) has let more than one extra slot through, once per release of a bunch.`,
      ``,
    );
  } finally {
    killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = os.loadavg();
  const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(" ");
  const head = [
    `# Server benchmark`,
    ``,
    `${stamp()} · CLI, server and mock on ${childVersion} · bench on ${runtimeVersion()} · ${machineInfo()} · \`nproc\` ${os.cpus().length}`,
    ``,
    "```sh",
    `${
      currentRuntime() === "deno" ? "deno run -A" : "bun"
    } scripts/bench_server.ts --items ${ITEMS} --rate ${RATE} --latency ${LATENCY} --callers ${CALLERS} --caller-items ${CALLER_ITEMS} --shared-rate ${SHARED_RATE} --shared-latency ${SHARED_LATENCY} --idle-ms ${IDLE_MS} --repeat ${REPEAT}${
      RUNTIME === "bun" ? "" : ` --runtime ${RUNTIME}`
    }`,
    `bun scripts/start_mock_provider.ts --port 0 --latency MS   # MOCK, its own process`,
    "```",
    ``,
    `Each of the mock, the CLI or server, and this script (the caller) runs in its own process on the same machine, so they share its ${os.cpus().length} cores. The CLI and the server get BUN_CONFIG_MAX_HTTP_REQUESTS=65535 in their environment, so neither re-executes itself. Load average (1, 5, 15 min) before: ${
      load(loadBefore)
    }, after: ${load(loadAfter)}.`,
    ``,
  ];
  const report = [...head, ...sections].join("\n");
  console.log(report);
  if (values.out !== "-") console.error(`wrote ${writeResult(values.out, report)}`);
}

async function versionOf(runtime: Runtime): Promise<string> {
  const bin = runtimeBinary(runtime);
  const child = track(spawn(bin, ["--version"], { stdio: ["ignore", "pipe", "ignore"] }));
  let out = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => void (out += chunk));
  await deadline(
    10_000,
    `${runtime} --version`,
    new Promise<void>((resolve) => child.on("exit", () => resolve())),
  );
  const first = out.trim().split("\n")[0] ?? "";
  return runtime === "bun" ? `Bun ${first}` : first.replace(/^deno/, "Deno");
}

await ensureBunMaxHttpRequests();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}
try {
  await main();
} catch (error) {
  killAll();
  console.error(`bench_server: ${(error as Error)?.stack ?? error}`);
  process.exit(1);
}
