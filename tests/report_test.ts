/**
 * The run report's pieces: the latency histogram, the per-second recorder fed by a real run's
 * observer, the sidecar's parser, and the HTML it becomes.
 * @module
 */
import { expect, test } from "bun:test";
import { createMockProvider } from "../src/providers/mock.ts";
import { runRealtime } from "../src/run.ts";
import type { RunEvent } from "../src/run_observer.ts";
import {
  addLatency,
  emptyLatency,
  LATENCY_BUCKETS,
  latencyQuantile,
} from "../src/report/latency_histogram.ts";
import { parseStatsFile, totals } from "../src/report/stats_file.ts";
import { StatsRecorder } from "../src/report/stats_recorder.ts";
import { MAX_POINTS, renderReport } from "../src/report/report_html.ts";

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

test("latencyQuantile() is within 5 % of the exact percentile, exact for one latency", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const values = Array.from({ length: 5000 }, () => 20 + random() ** 3 * 8000);
  const h = emptyLatency();
  for (const v of values) addLatency(h, v);
  for (const q of [0.5, 0.9, 0.99]) {
    const exact = exactQuantile(values, q);
    expect(Math.abs(latencyQuantile(h, q)! - exact) / exact).toBeLessThan(0.05);
  }
  expect(Object.keys(h.h).length).toBeLessThanOrEqual(LATENCY_BUCKETS);
  const same = emptyLatency();
  for (let i = 0; i < 10; i++) addLatency(same, 2003);
  expect(latencyQuantile(same, 0.5)).toBe(2003);
  expect(latencyQuantile(emptyLatency(), 0.5)).toBeUndefined();
});

test("runRealtime() tells its observer of every request, answer and failure", async () => {
  const events: RunEvent[] = [];
  const lines = Array.from(
    { length: 40 },
    (_, i) => JSON.stringify({ id: `i${i}`, prompt: `p${i}` }),
  );
  const run = runRealtime(ReadableStream.from(lines), {
    provider: createMockProvider({ latencyMs: 2, failureRate: 0.5, seed: 3 }),
    rate: 2000,
    retry: { maxAttempts: 2, baseDelayMs: 1 },
    observer: (e) => events.push(e),
  });
  for await (const _ of run.results) { /* drain */ }
  const stats = await run.done;
  const count = (type: RunEvent["type"]) => events.filter((e) => e.type === type).length;
  expect(count("sent")).toBe(stats.requests);
  expect(count("answered")).toBe(stats.ok);
  expect(count("failed")).toBe(stats.failed);
  expect(count("retry")).toBe(stats.retries);
  expect(stats.failed).toBeGreaterThan(0);
  expect(stats.retries).toBeGreaterThan(0);
  const answered = events.filter((e) => e.type === "answered");
  expect(answered.reduce((n, e) => n + e.tokensOut, 0)).toBe(stats.tokensOut);
  expect(answered.some((e) => e.attempts === 2)).toBe(true);
});

/** Feeds a recorder by hand from `start` (ms): 3 seconds of traffic, a 429 burst in the second. */
function recordSample(start: number, lines: string[]) {
  let inFlight = 0;
  const rec = new StatsRecorder({
    start,
    write: (l) => lines.push(l),
    inFlight: () => inFlight,
    rate: 10,
  });
  rec.header({
    command: ["model-fine-tuner", "run", "in.jsonl"],
    target_rate: 10,
    started_at: "x",
  });
  const o = rec.observer;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < 10; i++) {
      const at = start + s * 1000 + i * 100;
      o({ type: "sent", at });
      inFlight++;
      if (s === 1 && i < 3) {
        o({ type: "rate_limited", at: at + 5, latencyMs: 5, retryAfterMs: 1500, rate: 5 });
        o({ type: "rate", at: at + 5, rate: 5 });
      } else {
        o({
          type: "answered",
          at: at + 50,
          latencyMs: 50 + i,
          tokensIn: 3,
          tokensOut: 7,
          attempts: s === 2 && i === 0 ? 2 : 1,
        });
      }
      inFlight--;
    }
    rec.flush(start + (s + 1) * 1000);
  }
  return rec;
}

test("StatsRecorder writes one line per second once it is over, with the 429s and pauses", () => {
  const lines: string[] = [];
  recordSample(5000, lines);
  expect(lines.length).toBe(1 + 3); // header, then seconds 0, 1 and 2
  const file = parseStatsFile(lines.join("\n"));
  expect(file.seconds.map((s) => s.s)).toEqual([0, 1, 2]);
  expect(file.seconds.map((s) => s.sent)).toEqual([10, 10, 10]);
  expect(file.seconds[1].rl).toBe(3);
  expect(file.seconds[1].pause).toBe(1500);
  expect(file.seconds[1].slow).toBe(1);
  expect(file.seconds[2].rate).toBe(5);
  expect(file.summary).toBeUndefined();
  const t = totals(file.seconds);
  expect(t.ok).toBe(27);
  expect(t.tokensOut).toBe(27 * 7);
  expect(t.attempts).toEqual({ "1": 26, "2": 1 });
});

