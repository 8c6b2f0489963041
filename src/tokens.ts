/**
 * Token estimates made before a request is sent, for the tokens-per-minute gate: the prompt's
 * characters / 4 (calibrated later against the provider's real counts) plus the output budget.
 * @module
 */
import { contentText, type RequestItem } from "./formats.ts";

/** A request's expected token cost, split so each part can be corrected separately. */
export interface TokenEstimate {
  prompt: number;
  /** The output budget: the line's max tokens, or `defaultOutput` when it names none. */
  output: number;
  /** True when `output` came from the line (providers count it in full at admission). */
  outputFromLine: boolean;
  /** Tokens the gate charged for the latest attempt; set by the quota, corrected afterwards. */
  charged?: number;
  /** The model the request goes to: estimates are calibrated per model. */
  model?: string;
  /**
   * How the provider's token quota counts the request, when the estimate knows:
   * - `"request"`: its own estimate at admission, from the whole request (OpenAI: characters of
   *   the request / 4 plus max tokens). The answer's usage does not change it; a token 429's
   *   "Requested N" says what it was.
   * - `"input"`: the real input tokens only (Gemini's input-tokens-per-minute quota); `output`
   *   is then 0 and the answer's usage is the truth.
   *
   * Undefined: prompt plus output, corrected by the answer's usage.
   */
  counts?: "request" | "input";
}

/** Options for {@linkcode estimateRequestTokens}. */
export interface RequestEstimateOptions {
  /** How the provider counts, see {@linkcode TokenEstimate.counts}. */
  counts: "request" | "input";
  /** The model the request goes to. */
  model?: string;
  /** The request's max output tokens, if it names them. */
  maxTokens?: number;
  /** The output budget assumed when it names none (`"request"` only). @default 256 */
  defaultOutput?: number;
}

/**
 * Estimates a request from the exact body the provider will get. `"request"` (OpenAI): the
 * body's UTF-8 bytes / 4, since OpenAI charges by the characters of the whole request (roles,
 * message overhead, every other field), plus the max tokens. `"input"` (Gemini): the
 * characters / 4 of the text the body carries (contents, system instruction), no output.
 * @example
 * ```ts
 * import { estimateRequestTokens } from "./tokens.ts";
 * const body = { model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 10 };
 * estimateRequestTokens(body, { counts: "request", maxTokens: 10 }).prompt; // 18
 * ```
 */
export function estimateRequestTokens(
  body: unknown,
  options: RequestEstimateOptions,
): TokenEstimate {
  const { counts, model, maxTokens } = options;
  if (counts === "input") {
    const parts: string[] = [];
    textOfUnknown(body, parts);
    const chars = parts.reduce((n, p) => n + p.length, 0);
    return { prompt: Math.ceil(chars / 4), output: 0, outputFromLine: true, model, counts };
  }
  const bytes = new TextEncoder().encode(JSON.stringify(body)).length;
  return {
    prompt: Math.ceil(bytes / 4),
    output: maxTokens ?? options.defaultOutput ?? 256,
    outputFromLine: maxTokens !== undefined,
    model,
    counts,
  };
}

function textOfUnknown(value: unknown, out: string[]): void {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) { for (const v of value) textOfUnknown(v, out); }
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (
        k === "text" || k === "content" || k === "parts" || k === "input" ||
        k === "instructions" || k === "contents" || k === "systemInstruction" ||
        k === "system_instruction"
      ) {
        textOfUnknown(v, out);
      }
    }
  }
}

function promptChars(item: RequestItem): number {
  const parts: string[] = [];
  if (item.format === "simple") {
    if (item.chat.system) parts.push(item.chat.system);
    for (const m of item.chat.messages) parts.push(contentText(m.content));
  } else if (item.format === "openai-batch") {
    textOfUnknown(item.body.messages ?? item.body.input ?? item.body.prompt, parts);
    if (typeof item.body.instructions === "string") parts.push(item.body.instructions);
  } else {
    textOfUnknown(item.request.contents, parts);
    textOfUnknown(item.request.systemInstruction, parts);
  }
  return parts.reduce((n, p) => n + p.length, 0);
}

function maxTokens(item: RequestItem): number | undefined {
  const pick = (...xs: unknown[]) => xs.find((x): x is number => typeof x === "number" && x > 0);
  if (item.format === "simple") return item.chat.max_tokens;
  if (item.format === "openai-batch") {
    return pick(item.body.max_completion_tokens, item.body.max_tokens, item.body.max_output_tokens);
  }
  return pick(
    (item.request.generationConfig as Record<string, unknown> | undefined)?.maxOutputTokens,
  );
}

/**
 * Estimates an item's tokens: `ceil(chars / 4 × promptScale)` for the prompt, and the line's
 * max tokens (or `defaultOutput`) for the answer.
 */
export function estimateTokens(
  item: RequestItem,
  promptScale = 1,
  defaultOutput = 256,
): TokenEstimate {
  const declared = maxTokens(item);
  return {
    prompt: Math.ceil((promptChars(item) / 4) * promptScale),
    output: declared ?? defaultOutput,
    outputFromLine: declared !== undefined,
  };
}
