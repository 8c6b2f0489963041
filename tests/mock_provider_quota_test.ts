// Tests of the provider quotas of tests/mocks/mock_provider.ts (request window, daily, tokens), over
// real sockets on 127.0.0.1 (Bun.serve) unless a test needs no timing at all. Timing asserts
// compare with the mock's own recorded times where they can, and are loose where they cannot:
// the machine running them may be busy.
import { expect, test } from "bun:test";
import * as path from "node:path";
import {
  type Arrival,
  createMockApp,
  DEFAULT_MAX_TOKENS,
  formatResetDuration,
  maxPerWindow,
  type MockProvider,
  type MockProviderOptions,
  startMockProvider,
  type TokenAcceptance,
} from "./mocks/mock_provider.ts";
import { parseRateLimitHeaders, parseResetDuration } from "../src/rate_limit_headers.ts";

const CHAT = "/v1/chat/completions";
const RESPONSES = "/v1/responses";
const GEMINI = "/v1beta/models/gemini-test:generateContent";
const QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure";
const RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo";
const REQUESTS_METRIC = "generativelanguage.googleapis.com/generate_content_requests";
const TOKENS_METRIC = "generativelanguage.googleapis.com/generate_content_input_token_count";

// Response bodies are read deep into their structure; typing each wire shape here would only
// restate the assertions.
// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

function chatBody(user: string, extra: Json = {}): string {
  return JSON.stringify({
    model: "gpt-test",
    messages: [{ role: "user", content: user }],
    ...extra,
  });
}

function geminiBody(user: string, maxOutputTokens?: number): string {
  return JSON.stringify({
    contents: [{ role: "user", parts: [{ text: user }] }],
    ...(maxOutputTokens === undefined ? {} : { generationConfig: { maxOutputTokens } }),
  });
}

