// Tests of tests/mocks/mock_provider.ts: first through app.request(), then over real sockets on
// 127.0.0.1 (Bun.serve), including planned faults, arrivals and many concurrent connections.
import { expect, test } from "bun:test";
import { connect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createMockApp,
  maxPerWindow,
  type MockProvider,
  type MockProviderOptions,
  startMockProvider,
} from "./mocks/mock_provider.ts";

const CHAT = "/v1/chat/completions";
const RESPONSES = "/v1/responses";
const GEMINI = "/v1beta/models/gemini-test:generateContent";

// Response bodies are read deep into their structure; typing each wire shape here would only
// restate the assertions.
// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

function chatBody(user: string, model = "gpt-test"): string {
  return JSON.stringify({ model, messages: [{ role: "user", content: user }] });
}

function geminiBody(user: string): string {
  return JSON.stringify({ contents: [{ role: "user", parts: [{ text: user }] }] });
}

function post(base: string, path: string, body: string, headers: Record<string, string> = {}) {
  return fetch(base + path, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });
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

// ---------------------------------------------------------------------------------------------
// maxPerWindow

test("maxPerWindow() counts the busiest [t, t + window) window", () => {
  expect(maxPerWindow([])).toBe(0);
  expect(maxPerWindow([5])).toBe(1);
  expect(maxPerWindow([0, 999])).toBe(2);
  expect(maxPerWindow([0, 500, 999, 1000])).toBe(3);
  expect(maxPerWindow([0, 0, 0])).toBe(3);
  expect(maxPerWindow([0, 10, 20, 2000, 2001, 2002, 2999])).toBe(4);
  expect(maxPerWindow([0, 50, 100, 150], 100)).toBe(2);
});

test("maxPerWindow() puts points exactly one window apart in separate windows", () => {
  expect(maxPerWindow([0, 1000])).toBe(1);
  expect(maxPerWindow([0, 1000, 2000, 3000])).toBe(1);
  expect(maxPerWindow([0, 1000, 1000, 1999.999])).toBe(3);
});

test("maxPerWindow() rejects a window that is not positive and finite", () => {
  expect(() => maxPerWindow([1], 0)).toThrow(RangeError);
  expect(() => maxPerWindow([1], -5)).toThrow(RangeError);
  expect(() => maxPerWindow([1], NaN)).toThrow(RangeError);
  expect(() => maxPerWindow([1], Infinity)).toThrow(RangeError);
});

// ---------------------------------------------------------------------------------------------
// Options

test("createMockApp() and startMockProvider() reject invalid options eagerly", async () => {
  expect(() => createMockApp({ failureRate: 1.5 })).toThrow(RangeError);
  expect(() => createMockApp({ latencyMs: -1 })).toThrow(RangeError);
  expect(() => createMockApp({ failureStatus: 200 })).toThrow(RangeError);
  expect(() => createMockApp({ port: 70000 })).toThrow(RangeError);
  expect(() => createMockApp({ seed: 1.5 })).toThrow(RangeError);
  await expect(startMockProvider({ latencyJitterMs: NaN })).rejects.toThrow(/latencyJitterMs/);
});

// ---------------------------------------------------------------------------------------------
// In process, through app.request()

