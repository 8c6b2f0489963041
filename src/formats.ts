/**
 * Input lines (OpenAI batch, Gemini batch, simple), detected per line and validated with
 * valibot, and the output / error records written for each of them.
 * @module
 */
import * as v from "valibot";
import type { NoTextCode } from "./errors.ts";
import type { FinishReason } from "./finish_reason.ts";
import type { RateLimitInfo } from "./rate_limit_headers.ts";

/** The three input line formats. */
export type InputFormat = "openai-batch" | "gemini-batch" | "simple";

const Id = v.union([v.pipe(v.string(), v.nonEmpty("must not be empty")), v.number()]);

/** OpenAI endpoints a batch line may target. */
export const OPENAI_BATCH_URLS = [
  "/v1/chat/completions",
  "/v1/responses",
  "/v1/embeddings",
  "/v1/completions",
] as const;

const OpenAIBatchLine = v.looseObject({
  custom_id: v.pipe(v.string(), v.nonEmpty("must not be empty")),
  method: v.optional(v.literal("POST")),
  url: v.picklist(OPENAI_BATCH_URLS, `must be one of ${OPENAI_BATCH_URLS.join(", ")}`),
  body: v.looseObject({ model: v.optional(v.string()) }),
});

const Part = v.looseObject({ text: v.optional(v.string()) });
const Content = v.looseObject({ role: v.optional(v.string()), parts: v.array(Part) });
const GeminiBatchLine = v.looseObject({
  key: v.pipe(v.string(), v.nonEmpty("must not be empty")),
  request: v.looseObject({
    contents: v.pipe(v.array(Content), v.nonEmpty("must not be empty")),
    model: v.optional(v.string()),
  }),
});

const MessageContent = v.union([
  v.string(),
  v.array(v.looseObject({ type: v.string(), text: v.optional(v.string()) })),
]);
const Message = v.looseObject({
  role: v.picklist(["system", "developer", "user", "assistant"]),
  content: MessageContent,
});
const Generation = {
  system: v.optional(v.string()),
  model: v.optional(v.string()),
  temperature: v.optional(v.pipe(v.number(), v.minValue(0))),
  top_p: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
  max_tokens: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
  stop: v.optional(v.union([v.string(), v.array(v.string())])),
  seed: v.optional(v.pipe(v.number(), v.integer())),
};
const PromptLine = v.looseObject({
  id: v.optional(Id),
  prompt: v.pipe(v.string(), v.nonEmpty("must not be empty")),
  ...Generation,
});
const MessagesLine = v.looseObject({
  id: v.optional(Id),
  messages: v.pipe(v.array(Message), v.nonEmpty("must not be empty")),
  ...Generation,
});

/** A chat message in the simple format (OpenAI's shape: text or an array of text parts). */
export interface ChatMessage {
  role: "system" | "developer" | "user" | "assistant";
  content: string | { type: string; text?: string; [key: string]: unknown }[];
  [key: string]: unknown;
}

/** Generation settings of a simple line, in OpenAI's names. */
export interface GenerationSettings {
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  stop?: string | string[];
  seed?: number;
}

/** A provider-neutral chat request, built from a simple line. */
export interface ChatRequest extends GenerationSettings {
  messages: ChatMessage[];
  system?: string;
  model?: string;
}

/** One validated input line, ready for a provider. */
export type RequestItem =
  & {
    /** 1-based line number in the input. */
    line: number;
    /** The item's id: `custom_id`, `key` or `id`, as a string; the line number when absent. */
    id: string;
    /** The parsed line without any `error` field a previous run added. */
    original: Record<string, unknown>;
  }
  & (
    | {
      format: "openai-batch";
      url: (typeof OPENAI_BATCH_URLS)[number];
      body: Record<string, unknown>;
    }
    | { format: "gemini-batch"; request: Record<string, unknown> }
    | { format: "simple"; chat: ChatRequest }
  );

