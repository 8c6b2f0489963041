/**
 * Durations as users type them on a command line: `500ms`, `30s`, `2m`, `1.5h`, or a bare
 * number of seconds.
 * @module
 */

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration into milliseconds.
 * @throws {RangeError} with the value, when it is not a positive duration.
 * @example
 * ```ts
 * import { parseDurationMs } from "./duration.ts";
 * parseDurationMs("90"); // 90000
 * parseDurationMs("1.5m"); // 90000
 * ```
 */
export function parseDurationMs(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$/.exec(text);
  const ms = m ? Number(m[1]) * UNITS[m[2] ?? "s"] : NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new RangeError(
      `expected a duration such as 30s, 500ms, 2m or a number of seconds: got '${text}'`,
    );
  }
  return ms;
}

/** Formats milliseconds compactly: `850ms`, `12.3s`, `4m05s`, `2h07m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  if (Math.round(ms) < 1000) return `${Math.round(ms)}ms`;
  if (Math.round(ms / 100) < 600) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * Milliseconds from `nowMs` to the next midnight in America/Los_Angeles, when Google's daily
 * quotas reset.
 */
export function msToMidnightPacific(nowMs: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: "America/Los_Angeles",
    hour12: false,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(nowMs));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const elapsed = ((get("hour") % 24) * 3600 + get("minute") * 60 + get("second")) * 1000 +
    (nowMs % 1000);
  return 86_400_000 - elapsed;
}
