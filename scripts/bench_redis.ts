/**
 * Shared-quota benchmark: several CLI processes on one Redis quota against the mock provider.
 *
 * 1. share + kill: 3 `run --quota` processes on one quota of R = 60 req/s. The mock's arrival
 *    log must show no 1 s window above R + 1, a summed rate within 2 % of R and about R/3 per
 *    process; one process is then killed (SIGKILL) and the other two must take its share
 *    within 2 s.
 * 2. outage: 3 processes on one quota; redis-server is killed for 5 s mid-run and started again
 *    (empty: no persistence). No burst above R after it returns, and every line of every
 *    process ends in its output or errors file.
 *
 * Attribution, without touching the mock or the CLI: the processes use the Gemini wire format
 * with a model name of their own (`--model bench-p1`…), and the mock records each request's
 * path, `/v1beta/models/bench-p1:generateContent`. Moments (kill, Redis stop/start) are marked in
 * the mock's own clock by a probe request to `models/probe-…`, left out of every count.
 *
 * Usage: `bun scripts/bench_redis.ts [--rate 60] [--latency 200] [--out bench-results/redis.md]
 * [--dump PREFIX]` (`--out -` prints only; `--dump` writes the mock's arrival logs to
 * PREFIX-share.json and PREFIX-outage.json). Needs redis-server on PATH. Traffic stays on 127.0.0.1.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { maxPerWindow } from "../tests/mocks/mock_provider.ts";
import { startRedisServer } from "../tests/redis_test_server.ts";
import {
  currentRuntime,
  fmt,
  machineInfo,
  markdownTable,
  type MockServer,
  ROOT,
  runtimeVersion,
  scriptCommand,
  sleep,
  stamp,
  startMockServer,
  writeResult,
} from "./_bench_util.ts";

interface Arrival {
  t: number;
  path: string;
  id: string | null;
  status: number;
}

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rate: { type: "string", default: "60" },
    latency: { type: "string", default: "200" },
    out: { type: "string", default: "bench-results/redis.md" },
    dump: { type: "string" },
  },
  strict: true,
});
const R = Number(values.rate);
const LATENCY = Number(values.latency);
const runtime = currentRuntime();
const work = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-redis-"));

/** A CLI process on the shared quota. */
interface Job {
  name: string;
  lines: number;
  child: ChildProcess;
  exit: Promise<number | null>;
  stderr: () => string;
  output: string;
  errors: string;
}

function startJob(
  name: string,
  lines: number,
  mockUrl: string,
  quotaUrl: string,
  quotaName: string,
): Job {
  const input = path.join(work, `${name}.jsonl`);
  fs.writeFileSync(
    input,
    Array.from(
      { length: lines },
      (_, i) => JSON.stringify({ id: `${name}-${i}`, prompt: `question ${i}` }),
    ).join("\n") + "\n",
  );
  const output = path.join(work, `${name}-out.jsonl`);
  const errors = path.join(work, `${name}-errors.jsonl`);
  const [bin, ...args] = scriptCommand(runtime, path.join(ROOT, "cli.ts"), [
    "run",
    input,
    "--provider",
    "gemini",
    "--model",
    name,
    "--rate-limit",
    String(R),
    "--quota",
    quotaUrl,
    "--quota-name",
    quotaName,
    "--output",
    output,
    "--errors",
    errors,
    "--overwrite",
  ]);
  const child = spawn(bin, args, {
    stdio: ["ignore", "ignore", "pipe"],
    // Set here so Bun does not relaunch itself: a SIGKILL must reach the process doing the work.
    env: {
      ...process.env,
      GEMINI_API_KEY: "bench-key",
      GEMINI_BASE_URL: mockUrl,
      BUN_CONFIG_MAX_HTTP_REQUESTS: "65535",
    },
  });
  let err = "";
  child.stderr!.on("data", (c: Uint8Array) => (err += new TextDecoder().decode(c)));
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { name, lines, child, exit, stderr: () => err, output, errors };
}

/**
 * Marks this moment in the mock's clock: a request the counts leave out. The mock logs it on
 * arrival; its answer (after the mock's latency) is not waited for.
 */
async function probe(mockUrl: string, label: string): Promise<void> {
  fetch(`${mockUrl}/v1beta/models/probe-${label}:generateContent`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-goog-api-key": "bench-key" },
    body: JSON.stringify({ contents: [{ parts: [{ text: "probe" }] }] }),
  }).then((r) => r.arrayBuffer(), () => {});
  await sleep(3);
}

async function arrivals(mockUrl: string): Promise<Arrival[]> {
  const res = await fetch(`${mockUrl}/__mock/arrivals`);
  return ((await res.json()) as { arrivals: Arrival[] }).arrivals;
}

function marker(all: Arrival[], label: string): number {
  const a = all.find((x) => x.path.includes(`probe-${label}:`));
  if (!a) throw new Error(`probe ${label} not in the mock's log`);
  return a.t;
}

