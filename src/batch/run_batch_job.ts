/**
 * A whole batch job: plan the input into parts that fit the provider's limits, create one batch
 * per part (recoverably: the tag is saved before the create call, and a resume looks for it
 * before creating again), poll with backoff, read results into output / errors records, send
 * unfinished items again, and past a deadline cancel what is left and finish it in realtime.
 * @module
 */
import { type Clock, delay, systemClock } from "../clock.ts";
import { ConfigError, type FailureKind, isProviderError } from "../errors.ts";
import {
  type ErrorField,
  errorRecord,
  outputRecord,
  parseLine,
  type RequestItem,
} from "../formats.ts";
import { IdSet } from "../id_set.ts";
import type { Provider } from "../providers/provider.ts";
import { runBatch, type RunOptions, type RunRecord } from "../run.ts";
import { type BatchBackend, type BatchInput, isTerminal, type RemoteBatch } from "./backend.ts";
import { activeParts, type Job, JOB_VERSION, type JobState, type Part } from "./job.ts";
import type { JobStore } from "./store.ts";
import { byteLength } from "./_http.ts";

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
export type RealtimeOptions =
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
  realtime?: RealtimeOptions;
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

type Lines = ReadableStream<string> | AsyncIterable<string>;

interface Entry {
  line: number;
  id: string;
  text: string;
  reason?: Pick<ErrorField, "status" | "code" | "message">;
}

/** A part's stored line: `line \t JSON(id) \t original text` (JSON strings hold no raw tab). */
function entryLine(e: Entry): string {
  return `${e.line}\t${JSON.stringify(e.id)}\t${e.text}`;
}

