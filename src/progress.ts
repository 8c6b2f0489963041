/**
 * Progress and summary text for a run, from its {@linkcode RunStats}. Pure functions: the CLI
 * decides where and how often they are printed.
 * @module
 */
import { formatDuration } from "./duration.ts";
import type { RunStats } from "./run.ts";

/** Measures the achieved request rate over a sliding window of samples. */
export class RateMeter {
  #samples: { t: number; n: number }[] = [];
  #windowMs: number;
  constructor(windowMs = 5000) {
    this.#windowMs = windowMs;
  }
  /** Records the request count `n` at time `t` (ms) and returns the rate over the window, req/s. */
  sample(t: number, n: number): number {
    this.#samples.push({ t, n });
    while (this.#samples.length > 2 && this.#samples[1].t <= t - this.#windowMs) {
      this.#samples.shift();
    }
    const first = this.#samples[0];
    return t > first.t ? ((n - first.n) * 1000) / (t - first.t) : 0;
  }
}

/** Lines finished one way or another. */
export function finished(s: RunStats): number {
  return s.ok + s.failed + s.invalid + s.skipped;
}

function fmtRate(r: number): string {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

/** One progress line: done/total, ok, failed, retrying, in flight, target vs achieved rate, ETA. */
export function progressLine(s: RunStats, now: number, achieved: number, total?: number): string {
  const done = finished(s);
  const remaining = total === undefined ? undefined : Math.max(0, total - done);
  const eta = remaining === undefined
    ? "?"
    : formatDuration((remaining / Math.max(s.rate, 1e-9)) * 1000);
  const parts = [
    `${done}${total === undefined ? "" : `/${total}`}`,
    `ok ${s.ok}`,
    `failed ${s.failed + s.invalid}`,
    `retrying ${s.retrying}`,
    `in flight ${s.inFlight}`,
    `${fmtRate(achieved)}/${fmtRate(s.rate)} req/s`,
    `elapsed ${formatDuration(now - s.startedAt)}`,
    `eta ${eta}`,
  ];
  return parts.join(" · ");
}

/** The end-of-run summary. */
export function summaryLines(s: RunStats, files: { output: string; errors: string }): string[] {
  const elapsed = (s.endedAt ?? s.startedAt) - s.startedAt;
  const achieved = elapsed > 0 ? (s.requests * 1000) / elapsed : 0;
  const lines = [
    `${s.stopped ? "stopped" : "done"}: ${
      finished(s)
    } of ${s.read} lines · ok ${s.ok} → ${files.output} · failed ${
      s.failed + s.invalid
    } → ${files.errors}${s.skipped ? ` · skipped ${s.skipped} (already in output)` : ""}${
      s.unsent ? ` · unsent ${s.unsent}` : ""
    }`,
    `${s.requests} requests (${s.retries} retries) at ${fmtRate(achieved)} req/s · elapsed ${
      formatDuration(elapsed)
    } · tokens in ${s.tokensIn} / out ${s.tokensOut}`,
    `rate: configured ${
      s.configuredRate === "auto" ? "auto" : fmtRate(s.configuredRate)
    } · settled at ${fmtRate(s.rate)} (lowest ${
      fmtRate(s.lowestRate)
    }) · ${s.rateLimited} quota 429s absorbed`,
  ];
  const n = s.noText;
  const noText = n.blocked + n.cut_off + n.refused + n.empty_answer;
  if (noText > 0 || s.truncated > 0) {
    const parts = [
      `blocked ${n.blocked}`,
      `cut off ${n.cut_off}`,
      `refused ${n.refused}`,
      `empty ${n.empty_answer}`,
    ];
    lines.push(
      `answers without text: ${noText} (${parts.join(" · ")}) → ${files.errors}` +
        (s.truncated > 0
          ? ` · answers cut at max tokens with partial text: ${s.truncated} (finish_reason "length", in ${files.output})`
          : ""),
    );
  }
  return lines;
}
