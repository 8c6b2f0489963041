/**
 * A fake LLM provider speaking the OpenAI (Chat Completions, Responses) and Gemini
 * (`generateContent`) wire formats, with planned faults, for tests and benchmarks.
 *
 * The HTTP handling is a runtime-agnostic Hono app ({@link createMockApp}); {@link startMockProvider}
 * serves it with `Bun.serve` or `Deno.serve` on 127.0.0.1. Faults are planned per request by
 * `[[mock:...]]` directives in the last user message (see the README table in this file's JSDoc
 * of {@link createMockApp}), or at random with a seeded PRNG via `failureRate`.
 *
 * CLI: `bun scripts/start_mock_provider.ts [--port N] [--hostname H] [--latency MS] [--jitter MS]
 * [--failure-rate F] [--failure-status S] [--seed N] [--require-key K] [--no-record]
 * [--quota-requests N [--quota-window MS] [--quota-kind sliding|fixed] [--quota-retry-after S]
 * [--quota-detail one|many|none]] [--daily-quota N] [--token-quota N [--token-window MS]
 * [--token-count prompt|request|input] [--token-headers]] [--models A,B] [--failure-retry-after S]`
 * prints `{"url":"http://127.0.0.1:PORT"}` and serves until SIGTERM/SIGINT. Quotas (provider
 * 429s with retry hints and `x-ratelimit-*` headers) are described at {@link createMockApp}.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import process from "node:process";
import { parseArgs } from "node:util";
import { startServer } from "../../src/adapter/listen.ts";
import { mulberry32 } from "../../src/_prng.ts";
import {
  type Api,
  modelRefusal,
  REAL_ANSWERS,
  realBody,
  type RealName,
  type RealOutcome,
  realStatus,
} from "./_mock_real.ts";

/** Options of {@link startMockProvider} and {@link createMockApp}. */
export interface MockProviderOptions {
  /**
   * TCP port; 0 picks a free one. Ignored by {@link createMockApp}.
   * @default 0
   */
  port?: number;
  /**
   * Interface to listen on. Ignored by {@link createMockApp}.
   * @default "127.0.0.1"
   */
  hostname?: string;
  /**
   * Base latency of every provider request, in ms, applied before answering (errors too).
   * @default 0
   */
  latencyMs?: number;
  /**
   * Adds a uniform random `[0, latencyJitterMs)` ms to the base latency (seeded PRNG).
   * @default 0
   */
  latencyJitterMs?: number;
  /**
   * Fraction of requests without directives answered with `failureStatus`, drawn from a seeded
   * PRNG in arrival order.
   * @default 0
   */
  failureRate?: number;
  /**
   * Status of the random failures of `failureRate` (400..599).
   * @default 500
   */
  failureStatus?: number;
  /**
   * Seed of the PRNGs behind `failureRate` and `latencyJitterMs`.
   * @default 1
   */
  seed?: number;
  /**
   * When set, requests whose API key differs get 401 in the provider's error shape. OpenAI reads
   * `Authorization: Bearer K`; Gemini reads `x-goog-api-key` or `?key=`.
   * @default undefined (no check)
   */
  requireKey?: string;
  /**
   * Keep every {@link Arrival} and {@link TokenAcceptance}. Stats and quotas work either way;
   * turn this off for very long runs.
   * @default true
   */
  recordArrivals?: boolean;
  /**
   * Sliding-window request quota: a request arriving while the last `windowMs` ms already hold
   * `requests` accepted requests gets 429 at once (no latency), with the time until the oldest
   * of them leaves the window (see {@link createMockApp} for the 429 shapes). With
   * `windowMs: 60000`, OpenAI answers (2xx and 429) carry `x-ratelimit-*-requests` headers.
   * @default undefined (no request quota)
   */
  quota?: RequestQuota;
  /**
   * Requests per "day": after this many accepted requests (since start or the last reset),
   * every request gets 429 with a one-hour retry hint.
   * @default undefined (no daily quota)
   */
  dailyQuota?: number;
  /**
   * Sliding-window token quota over accepted requests' cost: prompt tokens (`ceil(chars / 4)`)
   * plus the request's max tokens, {@link DEFAULT_MAX_TOKENS} when it names none. With
   * `windowMs: 60000`, OpenAI answers (2xx and 429) carry `x-ratelimit-*-tokens` headers.
   * @default undefined (no token quota)
   */
  tokenQuota?: TokenQuota;
  /**
   * The models the mock knows; any other gets the provider's real 404 (OpenAI
   * `model_not_found`, Gemini `NOT_FOUND`), as a misconfigured run would.
   * @default undefined (every model is known)
   */
  knownModels?: string[];
  /**
   * issue 17: `Retry-After` seconds on the random failures of `failureRate`.
   * @default undefined (no header)
   */
  failureRetryAfterS?: number;
}

/** A sliding-window request quota, see {@link MockProviderOptions.quota}. */
export interface RequestQuota {
  /** Accepted requests allowed in any window (an integer >= 1). */
  requests: number;
  /**
   * Window length in ms.
   * @default 1000
   */
  windowMs?: number;
  // --- issue 17: real 429 patterns ----------------------------------------------------------
  /**
   * `sliding`: any `windowMs` span holds at most `requests`; `fixed`: windows `[k·windowMs,
   * (k+1)·windowMs)` from the mock's start each hold at most `requests`, and a 429's hint is the
   * time to the window's end (as Gemini's per-minute quotas answer).
   * @default "sliding"
   */
  kind?: "sliding" | "fixed";
  /**
   * A fixed hint in seconds on every quota 429, instead of the exact time: OpenAI `retry-after`
   * only (no `retry-after-ms`), Gemini `RetryInfo`. Real sliding quotas answer 1-2 s this way.
   * @default undefined (the exact time)
   */
  retryAfterS?: number;
  /**
   * What a quota 429 says about the quota: `one` QuotaFailure violation (Gemini) and `Limit L,
   * Used U` (OpenAI); `many`: three violations (per-minute requests, per-minute tokens,
   * per-minute requests per user); `none`: no QuotaFailure and, for OpenAI, a message without
   * the numbers.
   * @default "one"
   */
  detail?: "one" | "many" | "none";
  // --- end issue 17 -------------------------------------------------------------------------
}

/** A sliding-window token quota, see {@link MockProviderOptions.tokenQuota}. */
export interface TokenQuota {
  /** Tokens allowed in any window (an integer >= 1). */
  tokens: number;
  /**
   * Window length in ms.
   * @default 60000
   */
  windowMs?: number;
  /**
   * What a request is charged at admission:
   * - `"prompt"`: prompt tokens (`ceil(chars / 4)` of the prompt text) plus max tokens.
   * - `"request"`: OpenAI's way, `ceil(bytes / 4)` of the whole request body (message overhead,
   *   roles, every other field) plus max tokens; the answer's usage still counts only the prompt
   *   text, so usage is lower than the charge, as at OpenAI.
   * - `"input"`: Gemini's input-tokens-per-minute quota, the prompt tokens only (the count the
   *   answer's `promptTokenCount` reports).
   * @default "prompt"
   */
  count?: TokenCount;
  /**
   * Send `x-ratelimit-{limit,remaining,reset}-tokens` on OpenAI answers (2xx and 429) whatever
   * the window: limit per minute (`tokens × 60000 / windowMs`), remaining = what fits in the
   * window now, reset = until the oldest charge leaves it.
   * @default windowMs === 60000
   */
  headers?: boolean;
}

/** How the token quota charges a request, see {@link TokenQuota.count}. */
export type TokenCount = "prompt" | "request" | "input";

/**
 * Output tokens a request is charged for by the token quota when it names no max tokens
 * (`max_completion_tokens`, `max_tokens`, `max_output_tokens`, Gemini
 * `generationConfig.maxOutputTokens`). Also the answer's length cap in that case.
 */
export const DEFAULT_MAX_TOKENS = 256;

/** One request accepted under the token quota's accounting, from {@link MockProvider.tokensAccepted}. */
export interface TokenAcceptance {
  /**
   * When the token quota accepted it, in ms since the mock was created: after its body was
   * read, so a little later than its {@link Arrival.t}. The quota's windows use this time.
   */
  t: number;
  /** Its cost: prompt tokens plus max tokens. */
  tokens: number;
  /** The `x-mft-id` request header, or null when absent. */
  id: string | null;
}

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

/** One provider request as the mock saw it. */
export interface Arrival {
  /** Arrival time in ms since the mock was created (`performance.now()` based). */
  t: number;
  /** Request path without the query, e.g. `/v1/chat/completions`. */
  path: string;
  /** The `x-mft-id` request header, or null when absent. */
  id: string | null;
  /**
   * Status the mock answered (or will answer, once the latency has passed); 0 for a planned
   * connection reset; -1 for the few microseconds while the body is still being read.
   */
  status: number;
}

