/**
 * The values of flags and environment variables (`run`, `serve`, batch mode, the shared quota),
 * checked in one place so every number, duration, size and fraction is read the same way and
 * refused with the same words, naming the flag (or variable) and the value.
 * @module
 */
import { parseByteSize } from "./byte_size.ts";
import { parseDurationMs } from "./duration.ts";
import { UsageError } from "./errors.ts";

/**
 * A number above 0 (`integer`: a whole one), or undefined when `text` is.
 * @param name How the user wrote it: `--tpm`, `MFT_BATCH_MAX_ITEMS`.
 * @throws {UsageError} ``--tpm must be a number above 0: got 'x'``.
 * @example
 * ```ts
 * import { positiveNumberFlag } from "./flags.ts";
 * positiveNumberFlag("--rate-limit", "0.25"); // 0.25
 * ```
 */
export function positiveNumberFlag(
  name: string,
  text: string | undefined,
  integer = false,
): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(
      `${name} must be a ${integer ? "positive whole number" : "number above 0"}: got '${text}'`,
    );
  }
  return n;
}

/**
 * A duration (`90`, `30s`, `2m`, `500ms`) in ms, or undefined when `text` is.
 * @throws {UsageError} ``--timeout: <why>``.
 */
export function durationFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDurationMs(text);
  } catch (error) {
    throw new UsageError(`${name}: ${(error as Error).message}`);
  }
}

/**
 * A size (`500000`, `64M`, `2G`) in bytes, or undefined when `text` is.
 * @throws {UsageError} ``--max-body-size: <why>``.
 */
export function byteSizeFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseByteSize(text);
  } catch (error) {
    throw new UsageError(`${name}: ${(error as Error).message}`);
  }
}

/**
 * A fraction from 0 to 1 (`aboveZero`: above 0, at most 1), or undefined when `text` is.
 * @throws {UsageError} ``--mock-failure-rate must be between 0 and 1: got 'x'``.
 */
export function fractionFlag(
  name: string,
  text: string | undefined,
  aboveZero = false,
): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !(aboveZero ? n > 0 && n <= 1 : n >= 0 && n <= 1)) {
    throw new UsageError(
      `${name} must be ${aboveZero ? "above 0 and at most 1" : "between 0 and 1"}: got '${text}'`,
    );
  }
  return n;
}

/** Undefined for an empty value: an environment variable set to "" counts as unset. */
export function nonEmpty(text: string | undefined): string | undefined {
  return text === "" ? undefined : text;
}
