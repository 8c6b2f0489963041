import { expect, test } from "bun:test";
import { parseTokenLimit } from "../src/token_limit.ts";
import type { FailureInfo } from "../src/errors.ts";

const fail = (message: string, extra: Partial<FailureInfo> = {}): FailureInfo => ({
  status: 429,
  code: "rate_limit_exceeded",
  retryable: true,
  message,
  ...extra,
});

test("parseTokenLimit() reads OpenAI's limit, usage, charge and wait", () => {
  expect(parseTokenLimit(fail(
    "Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): " +
      "Limit 30000, Used 29500, Requested 900. Please try again in 1.8s. Visit https://…",
  ))).toEqual({ limit: 30000, used: 29500, requested: 900, retryAfterMs: 1800, inputOnly: false });
  expect(parseTokenLimit(fail(
    "Rate limit reached on tokens per min (TPM): Limit 200,000, Used 199,990, Requested 1,204. " +
      "Please try again in 361ms.",
  ))).toEqual({
    limit: 200_000,
    used: 199_990,
    requested: 1204,
    retryAfterMs: 361,
    inputOnly: false,
  });
});

test("parseTokenLimit() reads a request too large (no usage) and keeps the header's wait", () => {
  expect(parseTokenLimit(fail(
    "Request too large for m on tokens per min (TPM): Limit 1000, Requested 1200. The input…",
    { retryAfterMs: 500 },
  ))).toEqual({
    limit: 1000,
    used: undefined,
    requested: 1200,
    retryAfterMs: 500,
    inputOnly: false,
  });
});

test("parseTokenLimit() knows Gemini's input-token quota by its quotaId", () => {
  expect(parseTokenLimit(fail(
    "You exceeded your current quota…\n* Quota exceeded for metric: generativelanguage." +
      "googleapis.com/generate_content_input_token_count, limit: 30000, model: m\nPlease retry in 2s.",
    { quotaId: "GenerateContentInputTokensPerModelPerMinute", retryAfterMs: 2000 },
  ))).toEqual({ limit: 30000, retryAfterMs: 2000, inputOnly: true });
});

test("parseTokenLimit() takes a Gemini 429's input-token limit from that metric's line only", () => {
  // Several violations, the input-token quota first, the message naming the requests' limit: that
  // limit (20 requests) is no token limit.
  const requests = "* Quota exceeded for metric: generativelanguage.googleapis.com/" +
    "generate_content_requests, limit: 20, model: m\n";
  expect(parseTokenLimit(fail(
    `You exceeded your current quota.\n${requests}Please retry in 2s.`,
    { quotaId: "GenerateContentInputTokensPerModelPerMinute", retryAfterMs: 2000 },
  ))).toEqual({ limit: undefined, retryAfterMs: 2000, inputOnly: true });
  expect(parseTokenLimit(fail(
    `You exceeded your current quota.\n${requests}* Quota exceeded for metric: generativelanguage.` +
      "googleapis.com/generate_content_input_token_count, limit: 30000, model: m\nPlease retry in 2s.",
    { quotaId: "GenerateContentInputTokensPerModelPerMinute", retryAfterMs: 2000 },
  ))).toEqual({ limit: 30000, retryAfterMs: 2000, inputOnly: true });
});

test("parseTokenLimit() ignores request-rate 429s and other statuses", () => {
  expect(parseTokenLimit(fail(
    "Rate limit reached on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
  ))).toBeUndefined();
  expect(parseTokenLimit(fail("x", { quotaId: "GenerateRequestsPerMinutePerProjectPerModel" })))
    .toBeUndefined();
  expect(parseTokenLimit(fail("Limit 1, Used 1, Requested 5 tokens", { status: 500 })))
    .toBeUndefined();
});
