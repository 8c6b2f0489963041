/**
 * What a provider's token 429 says about its token quota: OpenAI's message states the limit, the
 * usage and what the refused request was charged; Gemini names its input-token quota.
 * @module
 */
import type { FailureInfo } from "./errors.ts";
import { parseResetDuration } from "./rate_limit_headers.ts";

/** A token quota 429, read by {@linkcode parseTokenLimit}. */
export interface TokenLimitHit {
  /** The token quota's limit in its own window, when stated. */
  limit?: number;
  /** Tokens the provider counted in the window when it refused, when stated. */
  used?: number;
  /** Tokens the provider charged the refused request (its own estimate), when stated. */
  requested?: number;
  /** The wait the message names ("Please try again in 1.8s"), ms. */
  retryAfterMs?: number;
  /** True for a quota that counts input tokens only (Gemini's input tokens per minute). */
  inputOnly: boolean;
}

const NUMBER = String.raw`(\d[\d,]*)`;
const num = (text: string | undefined): number | undefined =>
  text === undefined ? undefined : Number(text.replace(/,/g, ""));

/**
 * Reads a token 429: OpenAI's "Rate limit reached … on tokens per min (TPM): Limit 30000, Used
 * 29500, Requested 900. Please try again in 1.8s.", or a Gemini QuotaFailure naming an input-token
 * quota (`GenerateContentInputTokensPerModelPerMinute`, metric `…input_token_count`).
 *
 * @returns What the provider stated, or undefined when the failure is not about a token quota.
 * @example
 * ```ts
 * import { parseTokenLimit } from "./token_limit.ts";
 * parseTokenLimit({
 *   status: 429,
 *   code: "rate_limit_exceeded",
 *   retryable: true,
 *   message: "Rate limit reached for m on tokens per min (TPM): Limit 30000, Used 29500, " +
 *     "Requested 900. Please try again in 1.8s.",
 * }); // { limit: 30000, used: 29500, requested: 900, retryAfterMs: 1800, inputOnly: false }
 * ```
 */
export function parseTokenLimit(info: FailureInfo): TokenLimitHit | undefined {
  if (info.status !== 429) return undefined;
  const message = info.message;
  if (info.quotaId !== undefined && /input_?tokens?/i.test(info.quotaId)) {
    // The limit on the input-token metric's line: a 429 naming several quotas lists each metric
    // with its own limit (the first may be the requests').
    const limit = /input_token\w*,\s*limit:\s*(\d+)/i.exec(message);
    return { limit: num(limit?.[1]), inputOnly: true, retryAfterMs: info.retryAfterMs };
  }
  if (!/\btokens?\b|\bTPM\b/i.test(message)) return undefined;
  const stated = new RegExp(
    String.raw`Limit ${NUMBER}(?:, Used ${NUMBER})?, Requested ${NUMBER}`,
    "i",
  ).exec(message);
  if (!stated) return undefined;
  const wait = /try again in ([\d.hms]+?)\.?(?:\s|$)/i.exec(message);
  return {
    limit: num(stated[1]),
    used: num(stated[2]),
    requested: num(stated[3]),
    retryAfterMs: wait ? parseResetDuration(wait[1]) : info.retryAfterMs,
    inputOnly: false,
  };
}
