/**
 * The contract a provider's batch API is driven through: encode items into its request lines,
 * upload and create batches, find them again by our tag, poll, read results, cancel.
 * @module
 */
import type { ProviderResponse, RequestItem } from "../formats.ts";

/** A provider batch's state, normalised across OpenAI and Gemini. */
export type BatchState =
  | "pending"
  | "running"
  | "finalizing"
  | "succeeded"
  | "failed"
  | "expired"
  | "cancelling"
  | "cancelled";

/** States a batch never leaves. */
export const TERMINAL_STATES: ReadonlySet<BatchState> = new Set([
  "succeeded",
  "failed",
  "expired",
  "cancelled",
]);

/** True when `state` is final. */
export function isTerminal(state: BatchState): boolean {
  return TERMINAL_STATES.has(state);
}

/** Request counts as the provider reports them. */
export interface BatchCounts {
  total: number;
  completed: number;
  failed: number;
}

/** A batch-level error (why a whole batch failed). */
export interface BatchError {
  code: string;
  message: string;
  /** 1-based line of the uploaded input the error is about, when the provider says. */
  line?: number;
}

/** A provider batch as last seen. */
export interface RemoteBatch {
  /** The provider's id: `batch_…` (OpenAI) or `batches/…` (Gemini). */
  id: string;
  state: BatchState;
  /** The provider's own state name (`in_progress`, `BATCH_STATE_RUNNING`, `JOB_STATE_…`). */
  rawState: string;
  counts?: BatchCounts;
  /** Our tag, read back from the batch's metadata or display name. */
  tag?: string;
  /** Why the batch failed, when it did. */
  errors?: BatchError[];
  /** The provider's object, kept for {@linkcode BatchBackend.results}. */
  raw: unknown;
}

/** One item's result inside a batch. */
export type BatchResult =
  | {
    key: string;
    ok: true;
    status: number;
    body: Record<string, unknown>;
    requestId?: string;
    /** The provider's id of this result line (OpenAI `batch_req_…`). */
    resultId?: string;
  }
  | {
    key: string;
    ok: false;
    status: number;
    code: string;
    message: string;
    /** Sending it again can help (5xx, rate limits, timeouts). */
    retryable: boolean;
    /** The batch ended before this item ran (expired, cancelled): it must be sent again. */
    unfinished: boolean;
  };

/** An item as a line of the provider's batch input. */
export interface EncodedItem {
  /** Items of one batch share a group: endpoint and model (OpenAI), model (Gemini). */
  group: string;
  /** The JSONL line (without newline) in the provider's batch file format. */
  line: string;
}

/** The input of one batch. */
export interface BatchInput {
  /** Our tag, stored with the batch so that it can be found again after a crash. */
  tag: string;
  /** Our job id, stored with the batch where the provider allows. */
  jobId: string;
  group: string;
  /** Lines from {@linkcode BatchBackend.encode}, in order. */
  lines: string[];
  /** Bytes of `lines` joined with newlines, final newline included. */
  bytes: number;
}

/** Size limits of one batch. */
export interface BatchLimits {
  /** Most requests in one batch. */
  maxItems: number;
  /** Most bytes of input in one batch. */
  maxBytes: number;
}

/** Options of every network call: an abort signal. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** A provider's batch API. */
export interface BatchBackend {
  /** `openai` or `gemini`. */
  readonly name: string;
  /** Model used when a line names none. */
  readonly model: string;
  /** Per-batch limits; a job is split into batches that respect them. */
  readonly limits: BatchLimits;
  /**
   * Turns an item into its batch line.
   * @throws {TypeError} when this provider cannot serve the item (the item then fails).
   */
  encode(item: RequestItem): EncodedItem;
  /** Uploads the input when the provider needs a file; returns its id, or undefined (inline). */
  upload(input: BatchInput, options?: CallOptions): Promise<string | undefined>;
  /** Creates the batch. Not idempotent: call {@linkcode find} first when a try may have landed. */
  create(
    input: BatchInput,
    fileId: string | undefined,
    options?: CallOptions,
  ): Promise<RemoteBatch>;
  /** Finds a batch carrying `tag` among the account's recent batches. */
  find(tag: string, options?: CallOptions): Promise<RemoteBatch | undefined>;
  /** The batch's current state. */
  get(id: string, options?: CallOptions): Promise<RemoteBatch>;
  /** Asks the provider to cancel; the batch then moves to `cancelling` and `cancelled`. */
  cancel(id: string, options?: CallOptions): Promise<void>;
  /**
   * The results of a finished batch (also a partial one: expired, cancelled). `order` is the
   * keys in input order, for results that carry no key.
   */
  results(batch: RemoteBatch, options?: CallOptions & { order?: string[] }): AsyncIterable<
    BatchResult
  >;
  /** Reads a successful result as the response the realtime path would have produced. */
  response(item: RequestItem, result: Extract<BatchResult, { ok: true }>): ProviderResponse;
}