/** Arrival statistics of a mock. */
export interface MockStats {
  /** Number of provider requests since start or the last reset. */
  count: number;
  /** Most arrivals in any sliding window `[t, t + 1000)` ms. */
  maxPerWindow: number;
  /** Time of the first arrival (ms since start), 0 when none. */
  firstMs: number;
  /** Time of the last arrival (ms since start), 0 when none. */
  lastMs: number;
  /**
   * Mean arrival rate in requests/s: `(count - 1) / ((lastMs - firstMs) / 1000)`; 0 with fewer
   * than two arrivals or when they all share one timestamp (keeps the JSON finite).
   */
  rate: number;
  /** Requests answered (or to be answered) 2xx: the ones every quota counts. */
  accepted: number;
  /**
   * Mean rate of the accepted requests in requests/s, between the first and the last accepted
   * arrival, computed like `rate`.
   */
  acceptedRate: number;
  /** Requests answered 429, for any cause: quotas, directives or `failureRate`. */
  rejected429: number;
}

/** A running mock provider, from {@link startMockProvider}. */
export interface MockProvider {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:43123`. */
  url: string;
  /** Copies of the recorded arrivals, in arrival order. */
  arrivals(): Arrival[];
  /** Current arrival statistics. */
  stats(): MockStats;
  /** Current quota usage (as `GET /__mock/quota`). */
  quota(): QuotaSnapshot;
  /**
   * Copies of the accepted requests' token costs, in acceptance order, to check token windows
   * with. Empty with `recordArrivals: false`.
   */
  tokensAccepted(): TokenAcceptance[];
  /**
   * Clears arrivals, stats, quota usage and per-request attempt counters (the PRNGs keep their
   * state).
   */
  reset(): void;
  /** Stops listening, closes open connections and cancels pending latency timers. */
  close(): Promise<void>;
}

/**
 * Most values of sorted `times` that fit in one window `[t, t + windowMs)`.
 *
 * Two points exactly `windowMs` apart fall in separate windows.
 *
 * @param times Non-decreasing times in ms.
 * @param windowMs Window length in ms.
 * @returns The maximum count, 0 for an empty array.
 * @throws {RangeError} When `windowMs` is not a positive finite number.
 *
 * @example
 * ```ts
 * maxPerWindow([0, 500, 999, 1000]); // 3
 * ```
 */
export function maxPerWindow(times: readonly number[], windowMs = 1000): number {
  if (!(windowMs > 0) || !Number.isFinite(windowMs)) {
    throw new RangeError(
      `Cannot count arrivals as 'windowMs' must be a positive finite number: current value is ${windowMs}`,
    );
  }
  let best = 0;
  let i = 0;
  for (let j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= windowMs) i++;
    if (j - i + 1 > best) best = j - i + 1;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Options

interface NormalizedOptions {
  port: number;
  hostname: string;
  latencyMs: number;
  latencyJitterMs: number;
  failureRate: number;
  failureStatus: number;
  seed: number;
  requireKey: string | undefined;
  recordArrivals: boolean;
  quota: (Required<Omit<RequestQuota, "retryAfterS">> & { retryAfterS?: number }) | undefined;
  dailyQuota: number | undefined;
  tokenQuota: Required<TokenQuota> | undefined;
  knownModels: string[] | undefined;
  failureRetryAfterS: number | undefined;
}

function normalizeOptions(opts: MockProviderOptions = {}): NormalizedOptions {
  for (const name of ["quota", "tokenQuota"] as const) {
    const value: unknown = opts[name];
    if (value !== undefined && (typeof value !== "object" || value === null)) {
      throw new TypeError(`Expected '${name}' to be an object: current value is ${value}`);
    }
  }
  const o: NormalizedOptions = {
    port: opts.port ?? 0,
    hostname: opts.hostname ?? "127.0.0.1",
    latencyMs: opts.latencyMs ?? 0,
    latencyJitterMs: opts.latencyJitterMs ?? 0,
    failureRate: opts.failureRate ?? 0,
    failureStatus: opts.failureStatus ?? 500,
    seed: opts.seed ?? 1,
    requireKey: opts.requireKey,
    recordArrivals: opts.recordArrivals ?? true,
    quota: opts.quota === undefined ? undefined : {
      requests: opts.quota.requests,
      windowMs: opts.quota.windowMs ?? 1000,
      kind: opts.quota.kind ?? "sliding",
      retryAfterS: opts.quota.retryAfterS,
      detail: opts.quota.detail ?? "one",
    },
    dailyQuota: opts.dailyQuota,
    tokenQuota: opts.tokenQuota === undefined ? undefined : {
      tokens: opts.tokenQuota.tokens,
      windowMs: opts.tokenQuota.windowMs ?? 60_000,
      count: opts.tokenQuota.count ?? "prompt",
      headers: opts.tokenQuota.headers ?? (opts.tokenQuota.windowMs ?? 60_000) === 60_000,
    },
    knownModels: opts.knownModels,
    failureRetryAfterS: opts.failureRetryAfterS,
  };
  const fail = (name: string, want: string, value: unknown): never => {
    throw new RangeError(
      `Cannot start the mock provider as '${name}' must be ${want}: current value is ${value}`,
    );
  };
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    fail("port", "an integer in 0..65535", o.port);
  }
  if (typeof o.hostname !== "string" || o.hostname === "") {
    throw new TypeError(
      `Expected 'hostname' to be a non-empty string: current value is ${o.hostname}`,
    );
  }
  if (!Number.isFinite(o.latencyMs) || o.latencyMs < 0) {
    fail("latencyMs", "a finite number >= 0", o.latencyMs);
  }
  if (!Number.isFinite(o.latencyJitterMs) || o.latencyJitterMs < 0) {
    fail("latencyJitterMs", "a finite number >= 0", o.latencyJitterMs);
  }
  if (!(o.failureRate >= 0 && o.failureRate <= 1)) {
    fail("failureRate", "a number in [0, 1]", o.failureRate);
  }
  if (!Number.isInteger(o.failureStatus) || o.failureStatus < 400 || o.failureStatus > 599) {
    fail("failureStatus", "an integer in 400..599", o.failureStatus);
  }
  if (!Number.isInteger(o.seed)) fail("seed", "an integer", o.seed);
  if (o.requireKey !== undefined && typeof o.requireKey !== "string") {
    throw new TypeError(`Expected 'requireKey' to be a string: current value is ${o.requireKey}`);
  }
  if (o.quota !== undefined) {
    if (!Number.isInteger(o.quota.requests) || o.quota.requests < 1) {
      fail("quota.requests", "an integer >= 1", o.quota.requests);
    }
    if (!Number.isFinite(o.quota.windowMs) || o.quota.windowMs <= 0) {
      fail("quota.windowMs", "a finite number > 0", o.quota.windowMs);
    }
    if (o.quota.kind !== "sliding" && o.quota.kind !== "fixed") {
      fail("quota.kind", '"sliding" or "fixed"', o.quota.kind);
    }
    const r = o.quota.retryAfterS;
    if (r !== undefined && !(Number.isFinite(r) && r > 0)) {
      fail("quota.retryAfterS", "a finite number > 0", r);
    }
    if (!["one", "many", "none"].includes(o.quota.detail)) {
      fail("quota.detail", '"one", "many" or "none"', o.quota.detail);
    }
  }
  const fr = o.failureRetryAfterS;
  if (fr !== undefined && !(Number.isFinite(fr) && fr >= 0)) {
    fail("failureRetryAfterS", "a finite number >= 0", fr);
  }
  if (o.dailyQuota !== undefined && (!Number.isInteger(o.dailyQuota) || o.dailyQuota < 0)) {
    fail("dailyQuota", "an integer >= 0", o.dailyQuota);
  }
  if (o.tokenQuota !== undefined) {
    if (!Number.isInteger(o.tokenQuota.tokens) || o.tokenQuota.tokens < 1) {
      fail("tokenQuota.tokens", "an integer >= 1", o.tokenQuota.tokens);
    }
    if (!Number.isFinite(o.tokenQuota.windowMs) || o.tokenQuota.windowMs <= 0) {
      fail("tokenQuota.windowMs", "a finite number > 0", o.tokenQuota.windowMs);
    }
    if (!["prompt", "request", "input"].includes(o.tokenQuota.count)) {
      fail("tokenQuota.count", '"prompt", "request" or "input"', o.tokenQuota.count);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// State

/**
 * Incremental sliding-window counter, so stats stay O(1) per request and work even with
 * `recordArrivals: false` (benchmarks send hundreds of thousands of requests).
 */
class ArrivalWindow {
  #times: number[] = [];
  #head = 0;
  count = 0;
  first = 0;
  last = 0;
  max = 0;
  accepted = 0;
  acceptedFirst = 0;
  acceptedLast = 0;
  rejected429 = 0;

  add(t: number): void {
    if (this.count === 0) this.first = t;
    this.count++;
    this.last = t;
    this.#times.push(t);
    while (t - this.#times[this.#head] >= 1000) this.#head++;
    const inWindow = this.#times.length - this.#head;
    if (inWindow > this.max) this.max = inWindow;
    // Drop the consumed prefix now and then instead of shifting on every request.
    if (this.#head > 4096 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Counts the answer to the arrival at `t`, once its status is known. */
  answered(status: number, t: number): void {
    if (status === 429) this.rejected429++;
    if (status < 200 || status > 299) return;
    // Answers are decided after the body is read, so accepted arrivals may come out of order.
    if (this.accepted === 0 || t < this.acceptedFirst) this.acceptedFirst = t;
    if (this.accepted === 0 || t > this.acceptedLast) this.acceptedLast = t;
    this.accepted++;
  }

  stats(): MockStats {
    return {
      count: this.count,
      maxPerWindow: this.max,
      firstMs: this.first,
      lastMs: this.last,
      rate: meanRate(this.count, this.last - this.first),
      accepted: this.accepted,
      acceptedRate: meanRate(this.accepted, this.acceptedLast - this.acceptedFirst),
      rejected429: this.rejected429,
    };
  }
}

function meanRate(count: number, spanMs: number): number {
  return count > 1 && spanMs > 0 ? (count - 1) / (spanMs / 1000) : 0;
}

/** A request's place in a {@link RequestWindow}; `live` until it leaves or is released. */
interface Slot {
  t: number;
  live: boolean;
}

/**
 * The request quota's window: times of accepted requests, and of requests that will be
 * accepted unless their body or plan says otherwise (released then).
 *
 * Slots are taken in the arrival's own tick, so they are in time order and the accepted
 * arrivals never exceed the quota in any `[t, t + windowMs)` window ({@link maxPerWindow}).
 */
class RequestWindow {
  #slots: Slot[] = [];
  #head = 0;
  /** Live slots in the window (as of the last prune). */
  count = 0;

  constructor(readonly windowMs: number) {}

  /** Drops the slots that left the window by `now`, and released ones at the head. */
  prune(now: number): void {
    const slots = this.#slots;
    while (this.#head < slots.length) {
      const slot = slots[this.#head];
      if (slot.live && now - slot.t < this.windowMs) break;
      if (slot.live) {
        slot.live = false;
        this.count--;
      }
      this.#head++;
    }
    if (this.#head > 4096 && this.#head * 2 > slots.length) {
      this.#slots = slots.slice(this.#head);
      this.#head = 0;
    }
  }

  take(t: number): Slot {
    const slot = { t, live: true };
    this.#slots.push(slot);
    this.count++;
    return slot;
  }

  release(slot: Slot): void {
    if (!slot.live) return;
    slot.live = false;
    this.count--;
  }

  /** Ms until the oldest slot leaves the window, 0 when empty; call after prune(now). */
  untilOldestLeaves(now: number): number {
    const oldest = this.#slots[this.#head];
    return oldest ? oldest.t + this.windowMs - now : 0;
  }
}

// --- issue 17: fixed windows ------------------------------------------------------------------

/**
 * A fixed-window request quota: windows `[k·windowMs, (k+1)·windowMs)` from the mock's start.
 * Same interface as {@link RequestWindow}; `untilOldestLeaves` is the time to the window's end.
 */
class FixedWindow {
  #start = 0;
  count = 0;

  constructor(readonly windowMs: number) {}

  prune(now: number): void {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    if (start !== this.#start) {
      this.#start = start;
      this.count = 0;
    }
  }

  take(t: number): Slot {
    this.count++;
    return { t, live: true };
  }

  release(slot: Slot): void {
    if (!slot.live) return;
    slot.live = false;
    if (slot.t >= this.#start) this.count--;
  }

  untilOldestLeaves(now: number): number {
    return this.#start + this.windowMs - now;
  }
}

// --- end issue 17 ------------------------------------------------------------------------------

/** The token quota's window: accepted requests' costs by acceptance time. */
class TokenWindow {
  #entries: { t: number; tokens: number }[] = [];
  #head = 0;
  /** Tokens in the window (as of the last prune). */
  sum = 0;

  constructor(readonly windowMs: number) {}

  prune(now: number): void {
    const entries = this.#entries;
    while (this.#head < entries.length && now - entries[this.#head].t >= this.windowMs) {
      this.sum -= entries[this.#head].tokens;
      this.#head++;
    }
    if (this.#head > 4096 && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
  }

  add(t: number, tokens: number): void {
    this.#entries.push({ t, tokens });
    this.sum += tokens;
  }

  /**
   * Ms until `cost` more tokens fit under `limit`: 0 when they fit now, Infinity when they
   * never will. Call after prune(now).
   */
  waitFor(now: number, cost: number, limit: number): number {
    if (cost > limit) return Infinity;
    let excess = this.sum + cost - limit;
    if (excess <= 0) return 0;
    const entries = this.#entries;
    for (let i = this.#head; i < entries.length; i++) {
      excess -= entries[i].tokens;
      if (excess <= 0) return entries[i].t + this.windowMs - now;
    }
    return Infinity; // unreachable: the whole window holds `sum` tokens
  }

  /** Ms until the oldest entry leaves the window, 0 when empty; call after prune(now). */
  untilOldestLeaves(now: number): number {
    const oldest = this.#entries[this.#head];
    return oldest ? oldest.t + this.windowMs - now : 0;
  }
}

/** Quota usage; replaced as a whole by reset(), so requests in flight settle on their own. */
interface QuotaState {
  requests: RequestWindow | FixedWindow;
  tokens: TokenWindow;
  /** Daily quota count: accepted requests plus those holding a slot. */
  dailyUsed: number;
  log: TokenAcceptance[];
}

function createQuotaState(opts: NormalizedOptions): QuotaState {
  return {
    requests: opts.quota?.kind === "fixed"
      ? new FixedWindow(opts.quota.windowMs)
      : new RequestWindow(opts.quota?.windowMs ?? 1000),
    tokens: new TokenWindow(opts.tokenQuota?.windowMs ?? 60_000),
    dailyUsed: 0,
    log: [],
  };
}

function quotaSnapshot(state: MockState): QuotaSnapshot {
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

interface MockState {
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
type Host = "app" | "bun" | "deno";

function createState(opts: NormalizedOptions, host: Host): MockState {
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

function resetState(state: MockState): void {
  state.arrivals = [];
  state.window = new ArrivalWindow();
  state.quota = createQuotaState(state.opts);
  state.attempts.clear();
}

/** Waits with a timer (never busy-waits); ends early on client abort or close(). */
function sleep(state: MockState, ms: number, signal: AbortSignal | undefined): Promise<void> {
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

function wakeAll(state: MockState): void {
  for (const wake of [...state.sleepers]) wake();
}

// ---------------------------------------------------------------------------------------------
// Directives

/** What the mock does with one request. */
type Outcome =
  | { kind: "ok" }
  | { kind: "error"; status: number; quota?: boolean; message: string }
  | { kind: "reset" }
  | { kind: "badjson" }
  | RealOutcome;

type Action = number | "reset" | "badjson" | "insufficient_quota" | RealName;

interface Directives {
  count: number;
  /** Outcome directives in text order; `upTo` limits them to the first attempts (fail=K). */
  actions: { action: Action; upTo: number }[];
  latencyMs?: number;
  retryAfter?: string;
  retryAfterMs?: string;
  retryDelay?: string;
  unknown?: string;
}

const DIRECTIVE = /\[\[mock:([^\]]*)\]\]/g;
const NUMBER = /^\d+(\.\d+)?$/;

function parseAction(s: string): Action | undefined {
  if (s === "reset" || s === "badjson" || s === "insufficient_quota") return s;
  if ((REAL_ANSWERS as readonly string[]).includes(s)) return s as RealName;
  if (/^\d{3}$/.test(s)) {
    const status = Number(s);
    if (status >= 400 && status <= 599) return status;
  }
  return undefined;
}

function parseDirectives(text: string): Directives {
  const d: Directives = { count: 0, actions: [] };
  if (!text.includes("[[mock:")) return d;
  for (const m of text.matchAll(DIRECTIVE)) {
    d.count++;
    const body = m[1].trim();
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? "" : body.slice(eq + 1);
    const action = eq < 0 ? parseAction(body) : undefined;
    if (action !== undefined) {
      d.actions.push({ action, upTo: Infinity });
    } else if (name === "fail" && /^\d+:/.test(value)) {
      const colon = value.indexOf(":");
      const failAction = parseAction(value.slice(colon + 1));
      if (failAction === undefined) d.unknown ??= m[0];
      else d.actions.push({ action: failAction, upTo: Number(value.slice(0, colon)) });
    } else if (name === "latency" && NUMBER.test(value)) {
      d.latencyMs = Number(value);
    } else if (name === "retry-after" && NUMBER.test(value)) {
      d.retryAfter = value;
    } else if (name === "retry-after-ms" && NUMBER.test(value)) {
      d.retryAfterMs = value;
    } else if (name === "retry-delay" && NUMBER.test(value)) {
      d.retryDelay = value;
    } else {
      d.unknown ??= m[0];
    }
  }
  return d;
}

function actionOutcome(action: Action, why: string): Outcome {
  if (action === "reset") return { kind: "reset" };
  if (action === "badjson") return { kind: "badjson" };
  if (typeof action === "string" && action !== "insufficient_quota") {
    return { kind: "real", name: action };
  }
  if (action === "insufficient_quota") {
    return {
      kind: "error",
      status: 429,
      quota: true,
      message: "You exceeded your current quota, please check your plan and billing details.",
    };
  }
  return { kind: "error", status: action, message: `mock: planned ${action} (${why})` };
}

// ---------------------------------------------------------------------------------------------
// Wire formats

interface Extracted {
  model: string;
  /** Text of the last user message: source of the answer and of the directives. */
  userText: string;
  /** Characters of all prompt text, for the prompt token count. */
  promptChars: number;
  /** The request's max output tokens, undefined when it names none. */
  maxTokens: number | undefined;
}

interface ErrorExtra {
  /** OpenAI `insufficient_quota` rather than a rate limit. */
  quota?: boolean;
  /** OpenAI error `type` of a 429, `requests` by default. */
  type?: string;
  /** Gemini `RetryInfo.retryDelay` in seconds, without the unit. */
  retryDelay?: string;
  /** Gemini details before the RetryInfo, e.g. a QuotaFailure. */
  details?: unknown[];
}

interface Dialect {
  /** Error body in the provider's shape. */
  error(status: number, message: string, extra: ErrorExtra): unknown;
  /** Body of a successful answer; `cut` when the text was cut at the max tokens. */
  ok(model: string, text: string, p: number, c: number, id: string, cut: boolean): unknown;
  /** Truncated JSON of the `badjson` fault. */
  badJson: string;
  /** Reads the parsed body; returns an error message for a request the provider would reject. */
  extract(body: unknown, pathModel: string): Extracted | string;
  /** API key the client sent. */
  key(c: Context): string | undefined;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Text of an OpenAI content value: a string or an array of `{type:"text"|"input_text", text}`. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const texts: string[] = [];
  for (const part of content) {
    if (isObject(part) && typeof part.text === "string") texts.push(part.text);
  }
  return texts.join("\n");
}

/**
 * Reads the first max-tokens field present (null counts as absent).
 * @returns The value, undefined when none is present, or an error message for a bad value.
 */
function readMaxTokens(fields: [string, unknown][]): number | undefined | string {
  for (const [name, value] of fields) {
    if (value === undefined || value === null) continue;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      return `Invalid '${name}': expected an integer >= 1, got ${JSON.stringify(value)}.`;
    }
    return value;
  }
  return undefined;
}

function openAiError(status: number, message: string, extra: ErrorExtra): unknown {
  let type = status >= 500 ? "server_error" : "invalid_request_error";
  let code: string | null = null;
  if (status === 401) code = "invalid_api_key";
  if (status === 429) {
    type = extra.quota ? "insufficient_quota" : extra.type ?? "requests";
    code = extra.quota ? "insufficient_quota" : "rate_limit_exceeded";
  }
  return { error: { message, type, param: null, code } };
}

function bearer(c: Context): string | undefined {
  const auth = c.req.header("authorization");
  return auth?.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
}

const openAiChat: Dialect = {
  error: openAiError,
  ok: (model, text, p, c, id, cut) => ({
    id: `chatcmpl-${id}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{
      index: 0,
      message: { role: "assistant", content: text },
      finish_reason: cut ? "length" : "stop",
    }],
    usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
  }),
  badJson: '{"choices": [',
  extract(body) {
    if (!isObject(body)) return "The request body must be a JSON object.";
    if (typeof body.model !== "string" || body.model === "") {
      return "you must provide a model parameter";
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return "'messages' must be a non-empty array.";
    }
    const maxTokens = readMaxTokens([
      ["max_completion_tokens", body.max_completion_tokens],
      ["max_tokens", body.max_tokens],
    ]);
    if (typeof maxTokens === "string") return maxTokens;
    let userText = "";
    let promptChars = 0;
    for (const m of body.messages) {
      if (!isObject(m)) continue;
      const text = contentText(m.content);
      promptChars += text.length;
      if (m.role === "user") userText = text;
    }
    return { model: body.model, userText, promptChars, maxTokens };
  },
  key: bearer,
};

