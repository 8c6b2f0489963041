/**
 * Memory benchmark: a big input through the real CLI and the in-process mock provider, with the
 * child's resident memory sampled from /proc every second. Flat means the peak for 1,000,000
 * lines is close to the peak for 100,000: memory is bounded by what is in flight, not by the
 * input's size.
 *
 * For each `--lines` count it writes a simple-format JSONL file into a temp dir (not the repo),
 * runs `cli.ts run FILE --provider mock --mock-latency LATENCY --rate-limit RATE --output OUT
 * --quiet` as a subprocess (under /usr/bin/time when present, for the kernel's max RSS), and
 * reports peak RSS, RSS at 10 %, 50 % and 90 % of progress, the achieved rate, and checks that
 * the output has one line per input line and the errors file is empty.
 *
 * Usage:
 *   bun scripts/bench_memory.ts [--lines 100000,1000000] [--rate 5000] [--latency 2s]
 *     [--runtime bun|deno] [--out bench-results/memory.md] [--keep]
 *
 * Linux only (/proc). `--out -` prints only; `--keep` keeps the temp dir.
 * @module
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  busyCores,
  currentRuntime,
  fmt,
  gitRevision,
  machineCpu,
  machineInfo,
  markdownTable,
  rerunCommand,
  ROOT,
  type Runtime,
  runtimeBinary,
  runtimeVersion,
  scriptCommand,
  sleep,
  stamp,
  writeResult,
} from "./_bench_util.ts";

const TIME = "/usr/bin/time";
const MIB = 1024 * 1024;

interface Sample {
  /** ms since the child started. */
  t: number;
  /** Output lines written so far. */
  done: number;
  /** Resident set of the CLI process tree, bytes. */
  rss: number;
}

interface Pass {
  lines: number;
  elapsedMs: number;
  samples: Sample[];
  /** Peak RSS: the kernel's (time -f %M, or VmHWM) when known, else the largest sample. */
  peak: number;
  peakSource: string;
  outputLines: number;
  errorsBytes: number;
  exitCode: number;
  /** CPU seconds the CLI used (user + system). */
  cpuS: number;
  inputBytes: number;
  /** Cores busy on the whole machine during the pass, minus the CLI and this script. */
  otherCores: number;
}

