/**
 * The HTML of the server's live page (`GET /`): no data in it; its script reads `/live`
 * (Server-Sent Events over `fetch`, so it can send the bearer token, which it takes from the
 * URL's `#token=` fragment: a fragment never reaches the server or its logs).
 * @module
 */

const SCRIPT = String.raw`
"use strict";
const $ = (s) => document.querySelector(s);
const NS = "http://www.w3.org/2000/svg";
let token = sessionStorage.getItem("mft-token") || "";
const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (m) {
  token = decodeURIComponent(m[1]);
  sessionStorage.setItem("mft-token", token);
  history.replaceState(null, "", location.pathname + location.search);
}
let events = 0;
function setState(state, text) {
  const el = $("#status");
  el.dataset.state = state;
  el.textContent = text;
  $("#auth").hidden = state !== "unauthorized";
}
function fmt(x) {
  return typeof x === "number" ? (Number.isInteger(x) ? x.toLocaleString("en-US") : String(+x.toPrecision(3))) : String(x);
}
function setK(k, v) {
  const el = document.querySelector('[data-k="' + k + '"]');
  if (el) el.textContent = fmt(v);
}
function el(tag, attrs, text) {
  const e = document.createElementNS(tag === "tr" || tag === "td" || tag === "div" || tag === "span" ? "http://www.w3.org/1999/xhtml" : NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
function chart(s) {
  const svg = $("#live-chart");
  const W = 900, H = 220, L = 50, R = 10, T = 12, B = 28, pw = W - L - R, ph = H - T - B;
  const h = s.history.slice(0, -1); // complete seconds: the one in progress would dip
  const target = typeof s.target === "number" ? s.target : s.rate;
  let top = Math.max(1, target, ...h.map((x) => x.sent), ...h.map((x) => x.ok + x.failed));
  top = Math.ceil(top * 1.1);
  const X = (i) => (L + (i / Math.max(1, h.length - 1)) * pw).toFixed(1);
  const Y = (v) => (T + ph - (v / top) * ph).toFixed(1);
  svg.replaceChildren();
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    svg.append(el("line", { x1: L, x2: L + pw, y1: Y(v), y2: Y(v), stroke: "#e5e5e5" }));
    svg.append(el("text", { x: L - 6, y: +Y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#555" }, fmt(Math.round(v))));
  }
  for (const ago of [240, 180, 120, 60, 0]) {
    const i = ago === 0 ? h.length - 1 : h.length - ago; // h's last entry ended a moment ago
    if (i < 0) continue;
    svg.append(el("text", { x: X(i), y: H - 8, "text-anchor": "middle", "font-size": 11, fill: "#555" }, ago === 0 ? "now" : "-" + ago + " s"));
  }
  svg.append(el("line", { x1: L, x2: L + pw, y1: Y(target), y2: Y(target), stroke: "#333", "stroke-dasharray": "6 4", "data-series": "target" }));
  const line = (name, color, f) => svg.append(el("polyline", {
    "data-series": name, fill: "none", stroke: color, "stroke-width": 2,
    points: h.map((x, i) => X(i) + "," + Y(f(x))).join(" "),
  }));
  line("sent", "#4e79a7", (x) => x.sent);
  line("answered", "#59a14f", (x) => x.ok + x.failed);
  h.forEach((x, i) => {
    if (x.rl > 0) svg.append(el("circle", { cx: X(i), cy: T + 6, r: Math.min(7, 2.5 + Math.log2(1 + x.rl)), fill: "#d62728", "data-marker": "429" }));
    if (x.failed > 0) svg.append(el("path", { d: "M" + X(i) + " " + (T + ph) + "l-4 7h8z", fill: "#e15759", "data-marker": "error" }));
  });
}
function runs(s) {
  const body = $("#runs");
  body.replaceChildren();
  if (s.runs.length === 0) {
    const tr = el("tr");
    tr.append(el("td", { colspan: 9, class: "none" }, "no run yet: POST /v1/runs"));
    body.append(tr);
  }
  for (const r of s.runs) {
    const tr = el("tr", { "data-run": r.id, class: r.finished ? "finished" : "" });
    const bar = el("div", { class: "bar" });
    const fill = el("span");
    fill.style.width = (r.read ? (100 * r.done) / r.read : 0).toFixed(1) + "%";
    bar.append(fill);
    const progress = el("td");
    progress.append(el("span", { "data-k": "done" }, fmt(r.done)), document.createTextNode(" / " + fmt(r.read) + " read"), bar);
    tr.append(
      el("td", { class: "id", title: r.id }, r.id.slice(0, 8)),
      el("td", {}, r.finished ? "finished" : "running"),
      progress,
      el("td", { "data-k": "ok" }, fmt(r.ok)),
      el("td", { "data-k": "failed" }, fmt(r.failed + r.invalid)),
      el("td", { "data-k": "in_flight" }, fmt(r.in_flight)),
      el("td", { "data-k": "rate_limited" }, fmt(r.rate_limited)),
      el("td", {}, fmt(r.tokens_in) + " / " + fmt(r.tokens_out)),
      el("td", {}, r.started_at.replace("T", " ").replace(/\.\d+Z$/, "Z")),
    );
    body.append(tr);
  }
}
function show(s) {
  events++;
  setK("events", events);
  setK("sent_per_s", s.last_second.sent);
  setK("rate", s.rate);
  setK("target", s.target);
  setK("in_flight", s.in_flight);
  setK("queued", s.queued);
  setK("rl_minute", s.last_minute.rl);
  setK("errors_minute", s.last_minute.failed);
  setK("sent_minute", s.last_minute.sent);
  setK("paused", s.paused_ms > 0 ? (s.paused_ms / 1000).toFixed(1) + " s" : "no");
  setK("rl_total", s.rate_limited_total);
  $("#who").textContent = (s.provider || "?") + " · " + (s.model || "?");
  chart(s);
  runs(s);
}
async function connect() {
  setState("connecting", "connecting…");
  try {
    const res = await fetch(new URL("live", location.href), {
      headers: token ? { authorization: "Bearer " + token } : {},
      cache: "no-store",
    });
    if (res.status === 401) {
      setState("unauthorized", "this server needs its token (MFT_SERVER_TOKEN)");
      return;
    }
    if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
    setState("live", "live");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (data) show(JSON.parse(data));
      }
    }
    setState("connecting", "disconnected; reconnecting…");
  } catch (e) {
    setState("connecting", "cannot reach the server (" + e.message + "); retrying…");
  }
  setTimeout(connect, 2000);
}
$("#auth").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value.trim();
  sessionStorage.setItem("mft-token", token);
  connect();
});
connect();
`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>model-fine-tuner · live</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;margin:24px auto;max-width:940px;padding:0 12px}
h1{font-size:20px;margin:0}h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:2px 0 12px}#status{font-weight:600}#status[data-state=live]{color:#2a8a2a}#status[data-state=unauthorized]{color:#c0392b}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:118px}
.card .v{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}.card .l{color:#666;font-size:12px}
svg{max-width:100%;height:auto;display:block}.legend{font-size:12px;color:#444}.key{margin-right:14px}.key i{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}
table{border-collapse:collapse;width:100%}th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #eee;font-variant-numeric:tabular-nums}
tr.finished{color:#777}.id{font-family:monospace}.bar{height:4px;background:#eee;margin-top:3px;width:140px}.bar span{display:block;height:4px;background:#4e79a7}
.none{color:#888}form{margin:8px 0}
</style></head><body>
<h1>model-fine-tuner · live</h1>
<p class="meta"><span id="who">…</span> · <span id="status" data-state="connecting">connecting…</span> · updates: <span data-k="events">0</span></p>
<form id="auth" hidden><label>Token <input id="token" type="password" autocomplete="off"></label> <button>Connect</button></form>
<div class="cards">
<div class="card"><div class="v" data-k="sent_per_s">–</div><div class="l">sent in the last second</div></div>
<div class="card"><div class="v" data-k="rate">–</div><div class="l">rate in force, req/s</div></div>
<div class="card"><div class="v" data-k="target">–</div><div class="l">target, req/s</div></div>
<div class="card"><div class="v" data-k="in_flight">–</div><div class="l">in flight</div></div>
<div class="card"><div class="v" data-k="queued">–</div><div class="l">runs waiting for a slot</div></div>
<div class="card"><div class="v" data-k="sent_minute">–</div><div class="l">sent, last minute</div></div>
<div class="card"><div class="v" data-k="rl_minute">–</div><div class="l">quota 429s, last minute</div></div>
<div class="card"><div class="v" data-k="errors_minute">–</div><div class="l">failed items, last minute</div></div>
<div class="card"><div class="v" data-k="paused">–</div><div class="l">paused by the provider</div></div>
<div class="card"><div class="v" data-k="rl_total">–</div><div class="l">quota 429s since start</div></div>
</div>
<h2>Quota use, last 5 minutes</h2>
<svg id="live-chart" viewBox="0 0 900 220" width="900" height="220" role="img" aria-label="requests per second, last 5 minutes"></svg>
<div class="legend"><span class="key"><i style="background:#4e79a7"></i>sent/s</span><span class="key"><i style="background:#59a14f"></i>answered/s</span><span class="key"><i style="background:#333"></i>target (dashed)</span><span class="key"><i style="background:#d62728"></i>quota 429s (dots)</span><span class="key"><i style="background:#e15759"></i>failures (ticks)</span></div>
<h2>Runs</h2>
<table><thead><tr><th>run</th><th>state</th><th>progress</th><th>ok</th><th>failed</th><th>in flight</th><th>429s</th><th>tokens in / out</th><th>started</th></tr></thead><tbody id="runs"></tbody></table>
<script>${SCRIPT}</script>
</body></html>
`;

/** The page and the Content-Security-Policy it is served with (no other origin, no framing). */
export const LIVE_PAGE = {
  html: HTML,
  csp: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};