test("app answers an OpenAI chat completion with deterministic text and token counts", async () => {
  const app = createMockApp();
  const res = await app.request(CHAT, {
    method: "POST",
    body: JSON.stringify({
      model: "gpt-x",
      messages: [
        { role: "system", content: "You are terse." }, // 14 chars
        { role: "user", content: "first question" }, // 14 chars
        { role: "assistant", content: "ok" }, // 2 chars
        { role: "user", content: [{ type: "text", text: "Hello world" }] }, // 11 chars
      ],
    }),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("x-request-id")).toBeTruthy();
  const body = (await res.json()) as Json;
  const text = "mock answer: Hello world";
  expect(body).toMatchObject({
    object: "chat.completion",
    model: "gpt-x",
    choices: [{
      index: 0,
      message: { role: "assistant", content: text },
      finish_reason: "stop",
    }],
    usage: {
      prompt_tokens: Math.ceil(41 / 4),
      completion_tokens: Math.ceil(text.length / 4),
      total_tokens: 11 + Math.ceil(text.length / 4),
    },
  });
  expect(body.id).toStartWith("chatcmpl-");
  expect(typeof body.created).toBe("number");
});

test("app truncates the echoed user text to 200 characters", async () => {
  const app = createMockApp();
  const long = "x".repeat(500);
  const res = await app.request(CHAT, { method: "POST", body: chatBody(long) });
  const body = (await res.json()) as Json;
  expect(body.choices[0].message.content).toBe("mock answer: " + "x".repeat(200));
  expect(body.usage.prompt_tokens).toBe(125);
  expect(body.usage.completion_tokens).toBe(Math.ceil(213 / 4));
});

test("app answers the Responses API for string and array input", async () => {
  const app = createMockApp();
  let res = await app.request(RESPONSES, {
    method: "POST",
    body: JSON.stringify({ model: "gpt-r", input: "Tell me" }),
  });
  let body = (await res.json()) as Json;
  expect(res.status).toBe(200);
  expect(body).toMatchObject({
    object: "response",
    model: "gpt-r",
    output: [{
      type: "message",
      role: "assistant",
      content: [{ type: "output_text", text: "mock answer: Tell me" }],
    }],
    output_text: "mock answer: Tell me",
    usage: { input_tokens: 2, output_tokens: 5, total_tokens: 7 },
  });
  expect(body.id).toStartWith("resp_");

  res = await app.request(RESPONSES, {
    method: "POST",
    body: JSON.stringify({
      model: "gpt-r",
      instructions: "abcd", // counts as prompt text
      input: [
        { role: "user", content: "one" },
        { role: "assistant", content: "two" },
        { role: "user", content: [{ type: "input_text", text: "three" }] },
      ],
    }),
  });
  body = (await res.json()) as Json;
  expect(body.output_text).toBe("mock answer: three");
  expect(body.usage.input_tokens).toBe(Math.ceil(15 / 4));
});

test("app answers Gemini generateContent from the last user (or role-less) content", async () => {
  const app = createMockApp();
  const res = await app.request(GEMINI, {
    method: "POST",
    body: JSON.stringify({
      systemInstruction: { parts: [{ text: "sys" }] },
      contents: [
        { role: "user", parts: [{ text: "early" }] },
        { role: "model", parts: [{ text: "reply" }] },
        { parts: [{ text: "late" }, { text: "part" }] },
      ],
    }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as Json;
  const text = "mock answer: late\npart";
  expect(body).toMatchObject({
    candidates: [{
      content: { role: "model", parts: [{ text }] },
      finishReason: "STOP",
      index: 0,
    }],
    usageMetadata: {
      promptTokenCount: Math.ceil((3 + 5 + 5 + 9) / 4),
      candidatesTokenCount: Math.ceil(text.length / 4),
    },
    modelVersion: "gemini-test",
  });
  expect(body.usageMetadata.totalTokenCount).toBe(
    body.usageMetadata.promptTokenCount + body.usageMetadata.candidatesTokenCount,
  );
  expect(typeof body.responseId).toBe("string");
});

test("app answers unparseable or invalid bodies with 400 in the provider's shape", async () => {
  const app = createMockApp();
  for (const path of [CHAT, RESPONSES]) {
    const res = await app.request(path, { method: "POST", body: "{not json" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: { type: "invalid_request_error", param: null, code: null },
    });
  }
  let res = await app.request(GEMINI, { method: "POST", body: "{not json" });
  expect(res.status).toBe(400);
  expect(await res.json()).toMatchObject({ error: { code: 400, status: "INVALID_ARGUMENT" } });

  res = await app.request(CHAT, { method: "POST", body: JSON.stringify({ messages: [] }) });
  expect(res.status).toBe(400);
  res = await app.request(GEMINI, { method: "POST", body: JSON.stringify({ contents: [] }) });
  expect(res.status).toBe(400);
});

test("app answers unknown routes and Gemini methods with 404", async () => {
  const app = createMockApp();
  let res = await app.request("/v1/embeddings", { method: "POST", body: "{}" });
  expect(res.status).toBe(404);
  expect(((await res.json()) as Json).error.type).toBe("invalid_request_error");
  res = await app.request("/v1beta/models/g:streamGenerateContent", {
    method: "POST",
    body: geminiBody("x"),
  });
  expect(res.status).toBe(404);
  expect(((await res.json()) as Json).error.status).toBe("NOT_FOUND");
});

test("app's reset body rejects when read in process", async () => {
  const app = createMockApp();
  const res = await app.request(CHAT, { method: "POST", body: chatBody("[[mock:reset]]") });
  await expect(res.text()).rejects.toThrow("mock: connection reset");
});

test("app answers an unknown directive with 400 so typos fail loudly", async () => {
  const app = createMockApp();
  const res = await app.request(CHAT, { method: "POST", body: chatBody("[[mock:50O]]") });
  expect(res.status).toBe(400);
  expect(((await res.json()) as Json).error.message).toContain("[[mock:50O]]");
});

test("failureRate fails plain requests in a seeded, repeatable order", async () => {
  const statuses = async (seed: number, interleave: boolean) => {
    const app = createMockApp({ failureRate: 0.3, failureStatus: 503, seed });
    const out: number[] = [];
    for (let i = 0; i < 200; i++) {
      if (interleave) {
        // Directive requests must not consume random draws.
        await app.request(CHAT, { method: "POST", body: chatBody(`[[mock:latency=0]] ${i}`) });
      }
      const res = await app.request(CHAT, { method: "POST", body: chatBody("plain") });
      out.push(res.status);
    }
    return out;
  };
  const a = await statuses(42, false);
  expect(await statuses(42, false)).toEqual(a);
  expect(await statuses(42, true)).toEqual(a);
  expect(await statuses(43, false)).not.toEqual(a);
  expect(new Set(a)).toEqual(new Set([200, 503]));
  const failures = a.filter((s) => s === 503).length;
  expect(failures).toBeGreaterThan(30);
  expect(failures).toBeLessThan(90);
});

// ---------------------------------------------------------------------------------------------
// Over a real socket

test("startMockProvider() serves OpenAI and Gemini on 127.0.0.1", async () => {
  await withMock({}, async (mock) => {
    expect(mock.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    let res = await post(mock.url, CHAT, chatBody("hi there"));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    let body = (await res.json()) as Json;
    expect(body.choices[0].message.content).toBe("mock answer: hi there");
    expect(body.usage).toEqual({ prompt_tokens: 2, completion_tokens: 6, total_tokens: 8 });

    res = await post(mock.url, GEMINI, geminiBody("hi there"));
    expect(res.status).toBe(200);
    body = (await res.json()) as Json;
    expect(body.candidates[0].content.parts[0].text).toBe("mock answer: hi there");
    expect(body.usageMetadata).toEqual({
      promptTokenCount: 2,
      candidatesTokenCount: 6,
      totalTokenCount: 8,
    });
  });
});

test("requireKey answers a missing or wrong key as each provider does (OpenAI 401, Gemini 400 API_KEY_INVALID)", async () => {
  await withMock({ requireKey: "sekret" }, async (mock) => {
    let res = await post(mock.url, CHAT, chatBody("x"));
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: { type: "invalid_request_error", code: "invalid_api_key", param: null },
    });
    res = await post(mock.url, CHAT, chatBody("x"), { authorization: "Bearer nope" });
    expect(res.status).toBe(401);
    res = await post(mock.url, CHAT, chatBody("x"), { authorization: "Bearer sekret" });
    expect(res.status).toBe(200);
    res = await post(mock.url, RESPONSES, JSON.stringify({ model: "m", input: "x" }), {
      authorization: "Bearer sekret",
    });
    expect(res.status).toBe(200);

    res = await post(mock.url, GEMINI, geminiBody("x"), { "x-goog-api-key": "nope" });
    expect(res.status).toBe(400);
    const bad = await res.json();
    expect(bad.error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT" });
    expect(bad.error.details[0]).toMatchObject({ reason: "API_KEY_INVALID" });
    res = await post(mock.url, GEMINI, geminiBody("x"), { "x-goog-api-key": "sekret" });
    expect(res.status).toBe(200);
    res = await post(mock.url, `${GEMINI}?key=sekret`, geminiBody("x"));
    expect(res.status).toBe(200);
    expect(mock.arrivals().map((a) => a.status)).toEqual([401, 401, 200, 200, 400, 200, 200]);
  });
});

test("status directives answer that status in each provider's error shape", async () => {
  const geminiNames: Record<number, string> = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
  };
  await withMock({}, async (mock) => {
    for (const status of [400, 401, 408, 409, 429, 500, 503]) {
      for (let attempt = 0; attempt < 2; attempt++) {
        let res = await post(mock.url, CHAT, chatBody(`q [[mock:${status}]]`));
        expect(res.status).toBe(status);
        const err = ((await res.json()) as Json).error;
        expect(err.param).toBeNull();
        expect(typeof err.message).toBe("string");
        expect(err.type).toBe(
          status >= 500 ? "server_error" : status === 429 ? "requests" : "invalid_request_error",
        );
        if (status === 429) expect(err.code).toBe("rate_limit_exceeded");

        res = await post(mock.url, GEMINI, geminiBody(`q [[mock:${status}]]`));
        expect(res.status).toBe(status);
        expect(((await res.json()) as Json).error).toMatchObject({
          code: status,
          status: geminiNames[status],
        });
      }
    }
  });
});

test("429 carries retry headers and Gemini RetryInfo only when asked", async () => {
  await withMock({}, async (mock) => {
    let res = await post(mock.url, CHAT, chatBody("[[mock:429]]"));
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBeNull();
    expect(res.headers.get("retry-after-ms")).toBeNull();
    await res.body?.cancel();

    res = await post(mock.url, CHAT, chatBody("[[mock:429]] [[mock:retry-after=2]]"));
    expect(res.headers.get("retry-after")).toBe("2");
    expect(res.headers.get("retry-after-ms")).toBeNull();
    await res.body?.cancel();

    res = await post(mock.url, CHAT, chatBody("[[mock:429]][[mock:retry-after-ms=1500]]"));
    expect(res.headers.get("retry-after-ms")).toBe("1500");
    expect(res.headers.get("retry-after")).toBeNull();
    await res.body?.cancel();

    res = await post(mock.url, GEMINI, geminiBody("[[mock:429]]"));
    expect(((await res.json()) as Json).error.details).toEqual([]);
    res = await post(mock.url, GEMINI, geminiBody("[[mock:429]] [[mock:retry-delay=7]]"));
    expect(res.status).toBe(429);
    expect(((await res.json()) as Json).error.details).toContainEqual({
      "@type": "type.googleapis.com/google.rpc.RetryInfo",
      retryDelay: "7s",
    });
  });
});

test("[[mock:insufficient_quota]] answers OpenAI 429 insufficient_quota", async () => {
  await withMock({}, async (mock) => {
    const res = await post(mock.url, CHAT, chatBody("[[mock:insufficient_quota]]"));
    expect(res.status).toBe(429);
    expect(((await res.json()) as Json).error).toMatchObject({
      type: "insufficient_quota",
      code: "insufficient_quota",
    });
  });
});

test("[[mock:fail=K:STATUS]] fails the first K attempts of the same prompt and model", async () => {
  await withMock({}, async (mock) => {
    const prompt = "job 7 [[mock:fail=2:500]]";
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await post(mock.url, CHAT, chatBody(prompt), { "x-mft-id": "job-7" });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses).toEqual([500, 500, 200, 200]);

    // Another model is another request, with its own count.
    const other = await post(mock.url, CHAT, chatBody(prompt, "other-model"));
    expect(other.status).toBe(500);
    await other.body?.cancel();

    // reset() forgets the counts.
    mock.reset();
    const again = await post(mock.url, CHAT, chatBody(prompt));
    expect(again.status).toBe(500);
    await again.body?.cancel();

    // Gemini counts by the URL's model and the user text.
    const g: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(mock.url, GEMINI, geminiBody("g [[mock:fail=1:503]]"));
      g.push(res.status);
      await res.body?.cancel();
    }
    expect(g).toEqual([503, 200, 200]);
  });
});

test("[[mock:fail=K:reset]] and [[mock:fail=K:badjson]] then succeed", async () => {
  await withMock({}, async (mock) => {
    await expect(post(mock.url, CHAT, chatBody("r [[mock:fail=1:reset]]"))).rejects.toThrow();
    const ok = await post(mock.url, CHAT, chatBody("r [[mock:fail=1:reset]]"));
    expect(ok.status).toBe(200);
    await ok.body?.cancel();

    const bad = await post(mock.url, CHAT, chatBody("b [[mock:fail=1:badjson]]"));
    expect(bad.status).toBe(200);
    await expect(bad.json()).rejects.toThrow();
    const good = await post(mock.url, CHAT, chatBody("b [[mock:fail=1:badjson]]"));
    expect(((await good.json()) as Json).object).toBe("chat.completion");
    expect(mock.arrivals().map((a) => a.status)).toEqual([0, 200, 200, 200]);
  });
});

test("outcome directives apply in text order, attempt by attempt", async () => {
  await withMock({}, async (mock) => {
    const prompt = "[[mock:fail=1:429]] [[mock:fail=3:503]]";
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await post(mock.url, CHAT, chatBody(prompt));
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses).toEqual([429, 503, 503, 200]);
  });
});

