/**
 * Collecting: reads a finished batch's results into output and errors records; what has no
 * result is sent again as a new part, goes realtime past the deadline, or fails.
 * @module
 */
import { type ErrorField, errorRecord, outputRecord } from "../formats.ts";
import type { RemoteBatch } from "./backend.ts";
import { activeParts, type Part } from "./job.ts";
import { byteLength } from "../byte_size.ts";
import { type BatchJobRun, type Entry, entryLine, readEntry } from "./_job_run.ts";

/** Times a batch that failed on a token or quota limit is submitted again when none is open. */
const MAX_REQUEUES = 4;

/**
 * Reads the part of a finished, abandoned or vanished batch. A batch that failed on a token or
 * quota limit is submitted again instead.
 */
export async function collectPart(
  run: BatchJobRun,
  part: Part,
  batch: RemoteBatch | undefined,
): Promise<void> {
  part.endedAt ??= run.now();
  if (batch?.state === "failed") {
    const errors = batch.errors ?? [];
    const limit = errors.find((e) =>
      /token_limit|quota|rate_limit|RESOURCE_EXHAUSTED/i.test(e.code)
    );
    if (limit && run.job.state === "running") {
      const others = activeParts(run.job).filter((p) => p !== part).length;
      if (others > 0 || part.attempt < MAX_REQUEUES) {
        requeue(run, part, others);
        run.event(
          `${part.name}: ${batch.id} failed (${limit.code}); submitting it again ${
            others > 0 ? "when one of the other batches is done" : "after a pause"
          }`,
        );
        await run.save();
        return;
      }
    }
    const first = errors[0];
    await collectEntries(run, part, batch, {
      status: 0,
      code: first?.code ?? "batch_failed",
      message: first?.message ?? `batch ${batch.id} failed`,
    }, errors);
    return;
  }
  await collectEntries(run, part, batch);
}

function requeue(run: BatchJobRun, part: Part, othersActive: number) {
  part.state = "planned";
  part.attempt++;
  part.batchId = undefined;
  part.remote = undefined;
  part.submittedAt = undefined;
  part.endedAt = undefined;
  part.tag = undefined;
  part.createSent = undefined;
  if (othersActive > 0) part.waitActive = othersActive;
  else part.notBefore = run.now() + run.backoff(part);
}

/**
 * Reads a finished batch's results into records. What has no result is sent again (a new
 * part), or fails with `failWith` when the batch failed as a whole.
 */
export async function collectEntries(
  run: BatchJobRun,
  part: Part,
  batch: RemoteBatch | undefined,
  failWith?: Entry["reason"],
  lineErrors: { line?: number; code: string; message: string }[] = [],
): Promise<void> {
  const entries = new Map<string, Entry>();
  for await (const stored of run.store.readPart(part.name)) {
    const e = readEntry(stored);
    entries.set(e.id, e);
  }
  const order = [...entries.keys()];
  let ok = 0;
  let failed = 0;
  const resend: Entry[] = [];
  const latencyMs = (part.endedAt ?? run.now()) - (part.submittedAt ?? part.endedAt ?? run.now());
  if (batch !== undefined && batch.raw != null && !part.abandoned) {
    for await (const r of run.backend.results(batch, { signal: run.signal, order })) {
      const e = entries.get(r.key);
      if (e === undefined) continue;
      entries.delete(r.key);
      if (run.written(e.id)) continue;
      if (r.ok) {
        const item = run.parseEntry(e);
        const response = run.backend.response(item, r);
        if (response.noText) {
          // An answer without text is not a success here either (see README).
          failed++;
          run.job.failed++;
          const error: ErrorField = {
            status: response.status,
            code: response.noText.code,
            message: response.noText.message,
            attempts: part.round,
            line: e.line,
            finish_reason: response.finishReason,
            response: response.body,
          };
          const record = errorRecord(item.original, item.id, error);
          await run.emit({ type: "error", line: e.line, id: e.id, record });
          continue;
        }
        const record = outputRecord(item, response, { attempts: part.round, latencyMs });
        if (item.format === "openai-batch" && r.resultId?.startsWith("batch_req_")) {
          record.id = r.resultId;
        }
        run.job.ok++;
        run.job.tokensIn += response.usage.input_tokens;
        run.job.tokensOut += response.usage.output_tokens;
        ok++;
        await run.emit({ type: "ok", line: e.line, id: e.id, record });
      } else if (!failWith && (r.unfinished || (r.retryable && part.round < run.maxAttempts))) {
        resend.push({ ...e, reason: r });
      } else {
        failed++;
        await run.failEntry(e, part.round, r);
      }
    }
  }
  const byLine = new Map<number, { code: string; message: string }>();
  for (const err of lineErrors) if (err.line !== undefined) byLine.set(err.line, err);
  for (const [i, e] of order.entries()) {
    if (!entries.has(e) || run.written(e)) continue;
    const entry = entries.get(e)!;
    if (failWith) {
      const own = byLine.get(i + 1);
      failed++;
      await run.failEntry(entry, part.round, own ? { ...failWith, ...own } : failWith);
    } else {
      resend.push(entry);
    }
  }
  part.ok = ok;
  part.failed = failed;
  part.resent = resend.length;
  const why = batch ? `${batch.id} ${batch.rawState}` : "not submitted";
  if (resend.length > 0) {
    const rescuing = run.job.state === "rescuing" || run.pastDeadline();
    if (run.job.state === "cancelling") {
      for (const e of resend) {
        await run.failEntry(e, part.round, {
          status: 0,
          code: "batch_cancelled",
          message: "the batch job was cancelled before this request ran",
        });
      }
      part.resent = 0;
    } else if (!rescuing && part.round >= run.maxAttempts) {
      for (const e of resend) {
        await run.failEntry(e, part.round, {
          status: e.reason?.status ?? 0,
          code: e.reason?.code ?? `batch_${batch?.state ?? "error"}`,
          message: e.reason?.message ??
            `not answered after ${part.round} batch submissions (last: ${why})`,
        });
      }
      part.resent = 0;
    } else {
      const next = run.newPart(part.group, part.round + 1);
      const writer = run.store.createPart(next.name);
      for (const e of resend) {
        await writer.write(entryLine(e));
        next.items++;
        next.bytes += byteLength(e.text) + 1;
      }
      await writer.close();
      if (rescuing) run.markRescue(next);
      run.job.parts.push(next);
      run.event(
        `${part.name}: ${why}: ${ok} answered, ${failed} failed, ${resend.length} ${
          rescuing ? "go realtime" : `sent again as ${next.name}`
        }`,
      );
    }
  }
  if (part.resent === 0 || resend.length === 0) {
    run.event(`${part.name}: ${why}: ${ok} answered, ${failed} failed`);
  }
  await run.sink.sync?.();
  part.state = "collected";
  await run.save();
}
