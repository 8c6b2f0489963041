/**
 * Finish reasons across providers: Gemini's `finishReason` and OpenAI's `finish_reason` mapped
 * both ways, so a translated answer says why it ended instead of always "stop".
 * @module
 */

/** OpenAI's finish reasons, the vocabulary of the simple output format. */
export type FinishReason = "stop" | "length" | "content_filter" | "tool_calls" | "function_call";

/**
 * Gemini reasons that mean a filter stopped the answer (safety, recitation, blocklists, personal
 * data, an unsupported language), all `content_filter` in OpenAI's words.
 */
const GEMINI_FILTERED = new Set([
  "SAFETY",
  "RECITATION",
  "LANGUAGE",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
  "IMAGE_PROHIBITED_CONTENT",
  "IMAGE_RECITATION",
]);

/**
 * OpenAI's name for a Gemini `finishReason`: `MAX_TOKENS` is `length`, every filter reason is
 * `content_filter`, `STOP` is `stop`. Reasons OpenAI has no word for (`OTHER`,
 * `MALFORMED_FUNCTION_CALL`, unspecified) are `stop`; the provider's own reason stays in the body.
 * Undefined when there is no reason at all.
 *
 * @example
 * ```ts
 * fromGeminiFinishReason("MAX_TOKENS"); // "length"
 * ```
 */
export function fromGeminiFinishReason(reason: unknown): FinishReason | undefined {
  if (typeof reason !== "string" || reason === "") return undefined;
  if (reason === "MAX_TOKENS") return "length";
  if (GEMINI_FILTERED.has(reason)) return "content_filter";
  return "stop";
}

/**
 * Gemini's name for an OpenAI `finish_reason`: `length` is `MAX_TOKENS`, `content_filter` is
 * `SAFETY`, `stop` and tool calls are `STOP`; no reason is `FINISH_REASON_UNSPECIFIED`.
 *
 * @example
 * ```ts
 * toGeminiFinishReason("length"); // "MAX_TOKENS"
 * ```
 */
export function toGeminiFinishReason(reason: unknown): string {
  switch (reason) {
    case "length":
      return "MAX_TOKENS";
    case "content_filter":
      return "SAFETY";
    case "stop":
    case "tool_calls":
    case "function_call":
      return "STOP";
    default:
      return "FINISH_REASON_UNSPECIFIED";
  }
}

/**
 * OpenAI's finish reason of an OpenAI body: a chat or text completion's `finish_reason`, or for
 * the Responses API `length` / `content_filter` from an incomplete response, else `stop`.
 */
export function openAIFinishReason(body: Record<string, unknown>): FinishReason | undefined {
  const choice = (body.choices as { finish_reason?: unknown }[] | undefined)?.[0];
  if (choice !== undefined) {
    const r = choice.finish_reason;
    return typeof r === "string" ? r as FinishReason : undefined;
  }
  if (body.object === "response" || Array.isArray(body.output)) {
    if (body.status !== "incomplete") return "stop";
    const why = (body.incomplete_details as { reason?: unknown } | undefined)?.reason;
    return why === "content_filter" ? "content_filter" : "length";
  }
  return undefined;
}
