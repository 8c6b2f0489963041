/**
 * The provider adapters against real answers and error bodies (tests/fixtures/providers/):
 * classifyGemini / classifyOpenAI, the answer readers (text, finish reason, answers without
 * text), redact(), the reasoning-model parameters and the gate of a run's first answers.
 * @module
 */
import { expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { toChatCompletion, toGenerateContentResponse } from "../src/convert.ts";
import { type FailureInfo, isProviderError } from "../src/errors.ts";
import { fromGeminiFinishReason, toGeminiFinishReason } from "../src/finish_reason.ts";
import { FirstAnswers, SAME_FAILURES_TO_STOP } from "../src/first_answers.ts";
import { parseLine, type RequestItem } from "../src/formats.ts";
import { classifyGemini, geminiResponse } from "../src/providers/gemini/classify.ts";
import { createGeminiProvider } from "../src/providers/gemini/realtime.ts";
import { classifyOpenAI, openAIResponse } from "../src/providers/openai/classify.ts";
import { createOpenAIProvider } from "../src/providers/openai/realtime.ts";
import { adaptOpenAIBody, isReasoningModel } from "../src/providers/openai/params.ts";
import { fetchPost, type HttpPost, redact } from "../src/providers/http.ts";
import { nodeHttpPost } from "../src/adapter/node_http_post.ts";
import { saysQuotaSpent } from "../src/_rate_controller.ts";
import { parseTokenLimit } from "../src/token_limit.ts";

const DIR = path.join(import.meta.dir, "fixtures", "providers");

interface Fixture {
  name: string;
  provider: "gemini" | "openai";
  source: string;
  status: number;
  headers?: Record<string, string>;
  body: unknown;
  expect: Record<string, unknown>;
}

function fixtures(provider: "gemini" | "openai"): Fixture[] {
  const dir = path.join(DIR, provider);
  return fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) => ({
    name: `${provider}/${f}`,
    provider,
    ...JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")),
  }));
}

const ALL = [...fixtures("gemini"), ...fixtures("openai")];
const ERRORS = ALL.filter((f) => f.status >= 400);
const ANSWERS = ALL.filter((f) => f.status === 200);

function item(line: Record<string, unknown>): RequestItem {
  const parsed = parseLine(JSON.stringify(line), 1);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.item;
}

const SIMPLE = item({ id: "s1", prompt: "hi" });

/** A fetch that answers every request with the fixture, and records what it was sent. */
function fixtureFetch(f: { status: number; headers?: Record<string, string>; body: unknown }) {
  const sent: Request[] = [];
  const fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    sent.push(new Request(input, init));
    const text = typeof f.body === "string" ? f.body : JSON.stringify(f.body);
    return Promise.resolve(
      new Response(text, {
        status: f.status,
        headers: { "content-type": "application/json", ...f.headers },
      }),
    );
  };
  return { fetch: fetch as typeof globalThis.fetch, sent };
}

test("the fixtures cover both providers' errors and answers, each with its source", () => {
  expect(ERRORS.filter((f) => f.provider === "gemini").length).toBeGreaterThanOrEqual(10);
  expect(ERRORS.filter((f) => f.provider === "openai").length).toBeGreaterThanOrEqual(10);
  expect(ANSWERS.length).toBeGreaterThanOrEqual(15);
  for (const f of ALL) {
    expect(typeof f.source).toBe("string");
    expect(f.source.length).toBeGreaterThan(10);
    expect(f.expect).toBeDefined();
  }
});

for (const f of ERRORS) {
  test(`classify${f.provider === "gemini" ? "Gemini" : "OpenAI"}() reads ${f.name}`, () => {
    const classify = f.provider === "gemini" ? classifyGemini : classifyOpenAI;
    const info = classify(f.status, f.body, new Headers(f.headers));
    expect(info.status).toBe(f.status);
    const { kind, ...rest } = f.expect;
    // No kind in the fixture means the failure is the item's own.
    expect(info.kind).toBe(kind as FailureInfo["kind"]);
    for (const [key, value] of Object.entries(rest)) {
      expect([key, info[key as keyof FailureInfo]]).toEqual([key, value]);
    }
    expect(info.message.length).toBeGreaterThan(0);
  });
}

for (const f of ANSWERS) {
  test(`the ${f.provider} answer reader reads ${f.name}`, () => {
    const body = f.body as Record<string, unknown>;
    const r = f.provider === "gemini"
      ? geminiResponse(SIMPLE, 200, body, "m")
      : openAIResponse(SIMPLE, 200, body, "m", {});
    expect(r.text as unknown).toEqual(f.expect.text);
    expect(r.finishReason as unknown).toEqual(f.expect.finishReason);
    expect(r.noText?.code as unknown).toEqual(f.expect.noText);
    if (f.expect.usage) expect(r.usage).toEqual(f.expect.usage as typeof r.usage);
  });
}