test("StatsRecorder stays small: a second's line does not grow with its requests", () => {
  const lines: string[] = [];
  const rec = new StatsRecorder({ start: 0, write: (l) => lines.push(l), rate: 10_000 });
  for (let i = 0; i < 200_000; i++) {
    const at = i / 10; // 10,000 a second for 20 s
    rec.observer({ type: "sent", at });
    rec.observer({
      type: "answered",
      at,
      latencyMs: 1500 + (i % 1000),
      tokensIn: 10,
      tokensOut: 20,
      attempts: 1,
    });
  }
  rec.flush(20_000);
  expect(lines.length).toBe(20);
  expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(400);
});

test("renderReport() draws the run's points, marks the 429s and shows the summary's numbers", () => {
  const lines: string[] = [];
  const rec = recordSample(0, lines);
  rec.finish(3000, {
    read: 30,
    skipped: 0,
    ok: 27,
    failed: 0,
    invalid: 0,
    inFlight: 0,
    retrying: 0,
    requests: 33,
    retries: 3,
    tokensIn: 81,
    tokensOut: 189,
    unsent: 3,
    rate: 5,
    configuredRate: 10,
    lowestRate: 5,
    rateLimited: 3,
    noText: { blocked: 0, cut_off: 0, refused: 0, empty_answer: 0 },
    truncated: 0,
    startedAt: 0,
    endedAt: 3000,
    stopped: true,
  }, "model-fine-tuner run in.jsonl --resume");
  const file = parseStatsFile(lines.join("\n"));
  // The exact median of the 30 latencies is 54 ms; the histogram's is within 5 %.
  const p50 = file.summary!.latency_ms.p50!;
  expect(Math.abs(p50 - 54) / 54).toBeLessThan(0.05);
  const html = renderReport(file);
  expect(html).toContain('data-series="sent req/s" data-points="3"');
  expect(html.match(/data-marker="429"/g)?.length).toBe(1);
  expect(html.match(/class="band"/g)?.length).toBe(1);
  expect(html).toContain('<td data-k="ok">27</td>');
  expect(html).toContain('<td data-k="unsent">3</td>');
  expect(html).toContain(`data-k="p50">${p50} ms<`);
  expect(html).toContain('<pre id="resume">model-fine-tuner run in.jsonl --resume</pre>');
  expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
});

test("parseStatsFile() reads a run that died mid-line, and keeps the latest run of a resumed output", () => {
  const lines: string[] = [];
  recordSample(0, lines);
  recordSample(60_000, lines); // a resume appends a second run
  const text = lines.join("\n") + '\n{"s":9,"sent":';
  const file = parseStatsFile(text);
  expect(file.earlierRuns).toBe(1);
  expect(file.seconds.length).toBe(3);
  const html = renderReport(file);
  expect(html).toContain("No summary line");
  expect(html).toContain('<td data-k="ok">27</td>');
  expect(() => parseStatsFile('{"s":1}\n')).toThrow(TypeError);
});

test("renderReport() puts a long run in bins of several seconds, at most MAX_POINTS a chart", () => {
  const lines: string[] = [];
  const rec = new StatsRecorder({ start: 0, write: (l) => lines.push(l), rate: 2 });
  rec.header({ command: ["x"], target_rate: 2, started_at: "t" });
  for (let s = 0; s < 4000; s++) {
    rec.observer({ type: "sent", at: s * 1000 });
    rec.observer({ type: "sent", at: s * 1000 + 500 });
  }
  rec.flush(4_000_000);
  const html = renderReport(parseStatsFile(lines.join("\n")));
  const points = Math.ceil(4000 / Math.ceil(4000 / MAX_POINTS));
  expect(points).toBeLessThanOrEqual(MAX_POINTS);
  expect(html).toContain(`data-series="sent req/s" data-points="${points}"`);
  expect(html).toContain("mean over 3 s bins");
  // Still 2 req/s on average in every bin.
  const sent = /data-series="sent req\/s" data-points="\d+" points="([^"]+)"/.exec(html)![1];
  const ys = new Set(sent.split(" ").map((p) => p.split(",")[1]));
  expect(ys.size).toBeLessThanOrEqual(2); // the last bin may be short
});
