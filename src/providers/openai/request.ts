/**
 * What goes on the wire to OpenAI, shared by the realtime adapter and the Batch API backend: the
 * key's header, and the body (with its path) an input line becomes.
 * @module
 */
import { chatToOpenAI, geminiToChat } from "../../convert.ts";
import type { RequestItem } from "../../formats.ts";
import type { HttpProviderOptions } from "../provider.ts";

/** The headers of every request: `options.headers` and the key as a bearer token. */
export function openAIHeaders(options: HttpProviderOptions): Record<string, string> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  return headers;
}

/**
 * The request `item` becomes: its path with the version (`/v1/chat/completions`, or the batch
 * line's own `url`) and its body, `model` filled in where the line names none. Parameters are
 * not adapted to the model here (the realtime adapter does that for chat completions).
 */
export function openAIRequest(
  item: RequestItem,
  model: string,
): { path: string; body: Record<string, unknown> } {
  if (item.format === "openai-batch") {
    const body = item.body.model === undefined ? { ...item.body, model } : item.body;
    return { path: item.url, body };
  }
  const chat = item.format === "simple" ? item.chat : geminiToChat(item.request);
  return { path: "/v1/chat/completions", body: chatToOpenAI(chat, model) };
}
