/**
 * model-fine-tuner: rate-limited fire-and-forget batch LLM inference.
 *
 * The main entry: the realtime run (one request per line at a steady rate), the providers and
 * the types they share. The rest is on subpaths: `model-fine-tuner/server` (the HTTP server as a
 * Hono app), `model-fine-tuner/batch` (jobs on the providers' Batch APIs) and
 * `model-fine-tuner/redis` (a quota shared through Redis).
 *
 * @example
 * ```ts
 * import { createMockProvider, runRealtime } from "./mod.ts";
 * const run = runRealtime(ReadableStream.from(['{"prompt":"hello"}']), { provider: createMockProvider(), rate: 10 });
 * for await (const result of run.results) console.log(result.record);
 * ```
 * @module
 */
export {
  type RealtimeRun,
  type RunOptions,
  runRealtime,
  type RunRecord,
  type RunStats,
} from "./src/run.ts";
export type { RunEvent, RunObserver } from "./src/run_observer.ts";
export {
  createProvider,
  type ProviderConfig,
  type ProviderName,
  PROVIDERS,
} from "./src/providers/create_provider.ts";
export { createGeminiProvider } from "./src/providers/gemini/realtime.ts";
export { createOpenAIProvider } from "./src/providers/openai/realtime.ts";
export { createMockProvider, type MockProviderOptions } from "./src/providers/mock.ts";
export type { HttpProviderOptions, Provider, SendOptions } from "./src/providers/provider.ts";
export type {
  ChatMessage,
  ChatRequest,
  InputFormat,
  ProviderResponse,
  RequestItem,
  Usage,
} from "./src/formats.ts";
export {
  ConfigError,
  type FailureInfo,
  type FailureKind,
  isConfigError,
  isProviderError,
  MftError,
  ProviderError,
} from "./src/errors.ts";
export type { RetryOptions } from "./src/retry.ts";
export { Quota, type QuotaOptions, type SlotSource } from "./src/quota.ts";
export { Scheduler, type SchedulerOptions } from "./src/scheduler.ts";
export type { TokenBudget } from "./src/token_gate.ts";
// `RunOptions.skip` and `.seen` (resume) take one.
export { IdSet } from "./src/id_set.ts";
export { type Clock, systemClock, type TimerHandle } from "./src/clock.ts";
