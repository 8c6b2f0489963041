/**
 * Stats: the live state of a batch job, as `onProgress` and the final result report it.
 * @module
 */
import type { BatchJobStats } from "./job_types.ts";
import type { BatchJobRun } from "./_job_run.ts";

/** The run's stats now. */
export function jobStats(run: BatchJobRun): BatchJobStats {
  const j = run.job;
  const states: Record<string, number> = {};
  const counts = { total: 0, completed: 0, failed: 0 };
  let batches = 0;
  let resent = 0;
  for (const p of j.parts) {
    resent += p.round > 1 ? p.items : 0;
    if (p.batchId !== undefined) batches++;
    if (p.state === "submitted" || p.state === "creating") {
      const key = p.remote?.raw ?? "creating";
      states[key] = (states[key] ?? 0) + 1;
    }
    if (p.remote) {
      counts.total += p.remote.total ?? 0;
      counts.completed += p.remote.completed ?? 0;
      counts.failed += p.remote.failed ?? 0;
    }
  }
  return {
    jobId: j.id,
    provider: j.provider,
    model: j.model,
    state: j.state,
    attached: run.attached,
    items: j.items,
    invalid: j.invalid,
    skipped: j.skipped,
    ok: j.ok,
    failed: j.failed,
    pending: j.state === "done" ? 0 : Math.max(0, j.items - j.ok - j.failed),
    realtime: j.realtime,
    resent,
    batches,
    states,
    counts,
    tokensIn: j.tokensIn,
    tokensOut: j.tokensOut,
    createdAt: j.createdAt,
    elapsedMs: run.now() - j.createdAt,
    deadlineAt: j.deadlineAt,
    stopped: run.stopped,
    fatal: run.fatal,
  };
}

/** Reports fresh stats to `onProgress`. */
export function reportProgress(run: BatchJobRun): void {
  run.options.onProgress?.(jobStats(run));
}
