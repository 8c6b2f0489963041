/**
 * The one HTTP layer of the providers, realtime adapters and batch backends alike: ky with its
 * own retry off (every retry must pass our rate gate) or a runtime's own {@linkcode HttpPost};
 * the timeout; a timeout, a network error, a non-2xx answer (read by the provider's
 * {@linkcode Classify}) or an unreadable body turned into a {@linkcode ProviderError}; the key
 * scrubbed from every message.
 * @module
 */
import ky, { type KyInstance } from "ky";
import * as v from "valibot";
import { type FailureInfo, ProviderError } from "../errors.ts";
import { parseRateLimitHeaders } from "../rate_limit_headers.ts";
import { isRetryableStatus, parseRetryAfter } from "../retry.ts";
import { TextLineStream } from "../text_line_stream.ts";

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

/** Per-request timeout when the options set none. */
const DEFAULT_TIMEOUT_MS = 120_000;

/** Removes every occurrence of `secret` from `text`. */
export function redact(text: string, secret: string | undefined): string {
  return secret && secret.length >= 4 ? text.split(secret).join("[redacted]") : text;
}

/** Joins a base URL and a path with exactly one slash. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, "") + "/" + path.replace(/^\/+/, "");
}

/** A ky instance with ky's retry off and our timeout; an answer of any status resolves. */
export function createClient(options: HttpProviderOptions): KyInstance {
  return ky.create({
    retry: 0,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    throwHttpErrors: false,
    fetch: options.fetch,
  });
}

// ---------------------------------------------------------------------------------------------
// Failures

/** Provider-specific reading of an error body. */
export type Classify = (status: number, body: unknown, headers: Headers) => FailureInfo;

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

/** Throws `info` as a {@linkcode ProviderError}, `apiKey` scrubbed from its message. */
function fail(info: FailureInfo, apiKey: string | undefined, cause?: unknown): never {
  throw new ProviderError({ ...info, message: redact(info.message, apiKey) }, { cause });
}

/**
 * Throws for a request that got no answer: the signal's reason when it was aborted, else a
 * retryable `timeout` (`request` names it in the message) or `network_error`.
 */
function failUnanswered(
  error: unknown,
  signal: AbortSignal | undefined,
  apiKey: string | undefined,
  request = "the request",
): never {
  if (signal?.aborted) throw signal.reason;
  const timeout = (error as Error)?.name === "TimeoutError";
  return fail(
    {
      status: 0,
      code: timeout ? "timeout" : "network_error",
      message: timeout
        ? `${request} timed out`
        : `network error: ${(error as Error)?.message ?? String(error)}`,
      retryable: true,
    },
    apiKey,
    error,
  );
}

/** `text` parsed as JSON, or undefined when it is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The failure of a non-2xx answer: its body (JSON, else the text as it is) classified. */
function answerFailure(status: number, text: string, headers: Headers, classify: Classify) {
  return classify(status, parseJson(text) ?? text, headers);
}

/** The failure of a 2xx answer whose body cannot be read; `detail` says how and where. */
function badResponse(status: number, detail: string): FailureInfo {
  return { status, code: "bad_response", message: detail, retryable: true };
}

// ---------------------------------------------------------------------------------------------
// Realtime: one POST per item

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

/**
 * An {@linkcode HttpPost} straight over a `fetch`: one `AbortController` and one timer per
 * request, nothing else. For a runtime where ky's own work per request (a cloned `Request`,
 * merged options, a timeout promise) costs rate: on Deno at 1,000 req/s it was a fifth of the
 * event loop, which there also carries the sockets (README "Caps we found").
 *
 * @example
 * ```ts
 * import { fetchPost } from "./http.ts";
 * const post = fetchPost();
 * const { status, text } = await post("http://127.0.0.1:8000/v1/chat/completions", {
 *   headers: { "content-type": "application/json" },
 *   body: "{}",
 *   timeoutMs: 30_000,
 * });
 * ```
 */
