// Tests of src/tokens.ts: the token estimate (prompt chars / 4, output budget) of each input
// format, built from real parsed lines.
import { expect, test } from "bun:test";
import { parseLine, type RequestItem } from "../src/formats.ts";
import { estimateRequestTokens, estimateTokens } from "../src/tokens.ts";

/** A validated item from a line object, as the run reads it. */
function item(line: Record<string, unknown>): RequestItem {
  const parsed = parseLine(JSON.stringify(line), 1);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.item;
}

/** A string of exactly `n` characters. */
function chars(n: number, c = "a"): string {
  return c.repeat(n);
}

test("estimateTokens() counts a simple prompt as chars/4 and assumes 256 output tokens", () => {
  expect(estimateTokens(item({ prompt: chars(40) }))).toEqual({
    prompt: 10,
    output: 256,
    outputFromLine: false,
  });
});

test("estimateTokens() rounds a partial token up", () => {
  expect(estimateTokens(item({ prompt: chars(41) })).prompt).toBe(11);
  expect(estimateTokens(item({ prompt: "a" })).prompt).toBe(1);
});

test("estimateTokens() counts the system prompt and every message of a simple line", () => {
  const estimate = estimateTokens(item({
    system: chars(8),
    messages: [
      { role: "user", content: chars(12) },
      {
        role: "assistant",
        content: [{ type: "text", text: chars(4) }, { type: "text", text: chars(4) }],
      },
      { role: "user", content: chars(4), name: chars(400) },
    ],
  }));
  // 8 + 12 + 8 + 4 = 32 chars; the name field is not prompt text.
  expect(estimate.prompt).toBe(8);
});

test("estimateTokens() ignores non-text parts of a simple message", () => {
  const estimate = estimateTokens(item({
    messages: [{
      role: "user",
      content: [
        { type: "text", text: chars(16) },
        { type: "image_url", image_url: { url: `https://example.com/${chars(400)}.png` } },
      ],
    }],
  }));
  expect(estimate.prompt).toBe(4);
});

test("estimateTokens() takes a simple line's max_tokens as a declared output budget", () => {
  expect(estimateTokens(item({ prompt: chars(40), max_tokens: 100 }))).toEqual({
    prompt: 10,
    output: 100,
    outputFromLine: true,
  });
});

test("estimateTokens() uses defaultOutput only when the line declares no max tokens", () => {
  expect(estimateTokens(item({ prompt: chars(4) }), 1, 1000)).toEqual({
    prompt: 1,
    output: 1000,
    outputFromLine: false,
  });
  expect(estimateTokens(item({ prompt: chars(4), max_tokens: 7 }), 1, 1000)).toEqual({
    prompt: 1,
    output: 7,
    outputFromLine: true,
  });
});

test("estimateTokens() scales the prompt by promptScale before rounding up", () => {
  expect(estimateTokens(item({ prompt: chars(40) }), 1.5).prompt).toBe(15);
  expect(estimateTokens(item({ prompt: chars(41) }), 1.5).prompt).toBe(16); // 15.375
  expect(estimateTokens(item({ prompt: chars(40) }), 0.5).prompt).toBe(5);
  // The output budget is not scaled.
  expect(estimateTokens(item({ prompt: chars(40), max_tokens: 100 }), 2).output).toBe(100);
});

/** An OpenAI batch line for `url` with `body`. */
function openai(body: Record<string, unknown>, url = "/v1/chat/completions"): RequestItem {
  return item({ custom_id: "r1", method: "POST", url, body: { model: "gpt-x", ...body } });
}

test("estimateTokens() counts the messages of an OpenAI batch chat body, not its metadata", () => {
  const estimate = estimateTokens(openai({
    messages: [
      { role: "system", content: chars(8) },
      {
        role: "user",
        content: [
          { type: "text", text: chars(12) },
          { type: "image_url", image_url: { url: `data:image/png;base64,${chars(4000)}` } },
        ],
      },
    ],
    temperature: 0.2,
    metadata: { note: chars(400) },
  }));
  expect(estimate).toEqual({ prompt: 5, output: 256, outputFromLine: false });
});

