/**
 * The server's live page: `GET /` is a small HTML page (no data in it), `GET /live` a stream of
 * Server-Sent Events with the quota's use now and over the last minutes, and each run's
 * progress. `/live` has the API's auth (bearer token when one is set); it sends no CORS header,
 * so a page from another origin can not read it. Web globals and Hono only: every runtime.
 * @module
 */
import { Hono, type MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { type Clock, systemClock } from "../clock.ts";
import type { Quota } from "../quota.ts";
import type { RunStats } from "../run.ts";
import type { RunObserver } from "../run_observer.ts";
import { apiError } from "./api_error.ts";
import { LIVE_PAGE } from "./live_page.ts";

/** Options for {@linkcode createLiveMonitor}. */
export interface LiveMonitorOptions {
  /** The app's quota: its rate in force, pauses and 429s. */
  quota: Quota;
  /** The API's token check (middleware); undefined when the app has no token (loopback only). */
  auth?: MiddlewareHandler;
  /** Provider and model, shown on the page. */
  provider?: { name: string; model: string };
  /** Time source. @default systemClock */
  clock?: Clock;
  /** Ends every open `/live` stream (the app shuts down). */
  signal?: AbortSignal;
  /** Seconds of history kept and sent. @default 300 */
  historySeconds?: number;
  /** Time between two events of a `/live` stream, ms. @default 1000 */
  intervalMs?: number;
  /** Finished runs kept on the page. @default 10 */
  finishedRuns?: number;
}

/** One second of the server's traffic, all runs together. */
export interface LiveSecond {
  /** Seconds before now (0 is the second in progress). */
  ago: number;
  sent: number;
  ok: number;
  failed: number;
  /** Quota 429s (absorbed by waiting). */
  rl: number;
  /** Attempts that failed and will be retried. */
  retry: number;
}

/** One run on the live page. */
export interface LiveRun {
  id: string;
  started_at: string;
  finished: boolean;
  read: number;
  done: number;
  ok: number;
  failed: number;
  invalid: number;
  in_flight: number;
  retrying: number;
  requests: number;
  rate_limited: number;
  tokens_in: number;
  tokens_out: number;
  unsent: number;
}

/** What each `/live` event carries (event name `snapshot`). */
export interface LiveSnapshot {
  provider?: string;
  model?: string;
  /** Rate in force now and the rate asked for, req/s. */
  rate: number;
  target: number | "auto";
  /** Ms the provider's last 429 still pauses sending, 0 when not paused. */
  paused_ms: number;
  /** Slots waited for by runs now. */
  queued: number;
  in_flight: number;
  /** Quota 429s and slow-downs since the server started. */
  rate_limited_total: number;
  slowdowns_total: number;
  /** Sums over the last complete second and the last 60 s. */
  last_second: Omit<LiveSecond, "ago">;
  last_minute: Omit<LiveSecond, "ago">;
  /** Oldest first; `historySeconds` entries, the second in progress last. */
  history: LiveSecond[];
  runs: LiveRun[];
}

/** The live page's routes and the observer each run reports to. */
export interface LiveMonitor {
  /** `GET /` and `GET /live`; mount with `app.route("/", monitor.app)`. */
  app: Hono;
  /** Pass as `RunOptions.observer` of every run. */
  observer: RunObserver;
  /** Shows a run from now on (its stats are read at each event; `endedAt` marks it finished). */
  track(run: TrackedRun): void;
  /** The data of one event, now. */
  snapshot(): LiveSnapshot;
}

/** A run as the page lists it. */
export interface TrackedRun {
  id: string;
  stats: RunStats;
  /** ISO 8601. */
  startedAt: string;
}

const empty = () => ({ sent: 0, ok: 0, failed: 0, rl: 0, retry: 0 });

/** Creates the live page of a server app. */
export function createLiveMonitor(options: LiveMonitorOptions): LiveMonitor {
  const { quota, clock = systemClock, auth, signal } = options;
  const keep = options.historySeconds ?? 300;
  const interval = options.intervalMs ?? 1000;
  const maxFinished = options.finishedRuns ?? 10;
  // A ring of per-second counters, by second on the clock: bounded whatever the traffic.
  const ring = Array.from({ length: keep }, () => ({ sec: -1, ...empty() }));
  const slot = (at: number) => {
    const sec = Math.floor(at / 1000);
    const s = ring[sec % keep];
    if (s.sec !== sec) Object.assign(s, { sec, ...empty() });
    return s;
  };
  const observer: RunObserver = (e) => {
    switch (e.type) {
      case "sent":
        slot(e.at).sent++;
        break;
      case "answered":
        slot(e.at).ok++;
        break;
      case "failed":
        slot(e.at).failed++;
        break;
      case "rate_limited":
        slot(e.at).rl++;
        break;
      case "retry":
        slot(e.at).retry++;
        break;
    }
  };

  // Runs in progress, and the last few finished ones (final stats) so a page sees how they ended.
  let running: TrackedRun[] = [];
  const finished: TrackedRun[] = [];
  const runView = (r: TrackedRun, done: boolean) => {
    const s = r.stats;
    return {
      id: r.id,
      started_at: r.startedAt,
      finished: done,
      read: s.read,
      done: s.ok + s.failed + s.invalid + s.skipped,
      ok: s.ok,
      failed: s.failed,
      invalid: s.invalid,
      in_flight: s.inFlight,
      retrying: s.retrying,
      requests: s.requests,
      rate_limited: s.rateLimited,
      tokens_in: s.tokensIn,
      tokens_out: s.tokensOut,
      unsent: s.unsent,
    };
  };

  function snapshot(): LiveSnapshot {
    const now = clock.now();
    const current = Math.floor(now / 1000);
    const history: LiveSecond[] = [];
    for (let ago = keep - 1; ago >= 0; ago--) {
      const sec = current - ago;
      const s = ring[((sec % keep) + keep) % keep];
      const c = s.sec === sec ? s : empty();
      history.push({ ago, sent: c.sent, ok: c.ok, failed: c.failed, rl: c.rl, retry: c.retry });
    }
    const sum = (from: LiveSecond[]) => {
      const t = empty();
      for (const h of from) {
        t.sent += h.sent;
        t.ok += h.ok;
        t.failed += h.failed;
        t.rl += h.rl;
        t.retry += h.retry;
      }
      return t;
    };
    for (const r of running.filter((r) => r.stats.endedAt !== undefined)) {
      finished.unshift(r);
      if (finished.length > maxFinished) finished.pop();
    }
    running = running.filter((r) => r.stats.endedAt === undefined);
    let inFlight = 0;
    for (const r of running) inFlight += r.stats.inFlight;
    const q = quota.stats;
    return {
      provider: options.provider?.name,
      model: options.provider?.model,
      rate: q.rate,
      target: q.configuredRate,
      paused_ms: q.pausedUntil === undefined ? 0 : Math.max(0, Math.round(q.pausedUntil - now)),
      queued: quota.scheduler.waiting,
      in_flight: inFlight,
      rate_limited_total: q.rateLimited,
      slowdowns_total: q.slowdowns,
      last_second: sum(history.slice(-2, -1)),
      last_minute: sum(history.slice(-61, -1)),
      history,
      runs: [
        ...running.map((r) => runView(r, false)),
        ...finished.map((r) => runView(r, true)),
      ],
    };
  }

  const app = new Hono();
  app.get("/", (c) => {
    c.header("content-security-policy", LIVE_PAGE.csp);
    c.header("x-frame-options", "DENY");
    c.header("x-content-type-options", "nosniff");
    c.header("cache-control", "no-store");
    c.header("referrer-policy", "no-referrer");
    return c.html(LIVE_PAGE.html);
  });
  if (auth) app.use("/live", auth);
  app.get("/live", (c) => {
    if (signal?.aborted) throw apiError(503, "shutting_down", "the server is shutting down");
    c.header("cache-control", "no-store");
    c.header("x-content-type-options", "nosniff");
    c.header("x-accel-buffering", "no");
    return streamSSE(c, async (stream) => {
      const stop = () => stream.abort();
      signal?.addEventListener("abort", stop, { once: true });
      try {
        let id = 0;
        while (!stream.aborted && !signal?.aborted) {
          await stream.writeSSE({
            event: "snapshot",
            id: String(++id),
            data: JSON.stringify(snapshot()),
          });
          await stream.sleep(interval);
        }
      } finally {
        signal?.removeEventListener("abort", stop);
      }
    });
  });
  return { app, observer, snapshot, track: (run) => void running.push(run) };
}
