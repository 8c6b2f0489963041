/**
 * The provider adapter contract and the failure of an answer without text. The HTTP adapters'
 * options and their HTTP (ky or a runtime's `HttpPost`, timeouts, network errors, redaction) are
 * in `./http.ts`.
 * @module
 */
import { ProviderError } from "../errors.ts";
import type { ProviderResponse, RequestItem } from "../formats.ts";
import type { TokenEstimate } from "../tokens.ts";

export type { HttpProviderOptions } from "./http.ts";

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
