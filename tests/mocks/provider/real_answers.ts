/**
 * Real provider answers the mock provider can give on request: answers without text (blocks,
 * refusals, thinking that spent the budget), and the error bodies of a misconfigured or refused
 * run, in the shapes Gemini and OpenAI send (tests/fixtures/ holds the same shapes as files).
 * @module
 */

/** The `[[mock:NAME]]` directives that answer like a real provider. */
export const REAL_ANSWERS = [
  "blocked",
  "safety",
  "thought_cutoff",
  "refusal",
  "empty",
  "model_not_found",
  "bad_key",
  "service_disabled",
  "daily_second",
  "limit0",
  "quota_no_detail",
] as const;

/** A directive name of {@linkcode REAL_ANSWERS}, or a rule of the model checks. */
export type RealName =
  | (typeof REAL_ANSWERS)[number]
  | "unsupported_parameter"
  | "unsupported_value";

/** A real answer to give: its name, and for the model checks the parameter and value. */
export interface RealOutcome {
  kind: "real";
  name: RealName;
  param?: string;
  value?: unknown;
}

/** Which wire format answers. */
export type Api = "openai-chat" | "openai-responses" | "gemini";

const STATUS: Record<RealName, { openai: number; gemini: number }> = {
  blocked: { openai: 200, gemini: 200 },
  safety: { openai: 200, gemini: 200 },
  thought_cutoff: { openai: 200, gemini: 200 },
  refusal: { openai: 200, gemini: 200 },
  empty: { openai: 200, gemini: 200 },
  model_not_found: { openai: 404, gemini: 404 },
  bad_key: { openai: 401, gemini: 400 },
  service_disabled: { openai: 403, gemini: 403 },
  daily_second: { openai: 429, gemini: 429 },
  limit0: { openai: 429, gemini: 429 },
  quota_no_detail: { openai: 429, gemini: 429 },
  unsupported_parameter: { openai: 400, gemini: 400 },
  unsupported_value: { openai: 400, gemini: 400 },
};

/** The HTTP status of a real answer. */
export function realStatus(api: Api, name: RealName): number {
  return STATUS[name][api === "gemini" ? "gemini" : "openai"];
}

/** True for the reasoning models that refuse `max_tokens` and a temperature other than 1. */
export function isReasoningModelName(model: string): boolean {
  const name = model.slice(model.lastIndexOf("/") + 1).toLowerCase();
  return !/^gpt-5[\w.-]*-chat/.test(name) && /^(gpt-5|o1|o3|o4)(\b|[-.])/.test(name);
}

/**
 * What OpenAI answers a chat request the model cannot take: an unknown model (when `known` is
 * given), `max_tokens` or a temperature other than 1 for a reasoning model. Gemini: an unknown
 * model.
 */
export function modelRefusal(
  api: Api,
  model: string,
  body: unknown,
  known: readonly string[] | undefined,
): RealOutcome | undefined {
  if (known !== undefined && !known.includes(model)) {
    return { kind: "real", name: "model_not_found" };
  }
  if (api !== "openai-chat" || !isReasoningModelName(model)) return undefined;
  const b = body as Record<string, unknown>;
  if (b.max_tokens !== undefined && b.max_tokens !== null) {
    return { kind: "real", name: "unsupported_parameter", param: "max_tokens" };
  }
  for (const param of ["temperature", "top_p"]) {
    if (b[param] !== undefined && b[param] !== null && b[param] !== 1) {
      return { kind: "real", name: "unsupported_value", param, value: b[param] };
    }
  }
  return undefined;
}

/** Facts of the request a real answer is built from. */
export interface RealContext {
  model: string;
  id: string;
  promptTokens: number;
  /** The request's max tokens, for the thinking that spends them all. */
  maxTokens: number;
}

const GOOGLE = "type.googleapis.com/google.rpc.";
const RATE_LIMITS_DOC = "https://ai.google.dev/gemini-api/docs/rate-limits";

function geminiError(status: number, grpc: string, message: string, details?: unknown[]) {
  return { error: { code: status, message, status: grpc, ...(details ? { details } : {}) } };
}

function openAIError(message: string, type: string, code: string | null, param: string | null) {
  return { error: { message, type, param, code } };
}

function violation(metric: string, quotaId: string, model: string) {
  return {
    quotaMetric: `generativelanguage.googleapis.com/${metric}`,
    quotaId,
    quotaDimensions: { location: "global", model },
  };
}

/** The body of a real answer `o` for `api`. */
export function realBody(api: Api, o: RealOutcome, c: RealContext): unknown {
  return api === "gemini" ? geminiBody(o, c) : openAIBody(api, o, c);
}