test("an answer without text never passes as a success: send() rejects with its kind", async () => {
  for (const f of ANSWERS.filter((a) => a.expect.noText !== undefined)) {
    const { fetch } = fixtureFetch(f);
    const provider = f.provider === "gemini"
      ? createGeminiProvider({ apiKey: "k-123456", fetch })
      : createOpenAIProvider({ apiKey: "k-123456", fetch });
    const line = f.name.includes("responses")
      ? item({ custom_id: "c", url: "/v1/responses", body: { model: "m", input: "hi" } })
      : SIMPLE;
    const error = await provider.send(line).then(() => undefined, (e) => e);
    expect([f.name, isProviderError(error)]).toEqual([f.name, true]);
    expect([f.name, error.info.code]).toEqual([f.name, f.expect.noText]);
    expect(error.info.status).toBe(200);
    // Only an empty answer with no reason is worth another attempt.
    expect(error.info.retryable).toBe(f.expect.noText === "empty_answer");
    expect(error.info.response).toEqual(f.body);
    expect(error.info.finishReason).toEqual(f.expect.finishReason);
  }
});

test("answers with text succeed and carry their finish reason", async () => {
  for (const f of ANSWERS.filter((a) => a.expect.noText === undefined && a.expect.text)) {
    const { fetch } = fixtureFetch(f);
    const provider = f.provider === "gemini"
      ? createGeminiProvider({ apiKey: "k-123456", fetch })
      : createOpenAIProvider({ apiKey: "k-123456", fetch });
    const line = f.name.includes("responses")
      ? item({ custom_id: "c", url: "/v1/responses", body: { model: "m", input: "hi" } })
      : SIMPLE;
    const r = await provider.send(line);
    expect([f.name, r.text, r.finishReason] as unknown[]).toEqual([
      f.name,
      f.expect.text,
      f.expect.finishReason,
    ]);
  }
});

test("redact() removes the key from every fixture's failure message, wherever it appears", async () => {
  const key = `test-key-${crypto.randomUUID()}`;
  for (const f of ERRORS) {
    // A proxy or a provider that echoes the key: put it in the message (or the raw text).
    const body = typeof f.body === "string" ? `${f.body} key=${key}` : JSON.parse(
      JSON.stringify(f.body).replace(
        /"message":"/,
        `"message":"${key} (${key}) `,
      ),
    );
    const { fetch } = fixtureFetch({ ...f, body });
    const provider = f.provider === "gemini"
      ? createGeminiProvider({ apiKey: key, fetch })
      : createOpenAIProvider({ apiKey: key, fetch });
    const error = await provider.send(SIMPLE).then(() => undefined, (e) => e);
    expect(isProviderError(error)).toBe(true);
    expect([f.name, error.info.message.includes(key)]).toEqual([f.name, false]);
    expect([f.name, error.message.includes(key)]).toEqual([f.name, false]);
  }
  // Nothing else is touched.
  for (const f of ALL) {
    const text = JSON.stringify(f.body);
    expect(redact(text, key)).toBe(text);
  }
  expect(redact("a KEY1 b KEY1", "KEY1")).toBe("a [redacted] b [redacted]");
  expect(redact("abc", "ab")).toBe("abc"); // too short to be a key: left alone
  expect(redact("abc", undefined)).toBe("abc");
});

test("the adapters send the key in a header, never in the URL", async () => {
  const key = `test-key-${crypto.randomUUID()}`;
  const ok = ANSWERS.find((f) => f.name === "gemini/answer_text.json")!;
  const { fetch, sent } = fixtureFetch(ok);
  await createGeminiProvider({ apiKey: key, fetch }).send(SIMPLE);
  expect(sent[0].url).not.toContain(key);
  expect(sent[0].headers.get("x-goog-api-key")).toBe(key);
});

test("finish reasons map both ways between Gemini and OpenAI", () => {
  expect(fromGeminiFinishReason("STOP")).toBe("stop");
  expect(fromGeminiFinishReason("MAX_TOKENS")).toBe("length");
  for (const r of ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"]) {
    expect(fromGeminiFinishReason(r)).toBe("content_filter");
  }
  expect(fromGeminiFinishReason("OTHER")).toBe("stop");
  expect(fromGeminiFinishReason(undefined)).toBe(undefined);
  expect(toGeminiFinishReason("length")).toBe("MAX_TOKENS");
  expect(toGeminiFinishReason("content_filter")).toBe("SAFETY");
  expect(toGeminiFinishReason("stop")).toBe("STOP");
  expect(toGeminiFinishReason(null)).toBe("FINISH_REASON_UNSPECIFIED");
});

