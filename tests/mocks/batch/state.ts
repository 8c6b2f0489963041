/**
 * The batch mock's options and state: batches, their items and stored files, with the
 * options normalised once and the per-key draws of item errors.
 * @module
 */
import type { MockProviderOptions } from "../mock_provider.ts";
import type { MockBatchInfo } from "./lifecycle.ts";

/** Options of {@link createMockBatchApp} and {@link startMockBatch}. */
export interface MockBatchOptions {
  /** TCP port for {@link startMockBatch}; 0 picks a free one. @default 0 */
  port?: number;
  /** Time a batch spends validating (Gemini: pending), ms. @default 20 */
  validatingMs?: number;
  /** Time a batch spends in progress, ms; its counts grow linearly over it. @default 60 */
  runningMs?: number;
  /** Time a batch spends finalizing, ms. @default 10 */
  finalizingMs?: number;
  /** Time between a cancel and `cancelled`, ms. @default 10 */
  cancellingMs?: number;
  /** Fraction of items answered with an error, drawn per key from a seeded hash. @default 0 */
  itemErrorRate?: number;
  /** HTTP status of those item errors. @default 400 */
  itemErrorStatus?: number;
  /** Seed of the per-key error draw. @default 1 */
  seed?: number;
  /** Ordinals (1-based, in creation order over both providers) of batches that expire. */
  expire?: number[];
  /** Fraction of an expiring batch's items answered before it expires. @default 0.5 */
  expireAnswered?: number;
  /**
   * What an expired OpenAI batch says about the items it did not run: `error-file` lines with
   * code `batch_expired`, or nothing at all (`missing`). @default "error-file"
   */
  expiredUnanswered?: "error-file" | "missing";
  /** Ordinals of batches that never leave validating / pending. */
  stuck?: number[];
  /** Ordinals of batches that fail validation, with the error code (`token_limit_exceeded`). */
  fail?: Record<number, string>;
  /** Gemini state names: REST's `BATCH_STATE_*` or the SDKs' `JOB_STATE_*`. @default "BATCH" */
  geminiStates?: "BATCH" | "JOB";
  /** When set, requests with another key get 401. */
  requireKey?: string;
  /** Time source, ms. @default performance.now */
  now?: () => number;
  /** Awaited when a batch has been created, before the answer goes out (tests crash the client here). */
  onCreate?: (batch: MockBatchInfo) => void | Promise<void>;
  /** Options of the realtime mock served alongside. */
  realtime?: MockProviderOptions;
}

// ---------------------------------------------------------------------------------------------
// State

export type Json = Record<string, unknown>;

export interface Item {
  key: string;
  /** OpenAI: the batch line's url; Gemini: "generateContent". */
  kind: string;
  model: string;
  userText: string;
  promptChars: number;
}

export interface Batch {
  provider: "openai" | "gemini";
  id: string;
  ordinal: number;
  tag: string | undefined;
  metadata: Json | null;
  endpoint: string;
  model: string;
  inputFileId?: string;
  /** Gemini: results go to a file when the input came as one. */
  fileOutput: boolean;
  items: Item[];
  createdAt: number;
  createdUnix: number;
  fate: "ok" | "expire" | "stuck" | "fail";
  failCode?: string;
  failLine?: number;
  failMessage?: string;
  cancelAt?: number;
  /** Files made when it ended (OpenAI), or the responses file (Gemini). */
  outputFileId?: string | null;
  errorFileId?: string | null;
  finished?: boolean;
}

export interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  content: string;
  createdUnix: number;
}

export interface State {
  o: Required<Omit<MockBatchOptions, "port" | "requireKey" | "onCreate" | "realtime" | "fail">> & {
    fail: Record<number, string>;
    requireKey?: string;
    onCreate?: MockBatchOptions["onCreate"];
  };
  files: Map<string, StoredFile>;
  batches: Map<string, Batch>;
  order: Batch[];
  uploads: Map<string, { displayName: string }>;
  submissions: Map<string, number>;
  /** Keys in batches that have not ended, with their batch. */
  live: Map<string, string>;
  /** Keys a batch ran, with how many times. */
  processed: Map<string, number>;
  resubmitted: Set<string>;
  realtime: Map<string, number>;
  realtimeCount: number;
  seq: number;
}

export function normalize(options: MockBatchOptions = {}): State["o"] {
  const o = {
    validatingMs: options.validatingMs ?? 20,
    runningMs: options.runningMs ?? 60,
    finalizingMs: options.finalizingMs ?? 10,
    cancellingMs: options.cancellingMs ?? 10,
    itemErrorRate: options.itemErrorRate ?? 0,
    itemErrorStatus: options.itemErrorStatus ?? 400,
    seed: options.seed ?? 1,
    expire: options.expire ?? [],
    expireAnswered: options.expireAnswered ?? 0.5,
    expiredUnanswered: options.expiredUnanswered ?? "error-file",
    stuck: options.stuck ?? [],
    fail: options.fail ?? {},
    geminiStates: options.geminiStates ?? "BATCH",
    now: options.now ?? (() => performance.now()),
    requireKey: options.requireKey,
    onCreate: options.onCreate,
  };
  for (const key of ["validatingMs", "runningMs", "finalizingMs", "cancellingMs"] as const) {
    if (!Number.isFinite(o[key]) || o[key] < 0) {
      throw new RangeError(
        `Cannot start the mock batch API as '${key}' must be a finite number >= 0: current value is ${
          o[key]
        }`,
      );
    }
  }
  for (const key of ["itemErrorRate", "expireAnswered"] as const) {
    if (!(o[key] >= 0 && o[key] <= 1)) {
      throw new RangeError(
        `Cannot start the mock batch API as '${key}' must be in [0, 1]: current value is ${o[key]}`,
      );
    }
  }
  return o;
}

/** FNV-1a of `seed:key`, mixed, as a fraction in [0, 1): the same key always draws the same. */
export function draw(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ seed;
  const text = `${seed}:${key}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // murmur3's finaliser: FNV alone leaves the high bits of short, similar keys alike.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

export function nextId(state: State, prefix: string): string {
  state.seq++;
  return `${prefix}${state.seq.toString(36).padStart(6, "0")}${
    crypto.randomUUID().replaceAll("-", "").slice(0, 10)
  }`;
}
