/**
 * The run report at the edge: records a CLI run's sidecar (`<output>.stats.jsonl`) and writes
 * its HTML report (`<output>.report.html`); `model-fine-tuner report <output.jsonl>` does the
 * latter after the fact. The pieces that are not about files live in `src/report/`.
 * @module
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { systemClock } from "../clock.ts";
import { parseStatsFile } from "../report/stats_file.ts";
import { renderReport } from "../report/report_html.ts";
import { StatsRecorder } from "../report/stats_recorder.ts";
import type { RunStats } from "../run.ts";
import type { RunObserver } from "../run_observer.ts";

/** The sidecar beside an output file. */
export function statsPath(output: string): string {
  return `${output}.stats.jsonl`;
}

/** The report beside an output file. */
export function reportPath(output: string): string {
  return `${output}.report.html`;
}

/** A run being recorded; see {@linkcode recordRun}. */
export interface RunRecording {
  observer: RunObserver;
  /** Writes the last seconds and the summary line, and closes the sidecar. */
  finish(stats: RunStats, resume?: string): void;
}

/**
 * Starts the sidecar of a CLI run: a header line now, a line a second while it runs. A resume
 * appends (the report shows the latest run and says there were earlier ones).
 */
export function recordRun(o: {
  output: string;
  append: boolean;
  command: string[];
  targetRate: number | "auto";
  provider: string;
  model: string;
  input: string;
  inFlight: () => number;
}): RunRecording {
  const fd = fs.openSync(statsPath(o.output), o.append ? "a" : "w");
  const write = (line: string) => void fs.writeSync(fd, line + "\n");
  const recorder = new StatsRecorder({
    start: systemClock.now(),
    write,
    inFlight: o.inFlight,
    rate: o.targetRate === "auto" ? 1 : o.targetRate,
  });
  recorder.header({
    command: o.command,
    target_rate: o.targetRate,
    started_at: new Date().toISOString(),
    provider: o.provider,
    model: o.model,
    input: o.input,
    output: o.output,
  });
  const timer = setInterval(() => {
    try {
      recorder.flush(systemClock.now());
    } catch {
      // A sidecar that can not be written (disk full) must not stop the run.
    }
  }, 1000);
  // A run that ends without finish() (its input failed) must not be kept alive by this timer.
  (timer as { unref?: () => void }).unref?.();
  return {
    observer: recorder.observer,
    finish(stats, resume) {
      clearInterval(timer);
      recorder.finish(systemClock.now(), stats, resume);
      fs.closeSync(fd);
    },
  };
}

/**
 * Builds `<output>.report.html` from `<output>.stats.jsonl`.
 * @returns The report's path.
 * @throws when the sidecar is missing or has no header.
 */
export function writeReport(output: string, to = reportPath(output)): string {
  const file = parseStatsFile(fs.readFileSync(statsPath(output), "utf8"));
  fs.writeFileSync(to, renderReport(file));
  return to;
}

export const REPORT_HELP = `Usage: model-fine-tuner report <output.jsonl> [--out FILE]

Writes the run's HTML report (default <output.jsonl>.report.html) from the sidecar the run
recorded, <output.jsonl>.stats.jsonl. Works on a finished run, a stopped one, and one still going.
`;

/** `model-fine-tuner report <output.jsonl>`: returns the exit code. */
export function reportCommand(
  argv: string[],
  io: { stdout: (text: string) => unknown; stderr: (text: string) => void },
): number {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { out: { type: "string" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
    }));
  } catch (error) {
    io.stderr(`model-fine-tuner: ${(error as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(REPORT_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    io.stderr(`model-fine-tuner: report takes one output file (the run's --output)\n`);
    return 2;
  }
  const output = positionals[0];
  if (!fs.existsSync(statsPath(output))) {
    io.stderr(
      `model-fine-tuner: no ${
        statsPath(output)
      }: it is written by \`run\` beside its output (not for --output -)\n`,
    );
    return 2;
  }
  try {
    io.stdout(`report: ${writeReport(output, values.out)}\n`);
    return 0;
  } catch (error) {
    io.stderr(`model-fine-tuner: ${statsPath(output)}: ${(error as Error).message}\n`);
    return 2;
  }
}