test("an OpenAI batch line answered by Gemini with MAX_TOKENS comes back with finish_reason length", () => {
  const line = item({
    custom_id: "c1",
    url: "/v1/chat/completions",
    body: { model: "gemini-2.5-flash", messages: [{ role: "user", content: "hi" }] },
  });
  const partial = ANSWERS.find((f) => f.name === "gemini/answer_max_tokens_partial.json")!;
  const r = geminiResponse(line, 200, partial.body as Record<string, unknown>, "gemini-2.5-flash");
  const body = r.body as { choices: { finish_reason: string; message: { content: string } }[] };
  expect(body.choices[0].finish_reason).toBe("length");
  expect(body.choices[0].message.content).toBe("The history of Rome begins with");
  // And the other way: a Gemini batch line answered by OpenAI with "length".
  const g = item({ key: "k1", request: { contents: [{ role: "user", parts: [{ text: "x" }] }] } });
  const cut = ANSWERS.find((f) => f.name === "openai/chat_length_partial.json")!;
  const o = openAIResponse(g, 200, cut.body as Record<string, unknown>, "gpt-4o", {});
  const gbody = o.body as { candidates: { finishReason: string }[] };
  expect(gbody.candidates[0].finishReason).toBe("MAX_TOKENS");
  expect(toChatCompletion("x", { input_tokens: 1, output_tokens: 1 }, "m", "content_filter"))
    .toMatchObject({ choices: [{ finish_reason: "content_filter" }] });
  expect(toGenerateContentResponse("x", { input_tokens: 1, output_tokens: 1 }, "m", "length"))
    .toMatchObject({ candidates: [{ finishReason: "MAX_TOKENS" }] });
});

test("isReasoningModel() knows gpt-5*, o1, o3, o4 and not chat or older models", () => {
  for (const m of ["gpt-5", "gpt-5-mini", "gpt-5.2", "gpt-5-nano-2025-08-07", "o1", "o3-mini"]) {
    expect([m, isReasoningModel(m)]).toEqual([m, true]);
  }
  for (const m of ["o4-mini", "openai/gpt-5", "O3"]) {
    expect([m, isReasoningModel(m)]).toEqual([m, true]);
  }
  for (
    const m of [
      "gpt-4o",
      "gpt-4.1-mini",
      "gpt-5-chat-latest",
      "gpt-5.1-chat-latest",
      "llama3",
      "o10",
      "gpt-50",
    ]
  ) {
    expect([m, isReasoningModel(m)]).toEqual([m, false]);
  }
});

test("adaptOpenAIBody() turns max_tokens into max_completion_tokens and drops what reasoning models refuse", () => {
  const dropped: string[] = [];
  const onDrop = (p: string) => dropped.push(p);
  const body = {
    model: "gpt-5-mini",
    messages: [],
    max_tokens: 64,
    temperature: 0.2,
    top_p: 1,
    seed: 7,
  };
  expect(adaptOpenAIBody(body, { openAIHost: true, onDrop })).toEqual({
    model: "gpt-5-mini",
    messages: [],
    max_completion_tokens: 64,
    top_p: 1, // the default value is accepted
    seed: 7,
  });
  expect(dropped).toEqual(["temperature"]);
  expect(body.max_tokens).toBe(64); // the input is not changed
  // Reasoning model names are recognised behind any base URL (a proxy, our mock).
  expect(adaptOpenAIBody({ model: "o3", max_tokens: 5, temperature: 1 }, { openAIHost: false }))
    .toEqual({ model: "o3", max_completion_tokens: 5, temperature: 1 });
  // OpenAI's own API: every model gets the current field.
  expect(adaptOpenAIBody({ model: "gpt-4o", max_tokens: 5, temperature: 0 }, { openAIHost: true }))
    .toEqual({ model: "gpt-4o", max_completion_tokens: 5, temperature: 0 });
  // vLLM, Ollama: unchanged, the very same object.
  const plain = { model: "llama3", max_tokens: 5, temperature: 0 };
  expect(adaptOpenAIBody(plain, { openAIHost: false })).toBe(plain);
});

