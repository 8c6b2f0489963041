/**
 * OpenAI and every OpenAI-compatible server (vLLM, Ollama, Together, OpenRouter…), through
 * `baseUrl`.
 * @module
 */
import { chatToOpenAI, geminiToChat, toGenerateContentResponse } from "../convert.ts";
import type { FailureInfo } from "../errors.ts";
import type { ProviderResponse, RequestItem, Usage } from "../formats.ts";
import { parseRateLimitHeaders } from "../rate_limit_headers.ts";
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

/** OpenAI's API. */
export const OPENAI_BASE_URL = "https://api.openai.com/v1";
/** Model used when neither the line nor the options name one. */
export const OPENAI_DEFAULT_MODEL = "gpt-5-mini";
/** Requests per second when none is set. */
export const OPENAI_DEFAULT_RATE = 100;

/** Reads an OpenAI error body: `insufficient_quota` is final even though it comes as a 429. */
export function classifyOpenAI(status: number, body: unknown, headers: Headers): FailureInfo {
  const error = (body as { error?: { code?: unknown; type?: unknown; message?: unknown } })?.error;
  const code = typeof error?.code === "string"
    ? error.code
    : typeof error?.type === "string"
    ? error.type
    : `http_${status}`;
  const message = failureMessage(status, body, error?.message);
  const info = classifyByStatus(status, code, message, headers);
  if (code === "insufficient_quota" || error?.type === "insufficient_quota") {
    info.retryable = false;
    info.kind = "billing";
  } else if (status === 401 || status === 403) {
    info.kind = "auth";
  } else if (status === 429) {
    // OpenAI names the exhausted limit in the message: "... on requests per day (RPD) ...".
    info.kind = /per day|\b(RPD|TPD)\b/i.test(message) ? "daily_quota" : "rate_limit";
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

/** Answer text of an OpenAI response body, or null. */
function textOf(body: Record<string, unknown>): string | null {
  const choice = (body.choices as { message?: { content?: unknown }; text?: unknown }[] | undefined)
    ?.[0];
  if (typeof choice?.message?.content === "string") return choice.message.content;
  if (typeof choice?.text === "string") return choice.text;
  if (typeof body.output_text === "string") return body.output_text;
  if (Array.isArray(body.output)) {
    const texts: string[] = [];
    for (const out of body.output as { content?: { type?: string; text?: unknown }[] }[]) {
      for (const c of out.content ?? []) if (typeof c.text === "string") texts.push(c.text);
    }
    return texts.length ? texts.join("") : null;
  }
  return null;
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
  const model = typeof body.model === "string" ? body.model : requested;
  return {
    status,
    body: item.format === "gemini-batch" ? toGenerateContentResponse(text, usage, model) : body,
    text,
    usage,
    ...more,
    provider: "openai",
    model,
  };
}

/** Creates the OpenAI adapter. */
export function createOpenAIProvider(options: HttpProviderOptions = {}): Provider {
  const base = options.baseUrl ?? OPENAI_BASE_URL;
  const model = options.model ?? OPENAI_DEFAULT_MODEL;
  const client = createClient(options);
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  return {
    name: "openai",
    model,
    defaultRate: OPENAI_DEFAULT_RATE,
    async send(item: RequestItem, { signal }: SendOptions = {}): Promise<ProviderResponse> {
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
      // Like OpenAI's SDKs, the base URL includes the version: `.../v1` + `/chat/completions`.
      const res = await postJson(client, joinUrl(base, path), body, {
        headers,
        signal,
        apiKey: options.apiKey,
        classify: classifyOpenAI,
      });
      return openAIResponse(item, res.status, res.body, String(body.model), {
        requestId: res.headers.get("x-request-id") ?? undefined,
        rateLimit: parseRateLimitHeaders(res.headers),
      });
    },
  };
}
