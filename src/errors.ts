/**
 * The error classes callers catch. Guards compare `name` as well as the prototype so they
 * keep working across realms and duplicated module copies.
 * @module
 */
import type { RateLimitInfo } from "./rate_limit_headers.ts";

/** Base class of every error this library throws on purpose. */
export class MftError extends Error {
  override name = "MftError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * Failures that are about the account, not the item, and so change what the whole run does:
 * - `rate_limit`: a per-minute quota (429). Slow everyone down, wait, retry; it does not use up
 *   the item's attempts.
 * - `daily_quota`: a per-day quota is spent. Stop dispatching; resume after it resets.
 * - `billing`: no credit (`insufficient_quota`). Stop at once.
 * - `auth`: the key is wrong or lacks permission (also a project the API is disabled for). Stop at
 *   once.
 * - `config`: the run's configuration is wrong: an unknown model, a parameter the model does not
 *   take. Stops the run while no answer has succeeded yet (the configuration is then the cause);
 *   after a success it is that line's own failure.
 */
export type FailureKind = "rate_limit" | "daily_quota" | "billing" | "auth" | "config";

/**
 * Why an answer that came back 200 carries no text, normalised across providers:
 * - `blocked`: the prompt or the answer was blocked by a safety or policy filter.
 * - `cut_off`: the max tokens were spent before any text (Gemini 2.5's and OpenAI's reasoning
 *   models think within that budget).
 * - `refused`: the model refused (OpenAI `refusal`).
 * - `empty_answer`: no text and no reason; worth another attempt.
 */
export type NoTextCode = "blocked" | "cut_off" | "refused" | "empty_answer";

/** What went wrong with one request to a provider, normalised across providers. */
export interface FailureInfo {
  /** HTTP status, or 0 when no response arrived (network error, timeout). */
  status: number;
  /** A stable machine code: the provider's (`rate_limit_exceeded`, `RESOURCE_EXHAUSTED`) or ours (`timeout`, `network_error`, `bad_response`). */
  code: string;
  /** Human-readable reason. Never contains an API key. */
  message: string;
  /** Whether trying again can help. */
  retryable: boolean;
  /** Delay the provider asked for before the next try, in ms. */
  retryAfterMs?: number;
  /** Quota scope the provider named, e.g. Gemini's `quotaId`. */
  quotaId?: string;
  /** Set when the failure is about the account rather than the item. */
  kind?: FailureKind;
  /** Rate-limit headers that came with the failure. */
  rateLimit?: RateLimitInfo;
  /** The parameter the provider named (OpenAI `param`), e.g. `max_tokens`. */
  param?: string;
  /** For a 200 answer without text: its finish reason, in OpenAI's words (`length`, `content_filter`). */
  finishReason?: string;
  /** For a 200 answer without text: the provider's body, kept so nothing it said is lost. */
  response?: unknown;
}

/** A request to a provider failed. Carries the normalised {@linkcode FailureInfo}. */
export class ProviderError extends MftError {
  override name = "ProviderError";
  readonly info: FailureInfo;
  constructor(info: FailureInfo, options?: ErrorOptions) {
    super(info.message, options);
    this.info = info;
  }
}

/** Options or configuration are invalid; nothing was sent. */
export class ConfigError extends MftError {
  override name = "ConfigError";
}

/**
 * A flag, an argument or an environment variable of the command line or the server is invalid
 * (exit 2). A {@linkcode ConfigError}, so one guard catches both.
 */
export class UsageError extends ConfigError {
  override name = "UsageError";
}

/** True if `error` is a {@linkcode ProviderError}, also across realms. */
export function isProviderError(error: unknown): error is ProviderError {
  return error instanceof ProviderError ||
    (error instanceof Error && error.name === "ProviderError" && "info" in error);
}

/** True if `error` is a {@linkcode ConfigError} (a {@linkcode UsageError} too), also across realms. */
export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError ||
    (error instanceof Error && (error.name === "ConfigError" || error.name === "UsageError"));
}
