/**
 * The server's error answers, one shape everywhere: `{ "error": { "code", "message" } }` with
 * the status. Handlers throw {@linkcode apiError} (Hono's `HTTPException` carrying that JSON)
 * and `app.onError(onApiError)` answers it; the entries in front of the app (`server.ts`, the
 * Workers entry) answer `apiError(...).getResponse()` themselves.
 * @module
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { HTTPException } from "hono/http-exception";

/**
 * An `HTTPException` whose response is the JSON error `{ "error": { code, message } }`.
 *
 * @example
 * ```ts
 * import { apiError } from "./api_error.ts";
 * const res = apiError(400, "bad_option", "max_attempts must be 1..10").getResponse();
 * res.status; // 400
 * ```
 */
export function apiError(
  status: ContentfulStatusCode,
  code: string,
  message: string,
  headers?: HeadersInit,
): HTTPException {
  const res = Response.json({ error: { code, message } }, { status, headers });
  return new HTTPException(status, { res, message });
}

/**
 * `app.onError`: an `HTTPException` (from {@linkcode apiError}, or Hono's own middleware) answers
 * its response; anything else is a 500 `internal_error` with the error's message.
 */
export function onApiError(error: Error): Response {
  if (error instanceof HTTPException) return error.getResponse();
  return apiError(500, "internal_error", error?.message ?? String(error)).getResponse();
}