test("the OpenAI adapter warns once per model and parameter it drops", async () => {
  const ok = ANSWERS.find((f) => f.name === "openai/chat_text.json")!;
  const { fetch, sent } = fixtureFetch(ok);
  const warnings: string[] = [];
  const provider = createOpenAIProvider({
    apiKey: `test-key-${crypto.randomUUID()}`,
    fetch,
    onWarning: (m) => warnings.push(m),
  });
  for (let i = 0; i < 3; i++) {
    await provider.send(item({ id: `w${i}`, prompt: "x", temperature: 0.5, max_tokens: 9 }));
  }
  expect(warnings.length).toBe(1);
  expect(warnings[0]).toContain("gpt-5-mini takes no temperature");
  const body = await sent[0].json();
  expect(body).toEqual({
    model: "gpt-5-mini",
    messages: [{ role: "user", content: "x" }],
    max_completion_tokens: 9,
  });
});

const failure = (extra: Partial<FailureInfo>): FailureInfo => ({
  status: 400,
  code: "bad",
  message: "bad",
  retryable: false,
  ...extra,
});

test("FirstAnswers stops on a config failure before any success, not after one", () => {
  const first = new FirstAnswers();
  expect(first.open).toBe(false);
  const config = failure({ status: 404, code: "model_not_found", kind: "config" });
  expect(first.failure(config)).toBe(config);
  const after = new FirstAnswers();
  after.success();
  expect(after.open).toBe(true);
  expect(after.failure(config)).toBe(undefined);
});

test("FirstAnswers stops when the first answers all fail the same way", () => {
  const first = new FirstAnswers();
  for (let i = 1; i < SAME_FAILURES_TO_STOP; i++) {
    expect(first.failure(failure({}))).toBe(undefined);
    expect(first.open).toBe(false);
  }
  const stop = first.failure(failure({ message: 'Unknown name "topK2"' }));
  expect(stop?.kind).toBe("config");
  expect(stop?.message).toContain("Unknown name");
});

test("FirstAnswers opens on different item failures, retryable ones and answers without text", () => {
  const mixed = new FirstAnswers();
  mixed.failure(failure({ code: "a" }));
  mixed.failure(failure({ code: "b" }));
  expect(mixed.open).toBe(true);
  for (let i = 0; i < 5; i++) expect(mixed.failure(failure({ code: "b" }))).toBe(undefined);

  const transient = new FirstAnswers();
  transient.failure(failure({ status: 503, retryable: true }));
  expect(transient.open).toBe(true);

  const blocked = new FirstAnswers();
  blocked.failure(failure({ status: 200, code: "blocked" }));
  expect(blocked.open).toBe(true);
  expect(blocked.confirmed).toBe(true);
});

// Token estimates from the exact request body, checked against what the mock provider's token
// quota charges for the request it received (issue 15).
test("OpenAI estimate() is what OpenAI's token quota charges the body it sends", async () => {
  const { startMockProvider } = await import("./mocks/mock_provider.ts");
  const mock = await startMockProvider({
    tokenQuota: { tokens: 1_000_000, windowMs: 10_000, count: "request" },
  });
  try {
    const provider = createOpenAIProvider({ baseUrl: `${mock.url}/v1`, apiKey: "k", model: "m" });
    const lines = [
      { id: "a", prompt: "x".repeat(1500), max_tokens: 100, system: "Be brief." },
      { id: "b", messages: [{ role: "user", content: "hi" }], temperature: 0.2 },
    ];
    for (const line of lines) await provider.send(item(line));
    const charged = mock.tokensAccepted().map((x) => x.tokens);
    const estimated = lines.map((line) => {
      const e = provider.estimate!(item(line));
      expect(e).toMatchObject({ counts: "request", model: "m" });
      return e.prompt + e.output;
    });
    expect(estimated).toEqual(charged);
  } finally {
    await mock.close();
  }
});

test("Gemini estimate() counts the input tokens only, as its input-token quota does", async () => {
  const { startMockProvider } = await import("./mocks/mock_provider.ts");
  const mock = await startMockProvider({
    tokenQuota: { tokens: 1_000_000, windowMs: 10_000, count: "input" },
  });
  try {
    const provider = createGeminiProvider({ baseUrl: mock.url, apiKey: "k", model: "g" });
    const line = { id: "a", prompt: "y".repeat(801), max_tokens: 100, system: "Sys." };
    const response = await provider.send(item(line));
    const e = provider.estimate!(item(line));
    expect(e).toMatchObject({ output: 0, counts: "input", model: "g" });
    expect(e.prompt).toBe(mock.tokensAccepted()[0].tokens);
    expect(e.prompt).toBe(response.usage.input_tokens);
  } finally {
    await mock.close();
  }
});