/** The CLI's closing "quota: … slots used, … dropped late" line, shortened. */
const quotaLine = (j: Job) =>
  (j.stderr().match(/quota: (\d+) slots .* used, (\d+) dropped late.*?, (\d+) unused/) ?? [])
    .slice(1).reduce(
      (s, n, i) => s + (i ? ", " : "") + n + [" used", " dropped late", " unused"][i],
      "",
    );
const of = (all: Arrival[], job: string) => all.filter((a) => a.path.includes(`/${job}:`));
const workload = (all: Arrival[]) => all.filter((a) => !a.path.includes("/probe-"));
const count = (xs: Arrival[], from: number, to: number) =>
  xs.filter((a) => a.t >= from && a.t < to).length;
const lineCount = (file: string) =>
  fs.existsSync(file)
    ? fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").length
    : 0;

async function resetMock(mockUrl: string): Promise<void> {
  await fetch(`${mockUrl}/__mock/reset`, { method: "POST" }).then((r) => r.arrayBuffer());
}

async function shareAndKill(mock: MockServer, quotaUrl: string): Promise<string> {
  await resetMock(mock.url);
  // 3 × 20/s for 10 s, then 2 × 30/s: 600 lines each lasts ~23 s.
  const names = ["bench-p1", "bench-p2", "bench-p3"];
  const jobs = names.map((n) => startJob(n, 600, mock.url, quotaUrl, "bench-share"));
  await sleep(10_000);
  await probe(mock.url, "kill");
  jobs[2].child.kill("SIGKILL");
  const codes = await Promise.all(jobs.map((j) => j.exit));
  const all = await arrivals(mock.url);
  if (values.dump) fs.writeFileSync(`${values.dump}-share.json`, JSON.stringify(all));
  const kill = marker(all, "kill");
  const load = workload(all);
  const per = names.map((n) => of(load, n));
  // Steady phase with three: from 1 s after the last one started to the kill.
  const from3 = Math.max(...per.map((p) => p[0].t)) + 1000;
  const phase3 = (kill - from3) / 1000;
  const sum3 = count(load, from3, kill) / phase3;
  // Two left: until the first of them has no more lines.
  const end2 = Math.min(per[0].at(-1)!.t, per[1].at(-1)!.t);
  const from2 = kill + 2000;
  const phase2 = (end2 - from2) / 1000;
  const sum2 = count(load, from2, end2) / phase2;
  const maxWin = maxPerWindow(load.map((a) => a.t));
  const rows3 = names.map((n, i) => {
    const r = count(per[i], from3, kill) / phase3;
    return [n, fmt(r, 2), fmt(r / sum3, 3)];
  });
  const afterKill = [0, 1, 2, 3, 4].map((s) => {
    const a = kill + s * 1000;
    const c = per.map((p) => count(p, a, a + 1000));
    return [
      `kill + ${s}…${s + 1} s`,
      String(c[0]),
      String(c[1]),
      String(c[2]),
      String(c[0] + c[1] + c[2]),
    ];
  });
  const takeover = afterKill.findIndex((r, i) => i > 0 && Number(r[4]) >= R * 0.98 - 1);
  const ok3 = maxWin <= R + 1 && Math.abs(sum3 - R) / R <= 0.02 &&
    rows3.every((r) => Math.abs(Number(r[2]) - 1 / 3) < 0.03);
  const ok2 = takeover >= 1 && takeover <= 2 && Math.abs(sum2 - R) / R <= 0.02;
  const survivors = jobs.slice(0, 2).map((j) =>
    `${j.name}: exit ${codes[jobs.indexOf(j)]}, ${lineCount(j.output)} ok + ${
      lineCount(j.errors)
    } errors of ${j.lines} (${quotaLine(j)})`
  );
  return [
    `## 1. Three jobs on one quota of ${R} req/s, then one is killed`,
    "",
    `3 CLI processes (\`run --quota … --quota-name bench-share --rate-limit ${R}\`, 600 lines each,`,
    `mock latency ${LATENCY} ms); bench-p3 is killed with SIGKILL 10 s in.`,
    "",
    `- most arrivals in any sliding 1 s window, whole run: **${maxWin}** (limit ${R + 1})`,
    `- summed rate with three, ${fmt(phase3, 1)} s steady phase: **${fmt(sum3, 2)} req/s** (${
      fmt(((sum3 - R) / R) * 100, 2)
    } % from ${R})`,
    `- summed rate with two, from kill + 2 s for ${fmt(phase2, 1)} s: **${fmt(sum2, 2)} req/s**`,
    `- verdict: ${ok3 ? "holds" : "FAILS"} (window, sum, thirds); takeover ${
      ok2 ? "holds" : "FAILS"
    } (two reach ${R} within 2 s)`,
    "",
    markdownTable(["process", "req/s with three", "share"], rows3),
    "",
    "Arrivals per process in the seconds after the kill (from the mock's log). The killed",
    "process takes the reservations it held (at most `depth`, 2 at this rate) with it: that is",
    "the whole loss; the next reservations already go to the two others.",
    "",
    markdownTable(["window", "bench-p1", "bench-p2", "bench-p3 (killed)", "sum"], afterKill),
    "",
    `Survivors: ${survivors.join("; ")}.`,
  ].join("\n");
}

