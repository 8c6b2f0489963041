// Tests of src/formats.ts (input lines, output and error records) and src/convert.ts (request
// translation between OpenAI chat and Gemini generateContent).
import { expect, test } from "bun:test";
import {
  chatToGemini,
  chatToOpenAI,
  geminiToChat,
  openAIBodyToChat,
  toChatCompletion,
  toGenerateContentResponse,
} from "../src/convert.ts";
import {
  type ChatRequest,
  detectFormat,
  type ErrorField,
  errorRecord,
  outputId,
  outputRecord,
  type ParsedLine,
  parseLine,
  type ProviderResponse,
  type RequestItem,
} from "../src/formats.ts";

const OPENAI_LINE = {
  custom_id: "req-1",
  method: "POST",
  url: "/v1/chat/completions",
  body: { model: "gpt-test", messages: [{ role: "user", content: "hi" }] },
};
const GEMINI_LINE = {
  key: "g-1",
  request: { contents: [{ role: "user", parts: [{ text: "hi" }] }] },
};

function ok(parsed: ParsedLine): RequestItem {
  if (!parsed.ok) throw new Error(`expected a valid line, got: ${parsed.message}`);
  return parsed.item;
}

function rejected(parsed: ParsedLine): Extract<ParsedLine, { ok: false }> {
  if (parsed.ok) throw new Error(`expected a rejected line, got item ${parsed.item.id}`);
  return parsed;
}

function parse(value: unknown, line = 1): ParsedLine {
  return parseLine(JSON.stringify(value), line);
}

const RESPONSE: ProviderResponse = {
  body: { choices: [{ message: { role: "assistant", content: "hello" } }] },
  text: "hello",
  usage: { input_tokens: 3, output_tokens: 1 },
  status: 200,
  requestId: "req_abc",
  provider: "openai",
  model: "gpt-test",
};

const ERROR: ErrorField = {
  status: 429,
  code: "rate_limit_exceeded",
  message: "slow down",
  attempts: 3,
  line: 7,
};

test("parseLine() reads an OpenAI batch line", () => {
  const item = ok(parse(OPENAI_LINE, 2));
  expect(item).toEqual({
    line: 2,
    id: "req-1",
    original: OPENAI_LINE,
    format: "openai-batch",
    url: "/v1/chat/completions",
    body: OPENAI_LINE.body,
  });
});

test("parseLine() reads an OpenAI batch line without method", () => {
  const { method: _, ...line } = OPENAI_LINE;
  expect(ok(parse({ ...line, url: "/v1/embeddings" })).format).toBe("openai-batch");
});

test("parseLine() reads a Gemini batch line", () => {
  const item = ok(parse(GEMINI_LINE, 3));
  expect(item).toEqual({
    line: 3,
    id: "g-1",
    original: GEMINI_LINE,
    format: "gemini-batch",
    request: GEMINI_LINE.request,
  });
});

test("parseLine() reads a simple prompt line with its generation settings", () => {
  const line = {
    id: "p-1",
    prompt: "Say hi",
    system: "Be brief",
    model: "m",
    temperature: 0.2,
    top_p: 0.9,
    max_tokens: 16,
    stop: ["\n"],
    seed: 4,
    extra: "kept in original",
  };
  const item = ok(parse(line, 4));
  expect(item.format).toBe("simple");
  expect(item.id).toBe("p-1");
  expect(item.original).toEqual(line);
  if (item.format !== "simple") throw new Error("unreachable");
  expect(item.chat).toEqual({
    messages: [{ role: "user", content: "Say hi" }],
    system: "Be brief",
    model: "m",
    temperature: 0.2,
    top_p: 0.9,
    max_tokens: 16,
    stop: ["\n"],
    seed: 4,
  });
});

