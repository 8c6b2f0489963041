// Tests of src/retry.ts: option normalisation, which statuses retry, our backoff and the delay
// hints providers send (Retry-After, retry-after-ms, Gemini's RetryInfo durations).
import { expect, test } from "bun:test";
import {
  backoffDelay,
  isRetryableStatus,
  normalizeRetryOptions,
  parseDuration,
  parseRetryAfter,
} from "../src/retry.ts";

test("normalizeRetryOptions() fills every default", () => {
  expect(normalizeRetryOptions()).toEqual({
    maxAttempts: 3,
    baseDelayMs: 2000,
    maxDelayMs: 600_000,
    jitter: 0.2,
  });
  expect(normalizeRetryOptions({ baseDelayMs: 50 })).toEqual({
    maxAttempts: 3,
    baseDelayMs: 50,
    maxDelayMs: 600_000,
    jitter: 0.2,
  });
});

test("normalizeRetryOptions() takes a number as maxAttempts", () => {
  expect(normalizeRetryOptions(5)).toEqual({
    maxAttempts: 5,
    baseDelayMs: 2000,
    maxDelayMs: 600_000,
    jitter: 0.2,
  });
  expect(normalizeRetryOptions(1).maxAttempts).toBe(1);
});

test("normalizeRetryOptions() rejects maxAttempts 0, 1.5 and -1 with a RangeError naming the value", () => {
  for (const value of [0, 1.5, -1]) {
    expect(() => normalizeRetryOptions(value)).toThrow(RangeError);
    expect(() => normalizeRetryOptions({ maxAttempts: value })).toThrow(
      `Cannot retry as 'maxAttempts' must be a positive integer: current value is ${value}`,
    );
  }
});

test("normalizeRetryOptions() rejects negative or non-finite delays and jitter outside [0, 1)", () => {
  expect(() => normalizeRetryOptions({ baseDelayMs: -1 })).toThrow(
    "'baseDelayMs' must be a finite number >= 0: current value is -1",
  );
  expect(() => normalizeRetryOptions({ maxDelayMs: Infinity })).toThrow(
    "'maxDelayMs' must be a finite number >= 0: current value is Infinity",
  );
  expect(() => normalizeRetryOptions({ jitter: 1 })).toThrow(RangeError);
  expect(() => normalizeRetryOptions({ jitter: -0.1 })).toThrow("current value is -0.1");
  expect(() => normalizeRetryOptions({ jitter: NaN })).toThrow(RangeError);
  expect(normalizeRetryOptions({ jitter: 0, baseDelayMs: 0 }).jitter).toBe(0);
});

test("isRetryableStatus() retries 408, 409, 429 and 5xx only", () => {
  const table: [number, boolean][] = [
    [408, true],
    [409, true],
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [599, true],
    [200, false],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [422, false],
    [499, false],
  ];
  for (const [status, retryable] of table) {
    expect({ status, retryable: isRetryableStatus(status) }).toEqual({ status, retryable });
  }
});

const noJitter = () => 0.5;

test("backoffDelay() doubles from the base: 2000, 4000, 8000 without jitter", () => {
  const options = normalizeRetryOptions();
  expect(backoffDelay(1, options, noJitter)).toBe(2000);
  expect(backoffDelay(2, options, noJitter)).toBe(4000);
  expect(backoffDelay(3, options, noJitter)).toBe(8000);
  expect(backoffDelay(0, options, noJitter)).toBe(2000);
});

test("backoffDelay() keeps jitter within ±jitter of the raw delay", () => {
  const options = normalizeRetryOptions({ jitter: 0.2 });
  expect(backoffDelay(1, options, () => 0)).toBeCloseTo(1600, 9);
  expect(backoffDelay(1, options, () => 0.999999)).toBeCloseTo(2400, 2);
  expect(backoffDelay(1, options, () => 0.999999)).toBeLessThan(2400);
  expect(backoffDelay(3, options, () => 0)).toBeCloseTo(6400, 9);
  expect(backoffDelay(3, options, () => 0.25)).toBeCloseTo(7200, 9);
  const none = normalizeRetryOptions({ jitter: 0 });
  expect(backoffDelay(2, none, () => 0)).toBe(4000);
});

