/**
 * What an OpenAI (or OpenAI-compatible) answer means, shared by the realtime adapter and the
 * Batch API backend: error bodies classified (quota, billing, auth, config), answers read (text,
 * usage, finish reason, refusals, filtered and cut-off answers).
 * @module
 */
import { toGenerateContentResponse } from "../../convert.ts";
import type { FailureInfo } from "../../errors.ts";
import { openAIFinishReason } from "../../finish_reason.ts";
import type { ProviderResponse, RequestItem, Usage } from "../../formats.ts";
import { classifyByStatus, failureMessage } from "../http.ts";

/**
 * Reads an OpenAI error body, also the shapes of OpenAI-compatible servers (vLLM's top-level
 * `{object: "error", message, type, code}`):
 *
 * - `insufficient_quota` is `billing` and final, even though it comes as a 429.
 * - 401/403 are `auth`; a 429 naming a per-day limit is `daily_quota`, any other `rate_limit`.
 * - 404 (`model_not_found`, or a compatible server's unknown model) and 400
 *   `unsupported_parameter` / `unsupported_value` are `config`: the run's model or parameters.
 */
export function classifyOpenAI(status: number, body: unknown, headers: Headers): FailureInfo {
  type ErrorBody = { code?: unknown; type?: unknown; message?: unknown; param?: unknown };
  const b = body as { error?: ErrorBody; object?: unknown } | undefined;
  const error: ErrorBody | undefined = typeof b?.error === "object" && b.error !== null
    ? b.error
    : b?.object === "error"
    ? b as ErrorBody
    : undefined;
  const code = typeof error?.code === "string"
    ? error.code
    : typeof error?.type === "string"
    ? error.type
    : `http_${status}`;
  const message = failureMessage(status, body, error?.message);
  const info = classifyByStatus(status, code, message, headers);
  if (typeof error?.param === "string") info.param = error.param;
  if (code === "insufficient_quota" || error?.type === "insufficient_quota") {
    info.retryable = false;
    info.kind = "billing";
  } else if (status === 401 || status === 403) {
    info.kind = "auth";
  } else if (status === 429) {
    // OpenAI names the exhausted limit in the message: "... on requests per day (RPD) ...".
    info.kind = /per day|\b(RPD|TPD)\b/i.test(message) ? "daily_quota" : "rate_limit";
  } else if (
    status === 404 || code === "model_not_found" || code === "unsupported_parameter" ||
    code === "unsupported_value"
  ) {
    info.kind = "config";
    info.retryable = false;
  }
  return info;
}

/** Token usage of an OpenAI response body. */
function usageOf(body: Record<string, unknown>): Usage {
  const u = (body.usage ?? {}) as Record<string, unknown>;
  const num = (x: unknown) => (typeof x === "number" ? x : 0);
  return {
    input_tokens: num(u.prompt_tokens ?? u.input_tokens),
    output_tokens: num(u.completion_tokens ?? u.output_tokens),
  };
}

type OutputItem = { content?: { type?: string; text?: unknown; refusal?: unknown }[] };

/** Answer text of an OpenAI response body, or null. */
function textOf(body: Record<string, unknown>): string | null {
  const choice = (body.choices as { message?: { content?: unknown }; text?: unknown }[] | undefined)
    ?.[0];
  if (typeof choice?.message?.content === "string") return choice.message.content;
  if (typeof choice?.text === "string") return choice.text;
  if (typeof body.output_text === "string") return body.output_text;
  if (Array.isArray(body.output)) {
    const texts: string[] = [];
    for (const out of body.output as OutputItem[]) {
      for (const c of out.content ?? []) if (typeof c.text === "string") texts.push(c.text);
    }
    return texts.length ? texts.join("") : null;
  }
  return null;
}

/** The model's refusal, from a chat message's `refusal` or a Responses `refusal` part. */
function refusalOf(body: Record<string, unknown>): string | undefined {
  const message = (body.choices as { message?: { refusal?: unknown } }[] | undefined)?.[0]
    ?.message;
  if (typeof message?.refusal === "string" && message.refusal !== "") return message.refusal;
  for (const out of Array.isArray(body.output) ? body.output as OutputItem[] : []) {
    for (const c of out.content ?? []) {
      if (c.type === "refusal" && typeof c.refusal === "string") return c.refusal;
    }
  }
  return undefined;
}

/**
 * Why a chat, text or Responses answer has no text, or undefined when it has some (or is not a
 * text answer at all: embeddings).
 */
function noTextOf(
  body: Record<string, unknown>,
  text: string | null,
  finishReason: string | undefined,
): ProviderResponse["noText"] {
  if (!Array.isArray(body.choices) && !Array.isArray(body.output)) return undefined;
  if (text !== null && text !== "") return undefined;
  const refusal = refusalOf(body);
  if (refusal !== undefined) return { code: "refused", message: `the model refused: ${refusal}` };
  if (finishReason === "length") {
    return {
      code: "cut_off",
      message: "finish_reason length before any text (reasoning can spend the whole " +
        "max_completion_tokens): raise max_tokens",
    };
  }
  if (finishReason === "content_filter") {
    return { code: "blocked", message: "the answer was blocked (finish_reason content_filter)" };
  }
  return {
    code: "empty_answer",
    message: `the answer has no text (finish_reason ${finishReason ?? "none"})`,
  };
}

/**
 * The {@linkcode ProviderResponse} to `item` of an OpenAI response body (shared with batch mode):
 * a Gemini batch line gets a GenerateContentResponse, any other line the body as it is. The model
 * is the one the body names, else `requested`.
 */
export function openAIResponse(
  item: RequestItem,
  status: number,
  body: Record<string, unknown>,
  requested: string,
  more: Pick<ProviderResponse, "requestId" | "rateLimit">,
): ProviderResponse {
  const usage = usageOf(body);
  const text = textOf(body);
  const finishReason = openAIFinishReason(body);
  const noText = noTextOf(body, text, finishReason);
  const model = typeof body.model === "string" ? body.model : requested;
  return {
    status,
    body: item.format === "gemini-batch"
      ? toGenerateContentResponse(text, usage, model, finishReason)
      : body,
    text,
    usage,
    ...more,
    provider: "openai",
    model,
    finishReason,
    noText,
  };
}
