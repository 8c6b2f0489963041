/**
 * The wire formats the mock provider speaks (OpenAI Chat Completions, OpenAI Responses,
 * Gemini `generateContent`): reading a request, writing an error.
 * @module
 */
import type { Context } from "hono";

// ---------------------------------------------------------------------------------------------
// Wire formats

export interface Extracted {
  model: string;
  /** Text of the last user message: source of the answer and of the directives. */
  userText: string;
  /** Characters of all prompt text, for the prompt token count. */
  promptChars: number;
  /** The request's max output tokens, undefined when it names none. */
  maxTokens: number | undefined;
}

export interface ErrorExtra {
  /** OpenAI `insufficient_quota` rather than a rate limit. */
  quota?: boolean;
  /** OpenAI error `type` of a 429, `requests` by default. */
  type?: string;
  /** Gemini `RetryInfo.retryDelay` in seconds, without the unit. */
  retryDelay?: string;
  /** Gemini details before the RetryInfo, e.g. a QuotaFailure. */
  details?: unknown[];
}

export interface Dialect {
  /** Error body in the provider's shape. */
  error(status: number, message: string, extra: ErrorExtra): unknown;
  /** Body of a successful answer; `cut` when the text was cut at the max tokens. */
  ok(model: string, text: string, p: number, c: number, id: string, cut: boolean): unknown;
  /** Truncated JSON of the `badjson` fault. */
  badJson: string;
  /** Reads the parsed body; returns an error message for a request the provider would reject. */
  extract(body: unknown, pathModel: string): Extracted | string;
  /** API key the client sent. */
  key(c: Context): string | undefined;
}

export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Text of an OpenAI content value: a string or an array of `{type:"text"|"input_text", text}`. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const texts: string[] = [];
  for (const part of content) {
    if (isObject(part) && typeof part.text === "string") texts.push(part.text);
  }
  return texts.join("\n");
}

/**
 * Reads the first max-tokens field present (null counts as absent).
 * @returns The value, undefined when none is present, or an error message for a bad value.
 */
export function readMaxTokens(fields: [string, unknown][]): number | undefined | string {
  for (const [name, value] of fields) {
    if (value === undefined || value === null) continue;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      return `Invalid '${name}': expected an integer >= 1, got ${JSON.stringify(value)}.`;
    }
    return value;
  }
  return undefined;
}

export function openAiError(status: number, message: string, extra: ErrorExtra): unknown {
  let type = status >= 500 ? "server_error" : "invalid_request_error";
  let code: string | null = null;
  if (status === 401) code = "invalid_api_key";
  if (status === 429) {
    type = extra.quota ? "insufficient_quota" : extra.type ?? "requests";
    code = extra.quota ? "insufficient_quota" : "rate_limit_exceeded";
  }
  return { error: { message, type, param: null, code } };
}

export function bearer(c: Context): string | undefined {
  const auth = c.req.header("authorization");
  return auth?.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
}

