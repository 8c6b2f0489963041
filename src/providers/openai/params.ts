/**
 * Chat Completions parameters adapted to what the model takes. OpenAI's reasoning models
 * (gpt-5*, o1, o3, o4…) answer `max_tokens` with 400 `unsupported_parameter` and any
 * `temperature` but 1 with 400 `unsupported_value`; every line would fail the same way.
 * @module
 */

/** The sampling parameters a reasoning model takes only at their default value. */
const FIXED_FOR_REASONING: Record<string, unknown> = {
  temperature: 1,
  top_p: 1,
  presence_penalty: 0,
  frequency_penalty: 0,
};

/** Parameters a reasoning model does not take at all. */
const UNSUPPORTED_FOR_REASONING = ["logprobs", "top_logprobs", "logit_bias"];

/**
 * True for OpenAI's reasoning models: `gpt-5`, `gpt-5-mini`, `gpt-5.2`…, `o1`, `o3-mini`,
 * `o4-mini`…, also behind a router prefix (`openai/gpt-5`). `gpt-5-chat*` models are chat
 * models, not reasoning ones.
 *
 * @example
 * ```ts
 * isReasoningModel("gpt-5-mini"); // true
 * isReasoningModel("gpt-4o"); // false
 * ```
 */
export function isReasoningModel(model: string): boolean {
  const name = model.slice(model.lastIndexOf("/") + 1).toLowerCase();
  if (/^gpt-5[\w.-]*-chat/.test(name)) return false;
  return /^(gpt-5|o1|o3|o4)(\b|[-.])/.test(name);
}

/** Options for {@linkcode adaptOpenAIBody}. */
export interface AdaptOptions {
  /** The request goes to OpenAI's own API (api.openai.com), where `max_completion_tokens` is current. */
  openAIHost: boolean;
  /** Told about each dropped parameter (the caller says it once). */
  onDrop?: (param: string, model: string, value: unknown) => void;
}

/**
 * A chat.completions body the model takes: on OpenAI's own API, and for reasoning models
 * anywhere, `max_tokens` becomes `max_completion_tokens`; for reasoning models the sampling
 * parameters they only take at their default (`temperature`, `top_p`, penalties) are dropped
 * when set to anything else, and `logprobs`, `top_logprobs`, `logit_bias` are dropped. Other
 * models on other servers (vLLM, Ollama) keep `max_tokens`, which they all read. Returns `body`
 * itself when nothing changes.
 */
export function adaptOpenAIBody(
  body: Record<string, unknown>,
  options: AdaptOptions,
): Record<string, unknown> {
  const model = typeof body.model === "string" ? body.model : "";
  const reasoning = isReasoningModel(model);
  if (!reasoning && !options.openAIHost) return body;
  let out = body;
  const edit = () => (out === body ? (out = { ...body }) : out);
  if (body.max_tokens !== undefined) {
    const copy = edit();
    if (copy.max_completion_tokens === undefined) copy.max_completion_tokens = body.max_tokens;
    delete copy.max_tokens;
  }
  if (!reasoning) return out;
  for (const [param, fixed] of Object.entries(FIXED_FOR_REASONING)) {
    const value = body[param];
    if (value === undefined || value === null || value === fixed) continue;
    delete edit()[param];
    options.onDrop?.(param, model, value);
  }
  for (const param of UNSUPPORTED_FOR_REASONING) {
    const value = body[param];
    if (value === undefined || value === null || value === false) continue;
    delete edit()[param];
    options.onDrop?.(param, model, value);
  }
  return out;
}