/** Writes `n` simple-format lines, each with a ~100-character prompt. */
function writeInput(file: string, n: number): number {
  const fd = fs.openSync(file, "w");
  let bytes = 0;
  try {
    const chunk: string[] = [];
    for (let i = 0; i < n; i++) {
      const prompt = `Item ${i}: summarise in one sentence why a fixed request rate beats a ` +
        `concurrency cap for batch jobs.`.padEnd(100 - String(i).length, ".");
      chunk.push(JSON.stringify({ id: `i${i}`, prompt }));
      if (chunk.length === 10_000 || i === n - 1) {
        const text = chunk.join("\n") + "\n";
        bytes += fs.writeSync(fd, text);
        chunk.length = 0;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

function readProc(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** Direct children of `pid`. */
function children(pid: number): number[] {
  const out: number[] = [];
  const tasks = readProc(`/proc/${pid}/task/${pid}/children`);
  if (tasks) { for (const s of tasks.trim().split(/\s+/)) if (s) out.push(Number(s)); }
  return out;
}

/** `pid` and all its descendants. */
function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i]));
  return all;
}

/** A `kB` field of /proc/PID/status, in bytes. */
function statusField(pid: number, field: string): number {
  const status = readProc(`/proc/${pid}/status`);
  const m = status?.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** user + system CPU seconds of `pid` (from /proc/PID/stat, at 100 ticks/s). */
function cpuSeconds(pid: number): number {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return 0;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Counts newlines in `file` from byte `from`, returning the count and the new offset. */
function countNewlines(file: string, from: number): { count: number; offset: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return { count: 0, offset: from };
  }
  const buffer = new Uint8Array(1024 * 1024);
  let count = 0;
  let offset = from;
  try {
    while (true) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, offset);
      if (n === 0) break;
      for (let i = 0; i < n; i++) if (buffer[i] === 10) count++;
      offset += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { count, offset };
}

async function runPass(
  dir: string,
  lines: number,
  o: { rate: number; latency: string; runtime: Runtime; intervalMs: number },
  log: (text: string) => void,
): Promise<Pass> {
  const input = path.join(dir, `input-${lines}.jsonl`);
  log(`writing ${lines} lines to ${input}`);
  const inputBytes = writeInput(input, lines);
  const outDir = path.join(dir, `run-${lines}`);
  fs.mkdirSync(outDir, { recursive: true });
  const output = path.join(outDir, "output.jsonl");
  const errors = path.join(outDir, "errors.jsonl");
  const cli = scriptCommand(o.runtime, path.join(ROOT, "cli.ts"), [
    "run",
    input,
    "--provider",
    "mock",
    "--mock-latency",
    o.latency,
    "--rate-limit",
    String(o.rate),
    "--output",
    output,
    "--quiet",
  ]);
  const timeFile = path.join(outDir, "time.txt");
  const useTime = fs.existsSync(TIME);
  const argv = useTime ? [TIME, "-f", "%M %e %U %S", "-o", timeFile, ...cli] : cli;
  log(
    `running ${cli.map((a) => (a.startsWith(ROOT + "/") ? path.relative(ROOT, a) : a)).join(" ")}`,
  );
  const started = performance.now();
  const cpu0 = machineCpu();
  const self0 = process.cpuUsage();
  // The env var stops the CLI from relaunching itself for Bun's fetch cap: one process to watch.
  const child = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: "65535" },
  });
  let exitCode: number | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      exitCode = code ?? (signal ? 128 : 1);
      resolve();
    });
  });

  const samples: Sample[] = [];
  let done = 0;
  let offset = 0;
  let hwm = 0;
  let cpuS = 0;
  let lastLog = 0;
  while (exitCode === undefined) {
    const pids = tree(child.pid!).slice(useTime ? 1 : 0);
    const rss = pids.reduce((sum, pid) => sum + statusField(pid, "VmRSS"), 0);
    const treeHwm = pids.reduce((max, pid) => Math.max(max, statusField(pid, "VmHWM")), 0);
    if (treeHwm > hwm) hwm = treeHwm;
    const cpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    if (cpu > cpuS) cpuS = cpu;
    const counted = countNewlines(output, offset);
    done += counted.count;
    offset = counted.offset;
    const t = performance.now() - started;
    if (rss > 0) samples.push({ t, done, rss });
    if (t - lastLog >= 10_000) {
      lastLog = t;
      log(
        `  ${fmt(t / 1000, 0)} s: ${done} lines (${fmt((100 * done) / lines, 1)} %), ` +
          `RSS ${fmt(rss / MIB, 1)} MiB`,
      );
    }
    await Promise.race([sleep(o.intervalMs), exited]);
  }
  const elapsedMs = performance.now() - started;
  const machine = busyCores(cpu0, machineCpu());
  const self = process.cpuUsage(self0);

  let peak = hwm;
  let peakSource = "VmHWM (last sample)";
  if (useTime) {
    const maxKb = Number(readProc(timeFile)?.trim().split(/\s+/)[0]);
    if (Number.isFinite(maxKb) && maxKb > 0) {
      peak = maxKb * 1024;
      peakSource = "kernel max RSS (/usr/bin/time %M)";
      const [, , user, sys] = readProc(timeFile)!.trim().split(/\s+/).map(Number);
      if (Number.isFinite(user + sys)) cpuS = user + sys;
    }
  }
  const maxSample = samples.reduce((m, s) => Math.max(m, s.rss), 0);
  if (peak === 0) {
    peak = maxSample;
    peakSource = "largest sample";
  }
  const outputLines = countNewlines(output, 0).count;
  const errorsBytes = fs.existsSync(errors) ? fs.statSync(errors).size : -1;
  return {
    lines,
    elapsedMs,
    samples,
    peak,
    peakSource,
    outputLines,
    errorsBytes,
    exitCode: exitCode!,
    cpuS,
    inputBytes,
    otherCores: Math.max(
      0,
      machine - (cpuS + (self.user + self.system) / 1e6) / (elapsedMs / 1000),
    ),
  };
}

/** The first sample at or past `fraction` of the lines. */
function at(pass: Pass, fraction: number): Sample | undefined {
  return pass.samples.find((s) => s.done >= fraction * pass.lines);
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? "–" : `${fmt(bytes / MIB, 1)} MiB`;
}

/** Lines finished per second between 10 % and 90 % of progress: the steady-state rate. */
function steadyRate(pass: Pass): number | undefined {
  const a = at(pass, 0.1);
  const b = at(pass, 0.9);
  if (!a || !b || b.t <= a.t) return undefined;
  return ((b.done - a.done) * 1000) / (b.t - a.t);
}

