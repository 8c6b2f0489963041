/**
 * One step of one part per poll: submit it (or, once the job winds down, find and cancel what
 * may exist), then poll its batch and collect it when it is done.
 * @module
 */
import { isProviderError } from "../errors.ts";
import { isTerminal, type RemoteBatch } from "./backend.ts";
import type { Part } from "./job.ts";
import type { BatchJobRun } from "./_job_run.ts";
import { attachPart, callFailed, snapshotPart, submitPart } from "./_submit_part.ts";
import { collectEntries, collectPart } from "./_collect_part.ts";

/** Moves the part on by one step; a fatal failure is left in `run.fatal`. */
export async function advancePart(run: BatchJobRun, part: Part): Promise<void> {
  if (part.state === "planned" || part.state === "creating") {
    if (run.job.state === "running") {
      await submitPart(run, part);
    } else if (!await windDown(run, part)) {
      return;
    }
  }
  if (part.state !== "submitted") return;
  if (run.job.state !== "running" && !isTerminal(part.remote!.state)) {
    if (part.cancelSentAt === undefined) {
      try {
        await run.backend.cancel(part.batchId!, { signal: run.signal });
        run.event(`${part.name}: cancel sent for ${part.batchId}`);
      } catch (error) {
        if (run.signal?.aborted) throw run.signal.reason;
        run.event(`${part.name}: cancel of ${part.batchId} failed: ${(error as Error).message}`);
      }
      part.cancelSentAt = run.now();
      await run.save();
    } else if (run.now() - part.cancelSentAt > run.cancelGraceMs) {
      part.abandoned = true;
      run.event(`${part.name}: ${part.batchId} did not stop in time; its results are not read`);
      await collectPart(run, part, undefined);
      return;
    }
  }
  await pollPart(run, part);
}

/**
 * Rescuing or cancelling: no new batch; one that may exist is found (then cancelled by the
 * caller). False when the look-up failed and the part waits for the next poll.
 */
async function windDown(run: BatchJobRun, part: Part): Promise<boolean> {
  let found: RemoteBatch | undefined;
  if (part.state === "creating" && part.createSent) {
    try {
      found = await run.backend.find(part.tag!, { signal: run.signal });
    } catch (error) {
      await callFailed(run, part, "look for its batch", error);
      return false;
    }
  }
  if (found) attachPart(run, part, found, "re-attached to");
  else if (run.job.state === "rescuing") run.markRescue(part);
  else await collectEntries(run, part, undefined);
  await run.save();
  return true;
}

/** Reads the batch's state; collects it when it is done, or gone at the provider. */
async function pollPart(run: BatchJobRun, part: Part): Promise<void> {
  let batch: RemoteBatch;
  try {
    batch = await run.backend.get(part.batchId!, { signal: run.signal });
  } catch (error) {
    if (run.signal?.aborted) throw run.signal.reason;
    if (isProviderError(error) && error.info.status === 404) {
      run.event(`${part.name}: ${part.batchId} is gone at the provider; its items are sent again`);
      await collectPart(run, part, undefined);
      return;
    }
    // A fatal failure stops the loop over the parts (it checks `run.fatal`).
    if (run.isFatal(error, `show ${part.batchId}`)) return;
    run.event(`${part.name}: could not poll ${part.batchId}: ${(error as Error).message}`);
    return;
  }
  snapshotPart(run, part, batch);
  if (isTerminal(batch.state)) {
    try {
      await collectPart(run, part, batch);
    } catch (error) {
      if (run.signal?.aborted) throw run.signal.reason;
      if (!isProviderError(error) || !error.info.retryable) throw error;
      run.event(`${part.name}: could not read results of ${batch.id}: ${error.message}`);
    }
  }
}
