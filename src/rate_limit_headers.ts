/**
 * OpenAI-style rate-limit headers (`x-ratelimit-*`), read on every answer so the rate can drop
 * before the provider starts answering 429.
 * @module
 */

/** What the provider said about its remaining quota. Limits are per minute. */
export interface RateLimitInfo {
  limitRequests?: number;
  remainingRequests?: number;
  /** Time until the request budget is fully restored, ms. */
  resetRequestsMs?: number;
  limitTokens?: number;
  remainingTokens?: number;
  /** Time until the token budget is fully restored, ms. */
  resetTokensMs?: number;
}

/**
 * Parses OpenAI's reset durations: `"1s"`, `"6m0s"`, `"350ms"`, `"1m30.5s"`, `"2h3m"`; a bare
 * number is seconds. Undefined when unparseable.
 */
export function parseResetDuration(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined) return undefined;
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  let rest = t;
  const part = /^(\d+(?:\.\d+)?)(ms|h|m|s)/;
  if (rest === "") return undefined;
  while (rest !== "") {
    const m = part.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

function num(headers: Headers, name: string): number | undefined {
  const v = headers.get(name);
  if (v === null || v.trim() === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Reads `x-ratelimit-*` headers; undefined when the response carries none. */
export function parseRateLimitHeaders(headers: Headers): RateLimitInfo | undefined {
  const info: RateLimitInfo = {
    limitRequests: num(headers, "x-ratelimit-limit-requests"),
    remainingRequests: num(headers, "x-ratelimit-remaining-requests"),
    resetRequestsMs: parseResetDuration(headers.get("x-ratelimit-reset-requests")),
    limitTokens: num(headers, "x-ratelimit-limit-tokens"),
    remainingTokens: num(headers, "x-ratelimit-remaining-tokens"),
    resetTokensMs: parseResetDuration(headers.get("x-ratelimit-reset-tokens")),
  };
  return Object.values(info).some((v) => v !== undefined) ? info : undefined;
}
