/**
 * Google's Gemini API (generateContent): the realtime adapter. What its answers and errors mean
 * is read in `./classify.ts`.
 * @module
 */
import type { ProviderResponse, RequestItem } from "../../formats.ts";
import { estimateRequestTokens, type TokenEstimate } from "../../tokens.ts";
import { createPost, joinUrl, postJson } from "../http.ts";
import {
  type HttpProviderOptions,
  noTextFailure,
  type Provider,
  type SendOptions,
} from "../provider.ts";
import { classifyGemini, geminiResponse } from "./classify.ts";
import { geminiHeaders, geminiRequest } from "./request.ts";

/** Gemini API host. */
export const GEMINI_BASE_URL = "https://generativelanguage.googleapis.com";
/** Model used when neither the line nor the options name one. */
export const GEMINI_DEFAULT_MODEL = "gemini-2.5-flash";
/** Requests per second when none is set. */
export const GEMINI_DEFAULT_RATE = 60;

/** Creates the Gemini adapter. */
export function createGeminiProvider(options: HttpProviderOptions = {}): Provider {
  const base = options.baseUrl ?? GEMINI_BASE_URL;
  // Accept a base URL with or without the API version.
  const root = /\/v1(beta)?\/?$/.test(base) ? base : joinUrl(base, "v1beta");
  const defaultModel = options.model ?? GEMINI_DEFAULT_MODEL;
  const client = createPost(options);
  const headers = geminiHeaders(options);
  /** The request exactly as it is sent, and the model it goes to. */
  const build = (item: RequestItem): { request: Record<string, unknown>; model: string } => {
    const { request, model } = geminiRequest(item);
    return { request, model: (model ?? defaultModel).replace(/^models\//, "") };
  };
  return {
    name: "gemini",
    model: defaultModel,
    defaultRate: GEMINI_DEFAULT_RATE,
    estimate(item: RequestItem): TokenEstimate {
      // A line Gemini cannot serve fails in send(); its estimate does not matter.
      if (item.format === "openai-batch" && item.url !== "/v1/chat/completions") {
        return estimateRequestTokens({}, { counts: "input" });
      }
      const { request, model } = build(item);
      return estimateRequestTokens(request, { counts: "input", model });
    },
    async send(item: RequestItem, { signal }: SendOptions = {}): Promise<ProviderResponse> {
      const { request, model } = build(item);
      const url = joinUrl(root, `models/${encodeURIComponent(model)}:generateContent`);
      const res = await postJson(client, url, request, {
        headers,
        signal,
        apiKey: options.apiKey,
        classify: classifyGemini,
      });
      const response = geminiResponse(item, res.status, res.body, model);
      if (response.noText) throw noTextFailure(response);
      return response;
    },
  };
}
