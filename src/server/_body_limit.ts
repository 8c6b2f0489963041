/**
 * The request body limit of `POST /v1/runs`, on Hono's `bodyLimit` for bodies that declare
 * their size. Hono's middleware reads a chunked body whole into memory before the route runs,
 * which would stop a run from starting until its upload ended; so a chunked body passes here
 * and the route counts it as it streams instead (`byteLimit` in `app.ts`).
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";

/**
 * Answers `onError` (413) when a request's `Content-Length` is over `maxSize` bytes, before
 * anything is read; requests without one pass.
 * @param maxSize Largest body in bytes.
 * @param onError The response for a body that is too large.
 */
export function contentLengthLimit(
  maxSize: number,
  onError: (c: Context) => Response | Promise<Response>,
): MiddlewareHandler {
  const limit = bodyLimit({ maxSize, onError });
  return (c, next) => {
    const headers = c.req.raw.headers;
    return headers.has("content-length") && !headers.has("transfer-encoding")
      ? limit(c, next)
      : next();
  };
}