test("backoffDelay() is capped at maxDelayMs", () => {
  const options = normalizeRetryOptions({ baseDelayMs: 1000, maxDelayMs: 5000 });
  expect(backoffDelay(3, options, noJitter)).toBe(4000);
  expect(backoffDelay(4, options, noJitter)).toBe(5000);
  expect(backoffDelay(40, options, () => 0)).toBe(5000);
  expect(backoffDelay(3, options, () => 0.999)).toBeCloseTo(4798.4, 6); // under the cap: kept
});

test("parseRetryAfter() prefers retry-after-ms over Retry-After", () => {
  const headers = new Headers({ "retry-after-ms": "1500", "retry-after": "30" });
  expect(parseRetryAfter(headers)).toBe(1500);
  expect(parseRetryAfter(new Headers({ "retry-after-ms": "0" }))).toBe(0);
  expect(parseRetryAfter(new Headers({ "retry-after-ms": "12.5" }))).toBe(12.5);
});

test("parseRetryAfter() falls back to Retry-After when retry-after-ms is unusable", () => {
  expect(parseRetryAfter(new Headers({ "retry-after-ms": "soon", "retry-after": "2" }))).toBe(
    2000,
  );
  expect(parseRetryAfter(new Headers({ "retry-after-ms": "-5", "retry-after": "3" }))).toBe(3000);
  expect(parseRetryAfter(new Headers({ "retry-after-ms": " ", "retry-after": "4" }))).toBe(4000);
});

test("parseRetryAfter() reads Retry-After in seconds, fractions included", () => {
  expect(parseRetryAfter(new Headers({ "retry-after": "30" }))).toBe(30_000);
  expect(parseRetryAfter(new Headers({ "retry-after": "0" }))).toBe(0);
  expect(parseRetryAfter(new Headers({ "retry-after": "1.5" }))).toBe(1500);
  expect(parseRetryAfter(new Headers({ "retry-after": " 7 " }))).toBe(7000);
});

test("parseRetryAfter() reads an HTTP date relative to the given now", () => {
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  const headers = new Headers({ "retry-after": "Wed, 21 Oct 2015 07:28:45 GMT" });
  expect(parseRetryAfter(headers, now)).toBe(45_000);
  expect(parseRetryAfter(headers, now + 5_000)).toBe(40_000);
});

test("parseRetryAfter() gives 0 for an HTTP date in the past", () => {
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  const headers = new Headers({ "retry-after": "Wed, 21 Oct 2015 07:00:00 GMT" });
  expect(parseRetryAfter(headers, now)).toBe(0);
});

test("parseRetryAfter() gives undefined when the header is absent, empty or garbage", () => {
  expect(parseRetryAfter(new Headers())).toBeUndefined();
  expect(parseRetryAfter(new Headers({ "retry-after": "" }))).toBeUndefined();
  expect(parseRetryAfter(new Headers({ "retry-after": "soon" }))).toBeUndefined();
  expect(parseRetryAfter(new Headers({ "retry-after": "1 hour" }))).toBeUndefined();
});

test("parseRetryAfter() gives undefined for a negative number of seconds", () => {
  // Neither delay-seconds (a non-negative integer) nor an HTTP-date: unparseable, not "now".
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  expect(parseRetryAfter(new Headers({ "retry-after": "-1" }), now)).toBeUndefined();
});

test("parseDuration() reads protobuf JSON durations into ms", () => {
  expect(parseDuration("26s")).toBe(26_000);
  expect(parseDuration("1.5s")).toBe(1500);
  expect(parseDuration("0.250s")).toBe(250);
  expect(parseDuration("0s")).toBe(0);
});

test("parseDuration() gives undefined for anything that is not a duration string", () => {
  expect(parseDuration("26")).toBeUndefined();
  expect(parseDuration(26)).toBeUndefined();
  expect(parseDuration("")).toBeUndefined();
  expect(parseDuration("26ms")).toBeUndefined();
  expect(parseDuration("-1s")).toBeUndefined();
  expect(parseDuration(undefined)).toBeUndefined();
  expect(parseDuration(null)).toBeUndefined();
});
