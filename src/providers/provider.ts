/**
 * The provider adapter contract, the options of the HTTP adapters and batch backends, and the
 * failure of an answer without text. Their HTTP (ky or a runtime's {@linkcode HttpPost},
 * timeouts, network errors, redaction) is in `./http.ts`.
 * @module
 */
import { ProviderError } from "../errors.ts";
import type { ProviderResponse, RequestItem } from "../formats.ts";
import type { TokenEstimate } from "../tokens.ts";
import type { HttpPost } from "./http.ts";

/** Options for {@linkcode Provider.send}. */
export interface SendOptions {
  /** Aborts the request; `send` then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A provider adapter: turns one item into one request and its answer into a response. */
export interface Provider {
  /** `openai`, `gemini` or `mock`. */
  readonly name: string;
  /** Model used when a line names none. */
  readonly model: string;
  /** Requests per second used when the caller sets no rate. */
  readonly defaultRate: number;
  /**
   * Sends one item. Resolves with the answer; rejects with a {@linkcode ProviderError} that says
   * whether a retry can help, or with the signal's reason when aborted.
   */
  send(item: RequestItem, options?: SendOptions): Promise<ProviderResponse>;
  /**
   * Estimates the item's tokens from the exact request `send` makes of it, the way this
   * provider's token quota counts them. Without it, `estimateTokens` (prompt characters / 4
   * plus max tokens) applies.
   */
  estimate?(item: RequestItem): TokenEstimate;
}

/** Options shared by the HTTP adapters. */
export interface HttpProviderOptions {
  /** API key. Sent only in a header, never in a URL, and scrubbed from every error message. */
  apiKey?: string;
  /** Base URL of the API. */
  baseUrl?: string;
  /** Model when a line names none. */
  model?: string;
  /** Per-request timeout in ms. @default 120000 */
  timeoutMs?: number;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * Sends the adapters' requests instead of ky and `fetch`, for a runtime whose fetch costs too
   * much CPU per request to hold a high rate (the CLI's on Node: `nodeHttpPost` in src/adapter/node_http_post.ts).
   * @default ky over `fetch`
   */
  post?: HttpPost;
  /** Extra headers on every request (for example to tag requests for a test server). */
  headers?: Record<string, string>;
  /**
   * Told once per kind of change when the adapter adapts a request to what the model takes
   * (e.g. drops `temperature` for an OpenAI reasoning model). @default no warnings
   */
  onWarning?: (message: string) => void;
}

/**
 * The failure for a 200 answer that carries no text ({@linkcode ProviderResponse.noText}):
 * status 200, the reason as its code, the finish reason and the body kept. Only an empty answer
 * with no reason is worth another attempt; a block, a refusal or a cut-off would come back the
 * same.
 */
export function noTextFailure(response: ProviderResponse): ProviderError {
  const { code, message } = response.noText!;
  return new ProviderError({
    status: response.status,
    code,
    message,
    retryable: code === "empty_answer",
    finishReason: response.finishReason,
    response: response.body,
  });
}
