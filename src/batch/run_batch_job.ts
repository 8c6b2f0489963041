/**
 * A whole batch job: plan the input into parts that fit the provider's limits, create one batch
 * per part (recoverably: the tag is saved before the create call, and a resume looks for it
 * before creating again), poll with backoff, read results into output / errors records, send
 * unfinished items again, and past a deadline cancel what is left and finish it in realtime.
 * @module
 */
import { delay } from "../clock.ts";
import { activeParts, type Job } from "./job.ts";
import { BatchJobRun, type Lines } from "./_job_run.ts";
import { planJob } from "./_plan_job.ts";
import { advancePart } from "./_advance_part.ts";
import { collectEntries } from "./_collect_part.ts";
import { rescueParts } from "./_rescue_parts.ts";
import { jobStats, reportProgress } from "./_job_stats.ts";
import type { BatchJobOptions, BatchJobStats } from "./job_types.ts";

export type { BatchJobOptions, BatchJobStats, RecordSink, RescueOptions } from "./job_types.ts";

/** Batch endpoints cost this fraction of the realtime price (OpenAI and Gemini: half). */
export const BATCH_PRICE_FACTOR = 0.5;

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
