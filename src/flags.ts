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
import { type ProviderName, PROVIDERS } from "./providers/create_provider.ts";

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

/** A number (not blank) for which `ok` holds; otherwise ``<name> must be <wording>: got '<text>'``. */
function numberWhere(
  name: string,
  ok: (n: number) => boolean,
  wording: string,
): FlagSchema<number> {
  return v.pipe(
    v.string(),
    v.check(
      (text) => text.trim() !== "" && ok(Number(text)),
      (issue) => `${name} must be ${wording}: got '${issue.input as string}'`,
    ),
    v.transform(Number),
  );
}

/**
 * A number above 0 (`integer`: a whole one).
 * @param name How the user wrote it: `--tpm`, `MFT_BATCH_MAX_ITEMS`.
 */
export function positiveNumber(name: string, integer = false): FlagSchema<number> {
  return numberWhere(
    name,
    (n) => Number.isFinite(n) && n > 0 && (!integer || Number.isInteger(n)),
    integer ? "a positive whole number" : "a number above 0",
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
  return aboveZero
    ? numberWhere(name, (n) => n > 0 && n <= 1, "above 0 and at most 1")
    : numberWhere(name, (n) => n >= 0 && n <= 1, "between 0 and 1");
}

/** A duration (`90`, `30s`, `2m`, `500ms`) in ms. */
export function duration(name: string): FlagSchema<number> {
  return parsedBy(name, parseDurationMs);
}

/** A size (`500000`, `64M`, `2G`) in bytes. */
export function byteSize(name: string): FlagSchema<number> {
  return parsedBy(name, parseByteSize);
}

/** `--provider` (or `MFT_PROVIDER`): one of {@linkcode PROVIDERS}. */
export function providerName(): v.GenericSchema<string, ProviderName> {
  return v.picklist(
    PROVIDERS,
    (issue) => `unknown provider '${issue.input}': use one of ${PROVIDERS.join(", ")}`,
  );
}

/**
 * The settings `run` and `serve` share, as entries of a `v.object` schema (in the order they
 * are checked): the provider, the rate, the token limit, attempts, the timeout and the mock's.
 */
export const SHARED_SETTINGS = {
  provider: v.optional(providerName()),
  "rate-limit": v.optional(rateOrAuto("--rate-limit")),
  tpm: v.optional(positiveNumber("--tpm")),
  "max-attempts": v.optional(positiveNumber("--max-attempts", true)),
  timeout: v.optional(duration("--timeout")),
  "mock-latency": v.optional(duration("--mock-latency")),
  "mock-failure-rate": v.optional(fraction("--mock-failure-rate")),
};

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

/**
 * One flag's (or variable's) text parsed with `schema`; undefined when `text` is.
 * @throws {UsageError} with the schema's message.
 */
export function parseFlag<T>(schema: FlagSchema<T>, text: string | undefined): T | undefined {
  return parseFlags(v.optional(schema), text);
}

/** Undefined for an empty value: an environment variable set to "" counts as unset. */
export function nonEmpty(text: string | undefined): string | undefined {
  return text === "" ? undefined : text;
}
