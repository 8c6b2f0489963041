/**
 * One door to every adapter, with the options validated once (valibot) before anything is sent.
 * @module
 */
import * as v from "valibot";
import type { Clock } from "../clock.ts";
import { ConfigError } from "../errors.ts";
import { createGeminiProvider } from "./gemini/realtime.ts";
import { createMockProvider } from "./mock.ts";
import { createOpenAIProvider } from "./openai/realtime.ts";
import type { HttpPost } from "./http.ts";
import type { Provider } from "./provider.ts";

/** Provider names. */
export const PROVIDERS = ["gemini", "openai", "mock"] as const;
/** A provider name. */
export type ProviderName = (typeof PROVIDERS)[number];

const HttpUrl = v.pipe(
  v.string(),
  v.url("must be a URL"),
  v.check((u) => /^https?:\/\//.test(u), "must start with http:// or https://"),
);

const ProviderConfigSchema = v.object({
  provider: v.picklist(PROVIDERS, `must be one of ${PROVIDERS.join(", ")}`),
  apiKey: v.optional(v.pipe(v.string(), v.nonEmpty("must not be empty"))),
  baseUrl: v.optional(HttpUrl),
  model: v.optional(v.pipe(v.string(), v.nonEmpty("must not be empty"))),
  timeoutMs: v.optional(v.pipe(v.number(), v.minValue(1, "must be at least 1 ms"), v.finite())),
  headers: v.optional(v.record(v.string(), v.string())),
  mock: v.optional(v.object({
    latencyMs: v.optional(v.pipe(v.number(), v.minValue(0), v.finite())),
    failureRate: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1))),
    seed: v.optional(v.number()),
  })),
});

/** Options for {@linkcode createProvider}. */
export interface ProviderConfig {
  /** Which adapter. */
  provider: ProviderName;
  /** API key. Required for gemini and openai unless `baseUrl` points at a server that needs none. */
  apiKey?: string;
  /** Base URL (OpenAI: including `/v1`). @default the provider's public API */
  baseUrl?: string;
  /** Model when a line names none. @default the adapter's default */
  model?: string;
  /** Per-request timeout, ms. @default 120000 */
  timeoutMs?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Sends requests instead of ky and `fetch`: see {@linkcode HttpProviderOptions.post}. */
  post?: HttpPost;
  /** Settings of the in-process mock provider. */
  mock?: { latencyMs?: number; failureRate?: number; seed?: number };
  /** Time source of the mock provider. */
  clock?: Clock;
  /** Told when a request is adapted to what the model takes (once per change). */
  onWarning?: (message: string) => void;
}

/**
 * Validates `config` and creates the adapter.
 * @throws {ConfigError} naming the field, when `config` is invalid or a required key is missing.
 */
export function createProvider(config: ProviderConfig): Provider {
  const { fetch, post, clock, onWarning, ...plain } = config;
  const result = v.safeParse(ProviderConfigSchema, plain);
  if (!result.success) {
    const issue = result.issues[0];
    const path = v.getDotPath(issue);
    throw new ConfigError(`Invalid provider option${path ? ` '${path}'` : ""}: ${issue.message}`);
  }
  const c = result.output;
  if (c.provider === "mock") return createMockProvider({ ...c.mock, model: c.model, clock });
  if (!c.apiKey && !c.baseUrl) {
    throw new ConfigError(`The ${c.provider} provider needs an API key`);
  }
  const options = {
    apiKey: c.apiKey,
    baseUrl: c.baseUrl,
    model: c.model,
    timeoutMs: c.timeoutMs,
    headers: c.headers,
    fetch,
    post,
    onWarning,
  };
  return c.provider === "gemini" ? createGeminiProvider(options) : createOpenAIProvider(options);
}
