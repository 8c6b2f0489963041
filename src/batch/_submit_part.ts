/**
 * Submitting: creates one provider batch per part, recoverably (the tag is saved before the
 * create call, and a resume looks for it before creating again).
 * @module
 */
import { isProviderError } from "../errors.ts";
import type { BatchInput, RemoteBatch } from "./backend.ts";
import { activeParts, type Part } from "./job.ts";
import { byteLength } from "../byte_size.ts";
import { type BatchJobRun, readEntry } from "./_job_run.ts";
import { collectEntries } from "./_collect_part.ts";

async function loadInput(
  run: BatchJobRun,
  part: Part,
): Promise<{ input: BatchInput; order: string[] }> {
  const lines: string[] = [];
  const order: string[] = [];
  let bytes = 0;
  for await (const stored of run.store.readPart(part.name)) {
    const e = readEntry(stored);
    const encoded = run.backend.encode(run.parseEntry(e));
    lines.push(encoded.line);
    order.push(e.id);
    bytes += byteLength(encoded.line) + 1;
  }
  return {
    input: { tag: part.tag!, jobId: run.job.id, group: part.group, lines, bytes },
    order,
  };
}

/** Records that the part's batch exists at the provider. */
export function attachPart(run: BatchJobRun, part: Part, batch: RemoteBatch, how: string): void {
  part.batchId = batch.id;
  part.state = "submitted";
  part.submittedAt ??= run.now();
  part.createSent = undefined;
  snapshotPart(run, part, batch);
  run.resetBackoff(part);
  run.event(`${part.name}: ${how} ${batch.id} (${part.items} items, ${part.group})`);
}

/** Records the batch's state and counts in its part; true when they changed. */
export function snapshotPart(run: BatchJobRun, part: Part, batch: RemoteBatch): boolean {
  const before = part.remote;
  part.remote = {
    state: batch.state,
    raw: batch.rawState,
    total: batch.counts?.total,
    completed: batch.counts?.completed,
    failed: batch.counts?.failed,
    checkedAt: run.now(),
  };
  return before?.raw !== batch.rawState || before?.completed !== batch.counts?.completed ||
    before?.failed !== batch.counts?.failed;
}

/** Handles a failed call: auth is fatal, retryable waits, anything else fails the part. */
export async function callFailed(
  run: BatchJobRun,
  part: Part,
  what: string,
  error: unknown,
): Promise<void> {
  if (run.signal?.aborted) throw run.signal.reason;
  if (!isProviderError(error)) throw error;
  if (run.isFatal(error, what)) return;
  const info = error.info;
  if (info.retryable || info.status === 404) {
    const wait = run.backoff(part);
    part.notBefore = run.now() + wait;
    run.event(`${part.name}: could not ${what} (${info.code}: ${info.message}); trying again`);
    return;
  }
  run.event(`${part.name}: could not ${what} (${info.code}: ${info.message}); its items fail`);
  await collectEntries(run, part, undefined, {
    status: info.status,
    code: info.code,
    message: info.message,
  });
}

/** Creates the part's batch once its wait is over (or finds the one an earlier create made). */
export async function submitPart(run: BatchJobRun, part: Part): Promise<void> {
  const { backend, signal } = run;
  if (part.notBefore !== undefined) {
    if (run.now() < part.notBefore) return;
    part.notBefore = undefined;
  }
  if (part.waitActive !== undefined) {
    if (activeParts(run.job).length >= part.waitActive) return;
    part.waitActive = undefined;
  }
  try {
    if (part.state === "creating" && part.createSent) {
      // A create call may have landed without us hearing back: look before creating again.
      const found = await backend.find(part.tag!, { signal });
      if (found) {
        attachPart(run, part, found, "re-attached to");
        await run.save();
        return;
      }
    }
    if (part.state === "planned") {
      part.state = "creating";
      part.tag = `${run.job.id}-${part.name}-${part.attempt}`;
      part.createSent = false;
      await run.save();
    }
    const { input } = await loadInput(run, part);
    if (part.fileId === undefined) {
      const fileId = await backend.upload(input, { signal });
      if (fileId !== undefined) {
        part.fileId = fileId;
        await run.save();
      }
    }
    part.createSent = true;
    await run.save();
    const batch = await backend.create(input, part.fileId, { signal });
    attachPart(run, part, batch, "created");
    await run.save();
  } catch (error) {
    await callFailed(run, part, "create its batch", error);
    await run.save();
  }
}