test("estimateTokens() prefers max_completion_tokens over max_tokens in an OpenAI body", () => {
  const messages = [{ role: "user", content: chars(4) }];
  expect(estimateTokens(openai({ messages, max_completion_tokens: 50, max_tokens: 70 })))
    .toEqual({ prompt: 1, output: 50, outputFromLine: true });
  expect(estimateTokens(openai({ messages, max_tokens: 70 }))).toEqual({
    prompt: 1,
    output: 70,
    outputFromLine: true,
  });
});

test("estimateTokens() reads input, instructions and max_output_tokens of a responses body", () => {
  expect(estimateTokens(openai(
    { input: chars(20), instructions: chars(8), max_output_tokens: 300 },
    "/v1/responses",
  ))).toEqual({ prompt: 7, output: 300, outputFromLine: true });
  const parts = estimateTokens(openai({
    input: [
      { role: "user", content: [{ type: "input_text", text: chars(16) }] },
      { role: "user", content: chars(8) },
    ],
  }, "/v1/responses"));
  expect(parts).toEqual({ prompt: 6, output: 256, outputFromLine: false });
});

test("estimateTokens() reads the prompt of a completions body and the input of embeddings", () => {
  expect(estimateTokens(openai({ prompt: chars(12), max_tokens: 9 }, "/v1/completions")))
    .toEqual({ prompt: 3, output: 9, outputFromLine: true });
  expect(estimateTokens(openai({ input: [chars(8), chars(8)] }, "/v1/embeddings")).prompt)
    .toBe(4);
});

/** A Gemini batch line with `request`. */
function gemini(request: Record<string, unknown>): RequestItem {
  return item({ key: "k1", request });
}

test("estimateTokens() counts Gemini contents parts and systemInstruction", () => {
  const estimate = estimateTokens(gemini({
    contents: [
      {
        role: "user",
        parts: [
          { text: chars(16) },
          { inlineData: { mimeType: "image/png", data: chars(4000) } },
        ],
      },
      { role: "model", parts: [{ text: chars(8) }] },
    ],
    systemInstruction: { parts: [{ text: chars(8) }] },
  }));
  expect(estimate).toEqual({ prompt: 8, output: 256, outputFromLine: false });
});

test("estimateTokens() takes generationConfig.maxOutputTokens as a Gemini output budget", () => {
  const contents = [{ parts: [{ text: chars(4) }] }];
  expect(estimateTokens(gemini({ contents, generationConfig: { maxOutputTokens: 500 } })))
    .toEqual({ prompt: 1, output: 500, outputFromLine: true });
  expect(estimateTokens(gemini({ contents, generationConfig: { temperature: 0 } }))).toEqual({
    prompt: 1,
    output: 256,
    outputFromLine: false,
  });
});

test("estimateTokens() applies promptScale to OpenAI and Gemini lines too", () => {
  const contents = [{ parts: [{ text: chars(40) }] }];
  expect(estimateTokens(gemini({ contents }), 2).prompt).toBe(20);
  expect(estimateTokens(openai({ messages: [{ role: "user", content: chars(40) }] }), 1.25).prompt)
    .toBe(13); // 12.5 rounded up
});

test('estimateRequestTokens() "request" charges the body\'s UTF-8 bytes / 4 plus max tokens', () => {
  const body = { model: "m", messages: [{ role: "user", content: "héllo" }], max_tokens: 7 };
  const bytes = new TextEncoder().encode(JSON.stringify(body)).length;
  expect(estimateRequestTokens(body, { counts: "request", model: "m", maxTokens: 7 })).toEqual({
    prompt: Math.ceil(bytes / 4),
    output: 7,
    outputFromLine: true,
    model: "m",
    counts: "request",
  });
  // Without max tokens, the assumed output budget, corrected by nothing (OpenAI charged it).
  expect(estimateRequestTokens(body, { counts: "request", defaultOutput: 99 })).toMatchObject({
    output: 99,
    outputFromLine: false,
  });
});

test('estimateRequestTokens() "input" counts the text of contents and system instruction only', () => {
  const body = {
    contents: [{ role: "user", parts: [{ text: "a".repeat(40) }, { text: "b".repeat(3) }] }],
    systemInstruction: { parts: [{ text: "c".repeat(5) }] },
    generationConfig: { maxOutputTokens: 500, temperature: 0.5 },
  };
  expect(estimateRequestTokens(body, { counts: "input", model: "g" })).toEqual({
    prompt: 12, // 48 characters
    output: 0,
    outputFromLine: true,
    model: "g",
    counts: "input",
  });
});
