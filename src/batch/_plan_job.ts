/**
 * Planning: reads the input into parts that fit the provider's limits (one group per part),
 * writes rejected lines to the errors file, and saves the new job file.
 * @module
 */
import { type ErrorField, errorRecord, parseLine } from "../formats.ts";
import { IdSet } from "../id_set.ts";
import type { RunRecord } from "../run.ts";
import { type Job, JOB_VERSION, type Part } from "./job.ts";
import type { JobStore } from "./store.ts";
import { byteLength } from "../byte_size.ts";
import { type BatchJobRun, entryLine, type Lines } from "./_job_run.ts";

function randomJobId(): string {
  return `mft-${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** Plans a new job from its input lines; it becomes `run.job`, `running` (or `done` if empty). */
export async function planJob(run: BatchJobRun, input: Lines): Promise<Job> {
  const { backend, store, options, signal, answered } = run;
  await store.removeParts();
  const created = run.now();
  const j: Job = {
    version: JOB_VERSION,
    id: options.jobId ?? randomJobId(),
    provider: backend.name as Job["provider"],
    model: backend.model,
    baseUrl: options.baseUrl,
    input: options.input,
    createdAt: created,
    deadlineAt: options.deadlineMs === undefined ? undefined : created + options.deadlineMs,
    state: "planning",
    items: 0,
    invalid: 0,
    skipped: 0,
    ok: 0,
    failed: 0,
    realtime: 0,
    tokensIn: 0,
    tokensOut: 0,
    nextPart: 0,
    parts: [],
  };
  run.job = j;
  await run.save();
  const rejects = store.createPart("rejects");
  const reject = async (line: number, original: unknown, error: ErrorField, id?: string) => {
    j.invalid++;
    const record: RunRecord = {
      type: "error",
      line,
      id,
      record: errorRecord(original, id, error),
    };
    await rejects.write(JSON.stringify(record));
  };
  const open = new Map<string, { part: Part; writer: ReturnType<JobStore["createPart"]> }>();
  const seen = new IdSet();
  let lineNo = 0;
  for await (const text of input as AsyncIterable<string>) {
    lineNo++;
    if (text.trim() === "") continue;
    signal?.throwIfAborted();
    const parsed = parseLine(text, lineNo, run.maxLineLength);
    if (!parsed.ok) {
      await reject(lineNo, parsed.original ?? text, {
        status: 0,
        code: parsed.code,
        message: parsed.message,
        attempts: 0,
        line: lineNo,
      });
      continue;
    }
    const item = parsed.item;
    const first = seen.add(item.id, lineNo);
    if (first !== 0) {
      await reject(lineNo, item.original, {
        status: 0,
        code: "duplicate_id",
        message: `line ${lineNo}: id '${item.id}' was already used on line ${first}`,
        attempts: 0,
        line: lineNo,
      }, item.id);
      continue;
    }
    if (answered.has(item.id)) {
      j.skipped++;
      continue;
    }
    let encoded;
    try {
      encoded = backend.encode(item);
    } catch (error) {
      await reject(lineNo, item.original, {
        status: 0,
        code: "unsupported",
        message: (error as Error).message,
        attempts: 0,
        line: lineNo,
      }, item.id);
      continue;
    }
    const bytes = byteLength(encoded.line) + 1;
    if (bytes > backend.limits.maxBytes) {
      await reject(lineNo, item.original, {
        status: 0,
        code: "too_large",
        message:
          `line ${lineNo}: ${bytes} bytes as a batch request, above the ${backend.limits.maxBytes}-byte batch limit`,
        attempts: 0,
        line: lineNo,
      }, item.id);
      continue;
    }
    let slot = open.get(encoded.group);
    if (
      slot &&
      (slot.part.items + 1 > backend.limits.maxItems ||
        slot.part.bytes + bytes > backend.limits.maxBytes)
    ) {
      await slot.writer.close();
      open.delete(encoded.group);
      slot = undefined;
    }
    if (!slot) {
      const part = run.newPart(encoded.group, 1);
      j.parts.push(part);
      slot = { part, writer: store.createPart(part.name) };
      open.set(encoded.group, slot);
    }
    await slot.writer.write(entryLine({ line: lineNo, id: item.id, text }));
    slot.part.items++;
    slot.part.bytes += bytes;
    j.items++;
  }
  for (const slot of open.values()) await slot.writer.close();
  await rejects.close();
  // Rejected lines are written only now, so that an input that is the errors file is read
  // whole before that file is opened for writing.
  await run.start();
  for await (const stored of store.readPart("rejects")) {
    const record = JSON.parse(stored) as RunRecord;
    if (record.id !== undefined && run.written(record.id)) continue;
    await run.sink.write(record);
  }
  await run.sink.sync?.();
  j.state = j.parts.length > 0 ? "running" : "done";
  await run.save();
  const groups = [...new Set(j.parts.map((p) => p.group))];
  run.event(
    `plan: ${j.items} items in ${j.parts.length} batch${j.parts.length === 1 ? "" : "es"} (${
      groups.join(", ") || "none"
    })${j.invalid ? ` · ${j.invalid} lines rejected` : ""}${
      j.skipped ? ` · ${j.skipped} already in the output` : ""
    }`,
  );
  return j;
}
