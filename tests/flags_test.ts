// Tests of src/flags.ts: the valibot schemas every flag and environment variable of run, serve,
// batch mode and the shared quota is checked with; each refusal names the flag and the value.
import { expect, test } from "bun:test";
import * as v from "valibot";
import { isConfigError, UsageError } from "../src/errors.ts";
import {
  byteSize,
  duration,
  fraction,
  nonEmpty,
  parseFlag,
  parseFlags,
  positiveNumber,
  rateOrAuto,
} from "../src/flags.ts";

/** The message parseFlags throws for `text`, or undefined when it parses. */
function refusal(schema: v.GenericSchema, text: string): string | undefined {
  try {
    parseFlags(schema, text);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    expect(isConfigError(error)).toBe(true);
    return (error as Error).message;
  }
}

test("positiveNumber() takes numbers above 0 and names the flag and the value otherwise", () => {
  expect(parseFlags(positiveNumber("--tpm"), "0.25")).toBe(0.25);
  expect(parseFlags(positiveNumber("--tpm"), "1e3")).toBe(1000);
  for (const bad of ["0", "-1", "", " ", "abc", "Infinity", "NaN"]) {
    expect(refusal(positiveNumber("--tpm"), bad)).toBe(
      `--tpm must be a number above 0: got '${bad}'`,
    );
  }
  expect(parseFlags(positiveNumber("--max-attempts", true), "3")).toBe(3);
  expect(refusal(positiveNumber("--max-attempts", true), "1.5")).toBe(
    "--max-attempts must be a positive whole number: got '1.5'",
  );
});

test("rateOrAuto() takes auto or a rate, with the rate's own message", () => {
  expect(parseFlags(rateOrAuto("--rate-limit"), "auto")).toBe("auto");
  expect(parseFlags(rateOrAuto("--rate-limit"), "60")).toBe(60);
  expect(refusal(rateOrAuto("--rate-limit"), "fast")).toBe(
    "--rate-limit must be a number above 0: got 'fast'",
  );
});

test("fraction() takes 0..1, or (0, 1] when aboveZero", () => {
  expect(parseFlags(fraction("--mock-failure-rate"), "0")).toBe(0);
  expect(parseFlags(fraction("--mock-failure-rate"), "1")).toBe(1);
  expect(refusal(fraction("--mock-failure-rate"), "1.5")).toBe(
    "--mock-failure-rate must be between 0 and 1: got '1.5'",
  );
  expect(refusal(fraction("--mock-failure-rate"), "")).toBe(
    "--mock-failure-rate must be between 0 and 1: got ''",
  );
  expect(refusal(fraction("--quota-fallback-fraction", true), "0")).toBe(
    "--quota-fallback-fraction must be above 0 and at most 1: got '0'",
  );
  expect(parseFlag(fraction("--quota-fallback-fraction", true), "0.5")).toBe(0.5);
});

test("duration() and byteSize() read with the project's parsers and prefix the flag", () => {
  expect(parseFlags(duration("--timeout"), "2m")).toBe(120_000);
  expect(parseFlags(duration("--timeout"), "90")).toBe(90_000);
  expect(refusal(duration("--timeout"), "soon")).toStartWith("--timeout: ");
  expect(parseFlags(byteSize("--max-body-size"), "64M")).toBe(64 * 1024 * 1024);
  expect(refusal(byteSize("--max-body-size"), "big")).toStartWith("--max-body-size: ");
});

test("parseFlags() reports the first issue of an object schema, in the schema's order", () => {
  const schema = v.object({
    tpm: v.optional(positiveNumber("--tpm")),
    timeout: v.optional(duration("--timeout")),
  });
  expect(parseFlags(schema, { tpm: "100", timeout: undefined, other: true })).toEqual({
    tpm: 100,
    timeout: undefined,
  });
  expect(refusal(schema, { tpm: "x", timeout: "y" } as unknown as string)).toBe(
    "--tpm must be a number above 0: got 'x'",
  );
});

test("the one-text helpers give undefined for undefined, and nonEmpty() unsets ''", () => {
  expect(parseFlag(positiveNumber("--tpm"), undefined)).toBeUndefined();
  expect(parseFlag(duration("--deadline"), undefined)).toBeUndefined();
  expect(() => parseFlag(positiveNumber("MFT_BATCH_MAX_ITEMS", true), "0")).toThrow(
    "MFT_BATCH_MAX_ITEMS must be a positive whole number: got '0'",
  );
  expect(nonEmpty("")).toBeUndefined();
  expect(nonEmpty("5")).toBe("5");
});
