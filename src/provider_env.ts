/**
 * Where a provider's key and base URL come from in the environment, for `run`, `serve` and the
 * batch commands alike: `GEMINI_API_KEY` (or `GOOGLE_API_KEY`), `OPENAI_API_KEY`,
 * `GEMINI_BASE_URL`, `OPENAI_BASE_URL`. Keys come from here only, never from a flag.
 * @module
 */
import { UsageError } from "./errors.ts";
import type { ProviderName } from "./providers/create_provider.ts";

/** Environment variables, as `process.env` or a Workers `env`. */
type Env = Record<string, string | undefined>;

/** The variable that holds each provider's key, for messages. */
export const API_KEY_VARIABLES = { gemini: "GEMINI_API_KEY", openai: "OPENAI_API_KEY" } as const;

/** The provider's API key from `env`; undefined when unset or empty, and for the mock. */
export function envApiKey(provider: string, env: Env): string | undefined {
  if (provider === "gemini") return env.GEMINI_API_KEY || env.GOOGLE_API_KEY || undefined;
  if (provider === "openai") return env.OPENAI_API_KEY || undefined;
  return undefined;
}

/** The provider's base URL from `env`; undefined when unset or empty, and for the mock. */
export function envBaseUrl(provider: string, env: Env): string | undefined {
  if (provider === "gemini") return env.GEMINI_BASE_URL || undefined;
  if (provider === "openai") return env.OPENAI_BASE_URL || undefined;
  return undefined;
}

/** The provider whose key is set (Gemini first), for a run that names none. */
export function providerWithKey(env: Env): "gemini" | "openai" | undefined {
  return envApiKey("gemini", env) ? "gemini" : envApiKey("openai", env) ? "openai" : undefined;
}

/**
 * The key and base URL a provider is reached with: the key from `env`, the base URL from the
 * `--base-url` flag, else from `env`.
 * @throws {UsageError} when a real provider has neither a key nor a base URL.
 */
export function providerAccess(
  provider: ProviderName,
  env: Env,
  baseUrlFlag?: string,
): { apiKey?: string; baseUrl?: string } {
  const apiKey = envApiKey(provider, env);
  const baseUrl = baseUrlFlag ?? envBaseUrl(provider, env);
  if (provider !== "mock" && !apiKey && !baseUrl) {
    throw new UsageError(
      provider === "gemini"
        ? "GEMINI_API_KEY (or GOOGLE_API_KEY) is not set"
        : "OPENAI_API_KEY is not set (an OpenAI-compatible server without keys needs --base-url)",
    );
  }
  return { apiKey, baseUrl };
}
