/**
 * HTTP plumbing of the batch backends: any method, JSON or raw bodies, streamed downloads, and
 * every answer checked with a valibot schema. Failures become {@linkcode ProviderError}s.
 * @module
 */
import type { KyInstance } from "ky";
import * as v from "valibot";
import { type FailureInfo, ProviderError } from "../errors.ts";
import { type Classify, redact } from "../providers/provider.ts";
import { TextLineStream } from "../text_line_stream.ts";

/** What every call of one backend shares. */
export interface HttpContext {
  client: KyInstance;
  /** Headers of every call (the key's header among them). */
  headers: Record<string, string>;
  /** Scrubbed from every error message. */
  apiKey?: string;
  classify: Classify;
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

function fail(ctx: HttpContext, info: FailureInfo, cause?: unknown): never {
  throw new ProviderError({ ...info, message: redact(info.message, ctx.apiKey) }, { cause });
}

/** Sends one request; resolves with a 2xx response, throws a ProviderError otherwise. */
export async function call(ctx: HttpContext, url: string, init: CallInit = {}): Promise<Response> {
  const { signal } = init;
  let response: Response;
  try {
    response = await ctx.client(url, {
      method: init.method ?? "GET",
      json: init.json,
      body: init.body,
      headers: { ...(init.bare ? {} : ctx.headers), ...init.headers },
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    const timeout = (error as Error)?.name === "TimeoutError";
    return fail(ctx, {
      status: 0,
      code: timeout ? "timeout" : "network_error",
      message: timeout
        ? `${init.method ?? "GET"} ${redact(url, ctx.apiKey)} timed out`
        : `network error: ${(error as Error)?.message ?? String(error)}`,
      retryable: true,
    }, error);
  }
  if (response.ok) return response;
  const text = await response.text().catch(() => "");
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // a text body is classified as it is
  }
  return fail(ctx, ctx.classify(response.status, parsed, response.headers));
}

/** Sends one request and validates its JSON answer against `schema`. */
export async function callJson<S extends v.GenericSchema>(
  ctx: HttpContext,
  url: string,
  schema: S,
  init: CallInit = {},
): Promise<v.InferOutput<S>> {
  const response = await call(ctx, url, init);
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail(ctx, {
      status: response.status,
      code: "bad_response",
      message: `unparseable ${response.status} body from ${new URL(url).pathname}: ${
        text.slice(0, 120)
      }`,
      retryable: true,
    });
  }
  const result = v.safeParse(schema, parsed);
  if (!result.success) {
    const issue = result.issues[0];
    const where = v.getDotPath(issue);
    return fail(ctx, {
      status: response.status,
      code: "bad_response",
      message: `unexpected answer from ${new URL(url).pathname}${
        where ? ` at '${where}'` : ""
      }: ${issue.message}`,
      retryable: true,
    });
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
  try {
    const value = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** UTF-8 byte length of `text`. */
export function byteLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
