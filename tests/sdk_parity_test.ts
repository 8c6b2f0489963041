/**
 * Our adapters send what the official SDKs (`openai`, `@google/genai`) send for the same call:
 * a recording server on 127.0.0.1 receives both requests, and the test compares the path, the
 * auth header and the JSON body.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { GoogleGenAI } from "@google/genai";
import OpenAI from "openai";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseLine, type RequestItem } from "../src/formats.ts";
import { createGeminiProvider } from "../src/providers/gemini/realtime.ts";
import { createOpenAIProvider } from "../src/providers/openai/realtime.ts";

const FIXTURES = path.join(import.meta.dir, "fixtures", "providers");
const answer = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(FIXTURES, name), "utf8")).body as unknown;

interface Recorded {
  path: string;
  authorization: string | null;
  googApiKey: string | null;
  body: unknown;
}

let server: ReturnType<typeof Bun.serve>;
let recorded: Recorded[] = [];
let base: string;

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      recorded.push({
        path: url.pathname + url.search,
        authorization: req.headers.get("authorization"),
        googApiKey: req.headers.get("x-goog-api-key"),
        body: await req.json(),
      });
      const body = url.pathname.includes(":generateContent")
        ? answer("gemini/answer_text.json")
        : answer("openai/chat_text.json");
      return Response.json(body);
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop(true));

function item(line: Record<string, unknown>): RequestItem {
  const parsed = parseLine(JSON.stringify(line), 1);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.item;
}

/** The one request `call` makes, as the server saw it. */
async function record(call: () => Promise<unknown>): Promise<Recorded> {
  recorded = [];
  await call();
  expect(recorded.length).toBe(1);
  return recorded[0];
}

/**
 * The SDK pinned to `v1beta`, the version of Gemini's REST reference and the one we call: since
 * 3.x the SDK defaults to `v1` (same request body), and v1beta is where every generation feature
 * (thinking config, batch mode) is served first.
 */
const geminiSdk = () =>
  new GoogleGenAI({ apiKey: GEMINI_KEY, httpOptions: { baseUrl: base, apiVersion: "v1beta" } });

/** Made-up keys for this run only (keys never live in the source). */
const OPENAI_KEY = `test-key-${crypto.randomUUID()}`;
const GEMINI_KEY = `test-key-${crypto.randomUUID()}`;

test("a simple line to an OpenAI-compatible server is the request the openai SDK sends", async () => {
  const line = {
    prompt: "What is the capital of France?",
    system: "Answer in one sentence.",
    model: "gpt-4o-mini",
    temperature: 0.2,
    top_p: 0.9,
    max_tokens: 64,
    stop: ["\n\n"],
    seed: 7,
  };
  const ours = await record(() =>
    createOpenAIProvider({ apiKey: OPENAI_KEY, baseUrl: `${base}/v1` }).send(item(line))
  );
  const sdk = new OpenAI({ apiKey: OPENAI_KEY, baseURL: `${base}/v1`, maxRetries: 0 });
  const theirs = await record(() =>
    sdk.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "Answer in one sentence." },
        { role: "user", content: "What is the capital of France?" },
      ],
      temperature: 0.2,
      top_p: 0.9,
      max_tokens: 64,
      stop: ["\n\n"],
      seed: 7,
    })
  );
  expect(ours.path).toBe("/v1/chat/completions");
  expect(ours.path).toBe(theirs.path);
  expect(ours.authorization).toBe(`Bearer ${OPENAI_KEY}`);
  expect(ours.authorization).toBe(theirs.authorization);
  expect(ours.body).toEqual(theirs.body);
});

test("for a reasoning model we send what the openai SDK sends with max_completion_tokens", async () => {
  // The line says max_tokens (the simple format's name); gpt-5 models take only the new field.
  const line = { prompt: "Hi", model: "gpt-5-mini", max_tokens: 256 };
  const ours = await record(() =>
    createOpenAIProvider({ apiKey: OPENAI_KEY, baseUrl: `${base}/v1` }).send(item(line))
  );
  const sdk = new OpenAI({ apiKey: OPENAI_KEY, baseURL: `${base}/v1`, maxRetries: 0 });
  const theirs = await record(() =>
    sdk.chat.completions.create({
      model: "gpt-5-mini",
      messages: [{ role: "user", content: "Hi" }],
      max_completion_tokens: 256,
    })
  );
  expect(ours.path).toBe(theirs.path);
  expect(ours.authorization).toBe(theirs.authorization);
  expect(ours.body).toEqual(theirs.body);
});

test("an OpenAI batch line goes out as its body, as the SDK sends it", async () => {
  const body = {
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "Say hi" }],
    max_completion_tokens: 20,
  };
  const ours = await record(() =>
    createOpenAIProvider({ apiKey: OPENAI_KEY, baseUrl: `${base}/v1` }).send(
      item({ custom_id: "r1", method: "POST", url: "/v1/chat/completions", body }),
    )
  );
  const sdk = new OpenAI({ apiKey: OPENAI_KEY, baseURL: `${base}/v1`, maxRetries: 0 });
  const theirs = await record(() =>
    sdk.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming)
  );
  expect(ours.path).toBe(theirs.path);
  expect(ours.authorization).toBe(theirs.authorization);
  expect(ours.body).toEqual(theirs.body);
});

test("a simple line to Gemini is the request the @google/genai SDK sends", async () => {
  const line = {
    prompt: "What is the capital of France?",
    system: "Answer in one sentence.",
    model: "gemini-2.5-flash",
    temperature: 0.2,
    top_p: 0.9,
    max_tokens: 64,
    stop: ["\n\n"],
    seed: 7,
  };
  const ours = await record(() =>
    createGeminiProvider({ apiKey: GEMINI_KEY, baseUrl: base }).send(item(line))
  );
  const ai = geminiSdk();
  const theirs = await record(() =>
    ai.models.generateContent({
      model: "gemini-2.5-flash",
      contents: [{ role: "user", parts: [{ text: "What is the capital of France?" }] }],
      config: {
        systemInstruction: { parts: [{ text: "Answer in one sentence." }] },
        temperature: 0.2,
        topP: 0.9,
        maxOutputTokens: 64,
        stopSequences: ["\n\n"],
        seed: 7,
      },
    })
  );
  expect(ours.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
  expect(ours.path).toBe(theirs.path);
  expect(ours.googApiKey).toBe(GEMINI_KEY);
  expect(ours.googApiKey).toBe(theirs.googApiKey);
  expect(ours.authorization).toBe(theirs.authorization); // neither sends one
  expect(ours.body).toEqual(theirs.body);
});

test("a Gemini batch line goes out as its request, as the SDK sends it", async () => {
  const request = {
    contents: [{ role: "user", parts: [{ text: "Say hi" }] }],
    generationConfig: { maxOutputTokens: 20, temperature: 0 },
  };
  const ours = await record(() =>
    createGeminiProvider({ apiKey: GEMINI_KEY, baseUrl: base, model: "gemini-2.5-flash" }).send(
      item({ key: "k1", request }),
    )
  );
  const ai = geminiSdk();
  const theirs = await record(() =>
    ai.models.generateContent({
      model: "gemini-2.5-flash",
      contents: request.contents,
      config: { maxOutputTokens: 20, temperature: 0 },
    })
  );
  expect(ours.path).toBe(theirs.path);
  expect(ours.googApiKey).toBe(theirs.googApiKey);
  expect(ours.body).toEqual(theirs.body);
});