const openAiResponses: Dialect = {
  error: openAiError,
  ok: (model, text, p, c, id, cut) => ({
    id: `resp_${id}`,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status: cut ? "incomplete" : "completed",
    ...(cut ? { incomplete_details: { reason: "max_output_tokens" } } : {}),
    model,
    output: [{
      type: "message",
      id: `msg_${id}`,
      status: cut ? "incomplete" : "completed",
      role: "assistant",
      content: [{ type: "output_text", text, annotations: [] }],
    }],
    output_text: text,
    usage: { input_tokens: p, output_tokens: c, total_tokens: p + c },
  }),
  badJson: '{"output": [',
  extract(body) {
    if (!isObject(body)) return "The request body must be a JSON object.";
    if (typeof body.model !== "string" || body.model === "") {
      return "you must provide a model parameter";
    }
    const maxTokens = readMaxTokens([["max_output_tokens", body.max_output_tokens]]);
    if (typeof maxTokens === "string") return maxTokens;
    // `instructions` is the system prompt of this API, so it counts as prompt text.
    let promptChars = typeof body.instructions === "string" ? body.instructions.length : 0;
    let userText = "";
    if (typeof body.input === "string") {
      userText = body.input;
      promptChars += userText.length;
    } else if (Array.isArray(body.input)) {
      for (const item of body.input) {
        if (!isObject(item)) continue;
        const text = contentText(item.content);
        promptChars += text.length;
        if (item.role === "user") userText = text;
      }
    } else {
      return "'input' must be a string or an array.";
    }
    return { model: body.model, userText, promptChars, maxTokens };
  },
  key: bearer,
};

