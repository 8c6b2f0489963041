/**
 * Retry decisions: which failures are worth another try and how long to wait first. The wait
 * only delays the request; the retry itself still takes a slot from the scheduler.
 * @module
 */

/** Options for retries. */
export interface RetryOptions {
  /** Attempts per item, the first included. @default 3 */
  maxAttempts?: number;
  /** Wait after the first failed attempt; doubles after each further one. @default 2000 */
  baseDelayMs?: number;
  /** Upper bound for our own backoff and for a provider's delay hint. @default 600000 */
  maxDelayMs?: number;
  /** Relative jitter applied to our own backoff, 0.2 = ±20 %. @default 0.2 */
  jitter?: number;
}

/** {@linkcode RetryOptions} with every default filled in. */
export type NormalizedRetryOptions = Required<RetryOptions>;

/**
 * Fills defaults and validates. Accepts a number as shorthand for `maxAttempts`.
 * @throws {RangeError} when a value is out of range.
 */
export function normalizeRetryOptions(
  options: number | RetryOptions = {},
): NormalizedRetryOptions {
  const o = typeof options === "number" ? { maxAttempts: options } : options;
  const out = {
    maxAttempts: o.maxAttempts ?? 3,
    baseDelayMs: o.baseDelayMs ?? 2000,
    maxDelayMs: o.maxDelayMs ?? 600_000,
    jitter: o.jitter ?? 0.2,
  };
  if (!Number.isInteger(out.maxAttempts) || out.maxAttempts < 1) {
    throw new RangeError(
      `Cannot retry as 'maxAttempts' must be a positive integer: current value is ${out.maxAttempts}`,
    );
  }
  for (const key of ["baseDelayMs", "maxDelayMs"] as const) {
    if (!Number.isFinite(out[key]) || out[key] < 0) {
      throw new RangeError(
        `Cannot retry as '${key}' must be a finite number >= 0: current value is ${out[key]}`,
      );
    }
  }
  if (!(out.jitter >= 0 && out.jitter < 1)) {
    throw new RangeError(
      `Cannot retry as 'jitter' must be in [0, 1): current value is ${out.jitter}`,
    );
  }
  return out;
}

/** HTTP statuses worth retrying: 408, 409, 429 and every 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * Our own backoff before attempt `failedAttempts + 1`: base, 2×base, 4×base… with jitter,
 * capped at `maxDelayMs`.
 */
export function backoffDelay(
  failedAttempts: number,
  options: NormalizedRetryOptions,
  random: () => number = Math.random,
): number {
  const raw = options.baseDelayMs * 2 ** Math.max(0, failedAttempts - 1);
  const jittered = raw * (1 + options.jitter * (2 * random() - 1));
  return Math.min(options.maxDelayMs, Math.max(0, jittered));
}

/**
 * The delay a response asks for, in ms: `retry-after-ms` (OpenAI), then `Retry-After` as
 * seconds or as an HTTP date. Undefined when neither is present or parseable.
 */
export function parseRetryAfter(headers: Headers, nowMs: number = Date.now()): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "") {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const value = headers.get("retry-after");
  if (value === null || value.trim() === "") return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value) * 1000;
  // Only an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"); Date.parse takes far too much else.
  if (!/^\s*(Mon|Tue|Wed|Thu|Fri|Sat|Sun)/i.test(value)) return undefined;
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/**
 * Parses a protobuf JSON Duration such as Gemini's `RetryInfo.retryDelay` ("26s", "1.5s",
 * "0.250s") into ms; undefined if it is not one.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(value);
  return m ? Number(m[1]) * 1000 : undefined;
}
