/**
 * OpenAI and every OpenAI-compatible server (vLLM, Ollama, Together, OpenRouter…), through
 * `baseUrl`.
 * @module
 */
import type { ProviderResponse, RequestItem } from "../../formats.ts";
import { parseRateLimitHeaders } from "../../rate_limit_headers.ts";
import { createPost, joinUrl, postJson } from "../http.ts";
import {
  type HttpProviderOptions,
  noTextFailure,
  type Provider,
  type SendOptions,
} from "../provider.ts";
import { classifyOpenAI, openAIResponse } from "./classify.ts";
import { adaptOpenAIBody } from "./params.ts";
import { openAIHeaders, openAIRequest } from "./request.ts";
import { estimateRequestTokens, type TokenEstimate } from "../../tokens.ts";

/** OpenAI's API. */
export const OPENAI_BASE_URL = "https://api.openai.com/v1";
/** Model used when neither the line nor the options name one. */
export const OPENAI_DEFAULT_MODEL = "gpt-5-mini";
/** Requests per second when none is set. */
export const OPENAI_DEFAULT_RATE = 100;

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
  const headers = openAIHeaders(options);
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
    const request = openAIRequest(item, model);
    // The base URL includes the version.
    const path = request.path.replace(/^\/v1/, "");
    let body = request.body;
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
