/**
 * The mock provider's mutable state: quota usage, arrivals, fault attempts, pending latency
 * timers; created once per mock and replaced by reset().
 * @module
 */
import { mulberry32 } from "../../../src/_prng.ts";
import type { NormalizedOptions, TokenAcceptance } from "./options.ts";
import { type Arrival, ArrivalWindow, FixedWindow, RequestWindow, TokenWindow } from "./windows.ts";

/** Quota usage right now, from {@link MockProvider.quota} and `GET /__mock/quota`. */
export interface QuotaSnapshot {
  /** Accepted requests in the request window (also counted when no request quota is set). */
  requests_in_window: number;
  /** Accepted tokens in the token window (also counted when no token quota is set). */
  tokens_in_window: number;
  /** Accepted requests since start or the last reset, the daily quota's count. */
  daily_used: number;
  /** `quota.requests`, or null when unset. */
  requests_limit: number | null;
  /** Request window in ms (1000 when no request quota is set). */
  requests_window_ms: number;
  /** `tokenQuota.tokens`, or null when unset. */
  tokens_limit: number | null;
  /** Token window in ms (60000 when no token quota is set). */
  tokens_window_ms: number;
  /** `dailyQuota`, or null when unset. */
  daily_limit: number | null;
}

/** Quota usage; replaced as a whole by reset(), so requests in flight settle on their own. */
export interface QuotaState {
  requests: RequestWindow | FixedWindow;
  tokens: TokenWindow;
  /** Daily quota count: accepted requests plus those holding a slot. */
  dailyUsed: number;
  log: TokenAcceptance[];
}

export function createQuotaState(opts: NormalizedOptions): QuotaState {
  return {
    requests: opts.quota?.kind === "fixed"
      ? new FixedWindow(opts.quota.windowMs)
      : new RequestWindow(opts.quota?.windowMs ?? 1000),
    tokens: new TokenWindow(opts.tokenQuota?.windowMs ?? 60_000),
    dailyUsed: 0,
    log: [],
  };
}

export function quotaSnapshot(state: MockState): QuotaSnapshot {
  const { quota, opts } = state;
  const now = performance.now() - state.start;
  quota.requests.prune(now);
  quota.tokens.prune(now);
  return {
    requests_in_window: quota.requests.count,
    tokens_in_window: quota.tokens.sum,
    daily_used: quota.dailyUsed,
    requests_limit: opts.quota?.requests ?? null,
    requests_window_ms: quota.requests.windowMs,
    tokens_limit: opts.tokenQuota?.tokens ?? null,
    tokens_window_ms: quota.tokens.windowMs,
    daily_limit: opts.dailyQuota ?? null,
  };
}

export interface MockState {
  opts: NormalizedOptions;
  start: number;
  arrivals: Arrival[];
  window: ArrivalWindow;
  quota: QuotaState;
  /** Attempts per directive-bearing prompt; prompts without directives are not counted. */
  attempts: Map<string, number>;
  /** Wakers of pending latency timers, so close() can end them all at once. */
  sleepers: Set<() => void>;
  failureRng: () => number;
  jitterRng: () => number;
  seq: number;
  /** Which server runs the app; see {@link resetResponse} and {@link handle}. */
  host: Host;
}

/** `app`: in-process `app.request()`/`app.fetch` with no socket of ours. */
export type Host = "app" | "bun" | "deno";

export function createState(opts: NormalizedOptions, host: Host): MockState {
  return {
    opts,
    start: performance.now(),
    arrivals: [],
    window: new ArrivalWindow(),
    quota: createQuotaState(opts),
    attempts: new Map(),
    sleepers: new Set(),
    failureRng: mulberry32(opts.seed),
    // A separate stream so that turning jitter on does not change which requests fail.
    jitterRng: mulberry32(opts.seed ^ 0x5bd1e995),
    seq: 0,
    host,
  };
}

export function resetState(state: MockState): void {
  state.arrivals = [];
  state.window = new ArrivalWindow();
  state.quota = createQuotaState(state.opts);
  state.attempts.clear();
}

/** Waits with a timer (never busy-waits); ends early on client abort or close(). */
export function sleep(
  state: MockState,
  ms: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      state.sleepers.delete(wake);
      signal?.removeEventListener("abort", wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    state.sleepers.add(wake);
    signal?.addEventListener("abort", wake, { once: true });
  });
}

export function wakeAll(state: MockState): void {
  for (const wake of [...state.sleepers]) wake();
}