/** Result of {@linkcode parseLine}: an item, or why the line was rejected. */
export type ParsedLine =
  | { ok: true; item: RequestItem }
  | {
    ok: false;
    line: number;
    code: "invalid_json" | "unknown_format" | "invalid_line";
    message: string;
    original?: unknown;
  };

function describe(issues: v.BaseIssue<unknown>[]): string {
  return issues.slice(0, 3).map((issue) => {
    const path = v.getDotPath(issue);
    return path ? `field '${path}': ${issue.message}` : issue.message;
  }).join("; ");
}

/** Which format a parsed JSON object is in, from the fields it has. */
export function detectFormat(value: Record<string, unknown>): InputFormat | undefined {
  if ("custom_id" in value || ("url" in value && "body" in value)) return "openai-batch";
  if ("key" in value && "request" in value) return "gemini-batch";
  if ("prompt" in value || "messages" in value) return "simple";
  return undefined;
}

/**
 * Parses and validates one input line. Never throws: a bad line comes back with a message that
 * names the line and the field.
 */
export function parseLine(text: string, line: number, maxLineLength = Infinity): ParsedLine {
  if (text.length > maxLineLength) {
    return {
      ok: false,
      line,
      code: "invalid_line",
      message: `line ${line}: longer than the limit of ${maxLineLength} characters`,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      line,
      code: "invalid_json",
      message: `line ${line}: not valid JSON (${(error as Error).message})`,
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      ok: false,
      line,
      code: "unknown_format",
      message: `line ${line}: expected a JSON object, got ${
        value === null ? "null" : Array.isArray(value) ? "an array" : typeof value
      }`,
      original: value,
    };
  }
  const { error: _previous, ...original } = value as Record<string, unknown>;
  const format = detectFormat(original);
  const bad = (message: string): ParsedLine => ({
    ok: false,
    line,
    code: "invalid_line",
    message: `line ${line}: ${message}`,
    original,
  });
  switch (format) {
    case "openai-batch": {
      const r = v.safeParse(OpenAIBatchLine, original);
      if (!r.success) return bad(`OpenAI batch line, ${describe(r.issues)}`);
      return {
        ok: true,
        item: {
          line,
          id: r.output.custom_id,
          original,
          format,
          url: r.output.url,
          body: r.output.body,
        },
      };
    }
    case "gemini-batch": {
      const r = v.safeParse(GeminiBatchLine, original);
      if (!r.success) return bad(`Gemini batch line, ${describe(r.issues)}`);
      return {
        ok: true,
        item: { line, id: r.output.key, original, format, request: r.output.request },
      };
    }
    case "simple": {
      if ("prompt" in original && "messages" in original) {
        return bad("has both 'prompt' and 'messages'; give one");
      }
      const r = "prompt" in original
        ? v.safeParse(PromptLine, original)
        : v.safeParse(MessagesLine, original);
      if (!r.success) return bad(describe(r.issues));
      const o = r.output as v.InferOutput<typeof PromptLine> & v.InferOutput<typeof MessagesLine>;
      const messages: ChatMessage[] = "prompt" in o && o.prompt !== undefined
        ? [{ role: "user", content: o.prompt }]
        : o.messages;
      const chat: ChatRequest = { messages };
      for (
        const key of [
          "system",
          "model",
          "temperature",
          "top_p",
          "max_tokens",
          "stop",
          "seed",
        ] as const
      ) {
        if (o[key] !== undefined) (chat as unknown as Record<string, unknown>)[key] = o[key];
      }
      return {
        ok: true,
        item: {
          line,
          id: o.id === undefined ? String(line) : String(o.id),
          original,
          format,
          chat,
        },
      };
    }
    default:
      return {
        ok: false,
        line,
        code: "unknown_format",
        message:
          `line ${line}: not a known format: expected {custom_id, method, url, body} (OpenAI batch), {key, request} (Gemini batch) or {prompt} / {messages} (simple)`,
        original,
      };
  }
}

