// Tests of src/rate_limit_headers.ts: OpenAI's reset durations and the x-ratelimit-* headers.
import { expect, test } from "bun:test";
import { parseRateLimitHeaders, parseResetDuration } from "../src/rate_limit_headers.ts";

const durations: [string, number][] = [
  ["1s", 1000],
  ["6m0s", 360_000],
  ["350ms", 350],
  ["1m30.5s", 90_500],
  ["2h3m4s", 7_384_000],
  ["2h3m", 7_380_000],
  ["1m5ms", 60_005],
  ["0.5s", 500],
  ["0s", 0],
  ["20", 20_000],
  ["1.5", 1500],
  [" 2s ", 2000],
];

for (const [text, ms] of durations) {
  test(`parseResetDuration() reads ${JSON.stringify(text)} as ${ms} ms`, () => {
    expect(parseResetDuration(text)).toBe(ms);
  });
}

for (const text of ["", "   ", "abc", "1x", "s", "1 s", "-1s", "1s2", "1.s", "ms"]) {
  test(`parseResetDuration() returns undefined when given ${JSON.stringify(text)}`, () => {
    expect(parseResetDuration(text)).toBeUndefined();
  });
}

test("parseResetDuration() returns undefined when given null or undefined", () => {
  expect(parseResetDuration(null)).toBeUndefined();
  expect(parseResetDuration(undefined)).toBeUndefined();
});

test("parseRateLimitHeaders() reads every x-ratelimit-* field", () => {
  const headers = new Headers({
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-tokens": "6m0s",
  });
  expect(parseRateLimitHeaders(headers)).toStrictEqual({
    limitRequests: 60,
    remainingRequests: 59,
    resetRequestsMs: 1000,
    limitTokens: 150_000,
    remainingTokens: 149_984,
    resetTokensMs: 360_000,
  });
});

test("parseRateLimitHeaders() reads header names in any case", () => {
  const headers = new Headers({
    "X-RateLimit-Limit-Requests": "500",
    "X-RATELIMIT-RESET-TOKENS": "350ms",
  });
  const info = parseRateLimitHeaders(headers);
  expect(info?.limitRequests).toBe(500);
  expect(info?.resetTokensMs).toBe(350);
});

test("parseRateLimitHeaders() leaves absent fields undefined when only some are sent", () => {
  const info = parseRateLimitHeaders(
    new Headers({ "x-ratelimit-remaining-tokens": "12", "content-type": "application/json" }),
  );
  expect(info).toBeDefined();
  expect(info!.remainingTokens).toBe(12);
  expect(info!.limitRequests).toBeUndefined();
  expect(info!.remainingRequests).toBeUndefined();
  expect(info!.resetRequestsMs).toBeUndefined();
  expect(info!.limitTokens).toBeUndefined();
  expect(info!.resetTokensMs).toBeUndefined();
});

test("parseRateLimitHeaders() keeps a remaining count of 0 as 0", () => {
  const info = parseRateLimitHeaders(new Headers({ "x-ratelimit-remaining-requests": "0" }));
  expect(info?.remainingRequests).toBe(0);
});

test("parseRateLimitHeaders() returns undefined when the response has no x-ratelimit-* header", () => {
  expect(parseRateLimitHeaders(new Headers())).toBeUndefined();
  expect(
    parseRateLimitHeaders(new Headers({ "content-type": "application/json", "retry-after": "2" })),
  ).toBeUndefined();
});

test("parseRateLimitHeaders() ignores blank and non-numeric values", () => {
  expect(
    parseRateLimitHeaders(
      new Headers({
        "x-ratelimit-limit-requests": "",
        "x-ratelimit-remaining-requests": "many",
        "x-ratelimit-reset-requests": "soon",
      }),
    ),
  ).toBeUndefined();
  const info = parseRateLimitHeaders(
    new Headers({ "x-ratelimit-limit-tokens": "abc", "x-ratelimit-remaining-tokens": "7" }),
  );
  expect(info?.limitTokens).toBeUndefined();
  expect(info?.remainingTokens).toBe(7);
});
