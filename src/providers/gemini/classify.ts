/**
 * What a Gemini answer means, shared by the realtime adapter and the Batch Mode backend: error
 * bodies classified (`RetryInfo.retryDelay`, `QuotaFailure` quota ids, bad keys), answers read
 * (text without thoughts, usage, finish reason, blocked prompts and candidates, cut-offs).
 * @module
 */
import { toChatCompletion } from "../../convert.ts";
import type { FailureInfo } from "../../errors.ts";
import { fromGeminiFinishReason } from "../../finish_reason.ts";
import type { ProviderResponse, RequestItem, Usage } from "../../formats.ts";
import { parseDuration } from "../../retry.ts";
import { classifyByStatus, failureMessage } from "../http.ts";

type Detail = {
  "@type"?: string;
  retryDelay?: unknown;
  violations?: { quotaId?: unknown; quotaMetric?: unknown }[];
  reason?: unknown;
};

/** ErrorInfo reasons that refuse the key or the project, not the request. */
const AUTH_REASONS = new Set([
  "API_KEY_INVALID",
  "API_KEY_SERVICE_BLOCKED",
  "API_KEY_HTTP_REFERRER_BLOCKED",
  "API_KEY_IP_ADDRESS_BLOCKED",
  "SERVICE_DISABLED",
  "CONSUMER_INVALID",
  "CONSUMER_SUSPENDED",
  "BILLING_DISABLED",
]);

/**
 * Reads a Gemini error body (`{error: {code, message, status, details}}`).
 *
 * - 429 `RESOURCE_EXHAUSTED`: a message with `limit: 0` (a model that has no quota on the
 *   project's tier, e.g. a Pro model on the free tier) is `billing`: waiting never helps; else a
 *   per-day violation anywhere in the `QuotaFailure` list (they come in any order, several at
 *   once) is `daily_quota`; anything else, a 429 with no detail at all included, is `rate_limit`
 *   (slow down, retry).
 * - Bad key: 400 `INVALID_ARGUMENT` with `ErrorInfo` `API_KEY_INVALID` (Gemini does not answer
 *   401), and 401/403 (a project with the API disabled: 403 `SERVICE_DISABLED`): `auth`.
 * - 404 `NOT_FOUND` (`models/x is not found for API version v1beta`): `config`.
 */
export function classifyGemini(status: number, body: unknown, headers: Headers): FailureInfo {
  const error = (body as { error?: { message?: unknown; status?: unknown; details?: Detail[] } })
    ?.error;
  const code = typeof error?.status === "string" ? error.status : `http_${status}`;
  const message = failureMessage(status, body, error?.message);
  const info = classifyByStatus(status, code, message, headers);
  const quotaIds: string[] = [];
  for (const detail of Array.isArray(error?.details) ? error.details : []) {
    const type = detail?.["@type"] ?? "";
    if (type.endsWith("google.rpc.RetryInfo")) {
      const ms = parseDuration(detail.retryDelay);
      if (ms !== undefined) info.retryAfterMs = Math.max(info.retryAfterMs ?? 0, ms);
    } else if (type.endsWith("google.rpc.QuotaFailure")) {
      for (const v of Array.isArray(detail.violations) ? detail.violations : []) {
        if (typeof v?.quotaId === "string") quotaIds.push(v.quotaId);
      }
    } else if (type.endsWith("google.rpc.ErrorInfo") && AUTH_REASONS.has(String(detail.reason))) {
      info.kind = "auth";
    }
  }
  if (status === 401 || status === 403) info.kind = "auth";
  else if (status === 429) {
    const daily = quotaIds.find((id) => /PerDay/i.test(id));
    if (/\blimit: 0\b/.test(message)) {
      // No quota at all for this model on this tier: no reset brings one (the per-day
      // violation that comes with it is 0 too).
      info.kind = "billing";
      info.quotaId = quotaIds[0];
    } else if (daily !== undefined) {
      info.kind = "daily_quota";
      info.quotaId = daily;
    } else {
      info.kind = "rate_limit";
      info.quotaId = quotaIds[0];
    }
  } else if (status === 404) info.kind = "config";
  if (info.kind === "auth" || info.kind === "billing" || info.kind === "config") {
    info.retryable = false;
  }
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

type Candidate = {
  content?: { parts?: { text?: unknown; thought?: unknown }[] };
  finishReason?: unknown;
};

/** Answer text of a Gemini candidate (thoughts left out), or null. */
function textOf(candidate: Candidate | undefined): string | null {
  const parts = candidate?.content?.parts;
  if (!Array.isArray(parts)) return null;
  const texts = parts.filter((p) => typeof p.text === "string" && p.thought !== true).map((p) =>
    p.text as string
  );
  return texts.length ? texts.join("") : null;
}

/**
 * Why a Gemini body has no text, or undefined when it has some: a blocked prompt
 * (`promptFeedback.blockReason`, no candidates), a candidate stopped by a filter (`SAFETY`…),
 * `MAX_TOKENS` before any text (thinking spent the budget), or nothing at all.
 */
function noTextOf(
  body: Record<string, unknown>,
  candidate: Candidate | undefined,
  text: string | null,
): ProviderResponse["noText"] {
  if (text !== null && text !== "") return undefined;
  const feedback = body.promptFeedback as { blockReason?: unknown } | undefined;
  if (candidate === undefined && typeof feedback?.blockReason === "string") {
    return {
      code: "blocked",
      message: `the prompt was blocked (promptFeedback.blockReason ${feedback.blockReason})`,
    };
  }
  const reason = candidate?.finishReason;
  const mapped = fromGeminiFinishReason(reason);
  if (mapped === "length") {
    const thoughts = (body.usageMetadata as { thoughtsTokenCount?: unknown } | undefined)
      ?.thoughtsTokenCount;
    return {
      code: "cut_off",
      message: `finishReason MAX_TOKENS before any text${
        typeof thoughts === "number" ? ` (${thoughts} tokens went to thinking)` : ""
      }: raise max_tokens`,
    };
  }
  if (mapped === "content_filter") {
    return { code: "blocked", message: `the answer was blocked (finishReason ${reason})` };
  }
  return {
    code: "empty_answer",
    message: candidate === undefined
      ? "the answer has no candidates and no block reason"
      : `the answer has no text (finishReason ${String(reason ?? "none")})`,
  };
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
  const candidate = (body.candidates as Candidate[] | undefined)?.[0];
  const text = textOf(candidate);
  const noText = noTextOf(body, candidate, text);
  const finishReason = fromGeminiFinishReason(candidate?.finishReason) ??
    (noText?.code === "blocked" ? "content_filter" : undefined);
  return {
    status,
    body: item.format === "openai-batch"
      ? toChatCompletion(text, usage, model, finishReason)
      : body,
    text,
    usage,
    requestId: typeof body.responseId === "string" ? body.responseId : undefined,
    provider: "gemini",
    model,
    finishReason,
    noText,
  };
}