const GEMINI_STATUS: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  408: "DEADLINE_EXCEEDED",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

function partsText(content: unknown): string {
  return isObject(content) ? contentText(content.parts) : "";
}

const gemini: Dialect = {
  error(status, message, extra) {
    const details: unknown[] = [];
    if (status === 401) {
      details.push({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "API_KEY_INVALID",
        domain: "googleapis.com",
      });
    }
    if (extra.details) details.push(...extra.details);
    if (extra.retryDelay !== undefined) {
      details.push({
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        retryDelay: `${extra.retryDelay}s`,
      });
    }
    return {
      error: { code: status, message, status: GEMINI_STATUS[status] ?? "UNKNOWN", details },
    };
  },
  ok: (model, text, p, c, id, cut) => ({
    candidates: [{
      content: { role: "model", parts: [{ text }] },
      finishReason: cut ? "MAX_TOKENS" : "STOP",
      index: 0,
    }],
    usageMetadata: { promptTokenCount: p, candidatesTokenCount: c, totalTokenCount: p + c },
    modelVersion: model,
    responseId: id,
  }),
  badJson: '{"candidates": [',
  extract(body, pathModel) {
    if (!isObject(body)) return "Invalid JSON payload received. Expected an object.";
    if (!Array.isArray(body.contents) || body.contents.length === 0) {
      return "* GenerateContentRequest.contents: contents is not specified";
    }
    // The REST API accepts both spellings of every field.
    const config = body.generationConfig ?? body.generation_config;
    const maxTokens = isObject(config)
      ? readMaxTokens([
        ["generationConfig.maxOutputTokens", config.maxOutputTokens],
        ["generationConfig.max_output_tokens", config.max_output_tokens],
      ])
      : undefined;
    if (typeof maxTokens === "string") return maxTokens;
    const system = body.systemInstruction ?? body.system_instruction;
    let promptChars = partsText(system).length;
    let userText = "";
    for (const content of body.contents) {
      const text = partsText(content);
      promptChars += text.length;
      if (isObject(content) && (content.role === undefined || content.role === "user")) {
        userText = text;
      }
    }
    return { model: pathModel, userText, promptChars, maxTokens };
  },
  key: (c) => c.req.header("x-goog-api-key") ?? c.req.query("key"),
};

// ---------------------------------------------------------------------------------------------
// The app

const ANSWER_PREFIX = "mock answer: ";

/**
 * The `reset` fault. Neither Bun.serve nor Deno.serve lets a handler destroy its socket, so:
 *
 * - Bun: a body that errors before its first byte. Bun.serve then drops the TCP connection
 *   (RST) without a status line, so any client's fetch rejects (Bun: `ECONNRESET`, Deno/Node:
 *   `TypeError: fetch failed`). `error()` without a reason keeps Bun from logging every reset.
 * - In process (`app.request()`, `app.fetch`): the same body, erroring with a TypeError; the
 *   Response resolves and reading its body rejects.
 * - Deno.serve always sends the status line first, so the closest is a body that ends short of
 *   its `content-length`: the client's fetch resolves with 200 and reading the body rejects.
 *   An erroring stream would do the same but Deno logs it; the short body is silent.
 */
