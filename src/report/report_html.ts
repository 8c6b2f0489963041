/**
 * The run report: one self-contained HTML page (inline SVG, no script, no network) built from a
 * run's sidecar. It works on a finished run, a stopped one, and one that died without a summary.
 * @module
 */
import {
  bucketUpperMs,
  emptyLatency,
  latencyQuantile,
  type LatencySummary,
  mergeLatency,
} from "./latency_histogram.ts";
import { type StatsFile, type StatsSecond, totals } from "./stats_file.ts";
import { type Band, barChart, esc, fmt, lineChart, type Marker, type Series } from "./svg_chart.ts";

/** Most points a chart draws; longer runs are put in bins of several seconds. */
export const MAX_POINTS = 1500;

const NO_TEXT = ["blocked", "cut_off", "refused", "empty_answer"];

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function ms(x: number | undefined): string {
  if (x === undefined) return "–";
  return x >= 10_000 ? `${fmt(Math.round(x / 100) / 10)} s` : `${fmt(Math.round(x))} ms`;
}

function duration(msTotal: number): string {
  const s = Math.round(msTotal / 100) / 10;
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Seconds put in bins of `size`: sums per bin, latencies merged, the last rate in force. */
interface Bin {
  x: number;
  sent: number;
  ok: number;
  failed: number;
  rl: number;
  pause: number;
  slow: boolean;
  rate: number;
  tin: number;
  tout: number;
  lat: LatencySummary;
}

function binSeconds(seconds: StatsSecond[], span: number, size: number, rate0: number): Bin[] {
  const bins: Bin[] = [];
  const count = Math.max(1, Math.ceil(span / size));
  let rate = rate0;
  let j = 0;
  for (let i = 0; i < count; i++) {
    const bin: Bin = {
      x: i * size,
      sent: 0,
      ok: 0,
      failed: 0,
      rl: 0,
      pause: 0,
      slow: false,
      rate,
      tin: 0,
      tout: 0,
      lat: emptyLatency(),
    };
    while (j < seconds.length && seconds[j].s < (i + 1) * size) {
      const s = seconds[j++];
      bin.sent += s.sent;
      bin.ok += s.ok;
      for (const n of Object.values(s.failed ?? {})) bin.failed += n;
      bin.rl += s.rl ?? 0;
      bin.pause = Math.max(bin.pause, s.pause ?? 0);
      bin.slow ||= s.slow === 1;
      bin.rate = rate = s.rate;
      bin.tin += s.tin ?? 0;
      bin.tout += s.tout ?? 0;
      if (s.lat) mergeLatency(bin.lat, s.lat);
    }
    bins.push(bin);
  }
  return bins;
}

/**
 * Builds the report page from a parsed sidecar.
 * @param file The sidecar, from `parseStatsFile`.
 * @returns The HTML text.
 */
export function renderReport(file: StatsFile): string {
  const { header, seconds, summary } = file;
  const t = totals(seconds);
  const span = Math.max(t.seconds, summary ? Math.ceil(summary.elapsed_ms / 1000) : 0, 1);
  const size = Math.ceil(span / MAX_POINTS);
  const target = typeof header.target_rate === "number" ? header.target_rate : undefined;
  const bins = binSeconds(seconds, span, size, seconds[0]?.rate ?? target ?? 0);
  const per = size === 1 ? "" : ` (mean over ${size} s bins)`;

  // Requests per second against the target, with the quota's pushes marked.
  const markers: Marker[] = [];
  const bands: Band[] = [];
  for (const b of bins) {
    if (b.rl > 0) {
      markers.push({
        x: b.x + size / 2,
        label: `429: ${b.rl} quota 429s at ${b.x} s`,
        color: "#d62728",
        shape: "dot",
        weight: b.rl,
      });
    }
    if (b.slow) {
      markers.push({
        x: b.x + size / 2,
        label: `slow-down: rate lowered to ${fmt(b.rate)} req/s at ${b.x} s`,
        color: "#ff7f0e",
        shape: "tick",
      });
    }
    if (b.pause > 0) {
      bands.push({
        from: b.x,
        to: b.x + b.pause / 1000,
        label: `pause: the provider asked for ${ms(b.pause)} at ${b.x} s`,
      });
    }
  }
  const rateSeries: Series[] = [
    {
      name: "sent req/s",
      color: "#4e79a7",
      points: bins.map((b) => [b.x + size / 2, b.sent / size] as [number, number]),
    },
    {
      name: "answered/s",
      color: "#59a14f",
      points: bins.map((b) => [b.x + size / 2, (b.ok + b.failed) / size] as [number, number]),
    },
    {
      name: "rate in force",
      color: "#f28e2b",
      step: true,
      points: [...bins.map((b) => [b.x, b.rate] as [number, number]), [span, bins.at(-1)!.rate]],
    },
  ];
  if (target !== undefined) {
    rateSeries.push({
      name: `target ${fmt(target)} req/s`,
      color: "#333",
      dash: true,
      points: [[0, target], [span, target]],
    });
  }
  const rateChart = lineChart({
    id: "rate-chart",
    title: `Requests per second${per}: sent, answered, the rate in force and the target` +
      (markers.length || bands.length
        ? " · red dots: quota 429s · orange ticks: slow-downs · shaded: pauses"
        : ""),
    xLabel: "seconds since start",
    yLabel: "req/s",
    series: rateSeries,
    markers,
    bands,
    xMax: span,
  });

  // Latency.
  const q = (p: number) =>
    bins.filter((b) => b.lat.n > 0).map((b) =>
      [b.x + size / 2, latencyQuantile(b.lat, p)!] as [number, number]
    );
  const latencyChart = lineChart({
    id: "latency-chart",
    title: `Latency over time${per}: p50, p90, p99 of the attempts that ended`,
    xLabel: "seconds since start",
    yLabel: "ms",
    series: [
      { name: "p50", color: "#4e79a7", points: q(0.5) },
      { name: "p90", color: "#f28e2b", points: q(0.9) },
      { name: "p99", color: "#e15759", points: q(0.99) },
    ],
    xMax: span,
  });
  const buckets = Object.keys(t.latency.h).map(Number).sort((a, b) => a - b);
  const histBars = buckets.length === 0 ? [] : (() => {
    const out = [];
    for (let b = buckets[0]; b <= buckets[buckets.length - 1]; b++) {
      out.push({ label: `≤${ms(bucketUpperMs(b))}`, value: t.latency.h[b] ?? 0 });
    }
    return out;
  })();
  const histChart = barChart({
    id: "latency-histogram",
    title: "Latency histogram (every attempt; buckets 10 % wide)",
    yLabel: "attempts",
    bars: histBars,
  });

  // Outcomes: from the summary line when the run wrote one, else from the seconds.
  const failedCodes = Object.entries(t.failed).filter(([c]) => !NO_TEXT.includes(c));
  const noTextCodes = Object.entries(t.failed).filter(([c]) => NO_TEXT.includes(c));
  const noText = summary
    ? Object.values(summary.no_text).reduce((a, b) => a + b, 0)
    : noTextCodes.reduce((a, [, n]) => a + n, 0);
  const ok = summary?.ok ?? t.ok;
  const failed = (summary?.failed ?? Object.values(t.failed).reduce((a, b) => a + b, 0)) - noText;
  const unsent = summary?.unsent;
  const outcomeBars = [
    { label: "ok", value: ok, color: "#59a14f" },
    { label: "failed", value: failed, color: "#e15759" },
    { label: "blocked or empty", value: noText, color: "#b07aa1" },
    { label: "invalid", value: summary?.invalid ?? 0, color: "#9c755f" },
    { label: "unsent", value: unsent ?? 0, color: "#bab0ac" },
  ];
  const row = (k: string, label: string, v: number | string | undefined, note = "") =>
    `<tr><th>${esc(label)}</th><td data-k="${k}">${
      v === undefined ? "–" : typeof v === "number" ? fmt(v) : esc(v)
    }</td><td class="note">${note}</td></tr>`;
  const outcomeRows = [
    row("ok", "ok (answered with text)", ok),
    row("failed", "failed", failed, "in the errors file"),
    ...failedCodes.map(([c, n]) => row(`failed_${c}`, `  ${c}`, n)),
    row("no_text", "blocked or empty answers", noText, "in the errors file"),
    ...(summary
      ? Object.entries(summary.no_text).filter(([, n]) => n > 0).map(([c, n]) =>
        row(`no_text_${c}`, `  ${c}`, n)
      )
      : noTextCodes.map(([c, n]) => row(`no_text_${c}`, `  ${c}`, n))),
    row("invalid", "invalid lines (not sent)", summary?.invalid),
    row("unsent", "unsent (a resume sends them)", unsent),
    row("skipped", "skipped (already answered)", summary?.skipped),
  ].join("");
  const outcomeChart = barChart({
    id: "outcome-chart",
    title: "Outcomes per item",
    yLabel: "items",
    bars: outcomeBars,
    height: 180,
  });

  const tokenChart = lineChart({
    id: "token-chart",
    title: `Tokens per second${per}`,
    xLabel: "seconds since start",
    yLabel: "tokens/s",
    series: [
      { name: "in", color: "#76b7b2", points: bins.map((b) => [b.x + size / 2, b.tin / size]) },
      { name: "out", color: "#edc948", points: bins.map((b) => [b.x + size / 2, b.tout / size]) },
    ],
    xMax: span,
    height: 200,
  });
  const attempts = Object.entries(t.attempts).sort((a, b) => Number(a[0]) - Number(b[0]));
  const attemptChart = barChart({
    id: "attempt-chart",
    title: "Attempts per finished item",
    yLabel: "items",
    bars: attempts.map(([a, n]) => ({ label: `${a}`, value: n })),
    height: 180,
  });

  const elapsedMs = summary?.elapsed_ms ?? t.seconds * 1000;
  const requests = summary?.requests ?? t.sent;
  const lat = summary?.latency_ms ?? {
    p50: latencyQuantile(t.latency, 0.5),
    p90: latencyQuantile(t.latency, 0.9),
    p99: latencyQuantile(t.latency, 0.99),
  };
  const state = !summary
    ? `<p class="warn">No summary line: the run has not finished, or was killed. Figures below come from the seconds recorded so far.</p>`
    : summary.stopped
    ? `<p class="warn">Stopped${
      summary.fatal
        ? ` by the provider (${esc(summary.fatal.kind)}: ${esc(summary.fatal.message)})`
        : ""
    } with ${fmt(summary.unsent)} items unsent.</p>`
    : "";
  const card = (k: string, label: string, v: string) =>
    `<div class="card"><div class="v" data-k="${k}">${v}</div><div class="l">${
      esc(label)
    }</div></div>`;
  const achieved = elapsedMs > 0 ? (requests * 1000) / elapsedMs : 0;
  const cards = [
    card("elapsed", "elapsed", duration(elapsedMs)),
    card("requests", "requests sent", fmt(requests)),
    card("achieved_rate", "achieved req/s", fmt(Math.round(achieved * 100) / 100)),
    card("target_rate", "target req/s", String(header.target_rate)),
    card("rate_limited", "quota 429s", fmt(summary?.rate_limited ?? t.rateLimited)),
    card("p50", "latency p50", ms(lat.p50)),
    card("p90", "latency p90", ms(lat.p90)),
    card("p99", "latency p99", ms(lat.p99)),
    card("tokens_in", "tokens in", fmt(summary?.tokens_in ?? t.tokensIn)),
    card("tokens_out", "tokens out", fmt(summary?.tokens_out ?? t.tokensOut)),
  ].join("");
  const command = header.command.map(quote).join(" ");
  const title = `Run report: ${header.output ?? header.input ?? ""}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;margin:24px auto;max-width:940px;padding:0 12px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:0 0 12px}.warn{background:#fff4e5;border:1px solid #f0c27b;padding:8px 10px;border-radius:4px}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card .v{font-size:20px;font-weight:600}.card .l{color:#666;font-size:12px}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}svg.chart{max-width:100%;height:auto;display:block}
.legend{font-size:12px;color:#444}.key{margin-right:14px}.key i{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}
table{border-collapse:collapse}th,td{padding:3px 10px;text-align:left;border-bottom:1px solid #eee;white-space:pre}td[data-k]{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#777}pre{background:#f6f6f6;padding:8px 10px;border-radius:4px;white-space:pre-wrap;word-break:break-all}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="meta">started ${esc(header.started_at)}${
    summary ? ` · ended ${esc(summary.ended_at)}` : ""
  } · provider ${esc(header.provider ?? "?")} · model ${esc(header.model ?? "?")}${
    file.earlierRuns > 0 ? ` · this is run ${file.earlierRuns + 1} on this output (resumed)` : ""
  }</p>
${state}
<div class="cards">${cards}</div>
<h2>Rate</h2>
${rateChart}
<h2>Latency</h2>
${latencyChart}
${histChart}
<h2>Outcomes</h2>
<table id="outcomes">${outcomeRows}</table>
${outcomeChart}
<h2>Tokens and attempts</h2>
${tokenChart}
${attemptChart}
<h2>Command</h2>
<pre id="command">${esc(command)}</pre>
${
    summary?.resume
      ? `<h2>Resume</h2><p>The run stopped before every line was sent. Continue it with:</p><pre id="resume">${
        esc(summary.resume)
      }</pre>`
      : ""
  }
<p class="meta">Built by model-fine-tuner from ${fmt(seconds.length)} per-second lines.</p>
</body></html>
`;
}
