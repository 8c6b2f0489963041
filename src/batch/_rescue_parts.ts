/**
 * Rescue: past the deadline, the items no batch answered go through the realtime path (or
 * fail, when no realtime provider was given).
 * @module
 */
import { runRealtime } from "../run.ts";
import { type BatchJobRun, type Entry, readEntry } from "./_job_run.ts";

/** The entries' texts on their original line numbers, blank lines between. */
async function* padded(entries: Entry[]): AsyncIterable<string> {
  let at = 0;
  for (const e of entries) {
    while (++at < e.line) yield "";
    yield e.text;
  }
}

/** Runs every part marked for rescue through the realtime path, then marks them collected. */
export async function rescueParts(run: BatchJobRun): Promise<void> {
  const parts = run.job.parts.filter((p) => p.state === "rescue");
  if (parts.length === 0) return;
  const entries: Entry[] = [];
  for (const part of parts) {
    for await (const stored of run.store.readPart(part.name)) {
      const e = readEntry(stored);
      if (!run.written(e.id)) entries.push(e);
    }
  }
  entries.sort((a, b) => a.line - b.line);
  const realtime = run.options.realtime;
  if (realtime === undefined) {
    for (const e of entries) {
      await run.failEntry(e, 0, {
        status: 0,
        code: "deadline_exceeded",
        message: "the batch did not finish by the deadline and no realtime provider was given",
      });
    }
  } else if (entries.length > 0) {
    run.event(`realtime: ${entries.length} items through ${realtime.provider.name}`);
    // Blank lines keep every item on its original line number, so ids and records are the
    // ones a realtime run of the whole input would have written.
    const stream = runRealtime(padded(entries), {
      provider: realtime.provider,
      rate: realtime.rate,
      tpm: realtime.tpm,
      retry: realtime.retry,
      timeoutMs: realtime.timeoutMs,
      maxInFlight: realtime.maxInFlight,
      clock: run.clock,
      signal: run.signal,
      stopSignal: run.stopSignal,
    });
    for await (const r of stream.results) {
      if (r.id !== undefined && run.written(r.id)) continue;
      if (r.type === "ok") run.job.ok++;
      else run.job.failed++;
      await run.emit(r);
    }
    const st = await stream.done;
    run.job.tokensIn += st.tokensIn;
    run.job.tokensOut += st.tokensOut;
    if (st.fatal) run.fatal ??= st.fatal;
    if (st.stopped) {
      run.stopped = true;
      await run.sink.sync?.();
      await run.save();
      return;
    }
  }
  await run.sink.sync?.();
  for (const part of parts) part.state = "collected";
  await run.save();
}
