/**
 * Bearer-token check for the server, in constant time: both sides are hashed first, so neither
 * the content nor the length of the configured token leaks through timing.
 * @module
 */

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/** Compares two equal-length byte arrays without an early exit. */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Why a request was refused; undefined when it may pass. */
export type AuthFailure = { code: "missing_token" | "invalid_token"; message: string };

/**
 * Builds a checker for `Authorization: Bearer <token>` headers against `token`.
 * @param token The expected token; must not be empty.
 * @returns An async function giving undefined for a good header, else the failure.
 */
export function bearerChecker(
  token: string,
): (header: string | undefined) => Promise<AuthFailure | undefined> {
  const expected = digest(token);
  return async (header) => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
    if (!m) {
      return {
        code: "missing_token",
        message: "this server needs an 'Authorization: Bearer <token>' header (MFT_SERVER_TOKEN)",
      };
    }
    if (!equalBytes(await digest(m[1]), await expected)) {
      return { code: "invalid_token", message: "the bearer token is not valid" };
    }
    return undefined;
  };
}
