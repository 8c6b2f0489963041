/**
 * Which host names and addresses stay on this machine: the server refuses to listen anywhere
 * else, and answers no one else, unless a bearer token is set.
 * @module
 */

/**
 * True if `host` is a loopback name or address: `localhost`, `127.0.0.0/8`, `::1` (also in
 * brackets) or an IPv4-mapped `::ffff:127.x.y.z`. Wildcards such as `0.0.0.0` and `::` are not.
 *
 * @example
 * ```ts
 * import { isLoopback } from "./loopback.ts";
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0"); // false
 * ```
 */
export function isLoopback(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  if (h.startsWith("::ffff:")) h = h.slice("::ffff:".length);
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((part) => Number(part) <= 255);
}