test("parseLine() reads a simple messages line", () => {
  const messages = [
    { role: "system", content: "sys" },
    { role: "user", content: [{ type: "text", text: "hi" }] },
    { role: "assistant", content: "hello" },
    { role: "user", content: "again" },
  ];
  const item = ok(parse({ id: "m-1", messages }));
  if (item.format !== "simple") throw new Error(`format ${item.format}`);
  expect(item.id).toBe("m-1");
  expect(item.chat).toEqual({ messages } as unknown as ChatRequest);
});

test("parseLine() turns a numeric id into a string id", () => {
  expect(ok(parse({ id: 42, prompt: "x" })).id).toBe("42");
  expect(ok(parse({ id: 0, prompt: "x" })).id).toBe("0");
});

test("parseLine() gives a simple line without id its line number as id", () => {
  expect(ok(parse({ prompt: "x" }, 7)).id).toBe("7");
  expect(ok(parse({ messages: [{ role: "user", content: "x" }] }, 12)).id).toBe("12");
});

test("parseLine() strips the error field a previous run added from original", () => {
  const item = ok(parse({ id: "e-1", prompt: "x", error: { status: 500 } }));
  expect(item.original).toEqual({ id: "e-1", prompt: "x" });
  const batch = ok(parse({ ...OPENAI_LINE, error: ERROR }));
  expect(batch.original).toEqual(OPENAI_LINE);
});

test("parseLine() names the line and the field of an invalid line", () => {
  const { body: _, ...noBody } = OPENAI_LINE;
  const cases: [unknown, string][] = [
    [noBody, "'body'"],
    [{ ...OPENAI_LINE, url: "/v1/images" }, "'url'"],
    [{ ...OPENAI_LINE, custom_id: "" }, "'custom_id'"],
    [{ messages: [{ role: "bot", content: "x" }] }, "'messages.0.role'"],
    [{ messages: [] }, "'messages'"],
    [{ prompt: "x", temperature: -1 }, "'temperature'"],
    [{ prompt: "x", top_p: 2 }, "'top_p'"],
    [{ prompt: "x", max_tokens: 1.5 }, "'max_tokens'"],
    [{ prompt: "" }, "'prompt'"],
    [{ key: "k", request: { contents: [] } }, "'request.contents'"],
    [{ key: "k", request: { contents: [{ role: "user" }] } }, "'request.contents.0.parts'"],
  ];
  for (const [value, field] of cases) {
    const r = rejected(parse(value, 7));
    expect({ code: r.code, line: r.line }).toEqual({ code: "invalid_line", line: 7 });
    expect(r.message).toStartWith("line 7: ");
    expect(r.message).toContain(`field ${field}`);
    expect(r.original).toEqual(value);
  }
});

test("parseLine() rejects a line that is not JSON", () => {
  const r = rejected(parseLine("{not json", 5));
  expect(r.code).toBe("invalid_json");
  expect(r.line).toBe(5);
  expect(r.message).toStartWith("line 5: not valid JSON");
});

test("parseLine() rejects array and number lines as not objects", () => {
  const array = rejected(parseLine("[1,2]", 8));
  expect(array.code).toBe("unknown_format");
  expect(array.message).toBe("line 8: expected a JSON object, got an array");
  expect(array.original).toEqual([1, 2]);
  const number = rejected(parseLine("42", 9));
  expect(number.code).toBe("unknown_format");
  expect(number.message).toBe("line 9: expected a JSON object, got number");
});

test("parseLine() says it got null for a null line", () => {
  const r = rejected(parseLine("null", 10));
  expect(r.code).toBe("unknown_format");
  expect(r.message).toStartWith("line 10: expected a JSON object");
  expect(r.message).toContain("null");
});

test("parseLine() rejects an object of no known format", () => {
  const r = rejected(parse({ question: "x" }, 11));
  expect(r.code).toBe("unknown_format");
  expect(r.message).toStartWith("line 11: not a known format");
  expect(r.original).toEqual({ question: "x" });
});

