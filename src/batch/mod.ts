/**
 * `model-fine-tuner/batch`: jobs on the providers' Batch APIs (half price, answers within 24
 * hours). {@linkcode runBatchJob} plans, submits, polls and collects a job that a
 * {@linkcode JobStore} keeps, so a stopped job is resumed instead of submitted again.
 *
 * @example
 * ```ts ignore
 * import { createBatchBackend, MemoryJobStore, runBatchJob } from "./mod.ts";
 * const backend = createBatchBackend({ provider: "openai", apiKey: "sk-..." });
 * const stats = await runBatchJob(ReadableStream.from(['{"prompt":"hello"}']), {
 *   backend,
 *   store: new MemoryJobStore(),
 *   sink: { write: (record) => console.log(record) },
 * });
 * ```
 * @module
 */
export {
  type BatchJobOptions,
  type BatchJobStats,
  type RecordSink,
  type RescueOptions,
  runBatchJob,
} from "./run_batch_job.ts";
export {
  BATCH_PROVIDERS,
  type BatchBackendConfig,
  createBatchBackend,
} from "./create_batch_backend.ts";
export { createGeminiBatchBackend, type GeminiBatchOptions } from "../providers/gemini/batch.ts";
export { createOpenAIBatchBackend, type OpenAIBatchOptions } from "../providers/openai/batch.ts";
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
} from "./backend.ts";
export {
  isUnfinished,
  type Job,
  type JobState,
  parseJob,
  type Part,
  type PartState,
} from "./job.ts";
export { type JobStore, MemoryJobStore, type PartWriter } from "./store.ts";
