/**
 * One door to the batch backends, like `createProvider` for the realtime adapters.
 * @module
 */
import { ConfigError } from "../errors.ts";
import type { HttpProviderOptions } from "../providers/provider.ts";
import type { BatchBackend, BatchLimits } from "./backend.ts";
import { createGeminiBatchBackend } from "../providers/gemini/batch.ts";
import { createOpenAIBatchBackend } from "../providers/openai/batch.ts";

/** Providers with a batch API. */
export const BATCH_PROVIDERS = ["openai", "gemini"] as const;

/** Options for {@linkcode createBatchBackend}. */
export interface BatchBackendConfig extends HttpProviderOptions {
  /** `openai` or `gemini`. */
  provider: string;
  /** Per-batch limits below the provider's. @default the provider's */
  limits?: Partial<BatchLimits>;
  /** Gemini: largest batch sent inline. @default 10_000_000 */
  inlineMaxBytes?: number;
}

/**
 * Creates the batch backend of `config.provider`.
 * @throws {ConfigError} when the provider has no batch API here (the mock provider).
 * @example
 * ```ts
 * import { createBatchBackend } from "./create_batch_backend.ts";
 * createBatchBackend({ provider: "openai", apiKey: "sk-…" }).name; // "openai"
 * ```
 */
export function createBatchBackend(config: BatchBackendConfig): BatchBackend {
  const { provider, ...options } = config;
  for (const key of ["maxItems", "maxBytes"] as const) {
    const value = options.limits?.[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
      throw new RangeError(
        `Cannot create the batch backend as 'limits.${key}' must be a positive integer: current value is ${value}`,
      );
    }
  }
  if (provider === "openai") return createOpenAIBatchBackend(options);
  if (provider === "gemini") return createGeminiBatchBackend(options);
  throw new ConfigError(
    `batch mode needs --provider openai or gemini, not '${provider}' (offline: serve scripts/start_mock_batch.ts and pass its URL as --base-url)`,
  );
}
