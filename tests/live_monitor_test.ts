/**
 * The live page's routes through `app.request()`: the page, the auth of `/live`, what its
 * events say about runs and the quota, and the monitor's bounded history.
 * @module
 */
import { expect, test } from "bun:test";
import { createMockProvider } from "../src/providers/mock.ts";
import { Quota } from "../src/quota.ts";
import type { RunStats } from "../src/run.ts";
import { createApp } from "../src/server/app.ts";
import { createLiveMonitor, type LiveSnapshot } from "../src/server/live_monitor.ts";
import { FakeClock } from "./_fake_clock.ts";

const TOKEN = "live-test-token-0123";

/** Reads SSE events from a response until `count` snapshots have come, then cancels it. */
async function snapshots(res: Response, count: number): Promise<LiveSnapshot[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const out: LiveSnapshot[] = [];
  let buf = "";
  while (out.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      expect(block).toContain("event: snapshot");
      const data = block.split("\n").find((l) => l.startsWith("data:"))!.slice(5).trim();
      out.push(JSON.parse(data));
    }
  }
  await reader.cancel();
  return out;
}

test("GET / is the live page with no data in it, served so no other site can frame or script it", async () => {
  const app = createApp({ provider: createMockProvider(), rate: 10, token: TOKEN });
  const res = await app.request("/");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/html");
  const csp = res.headers.get("content-security-policy")!;
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("connect-src 'self'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(res.headers.get("access-control-allow-origin")).toBeNull();
  const html = await res.text();
  expect(html).toContain('id="live-chart"');
  expect(html).not.toContain(TOKEN);
});

test("GET /live needs the API's token when one is set, and sends no CORS header", async () => {
  const app = createApp({ provider: createMockProvider(), rate: 10, token: TOKEN });
  expect((await app.request("/live")).status).toBe(401);
  const wrong = await app.request("/live", { headers: { authorization: "Bearer nope" } });
  expect(wrong.status).toBe(401);
  expect((await wrong.json()).error.code).toBe("invalid_token");
  const res = await app.request("/live", {
    headers: { authorization: `Bearer ${TOKEN}`, origin: "https://evil.example" },
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  expect(res.headers.get("access-control-allow-origin")).toBeNull();
  const [first] = await snapshots(res, 1);
  expect(first.target).toBe(10);
  expect(first.runs).toEqual([]);
});

test("GET /live shows a finished run's counts and its traffic in the last minute", async () => {
  const app = createApp({ provider: createMockProvider({ latencyMs: 5 }), rate: 1000 });
  const lines = Array.from({ length: 25 }, (_, i) => JSON.stringify({ id: `r${i}`, prompt: "x" }));
  lines.push('{"id":"bad"'); // one invalid line
  const run = await app.request("/v1/runs", { method: "POST", body: lines.join("\n") });
  const id = run.headers.get("x-mft-run-id")!;
  await run.text();
  const [s] = await snapshots(await app.request("/live"), 1);
  const r = s.runs.find((x) => x.id === id)!;
  // The run ended before the first snapshot: it is listed as finished, with its final counts.
  expect(r).toMatchObject({ ok: 25, invalid: 1, done: 26, read: 26, in_flight: 0, finished: true });
  expect(s.last_minute.sent + s.history.at(-1)!.sent).toBe(25);
  expect(s.history.length).toBe(300);
});

test("the monitor's events move while a run goes, and the history stays the size asked for", async () => {
  const clock = new FakeClock(0);
  const quota = new Quota({ rate: 5, clock });
  const stats = { read: 0, ok: 0, failed: 0, invalid: 0, skipped: 0, inFlight: 0 } as RunStats;
  const monitor = createLiveMonitor({ quota, clock, historySeconds: 10 });
  monitor.track({ id: "a", stats, startedAt: "t" });
  for (let sec = 0; sec < 25; sec++) {
    for (let i = 0; i < 5; i++) {
      monitor.observer({ type: "sent", at: sec * 1000 + i });
      if (sec === 20 && i === 0) {
        monitor.observer({ type: "rate_limited", at: sec * 1000, latencyMs: 1, rate: 5 });
      }
    }
    stats.read += 5;
    stats.ok += 5;
    await clock.advance(1000);
  }
  const s = monitor.snapshot();
  expect(s.history.length).toBe(10);
  expect(s.history.at(-1)).toMatchObject({ ago: 0, sent: 0 }); // second 25 has just begun
  expect(s.last_second.sent).toBe(5);
  expect(s.last_minute.sent).toBe(45); // only the 9 complete seconds kept
  expect(s.last_minute.rl).toBe(1);
  expect(s.runs[0]).toMatchObject({ id: "a", done: 125, finished: false });
  stats.endedAt = clock.now();
  expect(monitor.snapshot().runs[0]).toMatchObject({ id: "a", finished: true, ok: 125 });
  quota.close();
});
