/**
 * Turns a run's events into the sidecar's lines (see `stats_file.ts`): one aggregate per second,
 * written once the second is over. Memory and output are bounded by the run's duration.
 * @module
 */
import type { RunStats } from "../run.ts";
import type { RunEvent, RunObserver } from "../run_observer.ts";
import { addLatency, emptyLatency, latencyQuantile, mergeLatency } from "./latency_histogram.ts";
import type { StatsHeader, StatsSecond, StatsSummary } from "./stats_file.ts";

/** Options for {@linkcode StatsRecorder}. */
export interface StatsRecorderOptions {
  /** The run's start on the clock its events use, ms. */
  start: number;
  /** Receives each line, without its newline. */
  write: (line: string) => void;
  /** Requests open now, read when a second is written. @default none recorded */
  inFlight?: () => number;
  /** Rate in force at the start, req/s. */
  rate: number;
}

/** Records a run's events as per-second aggregates. */
export class StatsRecorder {
  #o: StatsRecorderOptions;
  #seconds = new Map<number, StatsSecond>();
  #rate: number;
  #written = -1;
  #total = emptyLatency();

  /** Pass this as `RunOptions.observer`. */
  readonly observer: RunObserver = (event) => this.#record(event);

  constructor(options: StatsRecorderOptions) {
    this.#o = options;
    this.#rate = options.rate;
  }

  /** Writes the header line. */
  header(header: Omit<StatsHeader, "mft_stats">): void {
    this.#o.write(JSON.stringify({ mft_stats: 1, ...header }));
  }

  #second(at: number): StatsSecond {
    // An event from a second already written (a clock that went back) joins the next one.
    const s = Math.max(Math.floor((at - this.#o.start) / 1000), this.#written + 1, 0);
    let entry = this.#seconds.get(s);
    if (!entry) {
      entry = { s, sent: 0, ok: 0, rate: this.#rate };
      this.#seconds.set(s, entry);
    }
    return entry;
  }

  #record(e: RunEvent): void {
    const sec = this.#second(e.at);
    switch (e.type) {
      case "sent":
        sec.sent++;
        break;
      case "answered":
        sec.ok++;
        sec.tin = (sec.tin ?? 0) + e.tokensIn;
        sec.tout = (sec.tout ?? 0) + e.tokensOut;
        this.#latency(sec, e.latencyMs);
        this.#attempts(sec, e.attempts);
        break;
      case "failed":
        sec.failed ??= {};
        sec.failed[e.code] = (sec.failed[e.code] ?? 0) + 1;
        this.#latency(sec, e.latencyMs);
        this.#attempts(sec, e.attempts);
        break;
      case "rate_limited":
        sec.rl = (sec.rl ?? 0) + 1;
        if (e.retryAfterMs !== undefined) sec.pause = Math.max(sec.pause ?? 0, e.retryAfterMs);
        this.#latency(sec, e.latencyMs);
        break;
      case "retry":
        sec.retry = (sec.retry ?? 0) + 1;
        this.#latency(sec, e.latencyMs);
        break;
      case "rate":
        if (e.rate < this.#rate) sec.slow = 1;
        this.#rate = e.rate;
        sec.rate = e.rate;
        break;
      case "fatal":
        break;
    }
  }

  #latency(sec: StatsSecond, ms: number): void {
    sec.lat ??= emptyLatency();
    addLatency(sec.lat, ms);
  }

  #attempts(sec: StatsSecond, attempts: number): void {
    if (attempts < 2) return;
    sec.att ??= {};
    sec.att[attempts] = (sec.att[attempts] ?? 0) + 1;
  }

  /** Writes every second that is over at clock time `now` (call it about once a second). */
  flush(now: number): void {
    this.#flushBefore(Math.floor((now - this.#o.start) / 1000));
  }

  #flushBefore(limit: number): void {
    const due = [...this.#seconds.keys()].filter((s) => s < limit).sort((a, b) => a - b);
    for (const [i, s] of due.entries()) {
      const sec = this.#seconds.get(s)!;
      this.#seconds.delete(s);
      if (i === due.length - 1 && this.#o.inFlight) sec.fl = this.#o.inFlight();
      sec.rate = Math.round(sec.rate * 1000) / 1000;
      if (sec.lat) {
        mergeLatency(this.#total, sec.lat);
        sec.lat.sum = Math.round(sec.lat.sum);
        sec.lat.min = Math.round(sec.lat.min);
        sec.lat.max = Math.round(sec.lat.max);
      }
      this.#o.write(JSON.stringify(sec));
      this.#written = s;
    }
  }

  /**
   * Writes what is left and the summary line, from the run's final stats.
   * @param resume The command that continues a stopped run.
   */
  finish(now: number, stats: RunStats, resume?: string): StatsSummary {
    this.#flushBefore(Infinity);
    const t = this.#total;
    const round = (x: number | undefined) => x === undefined ? undefined : Math.round(x);
    const summary: StatsSummary = {
      summary: {
        ended_at: new Date().toISOString(),
        elapsed_ms: Math.round(now - this.#o.start),
        stopped: stats.stopped,
        read: stats.read,
        ok: stats.ok,
        failed: stats.failed,
        invalid: stats.invalid,
        skipped: stats.skipped,
        unsent: stats.unsent,
        requests: stats.requests,
        retries: stats.retries,
        rate_limited: stats.rateLimited,
        tokens_in: stats.tokensIn,
        tokens_out: stats.tokensOut,
        no_text: { ...stats.noText },
        truncated: stats.truncated,
        lowest_rate: stats.lowestRate,
        final_rate: stats.rate,
        ...(stats.fatal
          ? {
            fatal: { kind: stats.fatal.kind, code: stats.fatal.code, message: stats.fatal.message },
          }
          : {}),
        latency_ms: {
          p50: round(latencyQuantile(t, 0.5)),
          p90: round(latencyQuantile(t, 0.9)),
          p99: round(latencyQuantile(t, 0.99)),
          mean: t.n > 0 ? Math.round(t.sum / t.n) : undefined,
          max: t.n > 0 ? Math.round(t.max) : undefined,
        },
        ...(resume ? { resume } : {}),
      },
    };
    this.#o.write(JSON.stringify(summary));
    return summary;
  }
}