test("[[mock:reset]] drops the connection so fetch rejects, and records status 0", async () => {
  await withMock({}, async (mock) => {
    await expect(post(mock.url, CHAT, chatBody("[[mock:reset]]"), { "x-mft-id": "r1" })).rejects
      .toThrow();
    await expect(post(mock.url, GEMINI, geminiBody("[[mock:reset]]"))).rejects.toThrow();
    // The server keeps serving after a reset.
    const res = await post(mock.url, CHAT, chatBody("fine"));
    expect(res.status).toBe(200);
    await res.body?.cancel();
    expect(mock.arrivals().map((a) => [a.id, a.status])).toEqual([
      ["r1", 0],
      [null, 0],
      [null, 200],
    ]);
  });
});

test("[[mock:badjson]] answers 200 with truncated JSON", async () => {
  await withMock({}, async (mock) => {
    let res = await post(mock.url, CHAT, chatBody("[[mock:badjson]]"));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"choices": [');
    res = await post(mock.url, GEMINI, geminiBody("[[mock:badjson]]"));
    expect(res.status).toBe(200);
    await expect(res.json()).rejects.toThrow();
  });
});

test("latency applies to successes and errors; [[mock:latency=MS]] overrides it", async () => {
  await withMock({ latencyMs: 120 }, async (mock) => {
    let t = performance.now();
    let res = await post(mock.url, CHAT, chatBody("slow"));
    await res.body?.cancel();
    expect(performance.now() - t).toBeGreaterThanOrEqual(110);

    t = performance.now();
    res = await post(mock.url, CHAT, chatBody("[[mock:500]]"));
    await res.body?.cancel();
    expect(res.status).toBe(500);
    expect(performance.now() - t).toBeGreaterThanOrEqual(110);

    t = performance.now();
    res = await post(mock.url, CHAT, chatBody("[[mock:latency=0]]"));
    await res.body?.cancel();
    expect(res.status).toBe(200);
    expect(performance.now() - t).toBeLessThan(110);

    t = performance.now();
    res = await post(mock.url, GEMINI, geminiBody("[[mock:latency=300]]"));
    await res.body?.cancel();
    expect(performance.now() - t).toBeGreaterThanOrEqual(290);
  });
});

test("arrivals record path, x-mft-id and status in arrival order", async () => {
  await withMock({}, async (mock) => {
    const send = async (path: string, body: string, id?: string) => {
      const res = await post(mock.url, path, body, id ? { "x-mft-id": id } : {});
      await res.body?.cancel();
    };
    await send(CHAT, chatBody("a"), "id-a");
    await send(GEMINI, geminiBody("b [[mock:503]]"), "id-b");
    await send(RESPONSES, JSON.stringify({ model: "m", input: "c" }));
    await send(`${GEMINI}?key=k`, geminiBody("d"), "id-d");
    const arrivals = mock.arrivals();
    expect(arrivals.map(({ path, id, status }) => ({ path, id, status }))).toEqual([
      { path: CHAT, id: "id-a", status: 200 },
      { path: GEMINI, id: "id-b", status: 503 },
      { path: RESPONSES, id: null, status: 200 },
      { path: GEMINI, id: "id-d", status: 200 },
    ]);
    for (let i = 1; i < arrivals.length; i++) {
      expect(arrivals[i].t).toBeGreaterThanOrEqual(arrivals[i - 1].t);
    }
    // Control routes are not arrivals and speak JSON.
    const viaHttp = (await (await fetch(`${mock.url}/__mock/arrivals`)).json()) as Json;
    expect(viaHttp.arrivals).toEqual(arrivals);
    expect(mock.arrivals()).toHaveLength(4);

    // arrivals() returns copies.
    arrivals[0].status = 999;
    expect(mock.arrivals()[0].status).toBe(200);

    const reset = await fetch(`${mock.url}/__mock/reset`, { method: "POST" });
    expect(reset.status).toBe(200);
    await reset.body?.cancel();
    expect(mock.arrivals()).toEqual([]);
    expect(mock.stats().count).toBe(0);
  });
});

test("stats() reports count, window maximum, first/last and rate", async () => {
  await withMock({}, async (mock) => {
    expect(mock.stats()).toEqual({
      count: 0,
      maxPerWindow: 0,
      firstMs: 0,
      lastMs: 0,
      rate: 0,
      accepted: 0,
      acceptedRate: 0,
      rejected429: 0,
    });
    for (let i = 0; i < 5; i++) {
      const res = await post(mock.url, CHAT, chatBody(`n${i}`));
      await res.body?.cancel();
      await Bun.sleep(20);
    }
    const stats = mock.stats();
    const times = mock.arrivals().map((a) => a.t);
    expect(stats.count).toBe(5);
    expect(stats.firstMs).toBe(times[0]);
    expect(stats.lastMs).toBe(times[4]);
    expect(stats.maxPerWindow).toBe(maxPerWindow(times));
    expect(stats.rate).toBeCloseTo(4 / ((times[4] - times[0]) / 1000), 6);
    // All five were answered 200, so the accepted ones are the arrivals.
    expect(stats.accepted).toBe(5);
    expect(stats.acceptedRate).toBeCloseTo(stats.rate, 6);
    expect(stats.rejected429).toBe(0);
    const viaHttp = await (await fetch(`${mock.url}/__mock/stats`)).json();
    expect(viaHttp).toEqual(stats);
  });
});

test("recordArrivals: false keeps stats but no arrivals", async () => {
  await withMock({ recordArrivals: false }, async (mock) => {
    for (let i = 0; i < 3; i++) {
      const res = await post(mock.url, CHAT, chatBody("x"));
      await res.body?.cancel();
    }
    expect(mock.arrivals()).toEqual([]);
    expect(mock.stats().count).toBe(3);
    expect(mock.stats().maxPerWindow).toBe(3);
  });
});

test("2,000 concurrent fetches with 300 ms latency are all answered", async () => {
  await withMock({ latencyMs: 300 }, async (mock) => {
    const results = await Promise.all(
      Array.from({ length: 2000 }, async (_, i) => {
        const res = await post(mock.url, CHAT, chatBody(`c${i}`), { "x-mft-id": `c${i}` });
        const body = (await res.json()) as Json;
        return body.choices[0].message.content === `mock answer: c${i}` ? res.status : -1;
      }),
    );
    expect(results.every((s) => s === 200)).toBe(true);
    expect(mock.stats().count).toBe(2000);
    expect(new Set(mock.arrivals().map((a) => a.id)).size).toBe(2000);
  });
}, 60_000);

test("the server holds 2,000 connections open at once", async () => {
  // Bun's fetch opens at most 256 connections at a time unless BUN_CONFIG_MAX_HTTP_REQUESTS is
  // set at startup, so raw sockets are used to open them all together.
  const latencyMs = 1500;
  await withMock({ latencyMs }, async (mock) => {
    const { port } = new URL(mock.url);
    const body = chatBody("held");
    const request =
      `POST ${CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const one = () =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), "127.0.0.1", () => socket.write(request));
        let data = "";
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => (data += chunk));
        socket.on("end", () => resolve(data));
        socket.on("error", reject);
      });
    // Opened 200 at a time: a synchronous burst of 2,000 connects from this same event loop
    // overflows the listen backlog and the kernel retries the dropped SYNs only after 1 s.
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 2000; i++) {
      answers.push(one());
      if (i % 200 === 199) await Bun.sleep(5);
    }
    const texts = await Promise.all(answers);
    expect(texts.every((a) => a.startsWith("HTTP/1.1 200"))).toBe(true);
    const stats = mock.stats();
    expect(stats.count).toBe(2000);
    // Each request is held latencyMs from its arrival; if the last one arrived before the
    // first one was answered, all 2,000 were open at the same moment.
    expect(stats.lastMs - stats.firstMs).toBeLessThan(latencyMs);
  });
}, 60_000);

test("close() ends pending requests and leaves nothing running", async () => {
  const mock = await startMockProvider({ latencyMs: 60_000 });
  const pending = post(mock.url, CHAT, chatBody("never answered")).then(
    () => "resolved",
    () => "rejected",
  );
  while (mock.stats().count === 0) await Bun.sleep(5);
  const t = performance.now();
  await mock.close();
  await mock.close(); // idempotent
  expect(performance.now() - t).toBeLessThan(2000);
  expect(await pending).toBeDefined();
  await expect(fetch(`${mock.url}/__mock/stats`)).rejects.toThrow();

  // A process that only starts the mock, makes a 60 s request and closes must exit by itself:
  // no timer, socket or server may be left keeping it alive.
  const dir = mkdtempSync(join(tmpdir(), "mock-provider-"));
  try {
    const script = join(dir, "child.ts");
    const modulePath = new URL("./mocks/mock_provider.ts", import.meta.url).pathname;
    writeFileSync(
      script,
      `import { startMockProvider } from ${JSON.stringify(modulePath)};
const mock = await startMockProvider({ latencyMs: 60_000 });
const p = fetch(mock.url + "/v1/chat/completions", {
  method: "POST",
  body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }] }),
}).catch(() => {});
while (mock.stats().count === 0) await Bun.sleep(5);
await mock.close();
await p;
console.log("closed");
`,
    );
    const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => child.kill(), 15_000);
    const code = await child.exited;
    clearTimeout(timer);
    expect(await new Response(child.stdout).text()).toBe("closed\n");
    expect(code).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