export const openAiChat: Dialect = {
  error: openAiError,
  ok: (model, text, p, c, id, cut) => ({
    id: `chatcmpl-${id}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{
      index: 0,
      message: { role: "assistant", content: text },
      finish_reason: cut ? "length" : "stop",
    }],
    usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
  }),
  badJson: '{"choices": [',
  extract(body) {
    if (!isObject(body)) return "The request body must be a JSON object.";
    if (typeof body.model !== "string" || body.model === "") {
      return "you must provide a model parameter";
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return "'messages' must be a non-empty array.";
    }
    const maxTokens = readMaxTokens([
      ["max_completion_tokens", body.max_completion_tokens],
      ["max_tokens", body.max_tokens],
    ]);
    if (typeof maxTokens === "string") return maxTokens;
    let userText = "";
    let promptChars = 0;
    for (const m of body.messages) {
      if (!isObject(m)) continue;
      const text = contentText(m.content);
      promptChars += text.length;
      if (m.role === "user") userText = text;
    }
    return { model: body.model, userText, promptChars, maxTokens };
  },
  key: bearer,
};

export const openAiResponses: Dialect = {
  error: openAiError,
  ok: (model, text, p, c, id, cut) => ({
    id: `resp_${id}`,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status: cut ? "incomplete" : "completed",
    ...(cut ? { incomplete_details: { reason: "max_output_tokens" } } : {}),
    model,
    output: [{
      type: "message",
      id: `msg_${id}`,
      status: cut ? "incomplete" : "completed",
      role: "assistant",
      content: [{ type: "output_text", text, annotations: [] }],
    }],
    output_text: text,
    usage: { input_tokens: p, output_tokens: c, total_tokens: p + c },
  }),
  badJson: '{"output": [',
  extract(body) {
    if (!isObject(body)) return "The request body must be a JSON object.";
    if (typeof body.model !== "string" || body.model === "") {
      return "you must provide a model parameter";
    }
    const maxTokens = readMaxTokens([["max_output_tokens", body.max_output_tokens]]);
    if (typeof maxTokens === "string") return maxTokens;
    // `instructions` is the system prompt of this API, so it counts as prompt text.
    let promptChars = typeof body.instructions === "string" ? body.instructions.length : 0;
    let userText = "";
    if (typeof body.input === "string") {
      userText = body.input;
      promptChars += userText.length;
    } else if (Array.isArray(body.input)) {
      for (const item of body.input) {
        if (!isObject(item)) continue;
        const text = contentText(item.content);
        promptChars += text.length;
        if (item.role === "user") userText = text;
      }
    } else {
      return "'input' must be a string or an array.";
    }
    return { model: body.model, userText, promptChars, maxTokens };
  },
  key: bearer,
};

export const GEMINI_STATUS: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  408: "DEADLINE_EXCEEDED",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

export function partsText(content: unknown): string {
  return isObject(content) ? contentText(content.parts) : "";
}

export const gemini: Dialect = {
  error(status, message, extra) {
    const details: unknown[] = [];
    if (status === 401) {
      details.push({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "API_KEY_INVALID",
        domain: "googleapis.com",
      });
    }
    if (extra.details) details.push(...extra.details);
    if (extra.retryDelay !== undefined) {
      details.push({
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        retryDelay: `${extra.retryDelay}s`,
      });
    }
    return {
      error: { code: status, message, status: GEMINI_STATUS[status] ?? "UNKNOWN", details },
    };
  },
  ok: (model, text, p, c, id, cut) => ({
    candidates: [{
      content: { role: "model", parts: [{ text }] },
      finishReason: cut ? "MAX_TOKENS" : "STOP",
      index: 0,
    }],
    usageMetadata: { promptTokenCount: p, candidatesTokenCount: c, totalTokenCount: p + c },
    modelVersion: model,
    responseId: id,
  }),
  badJson: '{"candidates": [',
  extract(body, pathModel) {
    if (!isObject(body)) return "Invalid JSON payload received. Expected an object.";
    if (!Array.isArray(body.contents) || body.contents.length === 0) {
      return "* GenerateContentRequest.contents: contents is not specified";
    }
    // The REST API accepts both spellings of every field.
    const config = body.generationConfig ?? body.generation_config;
    const maxTokens = isObject(config)
      ? readMaxTokens([
        ["generationConfig.maxOutputTokens", config.maxOutputTokens],
        ["generationConfig.max_output_tokens", config.max_output_tokens],
      ])
      : undefined;
    if (typeof maxTokens === "string") return maxTokens;
    const system = body.systemInstruction ?? body.system_instruction;
    let promptChars = partsText(system).length;
    let userText = "";
    for (const content of body.contents) {
      const text = partsText(content);
      promptChars += text.length;
      if (isObject(content) && (content.role === undefined || content.role === "user")) {
        userText = text;
      }
    }
    return { model: pathModel, userText, promptChars, maxTokens };
  },
  key: (c) => c.req.header("x-goog-api-key") ?? c.req.query("key"),
};

export function json(body: unknown, status: number, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
