/**
 * What goes on the wire to Gemini, shared by the realtime adapter and the Batch Mode backend: the
 * key's header, and the generateContent request an input line becomes.
 * @module
 */
import { chatToGemini, openAIBodyToChat } from "../../convert.ts";
import type { RequestItem } from "../../formats.ts";
import type { HttpProviderOptions } from "../provider.ts";

/** The headers of every request: `options.headers` and the key in `x-goog-api-key`. */
export function geminiHeaders(options: HttpProviderOptions): Record<string, string> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers["x-goog-api-key"] = options.apiKey;
  return headers;
}

/**
 * The generateContent request `item` becomes (a Gemini line's `model` left out of it), and the
 * model the line names, if it names one.
 * @throws {TypeError} for an OpenAI line to an endpoint other than chat completions.
 */
export function geminiRequest(
  item: RequestItem,
): { request: Record<string, unknown>; model?: string } {
  if (item.format === "gemini-batch") {
    const { model, ...request } = item.request;
    return { request, model: typeof model === "string" ? model : undefined };
  }
  if (item.format === "simple") {
    return { request: chatToGemini(item.chat), model: item.chat.model || undefined };
  }
  if (item.url !== "/v1/chat/completions") {
    throw new TypeError(
      `line ${item.line}: Gemini cannot serve ${item.url}; use --provider openai`,
    );
  }
  const chat = openAIBodyToChat(item.body);
  return { request: chatToGemini(chat), model: chat.model || undefined };
}
