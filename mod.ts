/**
 * model-fine-tuner: rate-limited fire-and-forget batch LLM inference.
 *
 * @example
 * ```ts
 * import { createMockProvider, runBatch } from "./mod.ts";
 * const run = runBatch(ReadableStream.from(['{"prompt":"hello"}']), { provider: createMockProvider(), rate: 10 });
 * for await (const result of run.results) console.log(result.record);
 * ```
 * @module
 */
export { type Clock, delay, systemClock, type TimerHandle } from "./src/clock.ts";
export {
  ConfigError,
  type FailureInfo,
  type FailureKind,
  InputError,
  isConfigError,
  isProviderError,
  MftError,
  ProviderError,
} from "./src/errors.ts";
export {
  type ChatMessage,
  type ChatRequest,
  detectFormat,
  type ErrorField,
  errorRecord,
  type InputFormat,
  outputId,
  outputRecord,
  type ParsedLine,
  parseLine,
  type ProviderResponse,
  type RequestItem,
  type Usage,
} from "./src/formats.ts";
export { IdSet } from "./src/id_set.ts";
export {
  backoffDelay,
  isRetryableStatus,
  type NormalizedRetryOptions,
  normalizeRetryOptions,
  parseDuration,
  parseRetryAfter,
  type RetryOptions,
} from "./src/retry.ts";
export {
  type BatchRun,
  runBatch,
  type RunOptions,
  type RunRecord,
  type RunStats,
} from "./src/run.ts";
export type { RunEvent, RunObserver } from "./src/run_observer.ts";
export {
  parseStatsFile,
  type StatsFile,
  type StatsHeader,
  type StatsSecond,
  type StatsSummary,
} from "./src/report/stats_file.ts";
export { StatsRecorder, type StatsRecorderOptions } from "./src/report/stats_recorder.ts";
export { renderReport } from "./src/report/report_html.ts";
export { type AcquireOptions, Scheduler, type SchedulerOptions } from "./src/scheduler.ts";
export {
  Quota,
  type QuotaAcquireOptions,
  type QuotaOptions,
  type QuotaStats,
  type RateChange,
  type SlotSource,
  TOKEN_BURST_SHARE,
} from "./src/quota.ts";
export {
  type RedisEval,
  RedisScheduler,
  type RedisSchedulerOptions,
  StoreTimeoutError,
} from "./src/redis/scheduler.ts";
export {
  defaultQuotaName,
  parseQuotaUrl,
  type QuotaIdentity,
  type QuotaUrl,
} from "./src/quota_store.ts";
export {
  estimateRequestTokens,
  estimateTokens,
  type RequestEstimateOptions,
  type TokenEstimate,
} from "./src/tokens.ts";
export { TOKEN_PACE, type TokenBudget, TokenCalibration, TokenGate } from "./src/token_gate.ts";
export { parseTokenLimit, type TokenLimitHit } from "./src/token_limit.ts";
export { RedisTokenGate, type RedisTokenGateOptions } from "./src/redis/token_gate.ts";
export {
  parseRateLimitHeaders,
  parseResetDuration,
  type RateLimitInfo,
} from "./src/rate_limit_headers.ts";
export {
  createApp,
  type RunSummaryLine,
  type RuntimeLimit,
  type RuntimeLimitReport,
  type ServerOptions,
} from "./src/server/app.ts";
export {
  type BatchBackend,
  type BatchBackendConfig,
  type BatchJobOptions,
  type BatchJobStats,
  type BatchState,
  createBatchBackend,
  createGeminiBatchBackend,
  createOpenAIBatchBackend,
  type Job,
  type JobStore,
  MemoryJobStore,
  parseJob,
  runBatchJob,
} from "./src/batch/mod.ts";
export { isLoopback } from "./src/server/loopback.ts";
export { type Appender, type BatchStorage } from "./src/server/batch_api/storage.ts";
export { TextLineStream, type TextLineStreamOptions } from "./src/text_line_stream.ts";
export {
  createProvider,
  type ProviderConfig,
  type ProviderName,
  PROVIDERS,
} from "./src/providers/create_provider.ts";
export { classifyGemini } from "./src/providers/gemini/classify.ts";
export {
  createGeminiProvider,
  GEMINI_DEFAULT_MODEL,
  GEMINI_DEFAULT_RATE,
} from "./src/providers/gemini/realtime.ts";
export {
  createMockProvider,
  MOCK_DEFAULT_RATE,
  type MockProviderOptions,
} from "./src/providers/mock.ts";
export { classifyOpenAI } from "./src/providers/openai/classify.ts";
export {
  createOpenAIProvider,
  OPENAI_DEFAULT_MODEL,
  OPENAI_DEFAULT_RATE,
} from "./src/providers/openai/realtime.ts";
export type { HttpProviderOptions, Provider, SendOptions } from "./src/providers/provider.ts";