async function main(): Promise<void> {
  const code = gitRevision(); // before the run: the code the run loads
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      lines: { type: "string", default: "100000,1000000" },
      rate: { type: "string", default: "5000" },
      latency: { type: "string", default: "2s" },
      runtime: { type: "string", default: currentRuntime() },
      interval: { type: "string", default: "1000" },
      out: { type: "string", default: "bench-results/memory.md" },
      keep: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (process.platform !== "linux") throw new Error("bench_memory reads /proc: Linux only");
  const counts = values.lines.split(",").map((s) => Number(s.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new TypeError(`--lines must be whole numbers above 0: got '${values.lines}'`);
  }
  const rate = Number(values.rate);
  if (!(rate > 0) || !Number.isFinite(rate)) {
    throw new TypeError(`--rate must be above 0: got '${values.rate}'`);
  }
  const intervalMs = Number(values.interval);
  if (!(intervalMs >= 50)) throw new TypeError(`--interval must be at least 50 ms`);
  const runtime = values.runtime as Runtime;
  if (runtime !== "bun" && runtime !== "deno") {
    throw new TypeError(`--runtime must be bun or deno: got '${values.runtime}'`);
  }
  const latency = values.latency;

  const log = (text: string) => process.stderr.write(text + "\n");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-memory-"));
  const passes: Pass[] = [];
  try {
    for (const n of counts) {
      const pass = await runPass(dir, n, { rate, latency, runtime, intervalMs }, log);
      passes.push(pass);
      log(
        `${n} lines: ${fmt(pass.elapsedMs / 1000, 1)} s, peak ${mib(pass.peak)}, ` +
          `exit ${pass.exitCode}, output ${pass.outputLines} lines, errors ${pass.errorsBytes} bytes`,
      );
      // Only the input is big; drop it before the next pass.
      fs.rmSync(path.join(dir, `input-${n}.jsonl`), { force: true });
      if (!values.keep) fs.rmSync(path.join(dir, `run-${n}`), { recursive: true, force: true });
    }
  } finally {
    if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }

  const header = [
    "lines",
    "input",
    "peak RSS",
    "RSS at 10 %",
    "RSS at 50 %",
    "RSS at 90 %",
    "wall time",
    "lines / wall time",
    "steady rate (10→90 %)",
    "ideal wall (lines/R + latency)",
    "CLI CPU (cores)",
    "other load (cores)",
    "output lines",
    "errors file",
    "exit",
  ];
  const latencyMs = parseLatencyMs(latency);
  const rows = passes.map((p) => {
    const steady = steadyRate(p);
    return [
      p.lines.toLocaleString("en-US"),
      mib(p.inputBytes),
      mib(p.peak),
      mib(at(p, 0.1)?.rss),
      mib(at(p, 0.5)?.rss),
      mib(at(p, 0.9)?.rss),
      `${fmt(p.elapsedMs / 1000, 1)} s`,
      `${fmt((p.lines * 1000) / p.elapsedMs, 0)} /s`,
      steady === undefined ? "–" : `${fmt(steady, 0)} /s`,
      latencyMs === undefined ? "–" : `${fmt(p.lines / rate + latencyMs / 1000, 1)} s`,
      fmt(p.cpuS / (p.elapsedMs / 1000), 2),
      fmt(p.otherCores, 2),
      `${p.outputLines.toLocaleString("en-US")}${p.outputLines === p.lines ? " ✓" : " ✗"}`,
      p.errorsBytes === 0 ? "empty ✓" : `${p.errorsBytes} bytes ✗`,
      String(p.exitCode),
    ];
  });
  const table = markdownTable(header, rows);
  const notes = passes.map((p) => {
    const top = p.samples.reduce((a, b) => (b.rss > a.rss ? b : a), p.samples[0]);
    return top
      ? `- ${p.lines.toLocaleString("en-US")} lines: largest sample ${mib(top.rss)} at ` +
        `${fmt(top.t / 1000, 1)} s (${fmt((100 * top.done) / p.lines, 1)} % done); ` +
        `${p.samples.length} samples`
      : `- ${p.lines.toLocaleString("en-US")} lines: no samples`;
  });

  // RSS against progress, every 10 %, for the biggest pass: flat or growing at a glance.
  const big = passes.reduce((a, b) => (b.lines > a.lines ? b : a));
  const deciles = Array.from({ length: 10 }, (_, i) => (i + 1) / 10);
  const curve = markdownTable(
    ["progress", ...deciles.map((d) => `${Math.round(d * 100)} %`)],
    [["RSS", ...deciles.map((d) => (at(big, d) ? fmt(at(big, d)!.rss / MIB, 0) : "–"))]],
  );

  console.log(table);
  console.log("\n" + notes.join("\n"));
  console.log(`\nRSS (MiB) against progress, ${big.lines.toLocaleString("en-US")} lines:\n`);
  console.log(curve);
  if (values.out !== "-") {
    const command = rerunCommand("scripts/bench_memory.ts");
    const text = [
      "# Memory benchmark",
      "",
      `- date: ${stamp()}`,
      `- CLI runtime: ${runtime === currentRuntime() ? runtimeVersion() : runtimeBinary(runtime)}`,
      `- machine: ${machineInfo()}`,
      `- command: \`${command}\``,
      `- code: ${code}`,
      `- each pass: \`cli.ts run input.jsonl --provider mock --mock-latency ${latency} ` +
      `--rate-limit ${rate} --output output.jsonl --quiet\` (in-process mock provider: at ` +
      `${rate} req/s and ${latency} about ${
        latencyMs === undefined ? "?" : fmt((rate * latencyMs) / 1000, 0)
      } requests are open at once); RSS of the CLI process sampled from /proc every ` +
      `${intervalMs} ms; peak = ${passes[0]?.peakSource ?? "–"}; progress = lines in the output`,
      "",
      table,
      "",
      ...notes,
      "",
      `RSS (MiB) against progress, ${big.lines.toLocaleString("en-US")} lines:`,
      "",
      curve,
      "",
    ].join("\n");
    log(`wrote ${writeResult(values.out, text)}`);
  }
}

/** `2s`, `500ms`, `2000` (ms) → ms; undefined when unreadable (the CLI validates it anyway). */
function parseLatencyMs(text: string): number | undefined {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)(ms|s|m)?$/);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n;
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`bench_memory: ${(error as Error).message}`);
    process.exit(2);
  }
}
