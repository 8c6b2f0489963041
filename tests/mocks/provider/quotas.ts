/**
 * The mock provider's quotas (request window, daily, tokens): admission and the provider's
 * 429 answers, with their retry hints, `x-ratelimit-*` headers and real 429 patterns.
 * @module
 */
import { type Dialect, type Extracted, gemini, json, openAiError } from "./formats.ts";
import { DEFAULT_MAX_TOKENS, type NormalizedOptions, type TokenCount } from "./options.ts";
import type { MockState, QuotaState } from "./state.ts";
import type { Slot } from "./windows.ts";

// ---------------------------------------------------------------------------------------------
// Quotas

/** Why a quota refused a request. */
export interface QuotaRejection {
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
export const DAILY_RETRY_MS = 3_600_000;

/** Places held at arrival in the quotas that need no body; released unless accepted. */
export interface Hold {
  quota: QuotaState;
  slot: Slot;
}

export const retryMsOf = (ms: number): number => Math.max(1, Math.ceil(ms));

/** Seconds with up to 3 decimals: 1500 -> "1.5", 26000 -> "26". */
export const secondsText = (ms: number): string => String(Number((ms / 1000).toFixed(3)));

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
export function admit(state: MockState, quota: QuotaState, now: number): Hold | QuotaRejection {
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

export function release(hold: Hold): void {
  hold.quota.requests.release(hold.slot);
  hold.quota.dailyUsed--;
}

/** What the token quota charges a request, see {@link TokenQuota.count}. */
export function tokenCost(count: TokenCount, parsed: Extracted, bodyBytes: number): number {
  const output = parsed.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (count === "input") return Math.ceil(parsed.promptChars / 4);
  if (count === "request") return Math.ceil(bodyBytes / 4) + output;
  return Math.ceil(parsed.promptChars / 4) + output;
}

/** The token quota, decided once the body is read. */
export function checkTokens(
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
export function rateLimitHeaders(
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

export const GEMINI_QUOTA: Record<
  QuotaRejection["kind"],
  { quotaMetric: string; quotaId: string }
> = {
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
export function quotaScope(r: QuotaRejection): string {
  const what = r.kind === "requests" || r.kind === "daily" ? "requests" : "tokens";
  if (r.kind === "daily") return "requests per day (RPD)";
  if (r.windowMs === 60_000) return `${what} per min (${what === "requests" ? "RPM" : "TPM"})`;
  return `${what} per ${formatResetDuration(r.windowMs)} (mock window)`;
}

/** The 429 of a quota, answered at once (no latency: real providers refuse fast). */
export function quotaResponse(
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
export interface QuotaPattern {
  retryAfterS?: number;
  detail: "one" | "many" | "none";
}

/** The pattern of the request quota, or undefined for the default 429 (one violation, exact hint). */
export function quotaPattern(opts: NormalizedOptions): QuotaPattern | undefined {
  const q = opts.quota;
  if (!q || (q.retryAfterS === undefined && q.detail === "one")) return undefined;
  return { retryAfterS: q.retryAfterS, detail: q.detail };
}

/** A request-quota 429 with a coarse hint and/or several violations or none. */
export function patternResponse(
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