function resetResponse(host: Host): Response {
  if (host === "deno") {
    return new Response(
      new ReadableStream({
        start(controller) {
          controller.close();
        },
      }),
      { headers: { "content-type": "application/json", "content-length": "64" } },
    );
  }
  // In process there is no log to keep quiet, and a reason tells the reader what happened.
  const reason = host === "app" ? new TypeError("mock: connection reset") : undefined;
  return new Response(
    new ReadableStream({
      start(controller) {
        controller.error(reason);
      },
    }),
  );
}

interface Plan {
  outcome: Outcome;
  latencyMs: number;
  headers: Record<string, string>;
  retryDelay?: string;
}

/** Base latency plus jitter, for every provider request that has no latency directive. */
function baseLatency(state: MockState): number {
  const { latencyMs, latencyJitterMs } = state.opts;
  return latencyJitterMs > 0 ? latencyMs + state.jitterRng() * latencyJitterMs : latencyMs;
}

function plan(state: MockState, parsed: Extracted): Plan {
  const d = parseDirectives(parsed.userText);
  const { opts } = state;
  let latencyMs = baseLatency(state);
  const headers: Record<string, string> = {};
  if (d.count === 0) {
    // Only plain requests draw, so adding a directive test does not shift the random failures.
    if (opts.failureRate > 0 && state.failureRng() < opts.failureRate) {
      return {
        outcome: {
          kind: "error",
          status: opts.failureStatus,
          message: `mock: random failure (failureRate ${opts.failureRate})`,
        },
        latencyMs,
        headers: opts.failureRetryAfterS === undefined
          ? headers
          : { "retry-after": String(opts.failureRetryAfterS) },
      };
    }
    return { outcome: { kind: "ok" }, latencyMs, headers };
  }
  const key = `${parsed.model}\u0000${parsed.userText}`;
  const attempt = (state.attempts.get(key) ?? 0) + 1;
  state.attempts.set(key, attempt);
  if (d.latencyMs !== undefined) latencyMs = d.latencyMs;
  if (d.retryAfter !== undefined) headers["retry-after"] = d.retryAfter;
  if (d.retryAfterMs !== undefined) headers["retry-after-ms"] = d.retryAfterMs;
  let outcome: Outcome = { kind: "ok" };
  if (d.unknown !== undefined) {
    // A typo in a test should fail loudly rather than silently succeed.
    outcome = { kind: "error", status: 400, message: `mock: unknown directive ${d.unknown}` };
  } else {
    const hit = d.actions.find((a) => attempt <= a.upTo);
    if (hit) outcome = actionOutcome(hit.action, `attempt ${attempt}`);
  }
  return { outcome, latencyMs, headers, retryDelay: d.retryDelay };
}

function nextId(state: MockState): string {
  state.seq++;
  return `mock${state.start.toString(36).replace(".", "")}${state.seq.toString(36)}`;
}