function post(base: string, route: string, body: string, headers: Record<string, string> = {}) {
  return fetch(base + route, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Posts and reads the JSON body. */
async function call(
  base: string,
  route: string,
  body: string,
): Promise<{ res: Response; body: Json; ms: number }> {
  const t = performance.now();
  const res = await post(base, route, body);
  const json = (await res.json()) as Json;
  return { res, body: json, ms: performance.now() - t };
}

/** Starts a mock, runs `fn`, and always closes the mock. */
async function withMock(
  opts: MockProviderOptions,
  fn: (mock: MockProvider) => Promise<void>,
): Promise<void> {
  const mock = await startMockProvider(opts);
  try {
    await fn(mock);
  } finally {
    await mock.close();
  }
}

/**
 * What the request quota should have answered, replayed on the mock's own arrival times: 429
 * when `requests` accepted arrivals lie within the last `windowMs` ms. Exact for plain requests.
 */
function replayRequestQuota(arrivals: Arrival[], requests: number, windowMs: number): number[] {
  const accepted: number[] = [];
  return arrivals.map((a) => {
    if (accepted.filter((t) => a.t - t < windowMs).length >= requests) return 429;
    accepted.push(a.t);
    return 200;
  });
}

/** Most tokens in any window `[t, t + windowMs)` of the accepted costs. */
function maxTokensPerWindow(entries: TokenAcceptance[], windowMs: number): number {
  let best = 0;
  let sum = 0;
  let i = 0;
  for (let j = 0; j < entries.length; j++) {
    sum += entries[j].tokens;
    while (entries[j].t - entries[i].t >= windowMs) sum -= entries[i++].tokens;
    best = Math.max(best, sum);
  }
  return best;
}

const acceptedTimes = (mock: MockProvider) =>
  mock.arrivals().filter((a) => a.status === 200).map((a) => a.t);

/** Gemini's RetryInfo text for a delay in ms. */
const retryDelayText = (ms: number) => `${Number((ms / 1000).toFixed(3))}s`;

// ---------------------------------------------------------------------------------------------
// Options and formats

test("quota options are validated like the others", async () => {
  expect(() => createMockApp({ quota: { requests: 0 } })).toThrow(RangeError);
  expect(() => createMockApp({ quota: { requests: 1.5 } })).toThrow(/quota\.requests/);
  expect(() => createMockApp({ quota: { requests: 1, windowMs: 0 } })).toThrow(/quota\.windowMs/);
  expect(() => createMockApp({ quota: { requests: 1, windowMs: Infinity } })).toThrow(RangeError);
  // deno-lint-ignore no-explicit-any
  expect(() => createMockApp({ quota: null as any })).toThrow(TypeError);
  expect(() => createMockApp({ dailyQuota: -1 })).toThrow(/dailyQuota/);
  expect(() => createMockApp({ dailyQuota: 2.5 })).toThrow(RangeError);
  expect(() => createMockApp({ tokenQuota: { tokens: 0 } })).toThrow(/tokenQuota\.tokens/);
  expect(() => createMockApp({ tokenQuota: { tokens: 10, windowMs: -1 } })).toThrow(
    /tokenQuota\.windowMs/,
  );
  expect(() => createMockApp({ dailyQuota: 0, quota: { requests: 3, windowMs: 5 } })).not
    .toThrow();
  await expect(startMockProvider({ quota: { requests: NaN } })).rejects.toThrow(/quota/);
});

test("formatResetDuration() writes OpenAI's reset durations", () => {
  expect(formatResetDuration(0)).toBe("0s");
  expect(formatResetDuration(-5)).toBe("0s");
  expect(formatResetDuration(349.2)).toBe("350ms");
  expect(formatResetDuration(1000)).toBe("1s");
  expect(formatResetDuration(1500)).toBe("1.5s");
  expect(formatResetDuration(59_987)).toBe("59.987s");
  expect(formatResetDuration(60_000)).toBe("1m0s");
  expect(formatResetDuration(90_500)).toBe("1m30.5s");
  expect(formatResetDuration(360_000)).toBe("6m0s");
  expect(formatResetDuration(3_600_000)).toBe("1h0m0s");
  // The client's parser reads every one of them back.
  for (const ms of [1, 350, 1000, 1500, 59_987, 60_000, 90_500, 360_000, 3_723_004]) {
    expect(parseResetDuration(formatResetDuration(ms))).toBeCloseTo(ms, 6);
  }
});

// ---------------------------------------------------------------------------------------------
// Request quota

test("request quota 5/1000 ms: 5 accepted, then 429 until the oldest leaves the window", async () => {
  await withMock({ quota: { requests: 5 } }, async (mock) => {
    for (let i = 0; i < 5; i++) {
      const { res } = await call(mock.url, CHAT, chatBody(`r${i}`));
      expect(res.status).toBe(200);
      // Only 60 s windows advertise themselves in x-ratelimit-* headers.
      expect(parseRateLimitHeaders(res.headers)).toBeUndefined();
    }
    const { res, body } = await call(mock.url, CHAT, chatBody("r5"));
    expect(res.status).toBe(429);
    const arrivals = mock.arrivals();
    const retryMs = Number(res.headers.get("retry-after-ms"));
    // Exactly the time from this arrival until the first accepted one is 1000 ms old.
    expect(retryMs).toBe(Math.max(1, Math.ceil(arrivals[0].t + 1000 - arrivals[5].t)));
    expect(Number.isInteger(retryMs) && retryMs >= 1 && retryMs <= 1000).toBe(true);
    expect(res.headers.get("retry-after")).toBe(String(Math.ceil(retryMs / 1000)));
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(body.error).toMatchObject({
      type: "requests",
      code: "rate_limit_exceeded",
      param: null,
    });
    expect(body.error.message).toStartWith(
      "Rate limit reached in organization org-mock on requests",
    );
    expect(body.error.message).toContain("Limit 5, Used 5, Requested 1.");

    await Bun.sleep(retryMs);
    const after = await call(mock.url, CHAT, chatBody("r6"));
    expect(after.res.status).toBe(200);
    // A few more right away: whatever they get must follow the rule on the mock's own times.
    for (let i = 7; i < 10; i++) await call(mock.url, CHAT, chatBody(`r${i}`));
    const all = mock.arrivals();
    expect(all.map((a) => a.status)).toEqual(replayRequestQuota(all, 5, 1000));
    expect(maxPerWindow(acceptedTimes(mock))).toBeLessThanOrEqual(5);
  });
});

test("concurrent clients never get more than the quota accepted in any window", async () => {
  const requests = 5;
  const windowMs = 300;
  const tokens = 700;
  await withMock(
    { quota: { requests, windowMs }, tokenQuota: { tokens, windowMs } },
    async (mock) => {
      const until = performance.now() + 1300;
      let sent = 0;
      const worker = async (w: number) => {
        while (performance.now() < until) {
          // cost: 1 prompt token + 100 output tokens; 7 of them fill the token window.
          const res = await post(mock.url, CHAT, chatBody(`w${w}`, { max_tokens: 100 }));
          expect([200, 429]).toContain(res.status);
          await res.body?.cancel();
          sent++;
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      const arrivals = mock.arrivals();
      expect(arrivals).toHaveLength(sent);
      const times = acceptedTimes(mock);
      // The request quota (5 per window) binds before the token one (7 per window).
      expect(maxPerWindow(times, windowMs)).toBe(requests);
      expect(times.length).toBeGreaterThanOrEqual(2 * requests);
      expect(arrivals.map((a) => a.status)).toEqual(
        replayRequestQuota(arrivals, requests, windowMs),
      );
      const costs = mock.tokensAccepted();
      expect(costs.map((x) => x.tokens)).toEqual(times.map(() => 101));
      expect(maxTokensPerWindow(costs, windowMs)).toBeLessThanOrEqual(tokens);
      const stats = mock.stats();
      expect(stats.accepted).toBe(times.length);
      expect(stats.rejected429).toBe(sent - times.length);
      expect(stats.acceptedRate).toBeGreaterThan(0);
      // At most 5 per 300 ms, measured between the first and last accepted: ~16.7/s.
      expect(stats.acceptedRate).toBeLessThanOrEqual((requests / windowMs) * 1000 * 1.5);
    },
  );
}, 20_000);

test("Gemini request-quota 429: RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo", async () => {
  await withMock({ quota: { requests: 2, windowMs: 1000 } }, async (mock) => {
    expect((await call(mock.url, GEMINI, geminiBody("a"))).res.status).toBe(200);
    expect((await call(mock.url, GEMINI, geminiBody("b"))).res.status).toBe(200);
    const { res, body } = await call(mock.url, GEMINI, geminiBody("c"));
    expect(res.status).toBe(429);
    const [first, , third] = mock.arrivals();
    const retryMs = Math.max(1, Math.ceil(first.t + 1000 - third.t));
    expect(body.error).toMatchObject({ code: 429, status: "RESOURCE_EXHAUSTED" });
    expect(body.error.message).toContain(`Quota exceeded for metric: ${REQUESTS_METRIC}`);
    expect(body.error.details).toEqual([
      {
        "@type": QUOTA_FAILURE,
        violations: [{
          quotaMetric: REQUESTS_METRIC,
          quotaId: "GenerateRequestsPerMinutePerProjectPerModel",
        }],
      },
      { "@type": RETRY_INFO, retryDelay: retryDelayText(retryMs) },
    ]);
    expect(body.error.details[1].retryDelay).toMatch(/^\d+(\.\d{1,3})?s$/);
    // Gemini speaks through the body only.
    expect(res.headers.get("retry-after")).toBeNull();
    expect(res.headers.get("retry-after-ms")).toBeNull();
    expect(res.headers.get("x-request-id")).toBeNull();
    expect(mock.arrivals().map((a) => a.status)).toEqual([200, 200, 429]);
  });
});

test("x-ratelimit-* headers with 60 s windows count down as requests are accepted", async () => {
  const opts = {
    quota: { requests: 3, windowMs: 60_000 },
    tokenQuota: { tokens: 10_000, windowMs: 60_000 },
  };
  await withMock(opts, async (mock) => {
    const format = /^(\d+h)?(\d+m)?(\d+(\.\d{1,3})?s|\d+ms)$/;
    const resets: number[] = [];
    for (let i = 0; i < 3; i++) {
      // "q0": 2 characters, 1 prompt token; cost 1 + 100.
      const { res } = await call(mock.url, CHAT, chatBody(`q${i}`, { max_tokens: 100 }));
      expect(res.status).toBe(200);
      const h = res.headers;
      expect(h.get("x-ratelimit-limit-requests")).toBe("3");
      expect(h.get("x-ratelimit-remaining-requests")).toBe(String(2 - i));
      expect(h.get("x-ratelimit-limit-tokens")).toBe("10000");
      expect(h.get("x-ratelimit-remaining-tokens")).toBe(String(10_000 - 101 * (i + 1)));
      expect(h.get("x-ratelimit-reset-requests")).toMatch(format);
      expect(h.get("x-ratelimit-reset-tokens")).toMatch(format);
      const info = parseRateLimitHeaders(h)!;
      expect(info.resetRequestsMs).toBeGreaterThan(50_000);
      expect(info.resetRequestsMs).toBeLessThanOrEqual(60_000);
      resets.push(info.resetRequestsMs!);
    }
    // Always the first request's departure, drawing nearer.
    expect(resets[1]).toBeLessThanOrEqual(resets[0]);
    expect(resets[2]).toBeLessThanOrEqual(resets[1]);

    // The fourth is refused; its headers say so and match its retry hint.
    const { res, body } = await call(
      mock.url,
      RESPONSES,
      JSON.stringify({ model: "m", input: "x" }),
    );
    expect(res.status).toBe(429);
    expect(body.error.message).toContain("on requests per min (RPM): Limit 3, Used 3");
    const retryMs = Number(res.headers.get("retry-after-ms"));
    expect(retryMs).toBeGreaterThan(50_000);
    expect(res.headers.get("retry-after")).toBe(String(Math.ceil(retryMs / 1000)));
    expect(res.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    // A refused request costs no tokens.
    expect(res.headers.get("x-ratelimit-remaining-tokens")).toBe(String(10_000 - 303));
    expect(parseResetDuration(res.headers.get("x-ratelimit-reset-requests"))).toBeCloseTo(
      retryMs,
      6,
    );

    // Directive errors other than 429 carry none; Gemini never does.
    const planned = await post(mock.url, GEMINI, geminiBody("g"));
    expect(planned.status).toBe(429);
    expect(parseRateLimitHeaders(planned.headers)).toBeUndefined();
    await planned.body?.cancel();
  });
});

test("a planned 429 and a 2xx carry x-ratelimit headers; other statuses do not", async () => {
  await withMock({ quota: { requests: 10, windowMs: 60_000 } }, async (mock) => {
    let res = await post(mock.url, CHAT, chatBody("[[mock:429]]"));
    expect(res.status).toBe(429);
    // Not accepted, so it took nothing from the budget.
    expect(res.headers.get("x-ratelimit-remaining-requests")).toBe("10");
    expect(res.headers.get("x-ratelimit-reset-requests")).toBe("0s");
    await res.body?.cancel();
    res = await post(mock.url, CHAT, chatBody("[[mock:503]]"));
    expect(res.status).toBe(503);
    expect(res.headers.get("x-ratelimit-limit-requests")).toBeNull();
    await res.body?.cancel();
    res = await post(mock.url, CHAT, chatBody("[[mock:badjson]]"));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-remaining-requests")).toBe("9");
    await res.body?.cancel();
  });
});

// ---------------------------------------------------------------------------------------------
// Daily quota

test("daily quota: after N accepted requests every request gets 429 with a 1 h hint", async () => {
  await withMock({ dailyQuota: 3 }, async (mock) => {
    // Refused by a directive: not accepted, so not counted.
    expect((await call(mock.url, CHAT, chatBody("[[mock:500]]"))).res.status).toBe(500);
    expect((await call(mock.url, CHAT, chatBody("[[mock:429]]"))).res.status).toBe(429);
    expect((await call(mock.url, CHAT, chatBody("a"))).res.status).toBe(200);
    expect((await call(mock.url, GEMINI, geminiBody("b"))).res.status).toBe(200);
    const responses = JSON.stringify({ model: "m", input: "c" });
    expect((await call(mock.url, RESPONSES, responses)).res.status).toBe(200);

    const openai = await call(mock.url, CHAT, chatBody("d"));
    expect(openai.res.status).toBe(429);
    expect(openai.res.headers.get("retry-after")).toBe("3600");
    expect(openai.res.headers.get("retry-after-ms")).toBeNull();
    expect(openai.body.error).toMatchObject({ type: "requests", code: "rate_limit_exceeded" });
    expect(openai.body.error.message).toContain("requests per day (RPD)");

    const gemini = await call(mock.url, GEMINI, geminiBody("e"));
    expect(gemini.res.status).toBe(429);
    expect(gemini.body.error.status).toBe("RESOURCE_EXHAUSTED");
    expect(gemini.body.error.details).toEqual([
      {
        "@type": QUOTA_FAILURE,
        violations: [{
          quotaMetric: REQUESTS_METRIC,
          quotaId: "GenerateRequestsPerDayPerProjectPerModel",
        }],
      },
      { "@type": RETRY_INFO, retryDelay: "3600s" },
    ]);
    // Still refused later: a day does not pass in a test.
    expect((await call(mock.url, RESPONSES, responses)).res.status).toBe(429);

    expect(mock.arrivals().map((a) => a.status)).toEqual([500, 429, 200, 200, 200, 429, 429, 429]);
    expect(mock.quota()).toMatchObject({ daily_used: 3, daily_limit: 3 });
    expect(mock.stats()).toMatchObject({ count: 8, accepted: 3, rejected429: 4 });

    // reset() starts a new day.
    mock.reset();
    expect((await call(mock.url, CHAT, chatBody("f"))).res.status).toBe(200);
    expect(mock.quota().daily_used).toBe(1);
  });
});

test("dailyQuota: 0 refuses everything, at once, before the body is read", async () => {
  await withMock({ dailyQuota: 0, latencyMs: 2000 }, async (mock) => {
    const { res, ms } = await call(mock.url, CHAT, "{not even json");
    expect(res.status).toBe(429);
    expect(ms).toBeLessThan(1000);
  });
});

// ---------------------------------------------------------------------------------------------
// Refusals and the other fault sources

test("a quota-refused request is not an attempt of [[mock:fail=K:X]]", async () => {
  await withMock({ quota: { requests: 1, windowMs: 1000 } }, async (mock) => {
    const prompt = "job [[mock:fail=2:500]]";
    const statuses: number[] = [];
    const send = async (text: string) => {
      const { res } = await call(mock.url, CHAT, chatBody(text));
      statuses.push(res.status);
      return res;
    };
    await send(prompt); // attempt 1: 500, not accepted, so the window stays empty
    await send("filler"); // fills the window
    const refused = await send(prompt); // refused by the quota: no attempt
    await Bun.sleep(Number(refused.headers.get("retry-after-ms")));
    await send(prompt); // attempt 2: 500
    await send(prompt); // attempt 3: 200
    expect(statuses).toEqual([500, 200, 429, 500, 200]);
  });
});

test("quota refusals draw no failureRate number", async () => {
  // In process: the token quota refuses the big requests whatever the timing.
  const statuses = async (withBigOnes: boolean, quota: boolean) => {
    const app = createMockApp({
      failureRate: 0.3,
      failureStatus: 503,
      seed: 7,
      ...(quota ? { tokenQuota: { tokens: 1000 } } : {}),
    });
    const out: number[] = [];
    for (let i = 0; i < 100; i++) {
      if (withBigOnes) {
        const big = await app.request(CHAT, {
          method: "POST",
          body: chatBody("big", { max_tokens: 5000 }),
        });
        expect(big.status).toBe(429);
      }
      const res = await app.request(CHAT, {
        method: "POST",
        body: chatBody("s", { max_tokens: 1 }), // costs 2 tokens
      });
      out.push(res.status);
    }
    return out;
  };
  const plain = await statuses(false, false);
  expect(new Set(plain)).toEqual(new Set([200, 503]));
  expect(await statuses(true, true)).toEqual(plain);
});

test("quota refusals are immediate even with latencyMs", async () => {
  await withMock(
    { latencyMs: 1500, quota: { requests: 1, windowMs: 60_000 }, tokenQuota: { tokens: 1000 } },
    async (mock) => {
      // A slow first request holds the only slot from its arrival on.
      const t0 = performance.now();
      const slow = call(mock.url, CHAT, chatBody("slow", { max_tokens: 10 }));
      while (mock.stats().count === 0) await Bun.sleep(2);
      const refused = await call(mock.url, CHAT, chatBody("fast"));
      expect(refused.res.status).toBe(429);
      expect(refused.ms).toBeLessThan(750);
      const first = await slow;
      expect(first.res.status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(1450);
      // The token quota refuses after reading the body, still without latency.
      const tooBig = await call(mock.url, GEMINI, geminiBody("huge", 5000));
      expect(tooBig.res.status).toBe(429);
      expect(tooBig.ms).toBeLessThan(750);
    },
  );
  // Whereas a planned 429 waits like any other answer.
  await withMock({ latencyMs: 300 }, async (mock) => {
    const planned = await call(mock.url, CHAT, chatBody("[[mock:429]]"));
    expect(planned.res.status).toBe(429);
    expect(planned.ms).toBeGreaterThanOrEqual(280);
  });
});

// ---------------------------------------------------------------------------------------------
// Token quota

test("token quota: big max_tokens refused when the window is full, small ones accepted", async () => {
  await withMock({ tokenQuota: { tokens: 1000 } }, async (mock) => {
    // "big": 3 chars, 1 prompt token; cost 601.
    let r = await call(mock.url, CHAT, chatBody("big", { max_tokens: 600 }));
    expect(r.res.status).toBe(200);
    expect(r.res.headers.get("x-ratelimit-remaining-tokens")).toBe("399");
    expect(r.res.headers.get("x-ratelimit-limit-requests")).toBeNull();
    expect(r.body.usage.completion_tokens).toBeLessThanOrEqual(600);
    expect(r.body.choices[0].finish_reason).toBe("stop");

    r = await call(mock.url, CHAT, chatBody("big", { max_tokens: 600 }));
    expect(r.res.status).toBe(429);
    expect(r.body.error).toMatchObject({ type: "tokens", code: "rate_limit_exceeded" });
    expect(r.body.error.message).toContain(
      "on tokens per min (TPM): Limit 1000, Used 601, Requested 601.",
    );
    const retryMs = Number(r.res.headers.get("retry-after-ms"));
    // Until the first request leaves the 60 s window.
    expect(retryMs).toBeGreaterThan(50_000);
    expect(retryMs).toBeLessThanOrEqual(60_000);
    expect(r.res.headers.get("retry-after")).toBe(String(Math.ceil(retryMs / 1000)));
    expect(r.res.headers.get("x-ratelimit-remaining-tokens")).toBe("399");
    expect(parseResetDuration(r.res.headers.get("x-ratelimit-reset-tokens"))).toBeCloseTo(
      retryMs,
      6,
    );

    // Small requests still fit, and their answers honour max_tokens.
    r = await call(mock.url, CHAT, chatBody("small", { max_tokens: 2 }));
    expect(r.res.status).toBe(200);
    expect(r.body.choices[0]).toMatchObject({
      message: { content: "mock ans" },
      finish_reason: "length",
    });
    expect(r.body.usage).toEqual({ prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 });
    expect(r.res.headers.get("x-ratelimit-remaining-tokens")).toBe(String(399 - 4));

    r = await call(mock.url, CHAT, chatBody("mct", { max_completion_tokens: 3, max_tokens: 900 }));
    expect(r.res.status).toBe(200);
    expect(r.body.usage.completion_tokens).toBe(3);

    r = await call(
      mock.url,
      RESPONSES,
      JSON.stringify({ model: "m", input: "respond", max_output_tokens: 3 }),
    );
    expect(r.res.status).toBe(200);
    expect(r.body).toMatchObject({
      status: "incomplete",
      incomplete_details: { reason: "max_output_tokens" },
      output_text: "mock answer:",
      usage: { input_tokens: 2, output_tokens: 3 },
    });

    const g = await call(mock.url, GEMINI, geminiBody("gem", 3));
    expect(g.res.status).toBe(200);
    expect(g.body.candidates[0].finishReason).toBe("MAX_TOKENS");
    expect(g.body.candidates[0].content.parts[0].text).toBe("mock answer:");
    expect(g.body.usageMetadata.candidatesTokenCount).toBe(3);

    // Gemini's refusal names the token quota.
    const refused = await call(mock.url, GEMINI, geminiBody("gem", 500));
    expect(refused.res.status).toBe(429);
    expect(refused.body.error.status).toBe("RESOURCE_EXHAUSTED");
    expect(refused.body.error.details[0]).toEqual({
      "@type": QUOTA_FAILURE,
      violations: [{
        quotaMetric: TOKENS_METRIC,
        quotaId: "GenerateContentInputTokensPerModelPerMinute",
      }],
    });
    expect(refused.body.error.details[1]["@type"]).toBe(RETRY_INFO);
    const delayMs = Number(refused.body.error.details[1].retryDelay.slice(0, -1)) * 1000;
    expect(delayMs).toBeGreaterThan(50_000);
    expect(delayMs).toBeLessThanOrEqual(60_000);

    // Without a max, a request costs its prompt plus DEFAULT_MAX_TOKENS.
    const before = mock.quota().tokens_in_window;
    r = await call(mock.url, CHAT, chatBody("12345678"));
    expect(r.res.status).toBe(200);
    expect(mock.quota().tokens_in_window - before).toBe(2 + DEFAULT_MAX_TOKENS);

    const costs = mock.tokensAccepted();
    expect(costs.map((x) => x.tokens)).toEqual([601, 4, 4, 5, 4, 2 + DEFAULT_MAX_TOKENS]);
    for (let i = 1; i < costs.length; i++) expect(costs[i].t).toBeGreaterThan(costs[i - 1].t);
    const total = costs.reduce((n, x) => n + x.tokens, 0);
    expect(mock.quota()).toMatchObject({ tokens_in_window: total, tokens_limit: 1000 });
    const viaHttp = (await (await fetch(`${mock.url}/__mock/tokens`)).json()) as Json;
    expect(viaHttp.tokens).toEqual(costs);
  });
});

test("a request costing more than the whole token quota gets 429 with no retry hint", async () => {
  await withMock({ tokenQuota: { tokens: 1000, windowMs: 2000 } }, async (mock) => {
    const r = await call(mock.url, CHAT, chatBody("x", { max_tokens: 1000 }));
    expect(r.res.status).toBe(429);
    expect(r.body.error).toMatchObject({ type: "tokens", code: "rate_limit_exceeded" });
    expect(r.body.error.message).toStartWith(
      "Request too large for gpt-test in organization org-mock on tokens per 2s (mock window)",
    );
    expect(r.res.headers.get("retry-after")).toBeNull();
    expect(r.res.headers.get("retry-after-ms")).toBeNull();
    const g = await call(mock.url, GEMINI, geminiBody("x", 1000));
    expect(g.res.status).toBe(429);
    expect(g.body.error.details.map((d: Json) => d["@type"])).toEqual([QUOTA_FAILURE]);
    expect(mock.quota().tokens_in_window).toBe(0);
  });
});

test("token quota over a short window: retry-after-ms is when enough tokens have left", async () => {
  await withMock({ tokenQuota: { tokens: 100, windowMs: 1000 } }, async (mock) => {
    // "abc": 1 prompt token; cost 60.
    const body = chatBody("abc", { max_tokens: 59 });
    expect((await call(mock.url, CHAT, body)).res.status).toBe(200);
    const refused = await call(mock.url, CHAT, body);
    expect(refused.res.status).toBe(429);
    const retryMs = Number(refused.res.headers.get("retry-after-ms"));
    expect(retryMs).toBeGreaterThanOrEqual(1);
    expect(retryMs).toBeLessThanOrEqual(1000);
    // No x-ratelimit-* for a window other than 60 s.
    expect(parseRateLimitHeaders(refused.res.headers)).toBeUndefined();
    await Bun.sleep(retryMs);
    expect((await call(mock.url, CHAT, body)).res.status).toBe(200);
    const costs = mock.tokensAccepted();
    expect(costs).toHaveLength(2);
    expect(costs[1].t - costs[0].t).toBeGreaterThanOrEqual(1000);
    expect(maxTokensPerWindow(costs, 1000)).toBe(60);
  });
});

test("invalid max tokens answer 400 and cost nothing", async () => {
  await withMock({ tokenQuota: { tokens: 1000 }, dailyQuota: 5 }, async (mock) => {
    for (const max_tokens of [0, -1, 1.5, "5"]) {
      const r = await call(mock.url, CHAT, chatBody("x", { max_tokens }));
      expect(r.res.status).toBe(400);
      expect(r.body.error.message).toContain("'max_tokens'");
    }
    const r = await call(mock.url, GEMINI, geminiBody("x", 0));
    expect(r.res.status).toBe(400);
    expect(r.body.error.status).toBe("INVALID_ARGUMENT");
    // null means "not set".
    const ok = await call(mock.url, CHAT, chatBody("x", { max_tokens: null }));
    expect(ok.res.status).toBe(200);
    expect(mock.quota()).toMatchObject({
      tokens_in_window: 1 + DEFAULT_MAX_TOKENS,
      daily_used: 1,
      requests_in_window: 1,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Stats, control routes, CLI

test("stats count 429s of every cause, accepted requests and their rate", async () => {
  await withMock({ quota: { requests: 2, windowMs: 60_000 } }, async (mock) => {
    const send = async (text: string, pause = 0) => {
      const res = await post(mock.url, CHAT, chatBody(text));
      await res.body?.cancel();
      if (pause) await Bun.sleep(pause);
    };
    await send("[[mock:429]]");
    await send("[[mock:insufficient_quota]]");
    await send("[[mock:500]]");
    await send("one", 50);
    await send("two");
    await send("three");
    await send("[[mock:503]]"); // refused by the quota before its directive is read
    const arrivals = mock.arrivals();
    expect(arrivals.map((a) => a.status)).toEqual([429, 429, 500, 200, 200, 429, 429]);
    const stats = mock.stats();
    expect(stats).toMatchObject({ count: 7, accepted: 2, rejected429: 4 });
    expect(stats.acceptedRate).toBeCloseTo(1 / ((arrivals[4].t - arrivals[3].t) / 1000), 6);
    expect(stats.acceptedRate).toBeLessThan(stats.rate);
    expect(await (await fetch(`${mock.url}/__mock/stats`)).json()).toEqual(stats);

    const quota = mock.quota();
    expect(quota).toEqual({
      requests_in_window: 2,
      tokens_in_window: 2 * (1 + DEFAULT_MAX_TOKENS),
      daily_used: 2,
      requests_limit: 2,
      requests_window_ms: 60_000,
      tokens_limit: null,
      tokens_window_ms: 60_000,
      daily_limit: null,
    });
    expect(await (await fetch(`${mock.url}/__mock/quota`)).json()).toEqual(quota);

    const reset = await fetch(`${mock.url}/__mock/reset`, { method: "POST" });
    await reset.body?.cancel();
    expect(mock.quota()).toMatchObject({
      requests_in_window: 0,
      tokens_in_window: 0,
      daily_used: 0,
    });
    expect(mock.stats()).toMatchObject({ accepted: 0, acceptedRate: 0, rejected429: 0 });
    expect(mock.tokensAccepted()).toEqual([]);
    await send("four");
    expect(mock.arrivals().map((a) => a.status)).toEqual([200]);
  });
});

test("recordArrivals: false still enforces quotas but keeps no token log", async () => {
  await withMock(
    {
      recordArrivals: false,
      quota: { requests: 2, windowMs: 60_000 },
      tokenQuota: { tokens: 999 },
    },
    async (mock) => {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push((await call(mock.url, CHAT, chatBody("x"))).res.status);
      }
      expect(statuses).toEqual([200, 200, 429, 429]);
      expect(mock.tokensAccepted()).toEqual([]);
      expect(mock.quota()).toMatchObject({ requests_in_window: 2, daily_used: 2 });
      expect(mock.stats()).toMatchObject({ count: 4, accepted: 2, rejected429: 2 });
    },
  );
});

test("the CLI takes the quota flags and rejects bad ones", async () => {
  const script = path.join(import.meta.dir, "..", "scripts", "start_mock_provider.ts");
  const child = Bun.spawn(
    [
      process.execPath,
      script,
      "--quota-requests",
      "2",
      "--quota-window",
      "60000",
      "--token-quota",
      "5000",
      "--daily-quota",
      "10",
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  try {
    const reader = child.stdout.getReader();
    let line = "";
    while (!line.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      line += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const { url } = JSON.parse(line) as { url: string };
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 3; i++) {
      last = await post(url, CHAT, chatBody(`c${i}`));
      statuses.push(last.status);
      await last.body?.cancel();
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(last!.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(last!.headers.get("x-ratelimit-limit-tokens")).toBe("5000");
    expect(await (await fetch(`${url}/__mock/quota`)).json()).toMatchObject({
      requests_limit: 2,
      requests_window_ms: 60_000,
      tokens_limit: 5000,
      tokens_window_ms: 60_000,
      daily_limit: 10,
      daily_used: 2,
    });
  } finally {
    child.kill("SIGTERM");
    await child.exited;
  }

  for (
    const [args, message] of [
      [["--quota-window", "100"], "--quota-requests"],
      [["--token-window", "100"], "--token-quota"],
      [["--quota-requests", "0"], "quota.requests"],
      [["--daily-quota", "x"], "--daily-quota"],
      [["--token-quota", "5", "--token-window=-1"], "tokenQuota.windowMs"],
    ] as const
  ) {
    const bad = Bun.spawn([process.execPath, script, ...args], { stdout: "pipe", stderr: "pipe" });
    expect(await bad.exited).toBe(2);
    expect(await new Response(bad.stderr).text()).toContain(message);
  }
}, 30_000);

test('token quota count "request" charges the whole body\'s bytes / 4 plus max tokens, as OpenAI', async () => {
  await withMock(
    { tokenQuota: { tokens: 1000, windowMs: 10_000, count: "request" } },
    async (mock) => {
      const body = chatBody("hello there", { max_tokens: 40 });
      const r = await call(mock.url, CHAT, body);
      expect(r.res.status).toBe(200);
      const bytes = new TextEncoder().encode(body).length;
      expect(mock.tokensAccepted().map((x) => x.tokens)).toEqual([Math.ceil(bytes / 4) + 40]);
      // Usage counts the prompt text only: lower than what the quota charged.
      expect(r.body.usage.prompt_tokens).toBe(Math.ceil("hello there".length / 4));
      const big = chatBody("y".repeat(3300), { max_tokens: 150 });
      const refused = await call(mock.url, CHAT, big);
      expect(refused.res.status).toBe(429);
      const cost = Math.ceil(new TextEncoder().encode(big).length / 4) + 150;
      expect(refused.body.error.message).toContain(
        `Limit 1000, Used ${Math.ceil(bytes / 4) + 40}, Requested ${cost}. Please try again in `,
      );
    },
  );
});

test('token quota count "input" charges Gemini prompt tokens only, naming the input-token quota', async () => {
  await withMock(
    { tokenQuota: { tokens: 100, windowMs: 10_000, count: "input" } },
    async (mock) => {
      const ok = await call(mock.url, GEMINI, geminiBody("z".repeat(200), 500));
      expect(ok.res.status).toBe(200);
      expect(mock.tokensAccepted().map((x) => x.tokens)).toEqual([50]);
      expect(ok.body.usageMetadata.promptTokenCount).toBe(50);
      const refused = await call(mock.url, GEMINI, geminiBody("z".repeat(240), 500));
      expect(refused.res.status).toBe(429);
      expect(refused.body.error.details[0].violations[0]).toEqual({
        quotaMetric: TOKENS_METRIC,
        quotaId: "GenerateContentInputTokensPerModelPerMinute",
      });
    },
  );
});

test("token quota headers: true sends x-ratelimit-*-tokens on a short window, limit per minute", async () => {
  await withMock(
    { tokenQuota: { tokens: 1000, windowMs: 10_000, headers: true } },
    async (mock) => {
      const r = await call(mock.url, CHAT, chatBody("abcd", { max_tokens: 99 }));
      expect(r.res.status).toBe(200);
      const info = parseRateLimitHeaders(r.res.headers)!;
      expect(info.limitTokens).toBe(6000);
      expect(info.remainingTokens).toBe(900);
      expect(info.resetTokensMs).toBeGreaterThan(9000);
      expect(info.resetTokensMs).toBeLessThanOrEqual(10_000);
    },
  );
});