test("parseLine() rejects a simple line with both prompt and messages", () => {
  const r = rejected(parse({ prompt: "x", messages: [{ role: "user", content: "y" }] }, 12));
  expect(r.code).toBe("invalid_line");
  expect(r.message).toStartWith("line 12: ");
  expect(r.message).toContain("'prompt'");
  expect(r.message).toContain("'messages'");
});

test("parseLine() rejects a line longer than the limit without parsing it", () => {
  const text = JSON.stringify({ prompt: "x".repeat(100) });
  const r = rejected(parseLine(text, 13, 50));
  expect(r.code).toBe("invalid_line");
  expect(r.message).toBe("line 13: longer than the limit of 50 characters");
  expect(ok(parseLine(text, 13, text.length)).id).toBe("13");
});

test("detectFormat() tells the three formats apart", () => {
  expect(detectFormat(OPENAI_LINE)).toBe("openai-batch");
  expect(detectFormat({ url: "/v1/chat/completions", body: {} })).toBe("openai-batch");
  expect(detectFormat(GEMINI_LINE)).toBe("gemini-batch");
  expect(detectFormat({ prompt: "x" })).toBe("simple");
  expect(detectFormat({ messages: [] })).toBe("simple");
  expect(detectFormat({ key: "k" })).toBeUndefined();
});

test("outputRecord() writes an OpenAI batch output line", () => {
  const item = ok(parse(OPENAI_LINE));
  const record = outputRecord(item, RESPONSE, { attempts: 1, latencyMs: 10 });
  expect(record).toEqual({
    id: expect.stringMatching(/^batch_req_[0-9a-f]{32}$/),
    custom_id: "req-1",
    response: { status_code: 200, request_id: "req_abc", body: RESPONSE.body },
    error: null,
  });
  const other = outputRecord(item, { ...RESPONSE, requestId: undefined }, {
    attempts: 1,
    latencyMs: 10,
  });
  expect(other.id).not.toBe(record.id);
  expect((other.response as Record<string, unknown>).request_id).toBeNull();
});

test("outputRecord() writes a Gemini batch output line", () => {
  const item = ok(parse(GEMINI_LINE));
  expect(outputRecord(item, RESPONSE, { attempts: 2, latencyMs: 10 })).toEqual({
    key: "g-1",
    response: RESPONSE.body,
  });
});

test("outputRecord() writes a simple output line with its finish reason, usage, attempts and latency", () => {
  const item = ok(parse({ id: "s-1", prompt: "x" }));
  const response = { ...RESPONSE, finishReason: "length" as const };
  expect(outputRecord(item, response, { attempts: 2, latencyMs: 1234.6 })).toEqual({
    id: "s-1",
    text: "hello",
    finish_reason: "length",
    response: RESPONSE.body,
    usage: { input_tokens: 3, output_tokens: 1 },
    provider: "openai",
    model: "gpt-test",
    attempts: 2,
    latency_ms: 1235,
  });
  const numeric = ok(parse({ id: 42, prompt: "x" }));
  expect(outputRecord(numeric, RESPONSE, { attempts: 1, latencyMs: 1 }).id).toBe(42);
  // A body without a finish reason says so rather than inventing "stop".
  expect(outputRecord(numeric, RESPONSE, { attempts: 1, latencyMs: 1 }).finish_reason).toBe(null);
});

test("errorRecord() writes the original line plus error", () => {
  expect(errorRecord(OPENAI_LINE, "req-1", ERROR)).toEqual({ ...OPENAI_LINE, error: ERROR });
  expect(errorRecord(GEMINI_LINE, "g-1", ERROR)).toEqual({ ...GEMINI_LINE, error: ERROR });
  expect(errorRecord({ id: "s", prompt: "x" }, "s", ERROR)).toEqual({
    id: "s",
    prompt: "x",
    error: ERROR,
  });
});