/** The failure a provider adapter makes of a fixture's answer. */
async function failureOf(f: Fixture): Promise<FailureInfo> {
  const { fetch } = fixtureFetch(f);
  const provider = f.provider === "gemini"
    ? createGeminiProvider({ apiKey: "k-123456", fetch })
    : createOpenAIProvider({ apiKey: "k-123456", fetch });
  const error = await provider.send(SIMPLE).then(() => undefined, (e) => e);
  if (!isProviderError(error)) throw new Error(`${f.name}: send() did not fail`);
  return error.info;
}

test("the rate controller reads real 429 bodies: a quota named or counted is spent, a nameless one is not", async () => {
  const limits = ERRORS.filter((f) => f.status === 429 && f.expect.kind === "rate_limit");
  expect(limits.length).toBeGreaterThanOrEqual(4);
  for (const f of limits) {
    const info = await failureOf(f);
    // Gemini's "Resource has been exhausted" and its 429 whose only detail is a Help link name no
    // quota and count nothing: the controller's rules for nameless 429s read those.
    const nameless = ["gemini/error_no_detail.json", "gemini/error_help_only.json"];
    expect([f.name, saysQuotaSpent(info)]).toEqual([f.name, !nameless.includes(f.name)]);
  }
});

test("token 429s of the real bodies: OpenAI's TPM message is read, its RPM one and Gemini's are not tokens", async () => {
  const byName = (name: string) => ERRORS.find((f) => f.name === name)!;
  expect(parseTokenLimit(await failureOf(byName("openai/error_rate_limit_tpm.json")))).toEqual({
    limit: 30000,
    used: 29500,
    requested: 1200,
    retryAfterMs: 1400,
    inputOnly: false,
  });
  expect(parseTokenLimit(await failureOf(byName("openai/error_rate_limit_rpm.json"))))
    .toBeUndefined();
  expect(parseTokenLimit(await failureOf(byName("gemini/error_no_detail.json")))).toBeUndefined();
});

test("every real answer and error reads the same through each sender the CLI uses, over a socket", async () => {
  // The fixtures served for real on 127.0.0.1 (the first path segment picks one), read through
  // ky over fetch (Bun), fetchPost (Deno) and nodeHttpPost (Node): the wire must not change them.
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (req) => {
      const f = ALL[Number(new URL(req.url).pathname.split("/")[1])];
      const text = typeof f.body === "string" ? f.body : JSON.stringify(f.body);
      return new Response(text, {
        status: f.status,
        headers: { "content-type": "application/json", ...f.headers },
      });
    },
  });
  const key = `test-key-${crypto.randomUUID()}`;
  const pick = ({ status, kind, code, retryable, retryAfterMs }: FailureInfo) => ({
    status,
    kind,
    code,
    retryable,
    retryAfterMs,
  });
  const senders: [string, HttpPost | undefined][] = [
    ["ky", undefined],
    ["fetchPost", fetchPost()],
    ["nodeHttpPost", nodeHttpPost()],
  ];
  try {
    for (const [sender, post] of senders) {
      for (const [i, f] of ALL.entries()) {
        const baseUrl = `http://127.0.0.1:${server.port}/${i}/v1`;
        const provider = f.provider === "gemini"
          ? createGeminiProvider({ apiKey: key, baseUrl, post })
          : createOpenAIProvider({ apiKey: key, baseUrl, post });
        const line = f.name.includes("responses")
          ? item({ custom_id: "c", url: "/v1/responses", body: { model: "m", input: "hi" } })
          : SIMPLE;
        const seen = await provider.send(line).then(
          (r) => ({ text: r.text, finishReason: r.finishReason }),
          (e) => isProviderError(e) ? pick(e.info) : e,
        );
        const label = [sender, f.name];
        if (f.status === 200 && f.expect.noText === undefined) {
          expect([...label, seen]).toEqual([...label, {
            text: f.expect.text,
            finishReason: f.expect.finishReason,
          }]);
        } else if (f.status === 200) {
          expect([...label, (seen as FailureInfo).code] as unknown[]).toEqual([
            ...label,
            f.expect.noText,
          ]);
        } else {
          // What the classifier makes of the fixture itself, headers (retry hints) included.
          const classify = f.provider === "gemini" ? classifyGemini : classifyOpenAI;
          const direct = pick(classify(f.status, f.body, new Headers(f.headers)));
          expect([...label, seen]).toEqual([...label, direct]);
        }
      }
    }
  } finally {
    server.stop(true);
  }
});