export function fetchPost(fetchFn: typeof fetch = fetch): HttpPost {
  return async (url, { headers, body, signal, timeoutMs }) => {
    if (signal?.aborted) throw signal.reason;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")),
      timeoutMs,
    );
    try {
      const response = await fetchFn(url, {
        method: "POST",
        headers,
        body,
        signal: controller.signal,
      });
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (error) {
      // An abort rejects with the controller's reason on most runtimes; make sure of it.
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  };
}

/** The adapters' POST: `options.post`, else ky over `options.fetch`, with `options.timeoutMs`. */
export function createPost(options: HttpProviderOptions): Post {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const post = options.post;
  if (post) return (url, init) => post(url, { ...init, timeoutMs });
  const client = createClient(options);
  return async (url, { headers, body, signal }) => {
    const response = await client.post(url, { body, headers, signal });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
}

/** Result of {@linkcode postJson}. */
export interface JsonResponse {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

/**
 * POSTs `body` as JSON and returns the parsed 2xx body. Throws {@linkcode ProviderError} for
 * timeouts, network errors, non-2xx answers (via `classify`, with the rate-limit headers) and
 * unparseable 2xx bodies.
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
  let response: HttpPostResult;
  try {
    response = await post(url, {
      headers: { ...init.headers, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    return failUnanswered(error, signal, apiKey);
  }
  const { status, text, headers } = response;
  if (status < 200 || status >= 300) {
    const info = answerFailure(status, text, headers, init.classify);
    info.rateLimit ??= parseRateLimitHeaders(headers);
    return fail(info, apiKey);
  }
  const parsed = parseJson(text);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return fail(badResponse(status, `unparseable ${status} body: ${text.slice(0, 120)}`), apiKey);
  }
  return { status, body: parsed as Record<string, unknown>, headers };
}

// ---------------------------------------------------------------------------------------------
// Batch APIs: any method, JSON or raw bodies, streamed downloads, answers checked with valibot

/** What every call of one batch backend shares. */
export interface HttpContext {
  client: KyInstance;
  /** Headers of every call (the key's header among them). */
  headers: Record<string, string>;
  /** Scrubbed from every error message. */
  apiKey?: string;
  classify: Classify;
}

/** The context of a backend's calls: ky with `options`' timeout and fetch, `headers` on each. */
export function createHttpContext(
  options: HttpProviderOptions,
  headers: Record<string, string>,
  classify: Classify,
): HttpContext {
  return { client: createClient(options), headers, apiKey: options.apiKey, classify };
}

/** One call's request. */
export interface CallInit {
  method?: "GET" | "POST" | "DELETE";
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Leave out the shared headers (a URL on another origin must not get the key). */
  bare?: boolean;
}

/** Sends one request; resolves with a 2xx response, throws a ProviderError otherwise. */
export async function call(ctx: HttpContext, url: string, init: CallInit = {}): Promise<Response> {
  const { signal } = init;
  const method = init.method ?? "GET";
  let response: Response;
  try {
    response = await ctx.client(url, {
      method,
      json: init.json,
      body: init.body,
      headers: { ...(init.bare ? {} : ctx.headers), ...init.headers },
      signal,
    });
  } catch (error) {
    return failUnanswered(error, signal, ctx.apiKey, `${method} ${url}`);
  }
  if (response.ok) return response;
  const text = await response.text().catch(() => "");
  return fail(answerFailure(response.status, text, response.headers, ctx.classify), ctx.apiKey);
}

/** Sends one request and validates its JSON answer against `schema`. */
export async function callJson<S extends v.GenericSchema>(
  ctx: HttpContext,
  url: string,
  schema: S,
  init: CallInit = {},
): Promise<v.InferOutput<S>> {
  const response = await call(ctx, url, init);
  const { status } = response;
  const text = await response.text();
  const path = new URL(url).pathname;
  const parsed = parseJson(text);
  if (parsed === undefined) {
    const detail = `unparseable ${status} body from ${path}: ${text.slice(0, 120)}`;
    return fail(badResponse(status, detail), ctx.apiKey);
  }
  const result = v.safeParse(schema, parsed);
  if (!result.success) {
    const issue = result.issues[0];
    const where = v.getDotPath(issue);
    const detail = `unexpected answer from ${path}${
      where ? ` at '${where}'` : ""
    }: ${issue.message}`;
    return fail(badResponse(status, detail), ctx.apiKey);
  }
  return result.output;
}

/** The non-blank lines of a response body, streamed (result files can be hundreds of MB). */
export async function* responseLines(response: Response): AsyncIterable<string> {
  if (response.body === null) return;
  const lines = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TextLineStream(),
  );
  for await (const line of lines) if (line.trim() !== "") yield line;
}

/** Parses a JSON line, or undefined when it is not a JSON object. */
export function parseObject(line: string): Record<string, unknown> | undefined {
  const value = parseJson(line);
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined;
}
