/**
 * A whole batch job: plan the input into parts that fit the provider's limits, create one batch
 * per part (recoverably: the tag is saved before the create call, and a resume looks for it
 * before creating again), poll with backoff, read results into output / errors records, send
 * unfinished items again, and past a deadline cancel what is left and finish it in realtime.
 * @module
 */
import { type Clock, delay } from "../clock.ts";
import type { FailureKind } from "../errors.ts";
import type { IdSet } from "../id_set.ts";
import type { Provider } from "../providers/provider.ts";
import type { RunOptions, RunRecord } from "../run.ts";
import type { BatchBackend } from "./backend.ts";
import { activeParts, type Job, type JobState } from "./job.ts";
import type { JobStore } from "./store.ts";
import { BatchJobRun, type Lines } from "./_job_run.ts";
import { planJob } from "./_plan_job.ts";
import { advancePart } from "./_advance_part.ts";
import { collectEntries } from "./_collect_part.ts";
import { rescueParts } from "./_rescue_parts.ts";
import { jobStats, reportProgress } from "./_job_stats.ts";

/** Batch endpoints cost this fraction of the realtime price (OpenAI and Gemini: half). */
export const BATCH_PRICE_FACTOR = 0.5;

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

/** Fraction of the realtime price saved: the batch discount on the items batches answered. */
export function savingFraction(stats: Pick<BatchJobStats, "items" | "realtime">): number {
  if (stats.items === 0) return 0;
  return (1 - BATCH_PRICE_FACTOR) * Math.max(0, stats.items - stats.realtime) / stats.items;
}

/** What polling can change in the parts: when it does not change, polls slow down. */
function fingerprint(job: Job): string {
  return JSON.stringify(job.parts.map((p) => [p.state, p.remote?.raw, p.remote?.completed]));
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Codes of lines rejected while planning; their ids do not mark an item as done. */
export const PLAN_REJECT_CODES: ReadonlySet<string> = new Set([
  "invalid_json",
  "unknown_format",
  "invalid_line",
  "duplicate_id",
]);

/**
 * Runs a batch job to its end, or re-attaches to the unfinished one in `options.store` (then
 * `lines` is not read: the job's parts hold its items).
 *
 * @param lines Input lines; may be undefined when re-attaching.
 * @returns The final stats; `stopped` when it detached before the job was done.
 * @throws {ConfigError} when the stored job is another provider's.
 *
 * @example
 * ```ts ignore
 * import { runBatchJob } from "./run_batch_job.ts";
 * import { createOpenAIBatchBackend } from "../providers/openai/batch.ts";
 * import { MemoryJobStore } from "./store.ts";
 * const records = [];
 * const stats = await runBatchJob(ReadableStream.from(['{"prompt":"hi"}']), {
 *   backend: createOpenAIBatchBackend({ apiKey: "sk-…" }),
 *   store: new MemoryJobStore(),
 *   sink: { write: (r) => void records.push(r) },
 * });
 * ```
 */
export async function runBatchJob(
  lines: Lines | undefined,
  options: BatchJobOptions,
): Promise<BatchJobStats> {
  const run = await BatchJobRun.open(options);
  if (!run.attached) {
    if (lines === undefined) throw new TypeError("no unfinished job to resume and no input lines");
    await planJob(run, lines);
  } else {
    await run.start();
    run.event(
      `resume: re-attached to job ${run.job.id} (${activeParts(run.job).length} batches open, ${
        run.job.parts.filter((p) => p.state !== "collected").length
      } parts unfinished)`,
    );
  }
  reportProgress(run);

  let interval = run.pollMs;
  while (run.job.state !== "done") {
    if (run.halt?.aborted || run.fatal) {
      run.stopped = true;
      break;
    }
    const before = fingerprint(run.job);
    if (run.job.state === "running" || run.job.state === "rescuing") {
      if (await run.store.cancelRequested()) {
        run.job.state = "cancelling";
        run.event("cancel requested: cancelling the open batches; unfinished items fail");
        await run.save();
      }
    }
    if (run.job.state === "running" && run.pastDeadline()) {
      run.job.state = "rescuing";
      run.event(
        `deadline reached: cancelling ${
          plural(activeParts(run.job).length, "open batch", "open batches")
        }; what they have not finished goes realtime`,
      );
      await run.save();
    }
    for (const part of run.job.parts) {
      if (run.halt?.aborted || run.fatal) break;
      await advancePart(run, part);
    }
    if (run.halt?.aborted || run.fatal) {
      run.stopped = true;
      break;
    }
    const open = activeParts(run.job).length;
    if (open === 0 && run.job.state !== "running") {
      if (run.job.state === "rescuing") await rescueParts(run);
      if (run.stopped) break;
      for (const part of run.job.parts) {
        if (part.state === "rescue" && run.job.state === "cancelling") {
          await collectEntries(run, part, undefined);
        }
      }
    }
    if (run.job.parts.every((p) => p.state === "collected")) {
      run.job.state = "done";
      run.job.finishedAt = run.now();
      await run.sink.sync?.();
      await run.save();
      await run.store.removeParts();
      await run.store.clearCancel();
      run.event(`done: ${run.job.ok} ok, ${run.job.failed + run.job.invalid} failed`);
      break;
    }
    await run.save();
    reportProgress(run);
    const after = fingerprint(run.job);
    interval = after === before ? Math.min(run.maxPollMs, interval * 1.5) : run.pollMs;
    let wait = interval;
    if (run.job.state === "running" && run.job.deadlineAt !== undefined) {
      wait = Math.min(wait, Math.max(0, run.job.deadlineAt - run.now()));
    }
    const due = run.job.parts
      .filter((p) => p.state === "planned" || p.state === "creating")
      .map((p) => p.notBefore)
      .filter((t): t is number => t !== undefined && t > run.now());
    if (due.length) wait = Math.min(wait, Math.max(0, Math.min(...due) - run.now()));
    try {
      await delay(wait, { clock: run.clock, signal: run.halt });
    } catch {
      run.stopped = true;
      break;
    }
  }
  if (run.stopped) await run.save();
  reportProgress(run);
  return jobStats(run);
}
