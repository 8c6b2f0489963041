/**
 * The CLI's check that this runtime, on this machine, keeps up with the rate asked for: it watches
 * the event loop during the first seconds at full rate and warns once, with the rate the process
 * can hold, when the requests would reach the provider in clumps.
 * @module
 */
import process from "node:process";
import { LoopLag, type LoopLagStats } from "../loop_lag.ts";

/** Mean timer lateness (ms) past which the requests of late slots leave in clumps. */
export const LAG_MEAN_LIMIT_MS = 20;
/** Worst timer lateness (ms) allowed in the measuring window. */
export const LAG_MAX_LIMIT_MS = 250;

/** What the measuring window saw. */
export interface RateSample {
  /** Requests per second asked for. */
  rate: number;
  lag: LoopLagStats;
  /** CPU time this process used in the window, ms (all threads). */
  cpuMs: number;
  /** Requests sent in the window. */
  requests: number;
  /** True if lines were still waiting for a slot at the end (the input had not run out). */
  busy?: boolean;
  /** What else to try, after "Lower --rate-limit, or". @default {@linkcode runtimeAdvice}() */
  advice?: string;
}

/**
 * The V8 flag that caps Deno's young generation (MiB per semi-space): the CLI's relaunch under
 * `deno run -A` sets it through `DENO_V8_FLAGS`, and the warning names it where it could not
 * (README "Caps we found"; `scripts/compile` and deno.json's `compile:deno` build it in).
 */
export const DENO_YOUNG_GENERATION_CAP = "--max-semi-space-size=8";

/** True if V8 flags (`DENO_V8_FLAGS`' comma-separated text) already size the young generation. */
export function sizesYoungGeneration(flags: string | undefined): boolean {
  return /semi[-_]space/.test(flags ?? "");
}

/**
 * What to try on this runtime besides a lower rate: Bun, and on Deno, when V8's young generation
 * is not capped yet (no relaunch: permissions narrower than `-A`), the flag that caps it.
 */
export function runtimeAdvice(): string {
  const bun = "run it with Bun";
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno === undefined) return bun;
  let flags: string | undefined;
  try {
    // Asked first: reading a variable Deno was not allowed to read would prompt on a terminal.
    const query = { name: "env", variable: "DENO_V8_FLAGS" } as const;
    if (deno.permissions.querySync(query).state === "granted") flags = process.env.DENO_V8_FLAGS;
  } catch {
    flags = undefined; // not set by our relaunch either way (it needs every permission)
  }
  return sizesYoungGeneration(flags)
    ? bun
    : `start Deno with --v8-flags=${DENO_YOUNG_GENERATION_CAP}, or ${bun}`;
}

/** Share of the rate below which the sending itself fell behind (slots lost to stalls). */
export const SENT_SHARE_LIMIT = 0.98;

/**
 * The warning for a window in which the event loop could not keep up (timers late, or fewer
 * requests sent than the rate while lines were waiting), or undefined. The limit is
 * what one core gives at the CPU per request measured, with 20 % to spare; when that is above the
 * rate, the CPU per request is not the cause and the warning says the process was stalled.
 *
 * @example
 * ```ts
 * import { rateWarning } from "./rate_check.ts";
 * rateWarning({ rate: 1000, lag: { samples: 100, meanMs: 150, maxMs: 900, spanMs: 2000 }, cpuMs: 2600, requests: 2000 });
 * // → "this runtime is not keeping up with 1000 req/s here: …about 610 req/s…"
 * ```
 */
export function rateWarning(sample: RateSample): string | undefined {
  const { rate, lag, cpuMs, requests, busy = false, advice = runtimeAdvice() } = sample;
  if (lag.samples === 0 || lag.spanMs <= 0) return undefined;
  const sent = (requests * 1000) / lag.spanMs;
  const behind = busy && sent < SENT_SHARE_LIMIT * rate;
  if (!behind && lag.meanMs <= LAG_MEAN_LIMIT_MS && lag.maxMs <= LAG_MAX_LIMIT_MS) {
    return undefined;
  }
  const perRequest = requests > 0 ? cpuMs / requests : 0;
  const byCpu = perRequest > 0 ? Math.max(10, Math.floor((0.8 * 1000) / perRequest / 10) * 10) : 0;
  // What it managed to send is a measured limit too, when it fell behind.
  const limit = behind ? Math.min(byCpu || Infinity, Math.floor(sent / 10) * 10) : byCpu;
  return `this runtime is not keeping up with ${rate} req/s here: it sent ${Math.round(sent)} ` +
    `req/s and its timers ran ` +
    `${Math.round(lag.meanMs)} ms late on average (worst ${Math.round(lag.maxMs)} ms) over ` +
    `${(lag.spanMs / 1000).toFixed(1)} s, so requests reach the provider in clumps` +
    (limit > 0 && limit < rate
      ? `; at ${perRequest.toFixed(2)} ms of CPU per request it can hold about ` +
        `${limit} req/s on this machine`
      : "; the process was stalled (the machine busy, or garbage collection)") +
    `. Lower --rate-limit, or ${advice} (README "Caps we found")`;
}

/** Options for {@linkcode watchRate}. */
export interface WatchRateOptions {
  /** Requests per second asked for. */
  rate: number;
  /** The run's live counters: requests sent, lines read, skipped and invalid so far. */
  stats: { requests: number; retries: number; read: number; skipped: number; invalid: number };
  /** Told at most once. */
  warn: (message: string) => void;
  /** Length of the measuring window at full rate, ms. @default 2000 */
  windowMs?: number;
}

/**
 * Samples the event loop's lateness from the second request on (the first goes alone and waits for its answer) for
 * `windowMs`, then warns through `warn` if the loop fell behind. Returns a function that stops
 * the watch; nothing keeps the process alive.
 */
export function watchRate(options: WatchRateOptions): () => void {
  const { rate, stats, warn, windowMs = 2000 } = options;
  let started: { cpu: ReturnType<typeof process.cpuUsage>; requests: number } | undefined;
  const lag: LoopLag = new LoopLag({
    onSample: () => {
      if (!started) {
        if (stats.requests < 2) return;
        started = { cpu: process.cpuUsage(), requests: stats.requests };
        lag.reset();
        return;
      }
      const window = lag.stats;
      if (window.spanMs < windowMs) return;
      lag.stop();
      const cpu = process.cpuUsage(started.cpu);
      const message = rateWarning({
        rate,
        lag: window,
        cpuMs: (cpu.user + cpu.system) / 1000,
        requests: stats.requests - started.requests,
        // A line read but not sent yet: the run was waiting for a slot, not for its input.
        busy: stats.read - stats.skipped - stats.invalid > stats.requests - stats.retries,
      });
      if (message) warn(message);
    },
  });
  lag.start();
  return () => lag.stop();
}
