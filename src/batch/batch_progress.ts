/**
 * Progress, summary and `status` text of a batch job. Pure functions: the CLI decides where and
 * how often they are printed.
 * @module
 */
import { formatDuration } from "../duration.ts";
import type { Job } from "./job.ts";
import { BATCH_PRICE_FACTOR, type BatchJobStats, savingFraction } from "./run_batch_job.ts";

function pct(x: number): string {
  return `${(100 * x).toFixed(x === 0 || x >= 0.1 ? 0 : 1)}%`;
}

function statesText(states: Record<string, number>): string {
  const parts = Object.entries(states).map(([name, n]) => `${n} ${name}`);
  return parts.length ? parts.join(", ") : "none open";
}

/**
 * One progress line: job state, the providers' states and counts, our counts, elapsed time and
 * the expected saving.
 */
export function batchProgressLine(s: BatchJobStats): string {
  const done = s.ok + s.failed;
  return [
    `batch ${s.state}`,
    `${s.batches} batch${s.batches === 1 ? "" : "es"} (${statesText(s.states)})`,
    `provider ${s.counts.completed}/${s.counts.total} done, ${s.counts.failed} failed`,
    `written ${done}/${s.items} (ok ${s.ok} · failed ${s.failed})`,
    ...(s.realtime ? [`realtime ${s.realtime}`] : []),
    `elapsed ${formatDuration(s.elapsedMs)}`,
    ...(s.deadlineAt !== undefined && s.state === "running"
      ? [`deadline in ${formatDuration(s.deadlineAt - s.createdAt - s.elapsedMs)}`]
      : []),
    `saving ≈${pct(savingFraction(s))}`,
  ].join(" · ");
}

/** The end-of-run summary. */
export function batchSummaryLines(
  s: BatchJobStats,
  files: { output: string; errors: string },
): string[] {
  const head = s.stopped ? "detached" : "done";
  const failed = s.failed + s.invalid;
  return [
    `${head}: ${s.items} items in ${s.batches} batch${
      s.batches === 1 ? "" : "es"
    } · ok ${s.ok} → ${files.output} · failed ${failed} → ${files.errors}${
      s.skipped ? ` · skipped ${s.skipped} (already in output)` : ""
    }${s.pending && s.stopped ? ` · pending ${s.pending}` : ""}`,
    `${s.resent} sent again after an expired or cancelled batch · ${s.realtime} through realtime · tokens in ${s.tokensIn} / out ${s.tokensOut} · elapsed ${
      formatDuration(s.elapsedMs)
    }`,
    `cost: ${s.items - s.realtime} of ${s.items} items at the batch price (${
      pct(BATCH_PRICE_FACTOR)
    } of realtime): saving ≈${pct(savingFraction(s))} of the realtime price`,
  ];
}

/** A live view of one batch, from the provider, for `status`. */
export interface LiveBatch {
  raw: string;
  total?: number;
  completed?: number;
  failed?: number;
}

/**
 * The `status` text of a job file: job state, age, counts, and one line per batch. `live`
 * replaces the recorded state of batches the provider was asked about just now.
 */
export function jobStatusLines(
  job: Job,
  now: number,
  live: Map<string, LiveBatch> = new Map(),
): string[] {
  const open = job.parts.filter((p) => p.state === "creating" || p.state === "submitted").length;
  const written = job.ok + job.failed;
  const lines = [
    `job ${job.id} · ${job.provider} · model ${job.model} · ${job.state} · age ${
      formatDuration(now - job.createdAt)
    }${
      job.deadlineAt === undefined
        ? ""
        : job.state === "running" && job.deadlineAt > now
        ? ` · deadline in ${formatDuration(job.deadlineAt - now)}`
        : ` · deadline ${job.deadlineAt <= now ? "passed" : "set"}`
    }${job.finishedAt ? ` · finished ${formatDuration(now - job.finishedAt)} ago` : ""}`,
    `items ${job.items} · written ${written} (ok ${job.ok} · failed ${job.failed}) · rejected ${job.invalid}${
      job.skipped ? ` · skipped ${job.skipped}` : ""
    } · realtime ${job.realtime} · batches ${
      job.parts.filter((p) => p.batchId !== undefined).length
    } (${open} open)`,
  ];
  for (const p of job.parts) {
    const l = live.get(p.name);
    const r = l ?? p.remote;
    // A batch's own last state says most (expired, cancelled…); parts never sent say ours.
    const state = p.state === "submitted" || p.state === "collected"
      ? (r?.raw ?? p.state)
      : p.state;
    const counts = r?.total !== undefined
      ? ` · ${r.completed ?? 0}/${r.total} done, ${r.failed ?? 0} failed`
      : "";
    const age = p.submittedAt !== undefined
      ? ` · age ${formatDuration((p.endedAt ?? now) - p.submittedAt)}`
      : "";
    const result = p.state === "collected" && p.ok !== undefined
      ? ` · ok ${p.ok}, failed ${p.failed ?? 0}, sent again ${p.resent ?? 0}`
      : "";
    lines.push(
      `  ${p.name.padEnd(4)} ${(p.batchId ?? "-").padEnd(24)} ${
        state.padEnd(12)
      } ${p.items} items${counts}${age}${result}${l ? " (live)" : ""}`,
    );
  }
  lines.push(
    `saving ≈${
      pct(savingFraction({ items: job.items, realtime: job.realtime }))
    } of the realtime price (${job.items - job.realtime} of ${job.items} items at the batch price)`,
  );
  return lines;
}
