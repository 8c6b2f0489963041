/**
 * The shapes a batch job is given and reports: {@linkcode BatchJobOptions}, {@linkcode BatchJobStats}
 * and where its records go ({@linkcode RecordSink}). Apart from `run_batch_job.ts` so the job's
 * step modules can name them without importing the runner that imports them.
 * @module
 */
import type { Clock } from "../clock.ts";
import type { FailureKind } from "../errors.ts";
import type { IdSet } from "../id_set.ts";
import type { Provider } from "../providers/provider.ts";
import type { RunOptions, RunRecord } from "../run.ts";
import type { BatchBackend } from "./backend.ts";
import type { JobState } from "./job.ts";
import type { JobStore } from "./store.ts";
/** Where a job's records go. */
export interface RecordSink {
  /** Called once, after the input is read and before the first record (open files here). */
  start?(): void | Promise<void>;
  write(record: RunRecord): void | Promise<void>;
  /** Makes the records written so far durable; called before a part is marked collected. */
  sync?(): void | Promise<void>;
}

/** The realtime path used past the deadline: a provider and the realtime run's settings. */
export type RescueOptions =
  & { provider: Provider }
  & Pick<RunOptions, "rate" | "tpm" | "retry" | "timeoutMs" | "maxInFlight">;

/** Options for {@linkcode runBatchJob}. */
export interface BatchJobOptions {
  /** The provider's batch API. */
  backend: BatchBackend;
  /** Where the job file and the parts live. */
  store: JobStore;
  /** Where records go. */
  sink: RecordSink;
  /** Ids already in the output: not planned, and never written again. @default empty */
  answered?: IdSet;
  /** Ids already in this job's errors file (when re-attaching): never written again. */
  errored?: IdSet;
  /** Time after the job's start when what batches have not finished goes realtime. */
  deadlineMs?: number;
  /** The realtime path for the deadline rescue. Without it, rescued items fail. */
  realtime?: RescueOptions;
  /** Submissions per item (an expired or cancelled batch's items are sent again). @default 3 */
  maxAttempts?: number;
  /** First wait between polls, ms; grows ×1.5 while nothing changes. @default 5000 */
  pollIntervalMs?: number;
  /** Longest wait between polls, ms. @default 12 × pollIntervalMs */
  maxPollIntervalMs?: number;
  /** How long a cancelled batch may take to stop before its items go realtime anyway. @default 600000 */
  cancelGraceMs?: number;
  /** Longest input line accepted, in characters. @default 10_000_000 */
  maxLineLength?: number;
  /** Recorded in the job file, for `status`. */
  input?: string;
  /** Recorded in the job file (never a key), for `status` and `cancel`. */
  baseUrl?: string;
  /** Job id of a new job. @default a random one */
  jobId?: string;
  /** Timer source for the waits. @default systemClock */
  clock?: Clock;
  /** Wall-clock time in ms (job files outlive the process). @default Date.now */
  now?: () => number;
  /** Stops at once: calls in flight are aborted. The job file stays resumable. */
  signal?: AbortSignal;
  /** Detaches: no new call starts; the batches keep running at the provider. */
  stopSignal?: AbortSignal;
  /** Called after every step with fresh stats. */
  onProgress?: (stats: BatchJobStats) => void;
  /** One line per notable event (batch created, expired, deadline…). */
  onEvent?: (message: string) => void;
}

/** Live state of a job. */
export interface BatchJobStats {
  jobId: string;
  provider: string;
  model: string;
  state: JobState;
  /** True when this run re-attached to a job started earlier. */
  attached: boolean;
  items: number;
  invalid: number;
  skipped: number;
  ok: number;
  failed: number;
  /** Items not yet in the output or errors file. */
  pending: number;
  /** Items sent through the realtime path (no discount). */
  realtime: number;
  /** Items sent again after an expired or cancelled batch. */
  resent: number;
  /** Batches created so far. */
  batches: number;
  /** Provider state names of the batches still open, with their number. */
  states: Record<string, number>;
  /** Request counts summed over every batch, as the providers report them. */
  counts: { total: number; completed: number; failed: number };
  tokensIn: number;
  tokensOut: number;
  createdAt: number;
  elapsedMs: number;
  deadlineAt?: number;
  /** True when the run detached (stop) before the job was done. */
  stopped: boolean;
  /** Set when the provider stopped the job: the key was refused, or no credit is left. */
  fatal?: { kind: FailureKind; status: number; code: string; message: string };
}
