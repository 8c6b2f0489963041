/**
 * The values of flags and environment variables (`run`, `serve`, batch mode, the shared quota),
 * checked with valibot like every other boundary: one schema per kind of value, whose message
 * names the flag (or variable) and the value, and {@linkcode parseFlags} turning the first issue
 * into a {@linkcode UsageError}.
 * @module
 */
import * as v from "valibot";
import { parseByteSize } from "./byte_size.ts";
import { parseDurationMs } from "./duration.ts";
import { UsageError } from "./errors.ts";

/** A schema of one flag's text, giving its value. */
export type FlagSchema<T> = v.GenericSchema<string, T>;

/** Texts that read as a value with a parser of their own (`parseDurationMs`, `parseByteSize`). */
function parsedBy<T>(name: string, parse: (text: string) => T): FlagSchema<T> {
  return v.pipe(
    v.string(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      try {
        return parse(dataset.value);
      } catch (error) {
        addIssue({ message: `${name}: ${(error as Error).message}` });
        return NEVER;
      }
    }),
  );
}

/**
 * A number above 0 (`integer`: a whole one).
 * @param name How the user wrote it: `--tpm`, `MFT_BATCH_MAX_ITEMS`.
 */
export function positiveNumber(name: string, integer = false): FlagSchema<number> {
  return v.pipe(
    v.string(),
    v.check(
      (text) => {
        const n = Number(text);
        return text.trim() !== "" && Number.isFinite(n) && n > 0 &&
          (!integer || Number.isInteger(n));
      },
      (issue) =>
        `${name} must be a ${integer ? "positive whole number" : "number above 0"}: got '${issue
          .input as string}'`,
    ),
    v.transform(Number),
  );
}

/** A number above 0, or `auto` (`--rate-limit`). */
export function rateOrAuto(name: string): FlagSchema<number | "auto"> {
  const rate = positiveNumber(name);
  return v.pipe(
    v.string(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      if (dataset.value === "auto") return "auto" as const;
      const result = v.safeParse(rate, dataset.value);
      if (result.success) return result.output;
      addIssue({ message: result.issues[0].message });
      return NEVER;
    }),
  );
}

/** A fraction from 0 to 1 (`aboveZero`: above 0, at most 1). */
export function fraction(name: string, aboveZero = false): FlagSchema<number> {
  return v.pipe(
    v.string(),
    v.check(
      (text) => {
        const n = Number(text);
        return text.trim() !== "" && (aboveZero ? n > 0 && n <= 1 : n >= 0 && n <= 1);
      },
      (issue) =>
        `${name} must be ${aboveZero ? "above 0 and at most 1" : "between 0 and 1"}: got '${issue
          .input as string}'`,
    ),
    v.transform(Number),
  );
}

/** A duration (`90`, `30s`, `2m`, `500ms`) in ms. */
export function duration(name: string): FlagSchema<number> {
  return parsedBy(name, parseDurationMs);
}

/** A size (`500000`, `64M`, `2G`) in bytes. */
export function byteSize(name: string): FlagSchema<number> {
  return parsedBy(name, parseByteSize);
}

/**
 * Parses flags (or one flag's text) with `schema`.
 * @throws {UsageError} with the first issue's message, which names the flag and the value.
 * @example
 * ```ts
 * import * as v from "valibot";
 * import { parseFlags, positiveNumber } from "./flags.ts";
 * parseFlags(v.object({ tpm: v.optional(positiveNumber("--tpm")) }), { tpm: "1000" }); // { tpm: 1000 }
 * ```
 */
export function parseFlags<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
): v.InferOutput<S> {
  const result = v.safeParse(schema, input);
  if (!result.success) throw new UsageError(result.issues[0].message);
  return result.output;
}

/** {@linkcode positiveNumber} of one text; undefined when `text` is. */
export function positiveNumberFlag(
  name: string,
  text: string | undefined,
  integer = false,
): number | undefined {
  return parseFlags(v.optional(positiveNumber(name, integer)), text);
}

/** {@linkcode duration} of one text; undefined when `text` is. */
export function durationFlag(name: string, text: string | undefined): number | undefined {
  return parseFlags(v.optional(duration(name)), text);
}

/** {@linkcode fraction} of one text; undefined when `text` is. */
export function fractionFlag(
  name: string,
  text: string | undefined,
  aboveZero = false,
): number | undefined {
  return parseFlags(v.optional(fraction(name, aboveZero)), text);
}

/** Undefined for an empty value: an environment variable set to "" counts as unset. */
export function nonEmpty(text: string | undefined): string | undefined {
  return text === "" ? undefined : text;
}
