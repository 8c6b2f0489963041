/**
 * Memory of `--resume` at N ids (default 10,000,000): an output file where every id is answered
 * and an input of the same ids, so the run reads everything and sends nothing. What grows with N
 * is the id bookkeeping: the set of answered ids and the set of ids read (duplicate check).
 *
 * Runs `cli.ts run INPUT --provider mock --output OUTPUT --resume --quiet` under /usr/bin/time
 * (kernel max RSS) with BUN_CONFIG_MAX_HTTP_REQUESTS set, so no relaunch: one process measured.
 * `--cli` picks the cli.ts to measure: the baseline is main's (`--cli /work/main/cli.ts`).
 *
 * Usage:
 *   flock /tmp/mft-bench.lock bun scripts/bench_resume_memory.ts [--ids 10000000]
 *     [--cli PATH/cli.ts] [--label NAME] [--keep DIR]
 *
 * Prints one markdown table row: label, ids, max RSS, elapsed, exit code. Linux only.
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { ROOT } from "./_bench_util.ts";

const { values } = parseArgs({
  options: {
    ids: { type: "string", default: "10000000" },
    cli: { type: "string", default: path.join(ROOT, "cli.ts") },
    label: { type: "string" },
    keep: { type: "string" },
  },
});
const n = Number(values.ids);
const dir = values.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "mft-bench-resume-"));
fs.mkdirSync(dir, { recursive: true });
const input = path.join(dir, `input-${n}.jsonl`);
const output = path.join(dir, `output-${n}.jsonl`);

/** Writes `n` lines made by `line(i)` in 8 MiB pieces. */
function writeLines(file: string, line: (i: number) => string): void {
  const fd = fs.openSync(file, "w");
  let buffer = "";
  for (let i = 0; i < n; i++) {
    buffer += line(i);
    if (buffer.length > 8 * 1024 * 1024) {
      fs.writeSync(fd, buffer);
      buffer = "";
    }
  }
  fs.writeSync(fd, buffer);
  fs.closeSync(fd);
}

if (!fs.existsSync(input)) writeLines(input, (i) => `{"id":"row-${i}","prompt":"p"}\n`);
// The output is consumed by each resume (the run appends nothing, but keep a pristine copy).
const pristine = `${output}.pristine`;
if (!fs.existsSync(pristine)) writeLines(pristine, (i) => `{"id":"row-${i}","text":"a"}\n`);
fs.copyFileSync(pristine, output);
fs.rmSync(`${output}.lock`, { force: true });

const runtime = process.execPath;
const started = performance.now();
const r = spawnSync("/usr/bin/time", [
  "-f",
  "%M",
  runtime,
  values.cli!,
  "run",
  input,
  "--provider",
  "mock",
  "--output",
  output,
  "--resume",
  "--quiet",
], {
  env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: "65535" },
  encoding: "utf8",
  maxBuffer: 64 * 1024 * 1024,
});
const elapsed = (performance.now() - started) / 1000;
const maxKib = Number(r.stderr.trim().split("\n").at(-1));
const label = values.label ?? path.dirname(path.resolve(values.cli!));
console.log(
  `| ${label} | ${n.toLocaleString("en")} | ${
    Math.round(maxKib / 1024).toLocaleString("en")
  } MiB | ${elapsed.toFixed(1)} s | ${r.status} |`,
);
if (r.status !== 0) console.error(r.stderr.slice(-2000));
if (!values.keep) fs.rmSync(dir, { recursive: true, force: true });