test("errorRecord() writes in the id of a simple line whose id was its line number", () => {
  expect(errorRecord({ prompt: "x" }, "7", ERROR)).toEqual({ prompt: "x", id: 7, error: ERROR });
});

test("errorRecord() keeps a non-object line as raw", () => {
  expect(errorRecord([1, 2], undefined, ERROR)).toEqual({ line: 7, raw: [1, 2], error: ERROR });
  expect(errorRecord(5, undefined, ERROR)).toEqual({ line: 7, raw: 5, error: ERROR });
  expect(errorRecord(undefined, undefined, ERROR)).toEqual({ line: 7, raw: null, error: ERROR });
});

test("errorRecord() lines parse again to the same item id and format (errors.jsonl re-runs)", () => {
  const inputs: [unknown, number][] = [
    [OPENAI_LINE, 3],
    [GEMINI_LINE, 4],
    [{ id: "s-1", prompt: "x" }, 5],
    [{ id: 42, prompt: "x" }, 6],
    [{ prompt: "no id" }, 7],
    [{ messages: [{ role: "user", content: "no id" }], error: { status: 500 } }, 8],
  ];
  for (const [value, line] of inputs) {
    const item = ok(parse(value, line));
    const record = errorRecord(item.original, item.id, { ...ERROR, line });
    // In errors.jsonl the line sits elsewhere: its identity must not depend on that.
    const again = ok(parseLine(JSON.stringify(record), 1));
    expect({ id: again.id, format: again.format }).toEqual({ id: item.id, format: item.format });
  }
});

test("outputId() reads the item id of each output shape", () => {
  const openai = outputRecord(ok(parse(OPENAI_LINE)), RESPONSE, { attempts: 1, latencyMs: 1 });
  expect(outputId(openai)).toBe("req-1"); // not OpenAI's own batch_req_ id
  expect(outputId(JSON.parse(JSON.stringify(openai)))).toBe("req-1");
  const gemini = outputRecord(ok(parse(GEMINI_LINE)), RESPONSE, { attempts: 1, latencyMs: 1 });
  expect(outputId(gemini)).toBe("g-1");
  const simple = outputRecord(ok(parse({ id: 42, prompt: "x" })), RESPONSE, {
    attempts: 1,
    latencyMs: 1,
  });
  expect(outputId(simple)).toBe("42");
  const defaulted = outputRecord(ok(parse({ prompt: "x" }, 9)), RESPONSE, {
    attempts: 1,
    latencyMs: 1,
  });
  expect(outputId(defaulted)).toBe("9");
});

test("outputId() gives undefined for a record without an id", () => {
  expect(outputId(null)).toBeUndefined();
  expect(outputId("req-1")).toBeUndefined();
  expect(outputId({})).toBeUndefined();
  expect(outputId({ id: "batch_req_1", custom_id: null })).toBeUndefined();
});

const CHAT: ChatRequest = {
  system: "Be brief",
  messages: [
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello" },
    { role: "user", content: "Bye" },
  ],
  model: "m-1",
  temperature: 0.3,
  top_p: 0.9,
  max_tokens: 100,
  stop: ["END"],
  seed: 7,
};

test("chatToGemini() maps system messages, roles and generation settings", () => {
  const chat: ChatRequest = {
    system: "S",
    messages: [
      { role: "system", content: "S2" },
      { role: "developer", content: "D" },
      { role: "user", content: "u" },
      { role: "assistant", content: [{ type: "text", text: "a1" }, { type: "text", text: "a2" }] },
    ],
    temperature: 0,
    top_p: 0.5,
    max_tokens: 10,
    stop: "END",
    seed: 1,
  };
  expect(chatToGemini(chat)).toEqual({
    contents: [
      { role: "user", parts: [{ text: "u" }] },
      { role: "model", parts: [{ text: "a1a2" }] },
    ],
    systemInstruction: { parts: [{ text: "S\n\nS2\n\nD" }] },
    generationConfig: {
      temperature: 0,
      topP: 0.5,
      maxOutputTokens: 10,
      stopSequences: ["END"],
      seed: 1,
    },
  });
});

