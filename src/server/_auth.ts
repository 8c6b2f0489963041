/**
 * The server's bearer-token check: Hono's `bearerAuth` (constant time: both sides are hashed
 * first, so neither the content nor the length of the token leaks through timing), answering
 * in the API's error shape and with one `WWW-Authenticate` challenge.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { apiError } from "./api_error.ts";

const CHALLENGE = 'Bearer realm="model-fine-tuner"';

const refuse = (code: string, message: string) => (_c: Context) =>
  apiError(401, code, message, { "www-authenticate": CHALLENGE }).getResponse();

const missing = refuse(
  "missing_token",
  "this server needs an 'Authorization: Bearer <token>' header (MFT_SERVER_TOKEN)",
);

/**
 * True if `token` can be sent as `Authorization: Bearer <token>`: letters, digits and -._~+/
 * with `=` padding at the end (RFC 6750's b64token, all that `bearerAuth` takes).
 */
export function isBearerToken(token: string): boolean {
  return /^[A-Za-z0-9._~+/-]+=*$/.test(token);
}

/** The message when {@linkcode isBearerToken} is false (the token itself is never shown). */
export const BEARER_TOKEN_CHARS =
  "letters, digits and -._~+/ with '=' padding at the end (an RFC 6750 bearer token)";

/**
 * Middleware letting through only `Authorization: Bearer <token>`; anything else is a 401
 * `missing_token` (no or another kind of header) or `invalid_token` (another token).
 * @param token The expected token; must not be empty.
 */
export function bearerGuard(token: string): MiddlewareHandler {
  return bearerAuth({
    token,
    noAuthenticationHeader: { message: missing, wwwAuthenticateHeader: CHALLENGE },
    // Hono answers a header that is not `Bearer <token68>` 400; this API has always said 401.
    invalidAuthenticationHeader: { message: missing, wwwAuthenticateHeader: CHALLENGE },
    invalidToken: {
      message: refuse("invalid_token", "the bearer token is not valid"),
      wwwAuthenticateHeader: CHALLENGE,
    },
  });
}