function json(body: unknown, status: number, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

// ---------------------------------------------------------------------------------------------
// Quotas

/** Why a quota refused a request. */
interface QuotaRejection {
  kind: "requests" | "daily" | "tokens" | "too_large";
  limit: number;
  /** Window of the quota, ms (a day for `daily`). */
  windowMs: number;
  /** Usage in the window (or day) when refused. */
  used: number;
  /** What this request asked for: 1 request, or its tokens. */
  requested: number;
  /** Ms until it could be accepted (an integer >= 1); undefined for `too_large`. */
  retryMs?: number;
}

/** Retry hint of the daily quota: providers reset daily quotas at a fixed hour, not per call. */
const DAILY_RETRY_MS = 3_600_000;

/** Places held at arrival in the quotas that need no body; released unless accepted. */
interface Hold {
  quota: QuotaState;
  slot: Slot;
}

const retryMsOf = (ms: number): number => Math.max(1, Math.ceil(ms));

/** Seconds with up to 3 decimals: 1500 -> "1.5", 26000 -> "26". */
const secondsText = (ms: number): string => String(Number((ms / 1000).toFixed(3)));

/**
 * Formats ms in OpenAI's `x-ratelimit-reset-*` duration format, rounded up to the ms.
 *
 * @param ms A duration in ms; 0 or less gives `"0s"`.
 * @returns e.g. `"350ms"`, `"1s"`, `"1m30.5s"`, `"6m0s"`, `"1h0m0s"`.
 *
 * @example
 * ```ts
 * formatResetDuration(90_500); // "1m30.5s"
 * formatResetDuration(349.2); // "350ms"
 * ```
 */
export function formatResetDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return "0s";
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const s = secondsText(total % 60_000);
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

/**
 * The daily and request quotas, decided in the arrival's own tick with `now` = its arrival time.
 * @returns The places held, or why the request is refused.
 */
function admit(state: MockState, quota: QuotaState, now: number): Hold | QuotaRejection {
  const { dailyQuota, quota: requestQuota } = state.opts;
  if (dailyQuota !== undefined && quota.dailyUsed >= dailyQuota) {
    return {
      kind: "daily",
      limit: dailyQuota,
      windowMs: 86_400_000,
      used: quota.dailyUsed,
      requested: 1,
      retryMs: DAILY_RETRY_MS,
    };
  }
  const window = quota.requests;
  window.prune(now);
  if (requestQuota !== undefined && window.count >= requestQuota.requests) {
    return {
      kind: "requests",
      limit: requestQuota.requests,
      windowMs: requestQuota.windowMs,
      used: window.count,
      requested: 1,
      retryMs: retryMsOf(window.untilOldestLeaves(now)),
    };
  }
  quota.dailyUsed++;
  return { quota, slot: window.take(now) };
}

function release(hold: Hold): void {
  hold.quota.requests.release(hold.slot);
  hold.quota.dailyUsed--;
}

/** What the token quota charges a request, see {@link TokenQuota.count}. */
function tokenCost(count: TokenCount, parsed: Extracted, bodyBytes: number): number {
  const output = parsed.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (count === "input") return Math.ceil(parsed.promptChars / 4);
  if (count === "request") return Math.ceil(bodyBytes / 4) + output;
  return Math.ceil(parsed.promptChars / 4) + output;
}

/** The token quota, decided once the body is read. */
function checkTokens(
  state: MockState,
  quota: QuotaState,
  now: number,
  cost: number,
): QuotaRejection | undefined {
  const window = quota.tokens;
  window.prune(now);
  const tokenQuota = state.opts.tokenQuota;
  if (tokenQuota === undefined) return undefined;
  const wait = window.waitFor(now, cost, tokenQuota.tokens);
  if (wait === 0) return undefined;
  return {
    kind: wait === Infinity ? "too_large" : "tokens",
    limit: tokenQuota.tokens,
    windowMs: tokenQuota.windowMs,
    used: window.sum,
    requested: cost,
    retryMs: wait === Infinity ? undefined : retryMsOf(wait),
  };
}

/** `x-ratelimit-*` headers of the quotas with a 60 s window (OpenAI's are per minute). */
function rateLimitHeaders(
  state: MockState,
  quota: QuotaState,
  now: number,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const { quota: requestQuota, tokenQuota } = state.opts;
  if (requestQuota?.windowMs === 60_000) {
    quota.requests.prune(now);
    headers["x-ratelimit-limit-requests"] = String(requestQuota.requests);
    headers["x-ratelimit-remaining-requests"] = String(
      Math.max(0, requestQuota.requests - quota.requests.count),
    );
    headers["x-ratelimit-reset-requests"] = formatResetDuration(
      quota.requests.untilOldestLeaves(now),
    );
  }
  if (tokenQuota?.headers) {
    quota.tokens.prune(now);
    headers["x-ratelimit-limit-tokens"] = String(
      Math.round((tokenQuota.tokens * 60_000) / tokenQuota.windowMs),
    );
    headers["x-ratelimit-remaining-tokens"] = String(
      Math.max(0, tokenQuota.tokens - quota.tokens.sum),
    );
    headers["x-ratelimit-reset-tokens"] = formatResetDuration(quota.tokens.untilOldestLeaves(now));
  }
  return headers;
}

const GEMINI_QUOTA: Record<QuotaRejection["kind"], { quotaMetric: string; quotaId: string }> = {
  requests: {
    quotaMetric: "generativelanguage.googleapis.com/generate_content_requests",
    quotaId: "GenerateRequestsPerMinutePerProjectPerModel",
  },
  daily: {
    quotaMetric: "generativelanguage.googleapis.com/generate_content_requests",
    quotaId: "GenerateRequestsPerDayPerProjectPerModel",
  },
  tokens: {
    quotaMetric: "generativelanguage.googleapis.com/generate_content_input_token_count",
    quotaId: "GenerateContentInputTokensPerModelPerMinute",
  },
  too_large: {
    quotaMetric: "generativelanguage.googleapis.com/generate_content_input_token_count",
    quotaId: "GenerateContentInputTokensPerModelPerMinute",
  },
};

/** `requests per min (RPM)`, `tokens per min (TPM)`, `requests per day (RPD)`, or the window. */
function quotaScope(r: QuotaRejection): string {
  const what = r.kind === "requests" || r.kind === "daily" ? "requests" : "tokens";
  if (r.kind === "daily") return "requests per day (RPD)";
  if (r.windowMs === 60_000) return `${what} per min (${what === "requests" ? "RPM" : "TPM"})`;
  return `${what} per ${formatResetDuration(r.windowMs)} (mock window)`;
}

/** The 429 of a quota, answered at once (no latency: real providers refuse fast). */
function quotaResponse(
  dialect: Dialect,
  r: QuotaRejection,
  model: string,
  headers: Record<string, string>,
  pattern?: QuotaPattern,
): Response {
  if (pattern && r.kind === "requests") return patternResponse(dialect, r, model, headers, pattern);
  const retry = r.retryMs === undefined ? "" : formatResetDuration(r.retryMs);
  if (dialect === gemini) {
    const violation = GEMINI_QUOTA[r.kind];
    const message = r.kind === "too_large"
      ? `The request's ${r.requested} tokens exceed the quota of ${r.limit} tokens per ` +
        `${formatResetDuration(r.windowMs)} for ${violation.quotaMetric}, model: ${model}.`
      : "You exceeded your current quota, please check your plan and billing details. For more " +
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits." +
        `\n* Quota exceeded for metric: ${violation.quotaMetric}, limit: ${r.limit}, ` +
        `model: ${model}\nPlease retry in ${retry}.`;
    const details = [{
      "@type": "type.googleapis.com/google.rpc.QuotaFailure",
      violations: [violation],
    }];
    const retryDelay = r.retryMs === undefined ? undefined : secondsText(r.retryMs);
    return json(gemini.error(429, message, { details, retryDelay }), 429, headers);
  }
  const h = { ...headers };
  if (r.retryMs !== undefined) {
    if (r.kind !== "daily") h["retry-after-ms"] = String(r.retryMs);
    h["retry-after"] = String(Math.ceil(r.retryMs / 1000));
  }
  const forModel = model === "" ? "" : ` for ${model}`;
  const where = `${forModel} in organization org-mock on ${quotaScope(r)}`;
  const message = r.kind === "too_large"
    ? `Request too large${where}: Limit ${r.limit}, Requested ${r.requested}. The input or ` +
      "output tokens must be reduced in order to run successfully. Visit " +
      "https://platform.openai.com/account/rate-limits to learn more."
    : `Rate limit reached${where}: Limit ${r.limit}, Used ${r.used}, Requested ${r.requested}. ` +
      `Please try again in ${retry}. Visit https://platform.openai.com/account/rate-limits to ` +
      "learn more.";
  const type = r.kind === "tokens" || r.kind === "too_large" ? "tokens" : "requests";
  return json(openAiError(429, message, { type }), 429, h);
}

// --- issue 17: the request quota's 429 patterns -------------------------------------------------

/** How the request quota's 429s look, from {@link RequestQuota}. */
interface QuotaPattern {
  retryAfterS?: number;
  detail: "one" | "many" | "none";
}

/** The pattern of the request quota, or undefined for the default 429 (one violation, exact hint). */
function quotaPattern(opts: NormalizedOptions): QuotaPattern | undefined {
  const q = opts.quota;
  if (!q || (q.retryAfterS === undefined && q.detail === "one")) return undefined;
  return { retryAfterS: q.retryAfterS, detail: q.detail };
}

/** A request-quota 429 with a coarse hint and/or several violations or none. */
function patternResponse(
  dialect: Dialect,
  r: QuotaRejection,
  model: string,
  headers: Record<string, string>,
  pattern: QuotaPattern,
): Response {
  const retryMs = pattern.retryAfterS !== undefined ? pattern.retryAfterS * 1000 : r.retryMs!;
  const retry = formatResetDuration(retryMs);
  if (dialect === gemini) {
    const violations = pattern.detail === "many"
      ? [
        GEMINI_QUOTA.tokens,
        GEMINI_QUOTA.requests,
        {
          quotaMetric: "generativelanguage.googleapis.com/generate_content_requests",
          quotaId: "GenerateRequestsPerMinutePerUserPerModel",
        },
      ]
      : [GEMINI_QUOTA.requests];
    const details = pattern.detail === "none"
      ? []
      : [{ "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations }];
    const message = pattern.detail === "none"
      ? "Resource has been exhausted (e.g. check quota)."
      : `You exceeded your current quota.\n* Quota exceeded for metric: ${GEMINI_QUOTA.requests.quotaMetric}, limit: ${r.limit}, model: ${model}\nPlease retry in ${retry}.`;
    return json(
      gemini.error(429, message, { details, retryDelay: secondsText(retryMs) }),
      429,
      headers,
    );
  }
  const h = { ...headers };
  if (pattern.retryAfterS !== undefined) h["retry-after"] = String(pattern.retryAfterS);
  else {
    h["retry-after-ms"] = String(retryMs);
    h["retry-after"] = String(Math.ceil(retryMs / 1000));
  }
  const message = pattern.detail === "none"
    ? "Rate limit reached. Please try again later."
    : `Rate limit reached for ${model} in organization org-mock on ${
      quotaScope(r)
    }: Limit ${r.limit}, ` +
      `Used ${r.used}, Requested ${r.requested}. Please try again in ${retry}.`;
  return json(openAiError(429, message, { type: "requests" }), 429, h);
}

// --- end issue 17 ------------------------------------------------------------------------------

/** The mock answer, cut to `maxTokens * 4` characters (our 4 characters per token). */
function answerText(userText: string, maxTokens: number): { text: string; cut: boolean } {
  const text = ANSWER_PREFIX + userText.slice(0, 200);
  const maxChars = maxTokens * 4;
  if (text.length <= maxChars) return { text, cut: false };
  let end = maxChars;
  // Keep a surrogate pair whole rather than end on half of it.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return { text: text.slice(0, end), cut: true };
}

function statusOf(outcome: Outcome, api: Api): number {
  if (outcome.kind === "real") return realStatus(api, outcome.name);
  return outcome.kind === "reset" ? 0 : outcome.kind === "error" ? outcome.status : 200;
}

function apiOf(dialect: Dialect): Api {
  return dialect === gemini
    ? "gemini"
    : dialect === openAiChat
    ? "openai-chat"
    : "openai-responses";
}

async function handle(
  state: MockState,
  dialect: Dialect,
  c: Context,
  pathModel = "",
): Promise<Response> {
  const arrival: Arrival = {
    t: performance.now() - state.start,
    path: c.req.path,
    id: c.req.header("x-mft-id") ?? null,
    status: -1,
  };
  // Recorded before the body is read so that arrivals stay sorted by t.
  if (state.opts.recordArrivals) state.arrivals.push(arrival);
  // Captured, like the quota state below, so that a reset() mid-request leaves the new ones be.
  const stats = state.window;
  stats.add(arrival.t);
  const settle = (status: number) => {
    arrival.status = status;
    stats.answered(status, arrival.t);
  };

  const id = nextId(state);
  const openAi = dialect !== gemini;
  const baseHeaders: Record<string, string> = openAi ? { "x-request-id": id } : {};
  let p: Plan;
  let parsed: Extracted | undefined;
  /** `x-ratelimit-*` as of the decision, for OpenAI 2xx and 429 answers. */
  let limitHeaders: Record<string, string> = {};
  const { requireKey } = state.opts;
  if (requireKey !== undefined && dialect.key(c) !== requireKey && dialect === gemini) {
    // Gemini's real answer to a bad key is a 400 with ErrorInfo API_KEY_INVALID, not a 401.
    p = { outcome: { kind: "real", name: "bad_key" }, latencyMs: baseLatency(state), headers: {} };
  } else if (requireKey !== undefined && dialect.key(c) !== requireKey) {
    p = {
      outcome: {
        kind: "error",
        status: 401,
        message: dialect === gemini
          ? "API key not valid. Please pass a valid API key."
          : "Incorrect API key provided.",
      },
      latencyMs: baseLatency(state),
      headers: {},
    };
  } else {
    // The quotas that need no body are decided now, in the arrival's tick: see RequestWindow.
    const quota = state.quota;
    const hold = admit(state, quota, arrival.t);
    if (!("slot" in hold)) {
      settle(429);
      const rl = openAi ? rateLimitHeaders(state, quota, arrival.t) : {};
      return quotaResponse(
        dialect,
        hold,
        pathModel,
        { ...baseHeaders, ...rl },
        quotaPattern(state.opts),
      );
    }
    let body: unknown;
    let bad: string | undefined;
    let bodyBytes = 0;
    try {
      const raw = await c.req.text();
      bodyBytes = new TextEncoder().encode(raw).length;
      body = JSON.parse(raw);
    } catch (e) {
      bad = `We could not parse the JSON body of your request. (${(e as Error).message})`;
    }
    if (bad === undefined) {
      const x = dialect.extract(body, pathModel);
      if (typeof x === "string") bad = x;
      else parsed = x;
    }
    if (parsed === undefined) {
      release(hold);
      p = {
        outcome: { kind: "error", status: 400, message: bad! },
        latencyMs: baseLatency(state),
        headers: {},
      };
    } else {
      const now = performance.now() - state.start;
      const cost = tokenCost(state.opts.tokenQuota?.count ?? "prompt", parsed, bodyBytes);
      const refused = checkTokens(state, quota, now, cost);
      if (refused) {
        release(hold);
        settle(429);
        const rl = openAi ? rateLimitHeaders(state, quota, now) : {};
        return quotaResponse(dialect, refused, parsed.model, { ...baseHeaders, ...rl });
      }
      // Only now, so that a refused request is not an attempt and draws no random failure.
      const refusal = modelRefusal(apiOf(dialect), parsed.model, body, state.opts.knownModels);
      p = refusal
        ? { outcome: refusal, latencyMs: baseLatency(state), headers: {} }
        : plan(state, parsed);
      if (statusOf(p.outcome, apiOf(dialect)) === 200) {
        quota.tokens.add(now, cost);
        if (state.opts.recordArrivals) quota.log.push({ t: now, tokens: cost, id: arrival.id });
      } else {
        release(hold);
      }
      if (openAi) limitHeaders = rateLimitHeaders(state, quota, now);
    }
  }

  const { outcome } = p;
  settle(statusOf(outcome, apiOf(dialect)));
  // Deno.serve (legacy mode) aborts request.signal on every successful response and warns when
  // it is used, so there the timers are only ended by their own expiry or by close().
  await sleep(state, p.latencyMs, state.host === "deno" ? undefined : c.req.raw.signal);

  switch (outcome.kind) {
    case "reset":
      return resetResponse(state.host);
    case "real": {
      const body = realBody(apiOf(dialect), outcome, {
        model: parsed?.model || pathModel,
        id,
        promptTokens: Math.ceil((parsed?.promptChars ?? 0) / 4),
        maxTokens: parsed?.maxTokens ?? DEFAULT_MAX_TOKENS,
      });
      return json(body, realStatus(apiOf(dialect), outcome.name), {
        ...baseHeaders,
        ...limitHeaders,
      });
    }
    case "badjson":
      return new Response(dialect.badJson, {
        status: 200,
        headers: { "content-type": "application/json", ...baseHeaders, ...limitHeaders },
      });
    case "error":
      return json(
        dialect.error(outcome.status, outcome.message, {
          quota: outcome.quota,
          retryDelay: p.retryDelay,
        }),
        outcome.status,
        { ...baseHeaders, ...(outcome.status === 429 ? limitHeaders : {}), ...p.headers },
      );
    case "ok": {
      const { model, userText, promptChars, maxTokens } = parsed!;
      const { text, cut } = answerText(userText, maxTokens ?? DEFAULT_MAX_TOKENS);
      const body = dialect.ok(
        model,
        text,
        Math.ceil(promptChars / 4),
        Math.ceil(text.length / 4),
        id,
        cut,
      );
      return json(body, 200, { ...baseHeaders, ...limitHeaders });
    }
  }
}

function buildMock(
  options: MockProviderOptions | undefined,
  host: Host,
): { app: Hono; state: MockState } {
  const state = createState(normalizeOptions(options), host);
  const app = new Hono();

  app.post("/v1/chat/completions", (c) => handle(state, openAiChat, c));
  app.post("/v1/responses", (c) => handle(state, openAiResponses, c));
  // Gemini puts the method after a colon (`models/gemini-2.0-flash:generateContent`), which
  // Hono's `:param` syntax cannot split, so one greedy param takes both and we split ourselves.
  app.post("/:version{v1beta|v1}/models/:modelAction{.+}", (c) => {
    const modelAction = c.req.param("modelAction");
    const colon = modelAction.lastIndexOf(":");
    if (colon < 0 || modelAction.slice(colon + 1) !== "generateContent") {
      return json(
        gemini.error(404, `mock: no such method ${c.req.path}`, {}),
        404,
        {},
      );
    }
    return handle(state, gemini, c, modelAction.slice(0, colon));
  });

  app.get("/__mock/arrivals", (c) => c.json({ arrivals: state.arrivals }));
  app.get("/__mock/stats", (c) => c.json(state.window.stats()));
  app.get("/__mock/quota", (c) => c.json(quotaSnapshot(state)));
  app.get("/__mock/tokens", (c) => c.json({ tokens: state.quota.log }));
  app.post("/__mock/reset", (c) => {
    resetState(state);
    return c.json({ ok: true });
  });

  app.notFound((c) => {
    const message = `mock: no route for ${c.req.method} ${c.req.path}`;
    return c.req.path.startsWith("/v1beta/")
      ? json(gemini.error(404, message, {}), 404, {})
      : json(openAiError(404, message, {}), 404, {});
  });
  app.onError((err) => json(openAiError(500, `mock: internal error: ${err.message}`, {}), 500, {}));
  return { app, state };
}

/**
 * The mock's Hono app, for `app.request()` tests without a socket.
 *
 * Routes: `POST /v1/chat/completions`, `POST /v1/responses`,
 * `POST /v1beta/models/{model}:generateContent` (also `/v1/models/...`), and the control routes
 * `GET /__mock/arrivals`, `GET /__mock/stats`, `GET /__mock/quota` ({@link QuotaSnapshot}),
 * `GET /__mock/tokens` (`{tokens: TokenAcceptance[]}`), `POST /__mock/reset`.
 *
 * Directives in the last user message text, any number of them:
 *
 * | directive | effect |
 * |---|---|
 * | `[[mock:NNN]]` (400..599) | always that status, e.g. 429, 500, 503, 400, 401, 408, 409 |
 * | `[[mock:insufficient_quota]]` | 429 with OpenAI `code`/`type` `insufficient_quota` |
 * | `[[mock:reset]]` | connection dropped without a response (arrival status 0) |
 * | `[[mock:badjson]]` | 200 with truncated JSON |
 * | `[[mock:fail=K:X]]` | the first K attempts do X (status, `reset`, `badjson`, `insufficient_quota`), then succeed |
 * | `[[mock:latency=MS]]` | this request's latency, replacing base latency and jitter |
 * | `[[mock:retry-after=S]]` / `[[mock:retry-after-ms=N]]` | `Retry-After` / `retry-after-ms` headers on errors |
 * | `[[mock:retry-delay=N]]` | Gemini `RetryInfo` detail `retryDelay: "Ns"` on errors |
 * | `[[mock:blocked]]` | 200 without text: Gemini `promptFeedback.blockReason: SAFETY`, no candidates; OpenAI `finish_reason: content_filter` |
 * | `[[mock:safety]]` | 200 without text: Gemini candidate `finishReason: SAFETY`, no content; OpenAI `content_filter` |
 * | `[[mock:thought_cutoff]]` | 200 without text: Gemini `MAX_TOKENS` with no parts (thinking spent the budget); OpenAI `""` with `finish_reason: length` |
 * | `[[mock:refusal]]` | 200 without text: OpenAI `content: null` with `refusal` (Responses: a `refusal` part); Gemini `SAFETY` |
 * | `[[mock:empty]]` | 200 without text and no reason: Gemini `STOP` with no parts, OpenAI `""` with `stop` |
 * | `[[mock:model_not_found]]` | OpenAI 404 `model_not_found`, Gemini 404 `NOT_FOUND` |
 * | `[[mock:bad_key]]` | OpenAI 401 `invalid_api_key`, Gemini 400 `INVALID_ARGUMENT` with `ErrorInfo` `API_KEY_INVALID` |
 * | `[[mock:service_disabled]]` | Gemini 403 `PERMISSION_DENIED` `SERVICE_DISABLED`; OpenAI 403 project without access |
 * | `[[mock:daily_second]]` | 429, Gemini `QuotaFailure` with three violations, the per-day one second; OpenAI "requests per day (RPD)" |
 * | `[[mock:limit0]]` | 429, Gemini free tier `limit: 0`; OpenAI `insufficient_quota` |
 * | `[[mock:quota_no_detail]]` | 429 with no detail and no retry hint |
 *
 * Model checks, after the quotas: with `knownModels`, any other model gets the real 404. OpenAI
 * reasoning models (`gpt-5*` but `gpt-5*-chat*`, `o1`, `o3`, `o4`…) on chat completions answer
 * `max_tokens` with 400 `unsupported_parameter` and a `temperature` or `top_p` other than 1 with
 * 400 `unsupported_value`, as OpenAI does.
 *
 * The attempt number counts arrivals with the same model and user text, from 1; requests
 * refused before their body is read (401 for the key, 400 for the JSON) do not count. Outcome
 * directives are tried in text order; the first that applies to this attempt wins. An unknown
 * directive answers 400, so a typo in a test fails loudly.
 *
 * Quotas (`quota`, `dailyQuota`, `tokenQuota`) count accepted requests: those answered 2xx (or
 * to be, once their latency has passed). Order of checks: API key (401), daily quota, request
 * quota (both before the body is read, at the arrival time), body (400), token quota, then
 * directives and `failureRate`; so a request a quota refuses is neither an attempt of
 * `fail=K` nor a random draw. Quota refusals are 429s answered at once, without latency, and
 * recorded as arrivals with status 429:
 *
 * - OpenAI: body `{"error": {"message": "Rate limit reached ... on requests per min (RPM): Limit
 *   L, Used U, Requested 1. Please try again in 350ms. ...", "type": "requests", "param": null,
 *   "code": "rate_limit_exceeded"}}` (`type: "tokens"` and `tokens per min (TPM)` for the token
 *   quota, `requests per day (RPD)` for the daily one; `per 1s (mock window)` when a window is
 *   not 60 s), headers `retry-after-ms: <ms until it would be accepted, integer >= 1>` and
 *   `retry-after: <ceil seconds>`; the daily quota sends only `retry-after: 3600`.
 * - Gemini: `{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": ..., "details":
 *   [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric":
 *   "generativelanguage.googleapis.com/generate_content_requests", "quotaId":
 *   "GenerateRequestsPerMinutePerProjectPerModel"}]}, {"@type":
 *   "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.35s"}]}}`; quotaId
 *   `GenerateRequestsPerDayPerProjectPerModel` (retryDelay `3600s`) for the daily quota,
 *   `GenerateContentInputTokensPerModelPerMinute` (metric `..._input_token_count`) for tokens.
 * - A request costing more tokens than the whole token quota can never pass: 429 `Request too
 *   large ...` (OpenAI `type: "tokens"`) without any retry header or RetryInfo.
 *
 * With a 60 s window, OpenAI 2xx and 429 answers also carry `x-ratelimit-limit-requests`,
 * `x-ratelimit-remaining-requests` (after this request) and `x-ratelimit-reset-requests` (time
 * until the oldest accepted request leaves the window, e.g. `59.65s`, `1m0s`, `350ms`), and the
 * same three `-tokens` headers for the token quota. A window holds the requests accepted in the
 * last `windowMs` ms; one accepted exactly `windowMs` ago has left it (as in
 * {@link maxPerWindow}). Answers honour the max tokens: the text is cut to `4 × max tokens`
 * characters (`finish_reason: "length"`, Gemini `MAX_TOKENS`, Responses `incomplete`), so the
 * reported completion tokens never exceed them.
 *
 * @param options Fault and latency settings; `port` and `hostname` are ignored.
 * @returns A Hono app whose `fetch` serves the mock.
 * @throws {RangeError} On invalid options.
 *
 * @example
 * ```ts
 * const app = createMockApp();
 * const res = await app.request("/v1/chat/completions", {
 *   method: "POST",
 *   body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
 * });
 * (await res.json()).choices[0].message.content; // "mock answer: hi"
 * ```
 */
export function createMockApp(options?: MockProviderOptions): Hono {
  return buildMock(options, "app").app;
}

/**
 * Starts the mock provider on a real socket: `Bun.serve` under Bun, `Deno.serve` under Deno.
 *
 * @param options Port, latency and fault settings.
 * @returns The running mock; call `close()` when done.
 * @throws {RangeError} On invalid options.
 * @throws {Error} When neither Bun nor Deno runs this code.
 *
 * @example
 * ```ts
 * const mock = await startMockProvider({ latencyMs: 50 });
 * await fetch(`${mock.url}/v1/chat/completions`, { method: "POST", body: "{}" });
 * mock.stats().count; // 1
 * await mock.close();
 * ```
 */
export function startMockProvider(options?: MockProviderOptions): Promise<MockProvider> {
  // Option errors reject rather than throw.
  try {
    return serve(options);
  } catch (e) {
    return Promise.reject(e);
  }
}

async function serve(options: MockProviderOptions | undefined): Promise<MockProvider> {
  const runtime: Host | undefined = "Bun" in globalThis
    ? "bun"
    : "Deno" in globalThis
    ? "deno"
    : undefined;
  if (runtime === undefined) {
    throw new Error("Cannot start the mock provider: it needs Bun or Deno (globalThis.Bun/Deno)");
  }
  const { app, state } = buildMock(options, runtime);
  const { hostname, port } = state.opts;
  // startServer turns Bun's idle timeout off: a request waiting on its latency counts as idle,
  // and 30 s latencies must survive.
  const server = await startServer((req) => app.fetch(req), { hostname, port });
  // Bun drops open connections at once; Deno's shutdown waits for the (woken) handlers.
  const stop = () => server.close({ force: runtime === "bun" });

  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    arrivals: () => state.arrivals.map((a) => ({ ...a })),
    stats: () => state.window.stats(),
    quota: () => quotaSnapshot(state),
    tokensAccepted: () => state.quota.log.map((x) => ({ ...x })),
    reset: () => resetState(state),
    close() {
      closing ??= (async () => {
        // Wake sleepers first: Deno's shutdown waits for in-flight handlers to finish.
        wakeAll(state);
        await stop();
        wakeAll(state);
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CLI

function numberArg(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new TypeError(`Expected --${name} to be a number: current value is ${value}`);
  }
  return n;
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      hostname: { type: "string" },
      latency: { type: "string" },
      jitter: { type: "string" },
      "failure-rate": { type: "string" },
      "failure-status": { type: "string" },
      seed: { type: "string" },
      "require-key": { type: "string" },
      "no-record": { type: "boolean" },
      "quota-requests": { type: "string" },
      "quota-window": { type: "string" },
      "daily-quota": { type: "string" },
      "token-quota": { type: "string" },
      "token-window": { type: "string" },
      "token-count": { type: "string" },
      "token-headers": { type: "boolean" },
      models: { type: "string" },
      // issue 17: real 429 patterns
      "quota-kind": { type: "string" },
      "quota-retry-after": { type: "string" },
      "quota-detail": { type: "string" },
      "failure-retry-after": { type: "string" },
    },
    strict: true,
  });
  const quotaRequests = numberArg("quota-requests", values["quota-requests"]);
  const quotaWindow = numberArg("quota-window", values["quota-window"]);
  const tokenQuota = numberArg("token-quota", values["token-quota"]);
  const tokenWindow = numberArg("token-window", values["token-window"]);
  if (quotaWindow !== undefined && quotaRequests === undefined) {
    throw new TypeError("Cannot use --quota-window without --quota-requests");
  }
  if (tokenWindow !== undefined && tokenQuota === undefined) {
    throw new TypeError("Cannot use --token-window without --token-quota");
  }
  if (
    (values["token-count"] !== undefined || values["token-headers"]) && tokenQuota === undefined
  ) {
    throw new TypeError("Cannot use --token-count or --token-headers without --token-quota");
  }
  const mock = await startMockProvider({
    port: numberArg("port", values.port),
    hostname: values.hostname,
    latencyMs: numberArg("latency", values.latency),
    latencyJitterMs: numberArg("jitter", values.jitter),
    failureRate: numberArg("failure-rate", values["failure-rate"]),
    failureStatus: numberArg("failure-status", values["failure-status"]),
    seed: numberArg("seed", values.seed),
    requireKey: values["require-key"],
    recordArrivals: !values["no-record"],
    quota: quotaRequests === undefined ? undefined : {
      requests: quotaRequests,
      windowMs: quotaWindow,
      kind: values["quota-kind"] as RequestQuota["kind"],
      retryAfterS: numberArg("quota-retry-after", values["quota-retry-after"]),
      detail: values["quota-detail"] as RequestQuota["detail"],
    },
    dailyQuota: numberArg("daily-quota", values["daily-quota"]),
    tokenQuota: tokenQuota === undefined ? undefined : {
      tokens: tokenQuota,
      windowMs: tokenWindow,
      count: values["token-count"] as TokenCount | undefined,
      headers: values["token-headers"] || undefined,
    },
    knownModels: values.models?.split(","),
    failureRetryAfterS: numberArg("failure-retry-after", values["failure-retry-after"]),
  });
  console.log(JSON.stringify({ url: mock.url }));
  const shutdown = async () => {
    await mock.close();
    process.exit(0);
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

if (import.meta.main) {
  try {
    await main(process.argv.slice(2));
  } catch (e) {
    console.error(`mock_provider: ${(e as Error).message}`);
    process.exit(2);
  }
}
