/**
 * Google's Gemini API (generateContent). Reads `RetryInfo.retryDelay` and `QuotaFailure`
 * quota ids out of error details.
 * @module
 */
import { chatToGemini, openAIBodyToChat, toChatCompletion } from "../convert.ts";
import type { FailureInfo } from "../errors.ts";
import type { ProviderResponse, RequestItem, Usage } from "../formats.ts";
import { parseDuration } from "../retry.ts";
import {
  classifyByStatus,
  createClient,
  failureMessage,
  type HttpProviderOptions,
  joinUrl,
  postJson,
  type Provider,
  type SendOptions,
} from "./provider.ts";

/** Gemini API host. */
export const GEMINI_BASE_URL = "https://generativelanguage.googleapis.com";
/** Model used when neither the line nor the options name one. */
export const GEMINI_DEFAULT_MODEL = "gemini-2.5-flash";
/** Requests per second when none is set. */
export const GEMINI_DEFAULT_RATE = 60;

type Detail = {
  "@type"?: string;
  retryDelay?: unknown;
  violations?: { quotaId?: unknown }[];
  reason?: unknown;
};

/** Reads a Gemini error body (`{error: {code, message, status, details}}`). */
export function classifyGemini(status: number, body: unknown, headers: Headers): FailureInfo {
  const error = (body as { error?: { message?: unknown; status?: unknown; details?: Detail[] } })
    ?.error;
  const code = typeof error?.status === "string" ? error.status : `http_${status}`;
  const message = failureMessage(status, body, error?.message);
  const info = classifyByStatus(status, code, message, headers);
  for (const detail of Array.isArray(error?.details) ? error.details : []) {
    const type = detail?.["@type"] ?? "";
    if (type.endsWith("google.rpc.RetryInfo")) {
      const ms = parseDuration(detail.retryDelay);
      if (ms !== undefined) info.retryAfterMs = Math.max(info.retryAfterMs ?? 0, ms);
    } else if (type.endsWith("google.rpc.QuotaFailure")) {
      const id = detail.violations?.find((v) => typeof v.quotaId === "string")?.quotaId;
      if (typeof id === "string") info.quotaId = id;
    } else if (type.endsWith("google.rpc.ErrorInfo") && detail.reason === "API_KEY_INVALID") {
      info.kind = "auth";
    }
  }
  if (status === 401 || status === 403) info.kind = "auth";
  else if (status === 429) {
    info.kind = /PerDay/i.test(info.quotaId ?? "") ? "daily_quota" : "rate_limit";
  }
  if (info.kind === "auth") info.retryable = false;
  return info;
}

/** Token usage of a Gemini response body. */
function usageOf(body: Record<string, unknown>): Usage {
  const u = (body.usageMetadata ?? {}) as Record<string, unknown>;
  const num = (x: unknown) => (typeof x === "number" ? x : 0);
  return {
    input_tokens: num(u.promptTokenCount),
    output_tokens: num(u.candidatesTokenCount) + num(u.thoughtsTokenCount),
  };
}

/** Answer text of a Gemini response body, or null. */
function textOf(body: Record<string, unknown>): string | null {
  const parts = (body.candidates as
    | { content?: { parts?: { text?: unknown; thought?: unknown }[] } }[]
    | undefined)
    ?.[0]?.content?.parts;
  if (!Array.isArray(parts)) return null;
  const texts = parts.filter((p) => typeof p.text === "string" && p.thought !== true).map((p) =>
    p.text as string
  );
  return texts.length ? texts.join("") : null;
}

/**
 * The {@linkcode ProviderResponse} to `item` of a Gemini response body from `model` (shared with
 * batch mode): an OpenAI batch line gets a Chat Completion, any other line the body as it is.
 */
export function geminiResponse(
  item: RequestItem,
  status: number,
  body: Record<string, unknown>,
  model: string,
): ProviderResponse {
  const usage = usageOf(body);
  const text = textOf(body);
  return {
    status,
    body: item.format === "openai-batch" ? toChatCompletion(text, usage, model) : body,
    text,
    usage,
    requestId: typeof body.responseId === "string" ? body.responseId : undefined,
    provider: "gemini",
    model,
  };
}

/** Creates the Gemini adapter. */
export function createGeminiProvider(options: HttpProviderOptions = {}): Provider {
  const base = options.baseUrl ?? GEMINI_BASE_URL;
  // Accept a base URL with or without the API version.
  const root = /\/v1(beta)?\/?$/.test(base) ? base : joinUrl(base, "v1beta");
  const defaultModel = options.model ?? GEMINI_DEFAULT_MODEL;
  const client = createClient(options);
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers["x-goog-api-key"] = options.apiKey;
  return {
    name: "gemini",
    model: defaultModel,
    defaultRate: GEMINI_DEFAULT_RATE,
    async send(item: RequestItem, { signal }: SendOptions = {}): Promise<ProviderResponse> {
      let request: Record<string, unknown>;
      let model = defaultModel;
      if (item.format === "gemini-batch") {
        const { model: lineModel, ...rest } = item.request;
        request = rest;
        if (typeof lineModel === "string") model = lineModel;
      } else if (item.format === "simple") {
        request = chatToGemini(item.chat);
        if (item.chat.model) model = item.chat.model;
      } else {
        if (item.url !== "/v1/chat/completions") {
          throw new TypeError(
            `line ${item.line}: Gemini cannot serve ${item.url}; use --provider openai`,
          );
        }
        const chat = openAIBodyToChat(item.body);
        request = chatToGemini(chat);
        if (chat.model) model = chat.model;
      }
      model = model.replace(/^models\//, "");
      const url = joinUrl(root, `models/${encodeURIComponent(model)}:generateContent`);
      const res = await postJson(client, url, request, {
        headers,
        signal,
        apiKey: options.apiKey,
        classify: classifyGemini,
      });
      return geminiResponse(item, res.status, res.body, model);
    },
  };
}
