/**
 * OpenAI and every OpenAI-compatible server (vLLM, Ollama, Together, OpenRouter…), through
 * `baseUrl`.
 * @module
 */
import { chatToOpenAI, geminiToChat, toGenerateContentResponse } from "../../convert.ts";
import type { FailureInfo } from "../../errors.ts";
import { openAIFinishReason } from "../../finish_reason.ts";
import type { ProviderResponse, RequestItem, Usage } from "../../formats.ts";
import { parseRateLimitHeaders } from "../../rate_limit_headers.ts";
import {
  classifyByStatus,
  createPost,
  failureMessage,
  type HttpProviderOptions,
  joinUrl,
  noTextFailure,
  postJson,
  type Provider,
  type SendOptions,
} from "../provider.ts";
import { adaptOpenAIBody } from "./params.ts";
import { estimateRequestTokens, type TokenEstimate } from "../../tokens.ts";

/** OpenAI's API. */
export const OPENAI_BASE_URL = "https://api.openai.com/v1";
/** Model used when neither the line nor the options name one. */
export const OPENAI_DEFAULT_MODEL = "gpt-5-mini";
/** Requests per second when none is set. */
export const OPENAI_DEFAULT_RATE = 100;

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

/** True when `baseUrl` is OpenAI's own API, where `max_completion_tokens` is the current field. */
export function isOpenAIHost(baseUrl: string): boolean {
  try {
    return new URL(baseUrl).hostname === "api.openai.com";
  } catch {
    return false;
  }
}

/** Creates the OpenAI adapter. */
export function createOpenAIProvider(options: HttpProviderOptions = {}): Provider {
  const base = options.baseUrl ?? OPENAI_BASE_URL;
  const model = options.model ?? OPENAI_DEFAULT_MODEL;
  const client = createPost(options);
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const openAIHost = isOpenAIHost(base);
  const warned = new Set<string>();
  const onDrop = (param: string, model: string, value: unknown) => {
    const key = `${model}\u0000${param}`;
    if (warned.has(key)) return;
    warned.add(key);
    options.onWarning?.(
      `${model} takes no ${param} (got ${JSON.stringify(value)}): dropped from every request ` +
        `to it, the model's default applies`,
    );
  };
  /** The request exactly as it is sent: its path and body. */
  const build = (item: RequestItem): { path: string; body: Record<string, unknown> } => {
    let path = "/chat/completions";
    let body: Record<string, unknown>;
    if (item.format === "openai-batch") {
      path = item.url.replace(/^\/v1/, "");
      body = item.body.model === undefined ? { ...item.body, model } : item.body;
    } else if (item.format === "simple") {
      body = chatToOpenAI(item.chat, model);
    } else {
      body = chatToOpenAI(geminiToChat(item.request), model);
    }
    if (path === "/chat/completions") body = adaptOpenAIBody(body, { openAIHost, onDrop });
    return { path, body };
  };
  return {
    name: "openai",
    model,
    defaultRate: OPENAI_DEFAULT_RATE,
    estimate(item: RequestItem): TokenEstimate {
      const { body } = build(item);
      const max = [body.max_completion_tokens, body.max_tokens, body.max_output_tokens]
        .find((x): x is number => typeof x === "number" && x > 0);
      return estimateRequestTokens(body, {
        counts: "request",
        model: String(body.model),
        maxTokens: max,
      });
    },
    async send(item: RequestItem, { signal }: SendOptions = {}): Promise<ProviderResponse> {
      const { path, body } = build(item);
      // Like OpenAI's SDKs, the base URL includes the version: `.../v1` + `/chat/completions`.
      const res = await postJson(client, joinUrl(base, path), body, {
        headers,
        signal,
        apiKey: options.apiKey,
        classify: classifyOpenAI,
      });
      const response = openAIResponse(item, res.status, res.body, String(body.model), {
        requestId: res.headers.get("x-request-id") ?? undefined,
        rateLimit: parseRateLimitHeaders(res.headers),
      });
      if (response.noText) throw noTextFailure(response);
      return response;
    },
  };
}