test("chatToGemini() leaves out systemInstruction and generationConfig when there are none", () => {
  expect(chatToGemini({ messages: [{ role: "user", content: "x" }] })).toEqual({
    contents: [{ role: "user", parts: [{ text: "x" }] }],
  });
});

test("chatToOpenAI() puts system first, picks the model and copies settings", () => {
  expect(chatToOpenAI(CHAT, "default-model")).toEqual({
    model: "m-1",
    messages: [{ role: "system", content: "Be brief" }, ...CHAT.messages],
    temperature: 0.3,
    top_p: 0.9,
    max_tokens: 100,
    stop: ["END"],
    seed: 7,
  });
  expect(chatToOpenAI({ messages: [{ role: "user", content: "x" }] }, "default-model")).toEqual({
    model: "default-model",
    messages: [{ role: "user", content: "x" }],
  });
});

test("openAIBodyToChat() prefers max_completion_tokens and ignores non-numbers", () => {
  expect(
    openAIBodyToChat({
      model: "gpt",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 5,
      max_completion_tokens: 9,
      temperature: "hot",
      stop: "S",
    }),
  ).toEqual({
    model: "gpt",
    messages: [{ role: "user", content: "x" }],
    max_tokens: 9,
    stop: "S" as unknown as string[],
  });
  expect(openAIBodyToChat({})).toEqual({ messages: [] });
});

test("geminiToChat() maps roles, systemInstruction and generationConfig back", () => {
  expect(
    geminiToChat({
      contents: [
        { role: "user", parts: [{ text: "a" }, { text: "b" }] },
        { role: "model", parts: [{ text: "c" }] },
      ],
      systemInstruction: { parts: [{ text: "S" }] },
      generationConfig: {
        temperature: 1,
        topP: 0.5,
        maxOutputTokens: 3,
        stopSequences: ["x"],
        seed: 2,
      },
    }),
  ).toEqual({
    messages: [{ role: "user", content: "ab" }, { role: "assistant", content: "c" }],
    system: "S",
    temperature: 1,
    top_p: 0.5,
    max_tokens: 3,
    stop: ["x"],
    seed: 2,
  });
});

test("chatToGemini() then geminiToChat() round-trips a chat request", () => {
  const { model: _, ...chat } = CHAT; // the model travels in the URL, not the Gemini body
  expect(geminiToChat(chatToGemini(chat))).toEqual(chat);
  const request = chatToGemini(chat);
  expect(chatToGemini(geminiToChat(request))).toEqual(request);
});

test("chatToOpenAI() then openAIBodyToChat() round-trips a chat request", () => {
  const { system: _, ...chat } = CHAT;
  expect(openAIBodyToChat(chatToOpenAI(chat, "other"))).toEqual(chat);
  // With a system prompt, it comes back as a system message: the same request for Gemini.
  expect(chatToGemini(openAIBodyToChat(chatToOpenAI(CHAT, "other")))).toEqual(
    chatToGemini(CHAT),
  );
});

test("toChatCompletion() and toGenerateContentResponse() add up the tokens", () => {
  const usage = { input_tokens: 3, output_tokens: 4 };
  const completion = toChatCompletion("hi", usage, "m");
  expect(completion.usage).toEqual({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
  expect(completion.choices).toEqual([
    { index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" },
  ]);
  const gemini = toGenerateContentResponse(null, usage, "m");
  expect(gemini.usageMetadata).toEqual({
    promptTokenCount: 3,
    candidatesTokenCount: 4,
    totalTokenCount: 7,
  });
  expect(gemini.candidates).toEqual([
    { content: { role: "model", parts: [{ text: "" }] }, finishReason: "STOP", index: 0 },
  ]);
});