/** Text of a message's content, parts joined. */
export function contentText(content: ChatMessage["content"]): string {
  return typeof content === "string"
    ? content
    : content.map((p) => (typeof p.text === "string" ? p.text : "")).join("");
}

/** Token usage normalised across providers. */
export interface Usage {
  input_tokens: number;
  output_tokens: number;
}

/** What a provider returned for one item. */
export interface ProviderResponse {
  /** The provider's JSON body, as it came. */
  body: unknown;
  /** The answer text, when there is one. */
  text: string | null;
  usage: Usage;
  status: number;
  requestId?: string;
  /** Provider and model that answered, for the simple output. */
  provider: string;
  model: string;
  /** Rate-limit headers that came with the answer. */
  rateLimit?: RateLimitInfo;
  /** Why the answer ended, in OpenAI's words (Gemini's mapped); undefined when the body has none. */
  finishReason?: FinishReason;
  /**
   * Set when a chat answer came back without text (blocked, cut off before any text, refused,
   * empty): the adapter turns it into a failure rather than a silent success.
   */
  noText?: { code: NoTextCode; message: string };
}

/** Per-item facts the output records carry. */
export interface Outcome {
  attempts: number;
  latencyMs: number;
}

/** The line written to output.jsonl for a successful item, in the shape of its input format. */
export function outputRecord(
  item: RequestItem,
  response: ProviderResponse,
  outcome: Outcome,
): Record<string, unknown> {
  switch (item.format) {
    case "openai-batch":
      return {
        id: `batch_req_${crypto.randomUUID().replaceAll("-", "")}`,
        custom_id: item.id,
        response: {
          status_code: response.status,
          request_id: response.requestId ?? null,
          body: response.body,
        },
        error: null,
      };
    case "gemini-batch":
      return { key: item.id, response: response.body };
    case "simple":
      return {
        id: typeof item.original.id === "number" ? item.original.id : item.id,
        text: response.text,
        finish_reason: response.finishReason ?? null,
        response: response.body,
        usage: response.usage,
        provider: response.provider,
        model: response.model,
        attempts: outcome.attempts,
        latency_ms: Math.round(outcome.latencyMs),
      };
  }
}

/** The `error` field of an errors.jsonl line. */
export interface ErrorField {
  status: number;
  code: string;
  message: string;
  attempts: number;
  line: number;
  /** A 200 answer without text: why it ended (`length`, `content_filter`, `stop`). */
  finish_reason?: string;
  /** A 200 answer without text: the provider's body as it came (safety ratings, usage). */
  response?: unknown;
}

/**
 * The line written to errors.jsonl: the original request plus `error`, valid input as it
 * stands. A simple line whose id was its line number gets that `id` written in, so a re-run
 * of errors.jsonl keeps the item's identity.
 */
export function errorRecord(
  original: unknown,
  id: string | undefined,
  error: ErrorField,
): Record<string, unknown> {
  if (typeof original !== "object" || original === null || Array.isArray(original)) {
    return { line: error.line, raw: original ?? null, error };
  }
  const record: Record<string, unknown> = { ...(original as Record<string, unknown>) };
  if (id !== undefined && detectFormat(record) === "simple" && record.id === undefined) {
    record.id = Number(id);
  }
  record.error = error;
  return record;
}

/** The id an output.jsonl line was written for, in any of the output shapes; undefined if none. */
export function outputId(record: unknown): string | undefined {
  if (typeof record !== "object" || record === null) return undefined;
  const r = record as Record<string, unknown>;
  for (const key of ["custom_id", "key", "id"] as const) {
    const value = r[key];
    if (key === "id" && "custom_id" in r) continue; // OpenAI's own batch_req_ id
    if (typeof value === "string" || typeof value === "number") return String(value);
  }
  return undefined;
}
