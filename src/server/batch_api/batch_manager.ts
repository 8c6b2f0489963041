/**
 * Runs the Batch API's batches: validation, then every request through the server's shared
 * quota (one scheduler lane per batch, fair with `/v1/runs`), results appended to the output and
 * error files as they finish, state checkpointed to storage so that a restart resumes each
 * unfinished batch without sending a finished request again.
 * @module
 */
import { type Clock, delay, systemClock } from "../../clock.ts";
import { IdSet } from "../../id_set.ts";
import type { Provider } from "../../providers/provider.ts";
import type { Quota } from "../../quota.ts";
import { runRealtime, type RunRecord } from "../../run.ts";
import { TextLineStream } from "../../text_line_stream.ts";
import {
  type BatchErrorEntry,
  type BatchObject,
  errorLine,
  type FileObject,
  FINAL_STATUSES,
  newBatchId,
  newFileId,
  unixSeconds,
} from "./records.ts";
import type { Appender, BatchStorage } from "./storage.ts";
import { storageJobStore } from "./storage_job_store.ts";
import type { BatchBackend } from "../../batch/backend.ts";
import { runBatchJob } from "../../batch/run_batch_job.ts";
import { checkBody, validateInput } from "./validate_input.ts";

/** Options for {@linkcode BatchManager}. */
export interface BatchManagerOptions {
  /** Where files, progress and state live. */
  storage: BatchStorage;
  /** Where requests go: the server's provider. */
  provider: Provider;
  /** The server's one quota, shared with `/v1/runs`. */
  quota: Quota;
  /** Attempts per request, the first included. @default 3 */
  maxAttempts?: number;
  /** Per-request timeout the provider was built with (sizes the in-flight ceiling). @default 120000 */
  timeoutMs?: number;
  /** Longest input line, in characters. @default 1_048_576 */
  maxLineLength?: number;
  /** Most provider requests open at once per batch (a runtime's cap). @default run's default */
  maxInFlight?: number;
  /** How often progress is synced to disk and the batch state rewritten, in ms. @default 1000 */
  checkpointMs?: number;
  /** Shuts down: batches stop sending, in-flight requests finish and are written; they resume on the next start. */
  signal?: AbortSignal;
  /** Time source of the scheduler waits and backoffs. @default systemClock */
  clock?: Clock;
  /** Where to say what happens to batches (a line of text each). @default nothing */
  log?: (line: string) => void;
  /**
   * Send batches to the provider's own Batch API (`serve --mode batch`, half price) instead of
   * the realtime path. The provider's batches then set the pace, not the server's quota; its
   * completion window applies (expired batches are submitted again, up to `maxAttempts`).
   * @default undefined (realtime)
   */
  providerBatch?: { backend: BatchBackend; pollIntervalMs?: number };
}

type ManagerSettings =
  & Required<Omit<BatchManagerOptions, "maxInFlight" | "signal" | "log" | "providerBatch">>
  & Pick<BatchManagerOptions, "providerBatch">
  & {
    maxInFlight?: number;
    signal?: AbortSignal;
    log: (line: string) => void;
  };

/** A file's stored metadata: the OpenAI object and which batch made it (output files). */
interface StoredFile {
  file: FileObject;
  /** Milliseconds, for a stable newest-first order. */
  createdMs: number;
}

/** A batch's stored state. */
interface StoredBatch {
  batch: BatchObject;
  createdMs: number;
  /** Ids reserved at creation for the output and error files; they name the progress files. */
  outputFileId: string;
  errorFileId: string;
}

interface LiveBatch extends StoredBatch {
  cancel: AbortController;
  saving: Promise<void>;
  running?: Promise<void>;
}

