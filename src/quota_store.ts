/**
 * Where a shared quota lives: the store's URL (checked and made safe to print) and the quota's
 * name, by default a fingerprint of what the provider counts against one quota.
 * @module
 */
import { GEMINI_BASE_URL } from "./providers/gemini/realtime.ts";
import { OPENAI_BASE_URL } from "./providers/openai/realtime.ts";

/** A quota store address, from {@linkcode parseQuotaUrl}. */
export interface QuotaUrl {
  /** What to hand the client: the URL, or the socket path (`/path.sock?db=N`) for `unix://`. */
  target: string;
  /** The address with any password replaced by `***`, for messages. */
  display: string;
}

/**
 * Checks a `--quota` address: `redis://[user:pass@]host:port/N`, `rediss://…` (TLS), or
 * `unix:///path/redis.sock[?db=N]`.
 * @throws {TypeError} when it is none of these, with the value (password hidden).
 * @example
 * ```ts
 * import { parseQuotaUrl } from "./quota_store.ts";
 * parseQuotaUrl("redis://:secret@127.0.0.1:6379/0").display; // "redis://:***@127.0.0.1:6379/0"
 * ```
 */
export function parseQuotaUrl(text: string): QuotaUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(
      `Cannot use the quota store '${text}': expected redis://host:port/N, rediss://… or unix:///path.sock`,
    );
  }
  const display = (() => {
    if (!url.password) return url.href;
    const copy = new URL(url.href);
    copy.password = "***";
    return copy.href;
  })();
  if (url.protocol === "unix:") {
    if (!url.pathname || url.pathname === "/") {
      throw new TypeError(`Cannot use the quota store '${display}': the socket path is missing`);
    }
    return { target: decodeURIComponent(url.pathname) + url.search, display };
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new TypeError(
      `Cannot use the quota store '${display}': the scheme must be redis:, rediss: or unix:`,
    );
  }
  if (!url.hostname) {
    throw new TypeError(`Cannot use the quota store '${display}': the host is missing`);
  }
  const db = url.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) {
    throw new TypeError(
      `Cannot use the quota store '${display}': the database must be a number, got '${db}'`,
    );
  }
  return { target: url.href, display };
}

/** What identifies a provider quota, for {@linkcode defaultQuotaName}. */
export interface QuotaIdentity {
  /** `gemini`, `openai`, `mock`. */
  provider: string;
  /** The model requests go to by default. */
  model: string;
  /** The API's base URL; the provider's default when not given. */
  baseUrl?: string;
  /** The API key (hashed, never stored or sent). */
  apiKey?: string;
}

const DEFAULT_BASE_URLS: Record<string, string> = {
  gemini: GEMINI_BASE_URL,
  openai: OPENAI_BASE_URL,
};

/**
 * The default quota name: the first 16 hex digits of SHA-256 over provider, model, base URL and
 * API key. Jobs with the same key (hence project) and model share a quota without naming one,
 * and the name says nothing about the key.
 * @example
 * ```ts
 * import { defaultQuotaName } from "./quota_store.ts";
 * await defaultQuotaName({ provider: "openai", model: "gpt-4o-mini", apiKey: "sk-…" }); // 16 hex
 * ```
 */
export async function defaultQuotaName(identity: QuotaIdentity): Promise<string> {
  const baseUrl = (identity.baseUrl || DEFAULT_BASE_URLS[identity.provider] || "")
    .replace(/\/+$/, "");
  const text = JSON.stringify([identity.provider, identity.model, baseUrl, identity.apiKey ?? ""]);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest).subarray(0, 8), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}
