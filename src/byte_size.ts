/**
 * Sizes as people type them in flags: `1048576`, `512k`, `10M`, `1G` (powers of 1024; `KiB`,
 * `MB`… read the same way).
 * @module
 */

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Parses a size in bytes.
 * @param text `N`, `Nk`, `NM`, `NG` (optionally followed by `B` or `iB`).
 * @returns A positive whole number of bytes.
 * @throws {RangeError} when the text is not such a size.
 * @example
 * ```ts
 * import { parseByteSize } from "./byte_size.ts";
 * parseByteSize("10M"); // 10485760
 * ```
 */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$/i.exec(text);
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new RangeError(
      `Cannot read a size from '${text}': use a whole number of bytes or a number with k, M or G`,
    );
  }
  return bytes;
}
