/**
 * The state one run of a batch job shares between its steps (planning, submitting, collecting,
 * rescue, stats): the normalised options, the job file, and the records written so far.
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { ConfigError, type FailureKind, isProviderError } from "../errors.ts";
import { type ErrorField, errorRecord, parseLine, type RequestItem } from "../formats.ts";
import { IdSet } from "../id_set.ts";
import type { RunRecord } from "../run.ts";
import type { BatchBackend } from "./backend.ts";
import { isUnfinished, type Job, type Part } from "./job.ts";
import type { BatchJobOptions, BatchJobStats, RecordSink } from "./job_types.ts";
import type { JobStore } from "./store.ts";

/** Input lines of a batch job. */
export type Lines = ReadableStream<string> | AsyncIterable<string>;

/** One item as a part stores it. */
export interface Entry {
  line: number;
  id: string;
  text: string;
  reason?: Pick<ErrorField, "status" | "code" | "message">;
}

/** A part's stored line: `line \t JSON(id) \t original text` (JSON strings hold no raw tab). */
export function entryLine(e: Entry): string {
  return `${e.line}\t${JSON.stringify(e.id)}\t${e.text}`;
}

/** Reads back a line written by {@linkcode entryLine}. */
export function readEntry(stored: string): Entry {
  const a = stored.indexOf("\t");
  const b = stored.indexOf("\t", a + 1);
  return {
    line: Number(stored.slice(0, a)),
    id: JSON.parse(stored.slice(a + 1, b)),
    text: stored.slice(b + 1),
  };
}

/** {@linkcode BatchJobOptions} with every default filled in. */
export interface NormalizedBatchJobOptions {
  clock: Clock;
  now: () => number;
  answered: IdSet;
  errored: IdSet;
  maxAttempts: number;
  pollMs: number;
  maxPollMs: number;
  cancelGraceMs: number;
  maxLineLength: number;
}

/**
 * Fills defaults and validates.
 * @throws {RangeError} when a value is out of range.
 */
function normalizeBatchJobOptions(options: BatchJobOptions): NormalizedBatchJobOptions {
  const pollMs = options.pollIntervalMs ?? 5000;
  const out = {
    clock: options.clock ?? systemClock,
    now: options.now ?? Date.now,
    answered: options.answered ?? new IdSet(),
    errored: options.errored ?? new IdSet(),
    maxAttempts: options.maxAttempts ?? 3,
    pollMs,
    maxPollMs: options.maxPollIntervalMs ?? pollMs * 12,
    cancelGraceMs: options.cancelGraceMs ?? 600_000,
    maxLineLength: options.maxLineLength ?? 10_000_000,
  };
  for (
    const [name, value, min] of [
      ["maxAttempts", out.maxAttempts, 1],
      ["pollIntervalMs", out.pollMs, 1],
      ["maxPollIntervalMs", out.maxPollMs, 1],
      ["cancelGraceMs", out.cancelGraceMs, 0],
    ] as const
  ) {
    if (!Number.isFinite(value) || value < min) {
      throw new RangeError(
        `Cannot run the batch job as '${name}' must be a finite number >= ${min}: current value is ${value}`,
      );
    }
  }
  if (options.deadlineMs !== undefined && !(options.deadlineMs > 0)) {
    throw new RangeError(
      `Cannot run the batch job as 'deadlineMs' must be above 0: current value is ${options.deadlineMs}`,
    );
  }
  return out;
}

/** One run of a batch job: what its steps share, and the few operations they all use. */
export class BatchJobRun implements NormalizedBatchJobOptions {
  readonly options: BatchJobOptions;
  readonly backend: BatchBackend;
  readonly store: JobStore;
  readonly sink: RecordSink;
  /** Stops at once. */
  readonly signal: AbortSignal | undefined;
  /** Detaches. */
  readonly stopSignal: AbortSignal | undefined;
  /** Either of the two. */
  readonly halt: AbortSignal | undefined;
  readonly clock: Clock;
  readonly now: () => number;
  readonly answered: IdSet;
  readonly errored: IdSet;
  readonly maxAttempts: number;
  readonly pollMs: number;
  readonly maxPollMs: number;
  readonly cancelGraceMs: number;
  readonly maxLineLength: number;
  /** True when this run re-attached to a job started earlier. */
  readonly attached: boolean;
  /** The job file; set from the store when re-attaching, else by planning, before any step. */
  job!: Job;
  /** True once the run detached (stop, abort or a fatal failure). */
  stopped = false;
  /** Set when the provider stopped the job: the key was refused, or no credit is left. */
  fatal: BatchJobStats["fatal"];
  #started = false;
  /** Failed calls per part in a row, for {@linkcode BatchJobRun.backoff}. */
  readonly #failures = new Map<string, number>();

