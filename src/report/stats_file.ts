/**
 * The run's sidecar, `<output>.stats.jsonl`: a header line, one line per second in which
 * something happened (aggregates, never one row per request), and a summary line at the end.
 * Its size grows with the run's duration, not with its number of lines.
 * @module
 */
import { emptyLatency, type LatencySummary, mergeLatency } from "./latency_histogram.ts";

/** First line: what ran, and when. */
export interface StatsHeader {
  mft_stats: 1;
  /** The exact command line, one argument per entry. */
  command: string[];
  /** Requests per second asked for. */
  target_rate: number | "auto";
  /** Wall-clock start, ISO 8601. */
  started_at: string;
  provider?: string;
  model?: string;
  input?: string;
  output?: string;
}

/** One second of the run (`s` seconds after the start): what happened in it. */
export interface StatsSecond {
  s: number;
  /** Requests sent, retries included. */
  sent: number;
  /** Items answered with text. */
  ok: number;
  /** Items that failed for good, by error code (`server_error`, `blocked`, …). */
  failed?: Record<string, number>;
  /** Quota 429s absorbed (the request waited and went again). */
  rl?: number;
  /** Attempts that failed and were retried after a backoff (not 429s). */
  retry?: number;
  /** Longest pause the provider asked for in a 429 this second, ms. */
  pause?: number;
  /** Set when the rate was lowered this second (a slow-down on 429s). */
  slow?: 1;
  /** Rate in force at the end of the second, req/s. */
  rate: number;
  /** Requests open at the end of the second. */
  fl?: number;
  tin?: number;
  tout?: number;
  /** Finished items by attempts used, for those that needed more than one: `{ "2": 3 }`. */
  att?: Record<string, number>;
  /** Latency of every attempt that ended this second. */
  lat?: LatencySummary;
}

/** Last line: the run's final counts, as the CLI's summary printed them. */
export interface StatsSummary {
  summary: {
    ended_at: string;
    elapsed_ms: number;
    stopped: boolean;
    read: number;
    ok: number;
    failed: number;
    invalid: number;
    skipped: number;
    unsent: number;
    requests: number;
    retries: number;
    rate_limited: number;
    tokens_in: number;
    tokens_out: number;
    no_text: Record<string, number>;
    truncated: number;
    lowest_rate: number;
    final_rate: number;
    fatal?: { kind: string; code: string; message: string };
    latency_ms: { p50?: number; p90?: number; p99?: number; mean?: number; max?: number };
    /** The command that continues the run, when it stopped. */
    resume?: string;
  };
}

/** A parsed sidecar: its last run (a resume appends a new header), and how many came before. */
export interface StatsFile {
  header: StatsHeader;
  seconds: StatsSecond[];
  summary?: StatsSummary["summary"];
  earlierRuns: number;
}

/**
 * Parses a sidecar's text. Lines that do not parse (a torn last line after a crash) are skipped.
 * @throws {TypeError} when the text has no header line.
 */
export function parseStatsFile(text: string): StatsFile {
  let file: StatsFile | undefined;
  let runs = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    if (value.mft_stats === 1) {
      runs++;
      file = { header: value as unknown as StatsHeader, seconds: [], earlierRuns: runs - 1 };
    } else if (!file) continue;
    else if (typeof value.s === "number") file.seconds.push(value as unknown as StatsSecond);
    else if (value.summary) file.summary = (value as unknown as StatsSummary).summary;
  }
  if (!file) throw new TypeError("not a model-fine-tuner stats file: no header line");
  return file;
}

/** Totals over every second of a run (what a summary line says, rebuilt when it is missing). */
export interface StatsTotals {
  sent: number;
  ok: number;
  failed: Record<string, number>;
  rateLimited: number;
  retries: number;
  tokensIn: number;
  tokensOut: number;
  /** Finished items by attempts, `{ "1": 950, "2": 50 }`. */
  attempts: Record<string, number>;
  latency: LatencySummary;
  /** Seconds from the first to the last line. */
  seconds: number;
}

/** Adds up the seconds of a run. */
export function totals(seconds: StatsSecond[]): StatsTotals {
  const t: StatsTotals = {
    sent: 0,
    ok: 0,
    failed: {},
    rateLimited: 0,
    retries: 0,
    tokensIn: 0,
    tokensOut: 0,
    attempts: {},
    latency: emptyLatency(),
    seconds: seconds.length === 0 ? 0 : seconds[seconds.length - 1].s + 1,
  };
  let retried = 0;
  let finished = 0;
  for (const s of seconds) {
    t.sent += s.sent;
    t.ok += s.ok;
    finished += s.ok;
    for (const [code, n] of Object.entries(s.failed ?? {})) {
      t.failed[code] = (t.failed[code] ?? 0) + n;
      finished += n;
    }
    t.rateLimited += s.rl ?? 0;
    t.retries += s.retry ?? 0;
    t.tokensIn += s.tin ?? 0;
    t.tokensOut += s.tout ?? 0;
    for (const [a, n] of Object.entries(s.att ?? {})) {
      t.attempts[a] = (t.attempts[a] ?? 0) + n;
      retried += n;
    }
    if (s.lat) mergeLatency(t.latency, s.lat);
  }
  if (finished - retried > 0) t.attempts["1"] = finished - retried;
  return t;
}
