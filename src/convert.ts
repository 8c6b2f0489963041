/**
 * Request and response translation between OpenAI chat and Gemini generateContent, so any input
 * format can go to any provider and come back in the shape its format expects.
 * @module
 */
import { type FinishReason, toGeminiFinishReason } from "./finish_reason.ts";
import { type ChatRequest, contentText, type Usage } from "./formats.ts";

type Json = Record<string, unknown>;

/** An OpenAI chat.completions body from a simple-format request. */
export function chatToOpenAI(chat: ChatRequest, model: string): Json {
  const messages: Json[] = [];
  if (chat.system !== undefined) messages.push({ role: "system", content: chat.system });
  for (const m of chat.messages) messages.push({ ...m });
  const body: Json = { model: chat.model ?? model, messages };
  for (const key of ["temperature", "top_p", "max_tokens", "stop", "seed"] as const) {
    if (chat[key] !== undefined) body[key] = chat[key];
  }
  return body;
}

/** A Gemini GenerateContentRequest from a simple-format request. */
export function chatToGemini(chat: ChatRequest): Json {
  const system: string[] = chat.system !== undefined ? [chat.system] : [];
  const contents: Json[] = [];
  for (const m of chat.messages) {
    const text = contentText(m.content);
    if (m.role === "system" || m.role === "developer") system.push(text);
    else contents.push({ role: m.role === "assistant" ? "model" : "user", parts: [{ text }] });
  }
  const request: Json = { contents };
  if (system.length > 0) request.systemInstruction = { parts: [{ text: system.join("\n\n") }] };
  const config: Json = {};
  if (chat.temperature !== undefined) config.temperature = chat.temperature;
  if (chat.top_p !== undefined) config.topP = chat.top_p;
  if (chat.max_tokens !== undefined) config.maxOutputTokens = chat.max_tokens;
  if (chat.stop !== undefined) {
    config.stopSequences = typeof chat.stop === "string" ? [chat.stop] : chat.stop;
  }
  if (chat.seed !== undefined) config.seed = chat.seed;
  if (Object.keys(config).length > 0) request.generationConfig = config;
  return request;
}

/** A simple-format request from an OpenAI chat.completions body (for sending it to Gemini). */
export function openAIBodyToChat(body: Json): ChatRequest {
  const messages = Array.isArray(body.messages) ? (body.messages as ChatRequest["messages"]) : [];
  const chat: ChatRequest = { messages };
  if (typeof body.model === "string") chat.model = body.model;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (typeof maxTokens === "number") chat.max_tokens = maxTokens;
  for (const key of ["temperature", "top_p", "seed"] as const) {
    if (typeof body[key] === "number") chat[key] = body[key] as number;
  }
  if (typeof body.stop === "string" || Array.isArray(body.stop)) chat.stop = body.stop as string[];
  return chat;
}

/** A simple-format request from a Gemini GenerateContentRequest (for sending it to OpenAI). */
export function geminiToChat(request: Json): ChatRequest {
  const partsText = (c: unknown) =>
    Array.isArray((c as Json)?.parts)
      ? ((c as Json).parts as Json[]).map((p) => (typeof p.text === "string" ? p.text : "")).join(
        "",
      )
      : "";
  const messages: ChatRequest["messages"] = [];
  for (const c of (request.contents as Json[]) ?? []) {
    messages.push({ role: c.role === "model" ? "assistant" : "user", content: partsText(c) });
  }
  const chat: ChatRequest = { messages };
  if (request.systemInstruction) chat.system = partsText(request.systemInstruction);
  const g = (request.generationConfig ?? {}) as Json;
  if (typeof g.temperature === "number") chat.temperature = g.temperature;
  if (typeof g.topP === "number") chat.top_p = g.topP;
  if (typeof g.maxOutputTokens === "number") chat.max_tokens = g.maxOutputTokens;
  if (Array.isArray(g.stopSequences)) chat.stop = g.stopSequences as string[];
  if (typeof g.seed === "number") chat.seed = g.seed;
  return chat;
}

/**
 * A minimal OpenAI chat.completion body, for a Gemini answer to an OpenAI batch line. The finish
 * reason is the answer's own, mapped to OpenAI's words (`MAX_TOKENS` is `length`, filters are
 * `content_filter`); `stop` when it gave none.
 */
export function toChatCompletion(
  text: string | null,
  usage: Usage,
  model: string,
  finishReason: FinishReason = "stop",
): Json {
  return {
    object: "chat.completion",
    model,
    choices: [{
      index: 0,
      message: { role: "assistant", content: text },
      finish_reason: finishReason,
    }],
    usage: {
      prompt_tokens: usage.input_tokens,
      completion_tokens: usage.output_tokens,
      total_tokens: usage.input_tokens + usage.output_tokens,
    },
  };
}

/**
 * A minimal Gemini GenerateContentResponse, for an OpenAI answer to a Gemini batch line. The
 * finish reason is the answer's own in Gemini's words (`length` is `MAX_TOKENS`,
 * `content_filter` is `SAFETY`).
 */
export function toGenerateContentResponse(
  text: string | null,
  usage: Usage,
  model: string,
  finishReason: FinishReason = "stop",
): Json {
  return {
    candidates: [{
      content: { role: "model", parts: [{ text: text ?? "" }] },
      finishReason: toGeminiFinishReason(finishReason),
      index: 0,
    }],
    usageMetadata: {
      promptTokenCount: usage.input_tokens,
      candidatesTokenCount: usage.output_tokens,
      totalTokenCount: usage.input_tokens + usage.output_tokens,
    },
    modelVersion: model,
  };
}
