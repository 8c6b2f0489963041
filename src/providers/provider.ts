/**
 * The provider adapter contract and the HTTP plumbing the real adapters share: one POST through
 * ky (its own retry off: every retry must pass our rate gate) or a runtime's own
 * {@linkcode HttpPost}, failures normalised to {@linkcode ProviderError}.
 * @module
 */
import ky, { type KyInstance } from "ky";
import { type FailureInfo, ProviderError } from "../errors.ts";
import type { ProviderResponse, RequestItem } from "../formats.ts";
import { parseRateLimitHeaders } from "../rate_limit_headers.ts";
import { isRetryableStatus, parseRetryAfter } from "../retry.ts";
import type { TokenEstimate } from "../tokens.ts";

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

/** Removes every occurrence of `secret` from `text`. */
export function redact(text: string, secret: string | undefined): string {
  return secret && secret.length >= 4 ? text.split(secret).join("[redacted]") : text;
}

/** A ky instance with ky's retry off and our timeout. */
export function createClient(options: HttpProviderOptions): KyInstance {
  return ky.create({
    retry: 0,
    timeout: options.timeoutMs ?? 120_000,
    throwHttpErrors: false,
    fetch: options.fetch,
  });
}

/** Provider-specific reading of an error body. */
export type Classify = (status: number, body: unknown, headers: Headers) => FailureInfo;

/** What {@linkcode HttpPost} is given. */
export interface HttpPostInit {
  /** Request headers; `content-type: application/json` is among them. */
  headers: Record<string, string>;
  /** The JSON text to send. */
  body: string;
  /** Aborts the request: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Time for the whole exchange; past it the promise rejects with an error named `TimeoutError`. */
  timeoutMs: number;
}

/** A whole answer, its body read as text. */
export interface HttpPostResult {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * One POST and its whole answer: the HTTP the adapters need. Rejects on a network failure, a
 * timeout (an error named `TimeoutError`) or an abort (the signal's reason); resolves on any
 * HTTP status.
 */
export type HttpPost = (url: string, init: HttpPostInit) => Promise<HttpPostResult>;

/** An {@linkcode HttpPost} with its timeout set. */
export type Post = (url: string, init: Omit<HttpPostInit, "timeoutMs">) => Promise<HttpPostResult>;

/** The adapters' POST: `options.post`, else ky over `options.fetch`, with `options.timeoutMs`. */
export function createPost(options: HttpProviderOptions): Post {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const post = options.post;
  if (post) return (url, init) => post(url, { ...init, timeoutMs });
  const client = createClient(options);
  return async (url, { headers, body, signal }) => {
    const response = await client.post(url, { body, headers, signal });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
}

/** The default classification: by status, with the provider's delay hint from headers. */
export function classifyByStatus(
  status: number,
  code: string,
  message: string,
  headers: Headers,
): FailureInfo {
  return {
    status,
    code,
    message,
    retryable: isRetryableStatus(status),
    retryAfterMs: parseRetryAfter(headers),
  };
}

/**
 * The message of a failure: the provider's own (`message`, from its error body), else the start
 * of a body that is not JSON, else the status.
 */
export function failureMessage(status: number, body: unknown, message: unknown): string {
  return typeof message === "string"
    ? message
    : typeof body === "string"
    ? `HTTP ${status}: ${body.slice(0, 200)}`
    : `HTTP ${status}`;
}

/** Result of {@linkcode postJson}. */
export interface JsonResponse {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/**
 * POSTs `body` as JSON and returns the parsed 2xx body. Throws {@linkcode ProviderError} for
 * timeouts, network errors, non-2xx answers (via `classify`) and unparseable 2xx bodies.
 */
export async function postJson(
  post: Post,
  url: string,
  body: unknown,
  init: {
    headers: Record<string, string>;
    signal?: AbortSignal;
    apiKey?: string;
    classify: Classify;
  },
): Promise<JsonResponse> {
  const { signal, apiKey } = init;
  const fail = (info: FailureInfo, cause?: unknown): never => {
    throw new ProviderError({ ...info, message: redact(info.message, apiKey) }, { cause });
  };
  let response: HttpPostResult;
  try {
    response = await post(url, {
      headers: { ...init.headers, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if ((error as Error)?.name === "TimeoutError") {
      return fail(
        { status: 0, code: "timeout", message: "the request timed out", retryable: true },
        error,
      );
    }
    return fail({
      status: 0,
      code: "network_error",
      message: `network error: ${(error as Error)?.message ?? String(error)}`,
      retryable: true,
    }, error);
  }
  const { text } = response;
  const ok = response.status >= 200 && response.status < 300;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!ok) {
    const info = init.classify(response.status, parsed ?? text, response.headers);
    info.rateLimit ??= parseRateLimitHeaders(response.headers);
    return fail(info);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return fail({
      status: response.status,
      code: "bad_response",
      message: `unparseable ${response.status} body: ${text.slice(0, 120)}`,
      retryable: true,
    });
  }
  return {
    status: response.status,
    body: parsed as Record<string, unknown>,
    headers: response.headers,
  };
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

/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, "") + "/" + path.replace(/^\/+/, "");
}