function geminiBody(o: RealOutcome, c: RealContext): unknown {
  const usage = { promptTokenCount: c.promptTokens, totalTokenCount: c.promptTokens };
  const base = { modelVersion: c.model, responseId: c.id };
  const blockedRatings = [
    { category: "HARM_CATEGORY_HATE_SPEECH", probability: "NEGLIGIBLE" },
    { category: "HARM_CATEGORY_DANGEROUS_CONTENT", probability: "HIGH", blocked: true },
    { category: "HARM_CATEGORY_HARASSMENT", probability: "NEGLIGIBLE" },
    { category: "HARM_CATEGORY_SEXUALLY_EXPLICIT", probability: "NEGLIGIBLE" },
  ];
  switch (o.name) {
    case "blocked":
      return {
        promptFeedback: { blockReason: "SAFETY", safetyRatings: blockedRatings },
        usageMetadata: usage,
        ...base,
      };
    case "safety":
    case "refusal":
      return {
        candidates: [{ finishReason: "SAFETY", index: 0, safetyRatings: blockedRatings }],
        usageMetadata: usage,
        ...base,
      };
    case "thought_cutoff":
      return {
        candidates: [{ content: { role: "model" }, finishReason: "MAX_TOKENS", index: 0 }],
        usageMetadata: {
          promptTokenCount: c.promptTokens,
          totalTokenCount: c.promptTokens + c.maxTokens,
          thoughtsTokenCount: c.maxTokens,
        },
        ...base,
      };
    case "empty":
      return {
        candidates: [{ content: { role: "model" }, finishReason: "STOP", index: 0 }],
        usageMetadata: usage,
        ...base,
      };
    case "model_not_found":
      return geminiError(
        404,
        "NOT_FOUND",
        `models/${c.model} is not found for API version v1beta, or is not supported for ` +
          "generateContent. Call ListModels to see the list of available models and their " +
          "supported methods.",
      );
    case "bad_key":
      return geminiError(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
          {
            "@type": `${GOOGLE}ErrorInfo`,
            reason: "API_KEY_INVALID",
            domain: "googleapis.com",
            metadata: { service: "generativelanguage.googleapis.com" },
          },
          {
            "@type": `${GOOGLE}LocalizedMessage`,
            locale: "en-US",
            message: "API key not valid. Please pass a valid API key.",
          },
        ],
      );
    case "service_disabled":
      return geminiError(
        403,
        "PERMISSION_DENIED",
        "Generative Language API has not been used in project 123456789012 before or it is " +
          "disabled. Enable it by visiting https://console.developers.google.com/apis/api/" +
          "generativelanguage.googleapis.com/overview?project=123456789012 then retry.",
        [{
          "@type": `${GOOGLE}ErrorInfo`,
          reason: "SERVICE_DISABLED",
          domain: "googleapis.com",
          metadata: {
            consumer: "projects/123456789012",
            service: "generativelanguage.googleapis.com",
          },
        }],
      );
    case "daily_second":
      // Several violations, the per-day one second: real 429s list them in any order.
      return geminiError(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For " +
          `more information on this error, head to: ${RATE_LIMITS_DOC}.`,
        [
          {
            "@type": `${GOOGLE}QuotaFailure`,
            violations: [
              violation(
                "generate_content_requests",
                "GenerateRequestsPerMinutePerProjectPerModel",
                c.model,
              ),
              violation(
                "generate_content_requests",
                "GenerateRequestsPerDayPerProjectPerModel",
                c.model,
              ),
              violation(
                "generate_content_input_token_count",
                "GenerateContentInputTokensPerModelPerMinute",
                c.model,
              ),
            ],
          },
          {
            "@type": `${GOOGLE}Help`,
            links: [{ description: "Learn more about Gemini API quotas", url: RATE_LIMITS_DOC }],
          },
          { "@type": `${GOOGLE}RetryInfo`, retryDelay: "40s" },
        ],
      );
    case "limit0":
      return geminiError(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For " +
          `more information on this error, head to: ${RATE_LIMITS_DOC}. \n` +
          "* Quota exceeded for metric: generativelanguage.googleapis.com/" +
          `generate_content_free_tier_input_token_count, limit: 0, model: ${c.model}\n` +
          "* Quota exceeded for metric: generativelanguage.googleapis.com/" +
          `generate_content_free_tier_requests, limit: 0, model: ${c.model}\n` +
          "Please retry in 38.8s.",
        [
          {
            "@type": `${GOOGLE}Help`,
            links: [{ description: "Learn more about Gemini API quotas", url: RATE_LIMITS_DOC }],
          },
          {
            "@type": `${GOOGLE}QuotaFailure`,
            violations: [
              violation(
                "generate_content_free_tier_input_token_count",
                "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                c.model,
              ),
              violation(
                "generate_content_free_tier_requests",
                "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                c.model,
              ),
              violation(
                "generate_content_free_tier_requests",
                "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                c.model,
              ),
            ],
          },
          { "@type": `${GOOGLE}RetryInfo`, retryDelay: "38s" },
        ],
      );
    case "quota_no_detail":
      return geminiError(
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
      );
    case "unsupported_parameter":
    case "unsupported_value":
      return geminiError(
        400,
        "INVALID_ARGUMENT",
        `Invalid JSON payload received. Unknown name "${o.param}": Cannot find field.`,
        [{
          "@type": `${GOOGLE}BadRequest`,
          fieldViolations: [{
            description:
              `Invalid JSON payload received. Unknown name "${o.param}": Cannot find field.`,
          }],
        }],
      );
  }
}

