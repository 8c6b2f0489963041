/**
 * Batch mode's public API, for `mod.ts` to re-export: the job runner, the provider backends,
 * the job file and its stores, and the progress text.
 * @module
 */
export {
  type BatchBackend,
  type BatchCounts,
  type BatchError,
  type BatchInput,
  type BatchLimits,
  type BatchResult,
  type BatchState,
  type EncodedItem,
  isTerminal,
  type RemoteBatch,
  TERMINAL_STATES,
} from "./backend.ts";
export {
  batchProgressLine,
  batchSummaryLines,
  jobStatusLines,
  type LiveBatch,
} from "./batch_progress.ts";
export {
  BATCH_PROVIDERS,
  type BatchBackendConfig,
  createBatchBackend,
} from "./create_batch_backend.ts";
export {
  createGeminiBatchBackend,
  GEMINI_BATCH_LIMITS,
  GEMINI_INLINE_MAX_BYTES,
  type GeminiBatchOptions,
  geminiState,
} from "../providers/gemini/batch.ts";
export {
  activeParts,
  isUnfinished,
  type Job,
  JOB_VERSION,
  type JobState,
  parseJob,
  type Part,
  type PartState,
} from "./job.ts";
export {
  createOpenAIBatchBackend,
  OPENAI_BATCH_LIMITS,
  type OpenAIBatchOptions,
} from "../providers/openai/batch.ts";
export {
  BATCH_PRICE_FACTOR,
  type BatchJobOptions,
  type BatchJobStats,
  PLAN_REJECT_CODES,
  type RealtimeOptions,
  type RecordSink,
  runBatchJob,
  savingFraction,
} from "./run_batch_job.ts";
export { type JobStore, MemoryJobStore, type PartWriter } from "./store.ts";