/** A request error with an OpenAI status, code and param, for the routes to answer with. */
export class BatchApiError extends Error {
  override name = "BatchApiError";
  constructor(
    readonly status: 400 | 404 | 409 | 413 | 503,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

const content = (fileId: string) => `${fileId}.jsonl`;
const fileMeta = (fileId: string) => `${fileId}.file.json`;
const batchState = (batchId: string) => `${batchId}.batch.json`;
const COMPLETION_WINDOWS: Record<string, number> = { "24h": 86_400_000 };

/** Calls `fn` for each line of a stored file; a line that is not JSON is skipped. */
async function eachRecord(
  storage: BatchStorage,
  name: string,
  fn: (record: Record<string, unknown>) => void,
): Promise<void> {
  if ((await storage.size(name)) === undefined) return;
  const lines = (await storage.readStream(name))
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new TextLineStream());
  for await (const line of lines) {
    if (line === "") continue;
    try {
      fn(JSON.parse(line));
    } catch {
      // A torn line is cut before resuming; anything else unreadable is not ours.
    }
  }
}

/**
 * Holds the files and batches of one data directory and runs the unfinished batches.
 *
 * @example
 * ```ts ignore
 * const manager = new BatchManager({ storage, provider, quota });
 * await manager.start(); // loads the directory, resumes unfinished batches
 * ```
 */
export class BatchManager {
  readonly #o: ManagerSettings;
  readonly #files = new Map<string, StoredFile>();
  readonly #batches = new Map<string, LiveBatch>();
  #started?: Promise<void>;

  constructor(options: BatchManagerOptions) {
    this.#o = {
      maxAttempts: 3,
      timeoutMs: 120_000,
      maxLineLength: 1_048_576,
      checkpointMs: 1000,
      clock: systemClock,
      log: () => {},
      // An option passed as undefined takes its default.
      ...(Object.fromEntries(
        Object.entries(options).filter(([, value]) => value !== undefined),
      ) as unknown as BatchManagerOptions),
    };
  }

  /** Loads the stored files and batches (once) and resumes every unfinished batch. */
  start(): Promise<void> {
    this.#started ??= this.#load();
    return this.#started;
  }