function openAIBody(api: Api, o: RealOutcome, c: RealContext): unknown {
  const created = Math.floor(Date.now() / 1000);
  const chat = (
    message: Record<string, unknown>,
    finish: string,
    completion: number,
    reasoning = 0,
  ) => ({
    id: `chatcmpl-${c.id}`,
    object: "chat.completion",
    created,
    model: c.model,
    choices: [{
      index: 0,
      message: { role: "assistant", annotations: [], ...message },
      logprobs: null,
      finish_reason: finish,
    }],
    usage: {
      prompt_tokens: c.promptTokens,
      completion_tokens: completion,
      total_tokens: c.promptTokens + completion,
      completion_tokens_details: { reasoning_tokens: reasoning },
    },
  });
  const responses = (status: string, reason: string | null, content: unknown[]) => ({
    id: `resp_${c.id}`,
    object: "response",
    created_at: created,
    status,
    incomplete_details: reason === null ? null : { reason },
    model: c.model,
    output: content.length === 0
      ? []
      : [{ type: "message", id: `msg_${c.id}`, status, role: "assistant", content }],
    usage: { input_tokens: c.promptTokens, output_tokens: 0, total_tokens: c.promptTokens },
  });
  const isResponses = api === "openai-responses";
  switch (o.name) {
    case "blocked":
    case "safety":
      return isResponses
        ? responses("incomplete", "content_filter", [])
        : chat({ content: null, refusal: null }, "content_filter", 0);
    case "refusal": {
      const refusal = "I'm sorry, but I can't help with that request.";
      return isResponses
        ? responses("completed", null, [{ type: "refusal", refusal }])
        : chat({ content: null, refusal }, "stop", 12);
    }
    case "thought_cutoff":
      return isResponses
        ? responses("incomplete", "max_output_tokens", [])
        : chat({ content: "", refusal: null }, "length", c.maxTokens, c.maxTokens);
    case "empty":
      return isResponses
        ? responses("completed", null, [{ type: "output_text", text: "", annotations: [] }])
        : chat({ content: "", refusal: null }, "stop", 0);
    case "model_not_found":
      return openAIError(
        `The model \`${c.model}\` does not exist or you do not have access to it.`,
        "invalid_request_error",
        "model_not_found",
        null,
      );
    case "bad_key":
      return openAIError(
        "Incorrect API key provided: sk-test-****cdef. You can find your API key at " +
          "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
        null,
      );
    case "service_disabled":
      return openAIError(
        `Project \`proj_mock\` does not have access to model \`${c.model}\``,
        "invalid_request_error",
        "model_not_found",
        null,
      );
    case "daily_second":
      return openAIError(
        `Rate limit reached for ${c.model} in organization org-mock on requests per day ` +
          "(RPD): Limit 10000, Used 10000, Requested 1. Please try again in 8.64s. Visit " +
          "https://platform.openai.com/account/rate-limits to learn more.",
        "requests",
        "rate_limit_exceeded",
        null,
      );
    case "limit0":
      return openAIError(
        "You exceeded your current quota, please check your plan and billing details. For " +
          "more information on this error, read the docs: " +
          "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        "insufficient_quota",
        null,
      );
    case "quota_no_detail":
      return openAIError(
        "Rate limit reached. Please try again later.",
        "requests",
        "rate_limit_exceeded",
        null,
      );
    case "unsupported_parameter":
      return openAIError(
        `Unsupported parameter: '${o.param}' is not supported with this model. Use ` +
          "'max_completion_tokens' instead.",
        "invalid_request_error",
        "unsupported_parameter",
        o.param ?? null,
      );
    case "unsupported_value":
      return openAIError(
        `Unsupported value: '${o.param}' does not support ${
          JSON.stringify(o.value)
        } with this model. Only the default (1) value is supported.`,
        "invalid_request_error",
        "unsupported_value",
        o.param ?? null,
      );
  }
}
