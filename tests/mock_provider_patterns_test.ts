// Tests of the 429 patterns of tests/mocks/mock_provider.ts (issue 17): fixed windows, coarse
// retry hints, several QuotaFailure violations or none, Retry-After on random failures; and that
// the providers' error mapping and the rate controller read each the way the benchmark assumes.
import { expect, test } from "bun:test";
import { createMockApp, type MockProviderOptions } from "./mocks/mock_provider.ts";
import { classifyGemini } from "../src/providers/gemini/classify.ts";
import { classifyOpenAI } from "../src/providers/openai/classify.ts";
import { saysQuotaSpent } from "../src/_rate_controller.ts";

const CHAT = "/v1/chat/completions";
const GEMINI = "/v1beta/models/gemini-test:generateContent";

function post(app: ReturnType<typeof createMockApp>, route: string, text: string) {
  const body = route === CHAT
    ? { model: "gpt-test", messages: [{ role: "user", content: text }] }
    : { contents: [{ role: "user", parts: [{ text }] }] };
  return app.request(route, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
}

/** Sends until the quota refuses; returns the refusal. */
async function refusal(options: MockProviderOptions, route: string): Promise<Response> {
  const app = createMockApp(options);
  for (let i = 0; i < 10; i++) {
    const res = await post(app, route, `q${i}`);
    if (res.status === 429) return res;
    await res.body?.cancel();
  }
  throw new Error("the quota never refused");
}

test("mock quota retryAfterS: OpenAI 429s carry retry-after S and no retry-after-ms", async () => {
  const res = await refusal({ quota: { requests: 2, windowMs: 1000, retryAfterS: 2 } }, CHAT);
  expect(res.headers.get("retry-after")).toBe("2");
  expect(res.headers.get("retry-after-ms")).toBeNull();
  const body = await res.json();
  expect(body.error.message).toContain("Limit 2, Used 2");
  const info = classifyOpenAI(429, body, res.headers);
  expect(info.kind).toBe("rate_limit");
  expect(info.retryAfterMs).toBe(2000);
  expect(saysQuotaSpent(info)).toBe(true);
});

test("mock quota detail none: an OpenAI 429 that names no numbers is not read as spent", async () => {
  const res = await refusal({ quota: { requests: 1, detail: "none", retryAfterS: 1 } }, CHAT);
  const body = await res.json();
  expect(body.error.message).not.toContain("Limit");
  const info = classifyOpenAI(429, body, res.headers);
  expect(info.kind).toBe("rate_limit");
  expect(saysQuotaSpent(info)).toBe(false);
});

test("mock quota detail many: a Gemini 429 with three QuotaFailure violations and the hint", async () => {
  const res = await refusal({ quota: { requests: 2, detail: "many", retryAfterS: 2 } }, GEMINI);
  const body = await res.json();
  const [failure, retry] = body.error.details;
  expect(failure["@type"]).toBe("type.googleapis.com/google.rpc.QuotaFailure");
  expect(failure.violations).toHaveLength(3);
  expect(retry).toEqual({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "2s" });
  const info = classifyGemini(429, body, res.headers);
  expect(info.kind).toBe("rate_limit");
  expect(info.retryAfterMs).toBe(2000);
  expect(saysQuotaSpent(info)).toBe(true);
});

test("mock quota detail none: a Gemini 429 with only a RetryInfo is a rate limit not read as spent", async () => {
  const res = await refusal({ quota: { requests: 1, detail: "none", retryAfterS: 1 } }, GEMINI);
  const body = await res.json();
  expect(body.error.details).toEqual([
    { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1s" },
  ]);
  const info = classifyGemini(429, body, res.headers);
  expect(info.kind).toBe("rate_limit");
  expect(info.quotaId).toBeUndefined();
  expect(saysQuotaSpent(info)).toBe(false);
});

test("mock fixed-window quota: the hint runs to the window's end, and the next window admits a full quota", async () => {
  const app = createMockApp({ quota: { requests: 2, windowMs: 400, kind: "fixed" } });
  const created = performance.now();
  // Start well inside the first window, so a sliding window would give a much longer hint.
  await Bun.sleep(Math.max(0, created + 250 - performance.now()));
  expect((await post(app, CHAT, "a")).status).toBe(200);
  expect((await post(app, CHAT, "b")).status).toBe(200);
  const refused = await post(app, CHAT, "c");
  expect(refused.status).toBe(429);
  const hint = Number(refused.headers.get("retry-after-ms"));
  // To the end of the window [0, 400): at most 150 ms from 250 ms in (a sliding one: ~400).
  expect(hint).toBeGreaterThan(0);
  expect(hint).toBeLessThanOrEqual(150);
  await Bun.sleep(hint + 20);
  expect((await post(app, CHAT, "d")).status).toBe(200);
  expect((await post(app, CHAT, "e")).status).toBe(200);
  expect((await post(app, CHAT, "f")).status).toBe(429);
});

test("mock failureRetryAfterS: random failures carry Retry-After", async () => {
  const app = createMockApp({ failureRate: 1, failureStatus: 503, failureRetryAfterS: 1 });
  const res = await post(app, CHAT, "x");
  expect(res.status).toBe(503);
  expect(res.headers.get("retry-after")).toBe("1");
});

test("mock quota rejects a bad kind, retryAfterS or detail with a RangeError", () => {
  expect(() => createMockApp({ quota: { requests: 1, kind: "rolling" as "fixed" } })).toThrow(
    RangeError,
  );
  expect(() => createMockApp({ quota: { requests: 1, retryAfterS: 0 } })).toThrow(RangeError);
  expect(() => createMockApp({ quota: { requests: 1, detail: "all" as "one" } })).toThrow(
    RangeError,
  );
});