  /**
   * Validates the options and loads the job file.
   * @throws {RangeError} when an option is out of range.
   * @throws {ConfigError} when the stored unfinished job is another provider's.
   */
  static async open(options: BatchJobOptions): Promise<BatchJobRun> {
    const normalized = normalizeBatchJobOptions(options);
    const { backend, store } = options;
    const stored = await store.load();
    const attached = stored !== undefined && isUnfinished(stored);
    if (attached && stored.provider !== backend.name) {
      throw new ConfigError(
        `the unfinished batch job ${stored.id} was started with provider ${stored.provider}, not ${backend.name}`,
      );
    }
    return new BatchJobRun(options, { normalized, stored, attached });
  }

  private constructor(
    options: BatchJobOptions,
    { normalized, stored, attached }: {
      normalized: NormalizedBatchJobOptions;
      stored: Job | undefined;
      attached: boolean;
    },
  ) {
    this.options = options;
    this.backend = options.backend;
    this.store = options.store;
    this.sink = options.sink;
    this.signal = options.signal;
    this.stopSignal = options.stopSignal;
    const stops = [this.signal, this.stopSignal].filter((s): s is AbortSignal => s !== undefined);
    this.halt = stops.length > 1 ? AbortSignal.any(stops) : stops[0];
    this.clock = normalized.clock;
    this.now = normalized.now;
    this.answered = normalized.answered;
    this.errored = normalized.errored;
    this.maxAttempts = normalized.maxAttempts;
    this.pollMs = normalized.pollMs;
    this.maxPollMs = normalized.maxPollMs;
    this.cancelGraceMs = normalized.cancelGraceMs;
    this.maxLineLength = normalized.maxLineLength;
    this.attached = attached;
    if (stored !== undefined) this.job = stored;
  }

  /** One line for `onEvent`. */
  event(message: string): void {
    this.options.onEvent?.(message);
  }

  /** True when the id is already in the output or the errors file. */
  written(id: string): boolean {
    return this.answered.has(id) || this.errored.has(id);
  }

  /** Writes the job file. */
  save(): Promise<void> {
    return this.store.save(this.job);
  }

  /** Opens the sink, once. */
  async start(): Promise<void> {
    if (!this.#started) await this.sink.start?.();
    this.#started = true;
  }

  /** Writes a record and remembers its id. */
  async emit(record: RunRecord): Promise<void> {
    await this.start();
    if (record.id !== undefined) {
      (record.type === "ok" ? this.answered : this.errored).add(record.id);
    }
    await this.sink.write(record);
  }

  /** The request a stored entry holds (it parsed when planned, so it parses again). */
  parseEntry(e: Entry): RequestItem {
    const parsed = parseLine(e.text, e.line, Infinity);
    if (!parsed.ok) throw new Error(`stored item on line ${e.line} no longer parses`);
    return parsed.item;
  }

  /** Writes an entry to the errors file, unless it is written already. */
  async failEntry(e: Entry, attempts: number, reason: Entry["reason"]): Promise<void> {
    if (this.written(e.id)) return;
    const item = this.parseEntry(e);
    const error: ErrorField = {
      status: reason?.status ?? 0,
      code: reason?.code ?? "batch_error",
      message: reason?.message ?? "the batch did not answer this request",
      attempts,
      line: e.line,
    };
    this.job.failed++;
    await this.emit({
      type: "error",
      line: e.line,
      id: e.id,
      record: errorRecord(item.original, item.id, error),
    });
  }

  /** Auth and billing failures stop the job (it stays resumable); true when this was one. */
  isFatal(error: unknown, what: string): boolean {
    if (!isProviderError(error)) return false;
    const info = error.info;
    const kind: FailureKind | undefined = info.kind === "auth" || info.kind === "billing"
      ? info.kind
      : info.status === 401 || info.status === 403
      ? "auth"
      : undefined;
    if (kind === undefined) return false;
    this.fatal ??= {
      kind,
      status: info.status,
      code: info.code,
      message: `${this.backend.name} refused to ${what}: ${info.message}`,
    };
    this.stopped = true;
    return true;
  }

  /** True once the job's deadline has passed. */
  pastDeadline(): boolean {
    return this.job.deadlineAt !== undefined && this.now() >= this.job.deadlineAt;
  }

  /** A new, empty part of the job. */
  newPart(group: string, round: number): Part {
    return {
      name: `p${this.job.nextPart++}`,
      group,
      items: 0,
      bytes: 0,
      round,
      state: "planned",
      attempt: 0,
    };
  }

  /** Sends the part's items through the realtime path (see `_rescue_parts.ts`). */
  markRescue(part: Part): void {
    part.state = "rescue";
    this.job.realtime += part.items;
  }

  /** The wait before a part's next call: doubles with each failure in a row. */
  backoff(part: Part): number {
    const n = (this.#failures.get(part.name) ?? 0) + 1;
    this.#failures.set(part.name, n);
    return Math.min(this.maxPollMs * 4, this.pollMs * 2 ** Math.min(n, 10));
  }

  /** Forgets a part's failures (its call went through). */
  resetBackoff(part: Part): void {
    this.#failures.delete(part.name);
  }
}