  async #load(): Promise<void> {
    const { storage } = this.#o;
    for (const name of await storage.list()) {
      if (name.endsWith(".upload") || name.endsWith(".tmp")) {
        await storage.remove(name); // an upload or a state write the last process did not finish
      } else if (name.endsWith(".file.json")) {
        const text = await storage.readText(name);
        if (text) {
          const stored = JSON.parse(text) as StoredFile;
          this.#files.set(stored.file.id, stored);
        }
      } else if (name.endsWith(".batch.json")) {
        const text = await storage.readText(name);
        if (text) {
          const stored = JSON.parse(text) as StoredBatch;
          this.#batches.set(stored.batch.id, {
            ...stored,
            cancel: new AbortController(),
            saving: Promise.resolve(),
          });
        }
      }
    }
    for (const live of this.#batches.values()) {
      if (!FINAL_STATUSES.has(live.batch.status)) {
        this.#o.log(`batch ${live.batch.id}: resuming (${live.batch.status})`);
        if (live.batch.status === "cancelling") live.cancel.abort();
        this.#drive(live);
      }
    }
  }

  /** Waits for every running batch to stop (after the shutdown signal, or when all finish). */
  async idle(): Promise<void> {
    await this.#started?.catch(() => {});
    await Promise.all([...this.#batches.values()].map((b) => b.running));
  }

  // ------------------------------------------------------------------------------- files

  /** Registers an uploaded file, already stored as `<id>.upload`. */
  async addUpload(
    id: string,
    info: { filename: string; bytes: number; purpose: "batch" },
  ): Promise<FileObject> {
    const now = this.#o.clock.now();
    const file: FileObject = {
      id,
      object: "file",
      bytes: info.bytes,
      created_at: unixSeconds(Date.now()),
      filename: info.filename,
      purpose: info.purpose,
      status: "processed",
      expires_at: null,
      status_details: null,
    };
    await this.#o.storage.rename(`${id}.upload`, content(id));
    await this.#o.storage.writeAtomic(fileMeta(id), JSON.stringify({ file, createdMs: now }));
    this.#files.set(id, { file, createdMs: now });
    return file;
  }

  /** A new file id and the storage name to stream its upload to. */
  newUpload(): { id: string; name: string } {
    const id = newFileId();
    return { id, name: `${id}.upload` };
  }

  /** The file object. @throws {BatchApiError} 404 */
  getFile(id: string): FileObject {
    const f = this.#files.get(id);
    if (!f) throw new BatchApiError(404, `No such File object: ${id}`, null, "id");
    return f.file;
  }

  /** The files, newest first, from after `after`. */
  listFiles(options: { after?: string; limit: number; purpose?: string }): {
    data: FileObject[];
    hasMore: boolean;
  } {
    const all = [...this.#files.values()]
      .filter((f) => options.purpose === undefined || f.file.purpose === options.purpose)
      .sort((a, b) => b.createdMs - a.createdMs);
    return page(all.map((f) => f.file), options);
  }

  /** The file's content. @throws {BatchApiError} 404 */
  async fileContent(id: string): Promise<ReadableStream<Uint8Array>> {
    this.getFile(id);
    return await this.#o.storage.readStream(content(id));
  }

  /** Deletes a file. @throws {BatchApiError} 404, or 409 while an unfinished batch reads it */
  async deleteFile(id: string): Promise<{ id: string; object: "file"; deleted: true }> {
    this.getFile(id);
    for (const b of this.#batches.values()) {
      if (b.batch.input_file_id === id && !FINAL_STATUSES.has(b.batch.status)) {
        throw new BatchApiError(
          409,
          `File ${id} is the input of batch ${b.batch.id}, which is ${b.batch.status}; cancel it or wait for it to end first.`,
          "file_in_use",
          "file_id",
        );
      }
    }
    this.#files.delete(id);
    await this.#o.storage.remove(fileMeta(id));
    await this.#o.storage.remove(content(id));
    return { id, object: "file", deleted: true };
  }

  // ----------------------------------------------------------------------------- batches

  /** Creates a batch and starts it. @throws {BatchApiError} 400 for an unusable file or window */
  async createBatch(params: {
    input_file_id: string;
    endpoint: string;
    completion_window: string;
    metadata?: Record<string, string> | null;
  }): Promise<BatchObject> {
    if (this.#o.signal?.aborted) {
      throw new BatchApiError(503, "The server is shutting down.", "shutting_down");
    }
    const input = this.#files.get(params.input_file_id);
    if (!input) {
      throw new BatchApiError(
        400,
        `No such File object: ${params.input_file_id}`,
        "invalid_value",
        "input_file_id",
      );
    }
    if (input.file.purpose !== "batch") {
      throw new BatchApiError(
        400,
        `File ${params.input_file_id} has purpose '${input.file.purpose}'; a batch's input file must have purpose 'batch'.`,
        "invalid_value",
        "input_file_id",
      );
    }
    const window = COMPLETION_WINDOWS[params.completion_window];
    const now = this.#o.clock.now();
    const wall = Date.now();
    const batch: BatchObject = {
      id: newBatchId(),
      object: "batch",
      endpoint: params.endpoint,
      errors: null,
      input_file_id: params.input_file_id,
      completion_window: params.completion_window,
      status: "validating",
      output_file_id: null,
      error_file_id: null,
      created_at: unixSeconds(wall),
      in_progress_at: null,
      expires_at: unixSeconds(wall + window),
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: params.metadata ?? null,
    };
    const live: LiveBatch = {
      batch,
      createdMs: now,
      outputFileId: newFileId(),
      errorFileId: newFileId(),
      cancel: new AbortController(),
      saving: Promise.resolve(),
    };
    this.#batches.set(batch.id, live);
    await this.#save(live);
    this.#o.log(`batch ${batch.id}: created from ${batch.input_file_id}`);
    this.#drive(live);
    return structuredClone(batch);
  }

  /** The batch, with live counts. @throws {BatchApiError} 404 */
  getBatch(id: string): BatchObject {
    return structuredClone(this.#live(id).batch);
  }

  /** Batches, newest first, from after `after`. */
  listBatches(options: { after?: string; limit: number }): {
    data: BatchObject[];
    hasMore: boolean;
  } {
    const all = [...this.#batches.values()].sort((a, b) => b.createdMs - a.createdMs);
    const p = page(all.map((b) => b.batch), options);
    return { data: p.data.map((b) => structuredClone(b)), hasMore: p.hasMore };
  }

  /**
   * Cancels a batch: nothing more is sent, requests in flight finish and are written, the rest
   * go to the error file as `batch_cancelled`; then `cancelled`.
   * @throws {BatchApiError} 404, or 409 when the batch already ended another way
   */
  async cancelBatch(id: string): Promise<BatchObject> {
    const live = this.#live(id);
    const status = live.batch.status;
    if (status === "cancelling" || status === "cancelled") return structuredClone(live.batch);
    if (FINAL_STATUSES.has(status) || status === "finalizing") {
      throw new BatchApiError(
        409,
        `Cannot cancel a batch with status '${status}'.`,
        "batch_not_cancellable",
      );
    }
    live.batch.status = "cancelling";
    live.batch.cancelling_at = unixSeconds(Date.now());
    await this.#save(live);
    live.cancel.abort();
    this.#o.log(`batch ${id}: cancelling`);
    return structuredClone(live.batch);
  }

  #live(id: string): LiveBatch {
    const live = this.#batches.get(id);
    if (!live) throw new BatchApiError(404, `No such Batch object: ${id}`, null, "batch_id");
    return live;
  }

  /** Writes the batch's state; writes of one batch go in order. */
  #save(live: LiveBatch): Promise<void> {
    const stored: StoredBatch = {
      batch: live.batch,
      createdMs: live.createdMs,
      outputFileId: live.outputFileId,
      errorFileId: live.errorFileId,
    };
    const text = JSON.stringify(stored);
    live.saving = live.saving.then(() =>
      this.#o.storage.writeAtomic(batchState(live.batch.id), text)
    );
    return live.saving;
  }

  #drive(live: LiveBatch): void {
    live.running = this.#step(live).catch(async (error) => {
      const message = (error as Error)?.message ?? String(error);
      if (this.#o.signal?.aborted) return; // stays unfinished: resumed on the next start
      this.#o.log(`batch ${live.batch.id}: failed: ${message}`);
      live.batch.status = "failed";
      live.batch.failed_at = unixSeconds(Date.now());
      live.batch.errors = {
        object: "list",
        data: [{ code: "internal_error", message, param: null, line: null }],
      };
      await this.#save(live).catch(() => {});
    });
  }

  async #step(live: LiveBatch): Promise<void> {
    const b = live.batch;
    if (b.status === "validating") {
      const check = await validateInput(
        (await this.#o.storage.readStream(content(b.input_file_id))).pipeThrough(
          new TextDecoderStream(),
        ),
        { endpoint: b.endpoint, maxLineLength: this.#o.maxLineLength, signal: this.#o.signal },
      );
      if (check.errors.length > 0) {
        b.status = "failed";
        b.failed_at = unixSeconds(Date.now());
        b.errors = { object: "list", data: check.errors };
        b.request_counts.total = check.total;
        await this.#save(live);
        this.#o.log(`batch ${b.id}: failed validation (${check.errors[0].message})`);
        return;
      }
      b.request_counts.total = check.total;
      if (!live.cancel.signal.aborted) {
        b.status = "in_progress";
        b.in_progress_at = unixSeconds(Date.now());
      }
      await this.#save(live);
    }
    if (b.status === "in_progress" || b.status === "cancelling") {
      const ended = await this.#process(live);
      if (ended === "shutdown") return;
      if (ended === "completed") {
        b.status = "finalizing";
        b.finalizing_at = unixSeconds(Date.now());
      }
      await this.#finalize(live, ended);
      return;
    }
    if (b.status === "finalizing") await this.#finalize(live, "completed");
  }

  /**
   * Sends every request not yet answered. Resolves with how it ended: all answered, cancelled,
   * expired (the rest then are in the error file), or shut down (the rest wait for a restart).
   */
  async #process(live: LiveBatch): Promise<"completed" | "cancelled" | "expired" | "shutdown"> {
    const { storage, provider, quota, clock } = this.#o;
    const b = live.batch;
    const outName = content(live.outputFileId);
    const errName = content(live.errorFileId);
    // A crash can leave half a line at the end of a progress file: cut it (its request is sent
    // again, it was in flight).
    for (const name of [outName, errName]) {
      if (await storage.repairTail(name)) {
        this.#o.log(`batch ${b.id}: cut a torn last line of ${name}`);
      }
    }
    const done = new IdSet(Math.max(1024, b.request_counts.total));
    let completed = 0;
    let failed = 0;
    await eachRecord(storage, outName, (r) => {
      if (typeof r.custom_id === "string" && done.add(r.custom_id) === 0) completed++;
    });
    await eachRecord(storage, errName, (r) => {
      if (typeof r.custom_id === "string" && done.add(r.custom_id) === 0) failed++;
    });
    b.request_counts.completed = completed;
    b.request_counts.failed = failed;
    const out = await storage.openAppend(outName);
    const err = await storage.openAppend(errName);
    let writeError: unknown;
    const write = async (appender: Appender, record: Record<string, unknown>) => {
      const written = appender.append(JSON.stringify(record) + "\n");
      written.catch((e) => (writeError ??= e));
      // Wait only when the disk falls behind, so a slow disk slows the batch instead of filling memory.
      if (appender.pendingBytes > 1 << 20) await written;
      if (writeError !== undefined) throw writeError;
    };
    let dirty = false;
    /** Writes one answer, realtime or from the provider's batch, where it belongs. */
    const writeResult = async (id: string, r: RunRecord) => {
      dirty = true;
      if (r.type === "ok") {
        b.request_counts.completed++;
        await write(out, r.record);
      } else {
        b.request_counts.failed++;
        const e = r.record.error as { status: number; code: string; message: string };
        await write(err, errorLine(id, e));
      }
    };
    /** Writes a line the input check rejected. */
    const writeRejected = (record: Record<string, unknown>) => {
      b.request_counts.failed++;
      dirty = true;
      return write(err, record);
    };
    let checkpointing = false;
    const checkpoint = async () => {
      if (!dirty || checkpointing) return;
      checkpointing = true;
      dirty = false;
      try {
        await out.sync();
        await err.sync();
        await this.#save(live);
      } finally {
        checkpointing = false;
      }
    };
    const timer = setInterval(() => {
      checkpoint().catch((e) => (writeError ??= e));
    }, this.#o.checkpointMs);
    const expiry = new AbortController();
    // At the provider its own completion window applies.
    const expiresIn = this.#o.providerBatch
      ? Infinity
      : (b.expires_at ?? Infinity) * 1000 - Date.now();
    const expiryTimer = Number.isFinite(expiresIn)
      ? setTimeout(() => expiry.abort(), Math.max(0, Math.min(expiresIn, 2 ** 31 - 1)))
      : undefined;
    const shutdown = this.#o.signal;
    const stops = [live.cancel.signal, expiry.signal, ...(shutdown ? [shutdown] : [])];
    const stop = AbortSignal.any(stops);
    let ended: "completed" | "cancelled" | "expired" | "shutdown";
    let detached = false; // the provider's job stopped before it was done (shutdown)
    try {
      while (this.#o.providerBatch) {
        const store = storageJobStore(storage, b.id);
        // A cancel becomes the job's cancel request: the job cancels its batches at the
        // provider and writes what never ran to the error file (batch_cancelled).
        const requestCancel = () => void store.requestCancel().catch((e) => (writeError ??= e));
        if (live.cancel.signal.aborted) await store.requestCancel();
        else live.cancel.signal.addEventListener("abort", requestCancel, { once: true });
        const job = await store.load();
        const attached = job !== undefined && job.state !== "done" && job.state !== "planning";
        const stats = await runBatchJob(
          attached ? undefined : await this.#requestLines(live, done, writeRejected),
          {
            backend: this.#o.providerBatch.backend,
            store,
            sink: {
              write: (r) => writeResult(resultId(r), r),
              sync: async () => {
                await out.sync();
                await err.sync();
              },
            },
            answered: done,
            maxAttempts: this.#o.maxAttempts,
            pollIntervalMs: this.#o.providerBatch.pollIntervalMs,
            maxLineLength: this.#o.maxLineLength,
            stopSignal: shutdown,
            clock,
            onEvent: (message) => this.#o.log(`batch ${b.id}: ${message}`),
          },
        );
        live.cancel.signal.removeEventListener("abort", requestCancel);
        if (stats.fatal && !shutdown?.aborted) {
          this.#o.log(
            `batch ${b.id}: the provider stopped it (${stats.fatal.message}); trying again in 60 s`,
          );
          await delay(60_000, { clock, signal: shutdown }).catch(() => {});
          continue;
        }
        detached = stats.stopped;
        if (!stats.stopped) {
          await storage.remove(`${b.id}.job.json`);
          await storage.remove(`${b.id}.job.cancel`);
        }
        break;
      }
      while (!this.#o.providerBatch) {
        if (!stop.aborted) {
          const lines = await this.#requestLines(live, done, writeRejected);
          const run = runRealtime(lines, {
            provider,
            quota,
            lane: { batch: b.id },
            retry: { maxAttempts: this.#o.maxAttempts },
            timeoutMs: this.#o.timeoutMs,
            maxLineLength: this.#o.maxLineLength,
            maxInFlight: this.#o.maxInFlight,
            skip: done,
            stopSignal: stop,
            clock,
          });
          for await (const r of run.results) {
            const id = resultId(r);
            if (done.add(id) !== 0) continue;
            await writeResult(id, r);
          }
          const stats = await run.done;
          if (stats.fatal && !stop.aborted) {
            // Billing, auth or a spent daily quota: wait, then go on from where it stopped.
            const wait = Math.min(Math.max(stats.fatal.retryAfterMs ?? 60_000, 1000), 3_600_000);
            this.#o.log(
              `batch ${b.id}: the provider stopped it (${stats.fatal.kind}: ${stats.fatal.message}); trying again in ${
                Math.round(wait / 1000)
              } s`,
            );
            await delay(wait, { clock, signal: stop }).catch(() => {});
            continue;
          }
        }
        break;
      }
      ended = detached
        ? "shutdown"
        : live.cancel.signal.aborted
        ? "cancelled"
        : expiry.signal.aborted
        ? "expired"
        : shutdown?.aborted
        ? "shutdown"
        : "completed";
      if ((ended === "cancelled" || ended === "expired") && !this.#o.providerBatch) {
        // Every request ends in one of the two files: the unsent ones in the error file.
        const code = ended === "cancelled" ? "batch_cancelled" : "batch_expired";
        const message = ended === "cancelled"
          ? "This request was not sent: the batch was cancelled."
          : "This request could not be executed before the completion window expired.";
        const lines = (await storage.readStream(content(b.input_file_id)))
          .pipeThrough(new TextDecoderStream())
          .pipeThrough(new TextLineStream({ maxLineLength: this.#o.maxLineLength }));
        for await (const line of lines) {
          if (line.trim() === "") continue;
          let id: unknown;
          try {
            id = JSON.parse(line).custom_id;
          } catch {
            continue;
          }
          if (typeof id !== "string" || done.add(id) !== 0) continue;
          b.request_counts.failed++;
          await write(err, errorLine(id, { status: 0, code, message }));
        }
      }
    } finally {
      clearInterval(timer);
      clearTimeout(expiryTimer);
      while (checkpointing) await delay(5);
      await out.close();
      await err.close();
    }
    if (writeError !== undefined) throw writeError;
    await this.#save(live);
    return ended;
  }

  /**
   * The input file's lines for a run: those already finished become blank lines (skipped, line
   * numbers kept), and a body that can not be a request is answered 400 here, as OpenAI would,
   * through `reject`, and not sent.
   */
  async #requestLines(
    live: LiveBatch,
    done: IdSet,
    reject: (record: Record<string, unknown>) => Promise<void>,
  ): Promise<ReadableStream<string>> {
    const endpoint = live.batch.endpoint;
    const bodies = new TransformStream<string, string>({
      async transform(line, controller) {
        if (line.trim() === "") return controller.enqueue(line);
        let value: { custom_id?: unknown; body?: unknown };
        try {
          value = JSON.parse(line);
        } catch {
          return controller.enqueue(line);
        }
        const id = typeof value?.custom_id === "string" ? value.custom_id : undefined;
        if (id === undefined || done.has(id)) return controller.enqueue("");
        const problem = checkBody(endpoint, value.body);
        if (!problem) return controller.enqueue(line);
        done.add(id);
        await reject(errorLine(id, { status: 400, ...problem }));
        controller.enqueue("");
      },
    });
    return (await this.#o.storage.readStream(content(live.batch.input_file_id)))
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new TextLineStream({ maxLineLength: this.#o.maxLineLength }))
      .pipeThrough(bodies);
  }

  /** Registers the output and error files and sets the final status; safe to run again. */
  async #finalize(live: LiveBatch, ended: "completed" | "cancelled" | "expired"): Promise<void> {
    const { storage } = this.#o;
    const b = live.batch;
    if (ended === "expired") b.expired_at ??= unixSeconds(Date.now());
    await this.#save(live);
    const register = async (fileId: string, kind: "output" | "error", count: number) => {
      const size = await storage.size(content(fileId));
      if (count === 0 || size === undefined) {
        await storage.remove(content(fileId));
        return null;
      }
      const file: FileObject = {
        id: fileId,
        object: "file",
        bytes: size,
        created_at: unixSeconds(Date.now()),
        filename: `${b.id}_${kind}.jsonl`,
        purpose: "batch_output",
        status: "processed",
        expires_at: null,
        status_details: null,
      };
      const createdMs = this.#o.clock.now();
      await storage.writeAtomic(fileMeta(fileId), JSON.stringify({ file, createdMs }));
      this.#files.set(fileId, { file, createdMs });
      return fileId;
    };
    b.output_file_id = await register(live.outputFileId, "output", b.request_counts.completed);
    b.error_file_id = await register(live.errorFileId, "error", b.request_counts.failed);
    const now = unixSeconds(Date.now());
    if (ended === "completed") {
      b.status = "completed";
      b.completed_at = now;
    } else if (ended === "cancelled") {
      b.status = "cancelled";
      b.cancelled_at = now;
    } else {
      b.status = "expired";
    }
    await this.#save(live);
    const c = b.request_counts;
    this.#o.log(
      `batch ${b.id}: ${b.status}: ${c.completed} completed, ${c.failed} failed of ${c.total}`,
    );
  }
}

/** The custom_id of a finished line (`id`, or the line's own field when the line was rejected). */
function resultId(r: RunRecord): string {
  if (r.id !== undefined) return r.id;
  const own = r.record.custom_id;
  return typeof own === "string" ? own : `line-${r.line}`;
}

function page<T extends { id: string }>(
  all: T[],
  options: { after?: string; limit: number },
): { data: T[]; hasMore: boolean } {
  let start = 0;
  if (options.after !== undefined) {
    const at = all.findIndex((x) => x.id === options.after);
    start = at < 0 ? all.length : at + 1;
  }
  const data = all.slice(start, start + options.limit);
  return { data, hasMore: start + options.limit < all.length };
}

export type { BatchErrorEntry };
