/**
 * The run report's costs for a 1,000,000-line run:
 * 1. synthetic: the sidecar recorder fed the events of 1,000,000 lines at 1,000 req/s (a
 *    1,000 s run, 2 s answers with jitter, 1 % retried, 429 bursts) on a virtual clock: sidecar
 *    size, and the report's build time (parse + render, median of 7);
 * 2. real: `run` on 1,000,000 lines with the in-process mock at a high rate, timed on our CLI
 *    (which records the sidecar) and on a baseline CLI (main's, without it): wall time, sidecar
 *    size and `report` time.
 *
 *   flock /tmp/mft-bench.lock bun scripts/bench_report.ts [--lines 1000000]
 *     [--baseline /work/main/cli.ts] [--rate 20000]
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { parseStatsFile } from "../src/report/stats_file.ts";
import { renderReport } from "../src/report/report_html.ts";
import { StatsRecorder } from "../src/report/stats_recorder.ts";
import type { RunStats } from "../src/run.ts";
import { machineInfo, runtimeVersion } from "./_bench_util.ts";

const { values } = parseArgs({
  options: {
    lines: { type: "string", default: "1000000" },
    rate: { type: "string", default: "20000" },
    baseline: { type: "string" },
  },
});
const N = Number(values.lines);
const root = path.resolve(import.meta.dirname!, "..");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-report-"));
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timeReport(text: string): { ms: number; html: number } {
  const times: number[] = [];
  let html = 0;
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    html = renderReport(parseStatsFile(text)).length;
    times.push(performance.now() - t);
  }
  return { ms: median(times), html };
}

// 1. Synthetic: N lines at 1,000 req/s.
{
  const rate = 1000;
  const lines: string[] = [];
  const rec = new StatsRecorder({
    start: 0,
    write: (l) => lines.push(l),
    rate,
    inFlight: () => 2000,
  });
  rec.header({
    command: ["model-fine-tuner", "run", "big.jsonl"],
    target_rate: rate,
    started_at: "2026-01-01T00:00:00Z",
  });
  let seed = 1;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const t0 = performance.now();
  let tin = 0, tout = 0, requests = 0, retries = 0, rl = 0;
  for (let i = 0; i < N; i++) {
    const at = (i * 1000) / rate;
    rec.observer({ type: "sent", at });
    requests++;
    const latency = 1500 + random() * 1000;
    let attempts = 1;
    if (i % 100 === 7) { // 1 % fail once and are retried
      rec.observer({ type: "retry", at: at + latency, latencyMs: latency, code: "server_error" });
      rec.observer({ type: "sent", at: at + latency + 2000 });
      requests++;
      retries++;
      attempts = 2;
    }
    if (i % 50_000 < 20) { // a burst of 429s every 50 s
      rec.observer({
        type: "rate_limited",
        at: at + 5,
        latencyMs: 5,
        retryAfterMs: 1000,
        rate: 800,
      });
      rl++;
    }
    const done = at + latency + (attempts - 1) * 2000;
    rec.observer({
      type: "answered",
      at: done,
      latencyMs: latency,
      tokensIn: 20,
      tokensOut: 150,
      attempts,
    });
    tin += 20;
    tout += 150;
    if (i % rate === 0) rec.flush(at - 3000); // the CLI flushes once a second; answers lag 2-4 s
  }
  const end = (N * 1000) / rate + 5000;
  rec.finish(end, {
    read: N,
    skipped: 0,
    ok: N,
    failed: 0,
    invalid: 0,
    inFlight: 0,
    retrying: 0,
    requests,
    retries,
    tokensIn: tin,
    tokensOut: tout,
    unsent: 0,
    rate: 1000,
    configuredRate: rate,
    lowestRate: 800,
    rateLimited: rl,
    noText: { blocked: 0, cut_off: 0, refused: 0, empty_answer: 0 },
    truncated: 0,
    startedAt: 0,
    endedAt: end,
    stopped: false,
  } as RunStats);
  const recordMs = performance.now() - t0;
  const text = lines.join("\n") + "\n";
  const r = timeReport(text);
  console.log(`## Report benchmark\n\n${runtimeVersion()} · ${machineInfo()}\n`);
  console.log(
    `### Synthetic: ${N.toLocaleString("en-US")} lines at ${rate} req/s (a ${end / 1000} s run)\n`,
  );
  console.log(
    "| sidecar | lines | bytes per line | recording all events | report build (median of 7) | report size |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  console.log(
    `| ${kib(text.length)} | ${lines.length} | ${Math.round(text.length / lines.length)} | ${
      recordMs.toFixed(0)
    } ms (${(recordMs * 1e6 / N).toFixed(0)} ns/line) | ${r.ms.toFixed(1)} ms | ${kib(r.html)} |`,
  );
  console.log(
    `\nBounded by duration, not lines: 10,000,000 lines at the same rate (10,000 s) would be about ${
      kib((text.length * 10_000_000) / N)
    }.\n`,
  );
}

// 2. Real: the CLI on N lines with the in-process mock.
const input = path.join(dir, "in.jsonl");
{
  const fd = fs.openSync(input, "w");
  const chunk: string[] = [];
  for (let i = 0; i < N; i++) {
    chunk.push(`{"id":"q${i}","prompt":"question number ${i}"}`);
    if (chunk.length === 10_000) {
      fs.writeSync(fd, chunk.join("\n") + "\n");
      chunk.length = 0;
    }
  }
  if (chunk.length) fs.writeSync(fd, chunk.join("\n") + "\n");
  fs.closeSync(fd);
}
function cliRun(cli: string, label: string) {
  const out = path.join(dir, `${label}.jsonl`);
  // GNU time: wall s, user s, system s, peak RSS KiB of the CLI (and its relaunched child).
  const timed = spawnSync("/usr/bin/time", [
    "-f",
    "TIME %e %U %S %M",
    process.execPath,
    cli,
    "run",
    input,
    "--provider",
    "mock",
    "--mock-latency",
    "50ms",
    "--rate-limit",
    values.rate!,
    "-o",
    out,
    "--errors",
    path.join(dir, `${label}-errors.jsonl`),
    "--overwrite",
    "-q",
  ], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" }).stderr;
  const [wall, user, sys, rss] = /TIME (\S+) (\S+) (\S+) (\S+)/.exec(timed)!.slice(1).map(Number);
  fs.rmSync(out);
  const sidecar = `${out}.stats.jsonl`;
  const base = { wall, cpu: user + sys, rssMib: rss / 1024 };
  if (!fs.existsSync(sidecar)) return base;
  const text = fs.readFileSync(sidecar, "utf8");
  fs.rmSync(sidecar);
  return {
    ...base,
    sidecar: text.length,
    lines: text.trim().split("\n").length,
    report: timeReport(text),
  };
}
console.log(
  `### Real: \`run\` on ${
    N.toLocaleString("en-US")
  } lines, in-process mock (50 ms), --rate-limit ${values.rate}\n`,
);
console.log(
  "| CLI | wall time | CPU (user + sys) | peak RSS | sidecar | sidecar lines | report build (median of 7) |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- |");
const row = (name: string, r: ReturnType<typeof cliRun>) =>
  console.log(
    `| ${name} | ${r.wall.toFixed(1)} s | ${r.cpu.toFixed(1)} s | ${r.rssMib.toFixed(0)} MiB | ${
      "sidecar" in r ? kib(r.sidecar!) : "none"
    } | ${"lines" in r ? r.lines : ""} | ${"report" in r ? `${r.report!.ms.toFixed(1)} ms` : ""} |`,
  );
if (values.baseline) row(`baseline (${values.baseline})`, cliRun(values.baseline, "baseline"));
row("ours (records the sidecar)", cliRun(path.join(root, "cli.ts"), "ours"));
fs.rmSync(dir, { recursive: true, force: true });
