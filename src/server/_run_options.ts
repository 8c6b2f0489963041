/**
 * Per-run options of `POST /v1/runs`, read from the query string (`?max_attempts=2`) or from
 * `x-mft-*` headers (`x-mft-max-attempts: 2`), validated with valibot. The query wins.
 * @module
 */
import * as v from "valibot";

const wholeNumber = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.regex(/^\d+$/, `must be a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const RunQuery = v.object({
  max_attempts: v.optional(wholeNumber(1, 10)),
});

/** The per-run options a caller may set. */
export interface RunRequestOptions {
  /** Attempts per item, the first included, 1..10. */
  maxAttempts?: number;
}

const KNOWN = Object.keys(RunQuery.entries);

/** Settings that would let a caller pick the upstream or its quota: fixed by the server. */
const FIXED = new Set([
  "model",
  "provider",
  "base_url",
  "baseurl",
  "url",
  "api_key",
  "key",
  "rate",
  "rate_limit",
]);

/** Result of {@linkcode parseRunOptions}. */
export type ParsedRunOptions =
  | { ok: true; options: RunRequestOptions }
  | { ok: false; code: "unknown_option" | "invalid_option"; message: string };

/**
 * Reads and validates the per-run options of one request.
 * @param query The query parameters (last value of each).
 * @param headers The request headers.
 */
export function parseRunOptions(query: Record<string, string>, headers: Headers): ParsedRunOptions {
  const raw: Record<string, string> = {};
  for (const key of KNOWN) {
    const header = headers.get(`x-mft-${key.replaceAll("_", "-")}`);
    if (header !== null) raw[key] = header;
  }
  for (const [key, value] of Object.entries(query)) {
    if (!KNOWN.includes(key)) {
      const why = FIXED.has(key.toLowerCase())
        ? `'${key}' is fixed by the server's configuration and cannot be set per run`
        : `unknown option '${key}'`;
      return {
        ok: false,
        code: "unknown_option",
        message: `${why}; per-run options: ${KNOWN.join(", ")}`,
      };
    }
    raw[key] = value;
  }
  const result = v.safeParse(RunQuery, raw);
  if (!result.success) {
    const issue = result.issues[0];
    const path = v.getDotPath(issue);
    return {
      ok: false,
      code: "invalid_option",
      message: `option '${path}' ${issue.message}: got '${raw[path ?? ""] ?? ""}'`,
    };
  }
  return { ok: true, options: { maxAttempts: result.output.max_attempts } };
}
