/**
 * The mock provider's options: the public option types and their normalising (defaults,
 * validation), done once so the rest of the mock sees one {@link NormalizedOptions}.
 * @module
 */

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

// ---------------------------------------------------------------------------------------------
// Options

export interface NormalizedOptions {
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

export function normalizeOptions(opts: MockProviderOptions = {}): NormalizedOptions {
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
