/**
 * Sizes: as people type them in flags (`1048576`, `512k`, `10M`, `1G`, powers of 1024; `KiB`,
 * `MB`… read the same way), and the UTF-8 size of a text as a provider counts it.
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

/** UTF-8 byte length of `text`. */
export function byteLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