async function outage(
  mock: MockServer,
  redis: Awaited<ReturnType<typeof startRedisServer>>,
): Promise<string> {
  await resetMock(mock.url);
  // 3 × 20/s; 300 lines each: 5 s, a 5 s outage, then 10 s more.
  const names = ["bench-o1", "bench-o2", "bench-o3"];
  const jobs = names.map((n) => startJob(n, 300, mock.url, redis.url, "bench-outage"));
  await sleep(5000);
  await probe(mock.url, "stop");
  await redis.stop("SIGKILL");
  await sleep(5000);
  await redis.start();
  await probe(mock.url, "start");
  const codes = await Promise.all(jobs.map((j) => j.exit));
  const all = await arrivals(mock.url);
  if (values.dump) fs.writeFileSync(`${values.dump}-outage.json`, JSON.stringify(all));
  const stop = marker(all, "stop");
  const start = marker(all, "start");
  const load = workload(all);
  const during = count(load, stop, start);
  const duringLate = count(load, stop + 250, start);
  const after = load.filter((a) => a.t >= start);
  const firstAfter = after.length ? after[0].t - start : NaN;
  const maxAfter = maxPerWindow(after.map((a) => a.t));
  const maxAll = maxPerWindow(load.map((a) => a.t));
  const steadyFrom = start + 1000;
  const steadyTo = Math.min(...names.map((n) => of(load, n).at(-1)!.t));
  const rateAfter = count(load, steadyFrom, steadyTo) / ((steadyTo - steadyFrom) / 1000);
  const rows = jobs.map((j, i) => {
    const ok = lineCount(j.output);
    const err = lineCount(j.errors);
    return [
      j.name,
      String(codes[i]),
      String(ok),
      String(err),
      String(j.lines),
      ok + err === j.lines ? "yes" : "NO",
    ];
  });
  const lostLine = jobs[0].stderr().split("\n").filter((l) => l.startsWith("quota"));
  const holds = maxAfter <= R + 1 && maxAll <= R + 1 && rows.every((r) => r[5] === "yes") &&
    codes.every((c) => c === 0);
  return [
    `## 2. Redis killed for 5 s mid-run`,
    "",
    `3 CLI processes on one quota of ${R} req/s (300 lines each); 5 s in, redis-server is killed`,
    "(SIGKILL) and started again 5 s later, empty (no persistence).",
    "",
    `- arrivals while Redis was down: ${during} (${duringLate} after the first 250 ms): only`,
    `  reservations already made go out: at most \`depth\` held per process (2 at ${R} req/s),`,
    "  plus one whose answer was on its way when Redis died",
    `- first arrival after Redis was back: ${fmt(firstAfter, 0)} ms after it accepted connections`,
    `- most arrivals in any sliding 1 s window after it returned: **${maxAfter}** (whole run: ${maxAll}; limit ${
      R + 1
    })`,
    `- summed rate from return + 1 s until the first job ran out of lines: ${
      fmt(rateAfter, 2)
    } req/s`,
    `- verdict: ${holds ? "holds" : "FAILS"} (no burst, every line accounted for, exit 0)`,
    "",
    markdownTable([
      "process",
      "exit",
      "output lines",
      "errors lines",
      "input lines",
      "all accounted",
    ], rows),
    "",
    "What bench-o1 said on stderr:",
    "",
    ...lostLine.map((l) => `    ${l}`),
  ].join("\n");
}

const mock = await startMockServer(runtime, ["--port", "0", "--latency", String(LATENCY)]);
const redis = await startRedisServer();
const started = performance.now();
try {
  const one = await shareAndKill(mock, redis.url);
  console.log(one + "\n");
  const two = await outage(mock, redis);
  console.log(two + "\n");
  const text = [
    "# Shared quota benchmark (Redis)",
    "",
    `- date: ${stamp()}`,
    `- runtime: ${runtimeVersion()} (CLI processes and mock provider each in their own process)`,
    `- redis: redis-server from PATH on a free loopback port, \`--save '' --appendonly no\``,
    `- machine: ${machineInfo()}`,
    `- command: \`bun scripts/bench_redis.ts --rate ${R} --latency ${LATENCY}\``,
    `- total ${fmt((performance.now() - started) / 1000, 0)} s`,
    "",
    "Counts come from the mock provider's arrival log (its clock). Each process sends the Gemini",
    "wire format with its own model name, so the logged path attributes every request to its",
    "process; kill/stop/start moments are probe requests in the same log, left out of the counts.",
    "",
    "Two guards hold the window at R + 1 across processes on a busy machine (2 cores here, for",
    "3 CLI processes, the mock and Redis): a process drops a reservation it cannot release within",
    '3/4 of an interval of its time rather than send it late ("dropped late" below), and a',
    "process's first slot keeps 50 ms free after it, since its first request goes out cold. Without",
    "them, trial runs showed 62 to 64 in the first second, when the processes start.",
    "",
    one,
    "",
    two,
    "",
  ].join("\n");
  if (values.out !== "-") console.log(`wrote ${writeResult(values.out, text)}`);
} finally {
  await redis.stop();
  await mock.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