function readEntry(stored: string): Entry {
  const a = stored.indexOf("\t");
  const b = stored.indexOf("\t", a + 1);
  return {
    line: Number(stored.slice(0, a)),
    id: JSON.parse(stored.slice(a + 1, b)),
    text: stored.slice(b + 1),
  };
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The entries' texts on their original line numbers, blank lines between. */
async function* padded(entries: Entry[]): AsyncIterable<string> {
  let at = 0;
  for (const e of entries) {
    while (++at < e.line) yield "";
    yield e.text;
  }
}

function randomJobId(): string {
  return `mft-${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

/** Codes of lines rejected while planning; their ids do not mark an item as done. */
export const PLAN_REJECT_CODES: ReadonlySet<string> = new Set([
  "invalid_json",
  "unknown_format",
  "invalid_line",
  "duplicate_id",
]);

const MAX_REQUEUES = 4;

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
 * import { createOpenAIBatchBackend } from "./openai_batch.ts";
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
  const { backend, store, sink, signal, stopSignal } = options;
  const clock = options.clock ?? systemClock;
  const now = options.now ?? Date.now;
  const answered = options.answered ?? new IdSet();
  const errored = options.errored ?? new IdSet();
  const maxAttempts = options.maxAttempts ?? 3;
  const pollMs = options.pollIntervalMs ?? 5000;
  const maxPollMs = options.maxPollIntervalMs ?? pollMs * 12;
  const cancelGraceMs = options.cancelGraceMs ?? 600_000;
  const maxLineLength = options.maxLineLength ?? 10_000_000;
  for (
    const [name, value, min] of [
      ["maxAttempts", maxAttempts, 1],
      ["pollIntervalMs", pollMs, 1],
      ["maxPollIntervalMs", maxPollMs, 1],
      ["cancelGraceMs", cancelGraceMs, 0],
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
  const stops = [signal, stopSignal].filter((s): s is AbortSignal => s !== undefined);
  const halt = stops.length > 1 ? AbortSignal.any(stops) : stops[0];
  const event = (message: string) => options.onEvent?.(message);
  const written = (id: string) => answered.has(id) || errored.has(id);

  let job = await store.load();
  const attached = job !== undefined && job.state !== "done" && job.state !== "planning";
  if (attached && job!.provider !== backend.name) {
    throw new ConfigError(
      `the unfinished batch job ${job!.id} was started with provider ${
        job!.provider
      }, not ${backend.name}`,
    );
  }
  let stopped = false;
  let fatal: BatchJobStats["fatal"];
  /** Auth and billing failures stop the job (it stays resumable); true when this was one. */
  const isFatal = (error: unknown, what: string): boolean => {
    if (!isProviderError(error)) return false;
    const info = error.info;
    const kind: FailureKind | undefined = info.kind === "auth" || info.kind === "billing"
      ? info.kind
      : info.status === 401 || info.status === 403
      ? "auth"
      : undefined;
    if (kind === undefined) return false;
    fatal ??= {
      kind,
      status: info.status,
      code: info.code,
      message: `${backend.name} refused to ${what}: ${info.message}`,
    };
    stopped = true;
    return true;
  };

  // ------------------------------------------------------------------------------- writing
  let started = false;
  const start = async () => {
    if (!started) await sink.start?.();
    started = true;
  };
  const emit = async (record: RunRecord) => {
    await start();
    if (record.id !== undefined) (record.type === "ok" ? answered : errored).add(record.id);
    await sink.write(record);
  };
  const parseEntry = (e: Entry): RequestItem => {
    const parsed = parseLine(e.text, e.line, Infinity);
    if (!parsed.ok) throw new Error(`stored item on line ${e.line} no longer parses`);
    return parsed.item;
  };
  const failEntry = async (e: Entry, attempts: number, reason: Entry["reason"]) => {
    if (written(e.id)) return;
    const item = parseEntry(e);
    const error: ErrorField = {
      status: reason?.status ?? 0,
      code: reason?.code ?? "batch_error",
      message: reason?.message ?? "the batch did not answer this request",
      attempts,
      line: e.line,
    };
    job!.failed++;
    await emit({
      type: "error",
      line: e.line,
      id: e.id,
      record: errorRecord(item.original, item.id, error),
    });
  };
  const save = () => store.save(job!);

  // ------------------------------------------------------------------------------- planning
  async function plan(input: Lines): Promise<Job> {
    await store.removeParts();
    const created = now();
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
    job = j;
    await save();
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
      const parsed = parseLine(text, lineNo, maxLineLength);
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
        const part = newPart(j, encoded.group, 1);
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
    await start();
    for await (const stored of store.readPart("rejects")) {
      const record = JSON.parse(stored) as RunRecord;
      if (record.id !== undefined && written(record.id)) continue;
      await sink.write(record);
    }
    await sink.sync?.();
    j.state = j.parts.length > 0 ? "running" : "done";
    await save();
    const groups = [...new Set(j.parts.map((p) => p.group))];
    event(
      `plan: ${j.items} items in ${j.parts.length} batch${j.parts.length === 1 ? "" : "es"} (${
        groups.join(", ") || "none"
      })${j.invalid ? ` · ${j.invalid} lines rejected` : ""}${
        j.skipped ? ` · ${j.skipped} already in the output` : ""
      }`,
    );
    return j;
  }

  function newPart(j: Job, group: string, round: number): Part {
    return {
      name: `p${j.nextPart++}`,
      group,
      items: 0,
      bytes: 0,
      round,
      state: "planned",
      attempt: 0,
    };
  }

  // ------------------------------------------------------------------------------- submitting
  const failures = new Map<string, number>();
  const backoff = (part: Part) => {
    const n = (failures.get(part.name) ?? 0) + 1;
    failures.set(part.name, n);
    return Math.min(maxPollMs * 4, pollMs * 2 ** Math.min(n, 10));
  };

  async function loadInput(part: Part): Promise<{ input: BatchInput; order: string[] }> {
    const lines: string[] = [];
    const order: string[] = [];
    let bytes = 0;
    for await (const stored of store.readPart(part.name)) {
      const e = readEntry(stored);
      const encoded = backend.encode(parseEntry(e));
      lines.push(encoded.line);
      order.push(e.id);
      bytes += byteLength(encoded.line) + 1;
    }
    return {
      input: { tag: part.tag!, jobId: job!.id, group: part.group, lines, bytes },
      order,
    };
  }

  function attach(part: Part, batch: RemoteBatch, how: string) {
    part.batchId = batch.id;
    part.state = "submitted";
    part.submittedAt ??= now();
    part.createSent = undefined;
    snapshot(part, batch);
    failures.delete(part.name);
    event(`${part.name}: ${how} ${batch.id} (${part.items} items, ${part.group})`);
  }

  function snapshot(part: Part, batch: RemoteBatch): boolean {
    const before = part.remote;
    part.remote = {
      state: batch.state,
      raw: batch.rawState,
      total: batch.counts?.total,
      completed: batch.counts?.completed,
      failed: batch.counts?.failed,
      checkedAt: now(),
    };
    return before?.raw !== batch.rawState || before?.completed !== batch.counts?.completed ||
      before?.failed !== batch.counts?.failed;
  }

  /** Handles a failed call: auth is fatal, retryable waits, anything else fails the part. */
  async function callFailed(part: Part, what: string, error: unknown): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    if (!isProviderError(error)) throw error;
    if (isFatal(error, what)) return;
    const info = error.info;
    if (info.retryable || info.status === 404) {
      const wait = backoff(part);
      part.notBefore = now() + wait;
      event(`${part.name}: could not ${what} (${info.code}: ${info.message}); trying again`);
      return;
    }
    event(`${part.name}: could not ${what} (${info.code}: ${info.message}); its items fail`);
    await collectEntries(part, undefined, {
      status: info.status,
      code: info.code,
      message: info.message,
    });
  }

  async function submit(part: Part): Promise<void> {
    if (part.notBefore !== undefined) {
      if (now() < part.notBefore) return;
      part.notBefore = undefined;
    }
    if (part.waitActive !== undefined) {
      if (activeParts(job!).length >= part.waitActive) return;
      part.waitActive = undefined;
    }
    try {
      if (part.state === "creating" && part.createSent) {
        // A create call may have landed without us hearing back: look before creating again.
        const found = await backend.find(part.tag!, { signal });
        if (found) {
          attach(part, found, "re-attached to");
          await save();
          return;
        }
      }
      if (part.state === "planned") {
        part.state = "creating";
        part.tag = `${job!.id}-${part.name}-${part.attempt}`;
        part.createSent = false;
        await save();
      }
      const { input } = await loadInput(part);
      if (part.fileId === undefined) {
        const fileId = await backend.upload(input, { signal });
        if (fileId !== undefined) {
          part.fileId = fileId;
          await save();
        }
      }
      part.createSent = true;
      await save();
      const batch = await backend.create(input, part.fileId, { signal });
      attach(part, batch, "created");
      await save();
    } catch (error) {
      await callFailed(part, "create its batch", error);
      await save();
    }
  }

  // ------------------------------------------------------------------------------- collecting
  async function collect(part: Part, batch: RemoteBatch | undefined): Promise<void> {
    part.endedAt ??= now();
    if (batch?.state === "failed") {
      const errors = batch.errors ?? [];
      const limit = errors.find((e) =>
        /token_limit|quota|rate_limit|RESOURCE_EXHAUSTED/i.test(e.code)
      );
      if (limit && job!.state === "running") {
        const others = activeParts(job!).filter((p) => p !== part).length;
        if (others > 0 || part.attempt < MAX_REQUEUES) {
          requeue(part, others);
          event(
            `${part.name}: ${batch.id} failed (${limit.code}); submitting it again ${
              others > 0 ? "when one of the other batches is done" : "after a pause"
            }`,
          );
          await save();
          return;
        }
      }
      const first = errors[0];
      await collectEntries(part, batch, {
        status: 0,
        code: first?.code ?? "batch_failed",
        message: first?.message ?? `batch ${batch.id} failed`,
      }, errors);
      return;
    }
    await collectEntries(part, batch);
  }

  function requeue(part: Part, othersActive: number) {
    part.state = "planned";
    part.attempt++;
    part.batchId = undefined;
    part.remote = undefined;
    part.submittedAt = undefined;
    part.endedAt = undefined;
    part.tag = undefined;
    part.createSent = undefined;
    if (othersActive > 0) part.waitActive = othersActive;
    else part.notBefore = now() + backoff(part);
  }

  /**
   * Reads a finished batch's results into records. What has no result is sent again (a new
   * part), or fails with `failWith` when the batch failed as a whole.
   */
  async function collectEntries(
    part: Part,
    batch: RemoteBatch | undefined,
    failWith?: Entry["reason"],
    lineErrors: { line?: number; code: string; message: string }[] = [],
  ): Promise<void> {
    const entries = new Map<string, Entry>();
    for await (const stored of store.readPart(part.name)) {
      const e = readEntry(stored);
      entries.set(e.id, e);
    }
    const order = [...entries.keys()];
    let ok = 0;
    let failed = 0;
    const resend: Entry[] = [];
    const latencyMs = (part.endedAt ?? now()) - (part.submittedAt ?? part.endedAt ?? now());
    if (batch !== undefined && batch.raw != null && !part.abandoned) {
      for await (const r of backend.results(batch, { signal, order })) {
        const e = entries.get(r.key);
        if (e === undefined) continue;
        entries.delete(r.key);
        if (written(e.id)) continue;
        if (r.ok) {
          const item = parseEntry(e);
          const response = backend.response(item, r);
          if (response.noText) {
            // An answer without text is not a success here either (see README).
            failed++;
            job!.failed++;
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
            await emit({ type: "error", line: e.line, id: e.id, record });
            continue;
          }
          const record = outputRecord(item, response, { attempts: part.round, latencyMs });
          if (item.format === "openai-batch" && r.resultId?.startsWith("batch_req_")) {
            record.id = r.resultId;
          }
          job!.ok++;
          job!.tokensIn += response.usage.input_tokens;
          job!.tokensOut += response.usage.output_tokens;
          ok++;
          await emit({ type: "ok", line: e.line, id: e.id, record });
        } else if (!failWith && (r.unfinished || (r.retryable && part.round < maxAttempts))) {
          resend.push({ ...e, reason: r });
        } else {
          failed++;
          await failEntry(e, part.round, r);
        }
      }
    }
    const byLine = new Map<number, { code: string; message: string }>();
    for (const err of lineErrors) if (err.line !== undefined) byLine.set(err.line, err);
    for (const [i, e] of order.entries()) {
      if (!entries.has(e) || written(e)) continue;
      const entry = entries.get(e)!;
      if (failWith) {
        const own = byLine.get(i + 1);
        failed++;
        await failEntry(entry, part.round, own ? { ...failWith, ...own } : failWith);
      } else {
        resend.push(entry);
      }
    }
    part.ok = ok;
    part.failed = failed;
    part.resent = resend.length;
    const why = batch ? `${batch.id} ${batch.rawState}` : "not submitted";
    if (resend.length > 0) {
      const rescuing = job!.state === "rescuing" || pastDeadline();
      if (job!.state === "cancelling") {
        for (const e of resend) {
          await failEntry(e, part.round, {
            status: 0,
            code: "batch_cancelled",
            message: "the batch job was cancelled before this request ran",
          });
        }
        part.resent = 0;
      } else if (!rescuing && part.round >= maxAttempts) {
        for (const e of resend) {
          await failEntry(e, part.round, {
            status: e.reason?.status ?? 0,
            code: e.reason?.code ?? `batch_${batch?.state ?? "error"}`,
            message: e.reason?.message ??
              `not answered after ${part.round} batch submissions (last: ${why})`,
          });
        }
        part.resent = 0;
      } else {
        const next = newPart(job!, part.group, part.round + 1);
        const writer = store.createPart(next.name);
        for (const e of resend) {
          await writer.write(entryLine(e));
          next.items++;
          next.bytes += byteLength(e.text) + 1;
        }
        await writer.close();
        if (rescuing) markRescue(next);
        job!.parts.push(next);
        event(
          `${part.name}: ${why}: ${ok} answered, ${failed} failed, ${resend.length} ${
            rescuing ? "go realtime" : `sent again as ${next.name}`
          }`,
        );
      }
    }
    if (part.resent === 0 || resend.length === 0) {
      event(`${part.name}: ${why}: ${ok} answered, ${failed} failed`);
    }
    await sink.sync?.();
    part.state = "collected";
    await save();
  }

  // ------------------------------------------------------------------------------- rescue
  const pastDeadline = () => job!.deadlineAt !== undefined && now() >= job!.deadlineAt;

  function markRescue(part: Part) {
    part.state = "rescue";
    job!.realtime += part.items;
  }

  async function rescue(): Promise<void> {
    const parts = job!.parts.filter((p) => p.state === "rescue");
    if (parts.length === 0) return;
    const entries: Entry[] = [];
    for (const part of parts) {
      for await (const stored of store.readPart(part.name)) {
        const e = readEntry(stored);
        if (!written(e.id)) entries.push(e);
      }
    }
    entries.sort((a, b) => a.line - b.line);
    const realtime = options.realtime;
    if (realtime === undefined) {
      for (const e of entries) {
        await failEntry(e, 0, {
          status: 0,
          code: "deadline_exceeded",
          message: "the batch did not finish by the deadline and no realtime provider was given",
        });
      }
    } else if (entries.length > 0) {
      event(`realtime: ${entries.length} items through ${realtime.provider.name}`);
      // Blank lines keep every item on its original line number, so ids and records are the
      // ones a realtime run of the whole input would have written.
      const run = runBatch(padded(entries), {
        provider: realtime.provider,
        rate: realtime.rate,
        tpm: realtime.tpm,
        retry: realtime.retry,
        timeoutMs: realtime.timeoutMs,
        maxInFlight: realtime.maxInFlight,
        clock,
        signal,
        stopSignal,
      });
      for await (const r of run.results) {
        if (r.id !== undefined && written(r.id)) continue;
        if (r.type === "ok") job!.ok++;
        else job!.failed++;
        await emit(r);
      }
      const st = await run.done;
      job!.tokensIn += st.tokensIn;
      job!.tokensOut += st.tokensOut;
      if (st.fatal) fatal ??= st.fatal;
      if (st.stopped) {
        stopped = true;
        await sink.sync?.();
        await save();
        return;
      }
    }
    await sink.sync?.();
    for (const part of parts) part.state = "collected";
    await save();
  }

  // ------------------------------------------------------------------------------- stats
  function stats(): BatchJobStats {
    const j = job!;
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
      attached,
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
      elapsedMs: now() - j.createdAt,
      deadlineAt: j.deadlineAt,
      stopped,
      fatal,
    };
  }
  const progress = () => options.onProgress?.(stats());

  // ------------------------------------------------------------------------------- the loop
  if (!attached) {
    if (lines === undefined) throw new TypeError("no unfinished job to resume and no input lines");
    job = await plan(lines);
  } else {
    await start();
    event(
      `resume: re-attached to job ${job!.id} (${activeParts(job!).length} batches open, ${
        job!.parts.filter((p) => p.state !== "collected").length
      } parts unfinished)`,
    );
  }
  progress();

  let interval = pollMs;
  while (job!.state !== "done") {
    if (halt?.aborted || fatal) {
      stopped = true;
      break;
    }
    const before = JSON.stringify(
      job!.parts.map((p) => [p.state, p.remote?.raw, p.remote?.completed]),
    );
    if (job!.state === "running" || job!.state === "rescuing") {
      if (await store.cancelRequested()) {
        job!.state = "cancelling";
        event("cancel requested: cancelling the open batches; unfinished items fail");
        await save();
      }
    }
    if (job!.state === "running" && pastDeadline()) {
      job!.state = "rescuing";
      event(
        `deadline reached: cancelling ${
          plural(activeParts(job!).length, "open batch", "open batches")
        }; what they have not finished goes realtime`,
      );
      await save();
    }
    for (const part of job!.parts) {
      if (halt?.aborted || fatal) break;
      if (part.state === "planned" || part.state === "creating") {
        if (job!.state === "running") {
          await submit(part);
        } else {
          // Rescuing or cancelling: no new batch; one that may exist is found and cancelled.
          let found: RemoteBatch | undefined;
          if (part.state === "creating" && part.createSent) {
            try {
              found = await backend.find(part.tag!, { signal });
            } catch (error) {
              await callFailed(part, "look for its batch", error);
              continue;
            }
          }
          if (found) attach(part, found, "re-attached to");
          else if (job!.state === "rescuing") markRescue(part);
          else await collectEntries(part, undefined);
          await save();
        }
      }
      if (part.state !== "submitted") continue;
      if (job!.state !== "running" && !isTerminal(part.remote!.state)) {
        if (part.cancelSentAt === undefined) {
          try {
            await backend.cancel(part.batchId!, { signal });
            event(`${part.name}: cancel sent for ${part.batchId}`);
          } catch (error) {
            if (signal?.aborted) throw signal.reason;
            event(`${part.name}: cancel of ${part.batchId} failed: ${(error as Error).message}`);
          }
          part.cancelSentAt = now();
          await save();
        } else if (now() - part.cancelSentAt > cancelGraceMs) {
          part.abandoned = true;
          event(`${part.name}: ${part.batchId} did not stop in time; its results are not read`);
          await collect(part, undefined);
          continue;
        }
      }
      let batch: RemoteBatch;
      try {
        batch = await backend.get(part.batchId!, { signal });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (isProviderError(error) && error.info.status === 404) {
          event(`${part.name}: ${part.batchId} is gone at the provider; its items are sent again`);
          await collect(part, undefined);
          continue;
        }
        if (isFatal(error, `show ${part.batchId}`)) break;
        event(`${part.name}: could not poll ${part.batchId}: ${(error as Error).message}`);
        continue;
      }
      snapshot(part, batch);
      if (isTerminal(batch.state)) {
        try {
          await collect(part, batch);
        } catch (error) {
          if (signal?.aborted) throw signal.reason;
          if (!isProviderError(error) || !error.info.retryable) throw error;
          event(`${part.name}: could not read results of ${batch.id}: ${error.message}`);
        }
      }
    }
    if (halt?.aborted || fatal) {
      stopped = true;
      break;
    }
    const open = activeParts(job!).length;
    if (open === 0 && job!.state !== "running") {
      if (job!.state === "rescuing") await rescue();
      if (stopped) break;
      for (const part of job!.parts) {
        if (part.state === "rescue" && job!.state === "cancelling") {
          await collectEntries(part, undefined);
        }
      }
    }
    if (job!.parts.every((p) => p.state === "collected")) {
      job!.state = "done";
      job!.finishedAt = now();
      await sink.sync?.();
      await save();
      await store.removeParts();
      await store.clearCancel();
      event(`done: ${job!.ok} ok, ${job!.failed + job!.invalid} failed`);
      break;
    }
    await save();
    progress();
    const after = JSON.stringify(
      job!.parts.map((p) => [p.state, p.remote?.raw, p.remote?.completed]),
    );
    interval = after === before ? Math.min(maxPollMs, interval * 1.5) : pollMs;
    let wait = interval;
    if (job!.state === "running" && job!.deadlineAt !== undefined) {
      wait = Math.min(wait, Math.max(0, job!.deadlineAt - now()));
    }
    const due = job!.parts
      .filter((p) => p.state === "planned" || p.state === "creating")
      .map((p) => p.notBefore)
      .filter((t): t is number => t !== undefined && t > now());
    if (due.length) wait = Math.min(wait, Math.max(0, Math.min(...due) - now()));
    try {
      await delay(wait, { clock, signal: halt });
    } catch {
      stopped = true;
      break;
    }
  }
  if (stopped) await save();
  progress();
  return stats();
}
