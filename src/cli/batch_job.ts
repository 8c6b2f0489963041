/**
 * Batch mode of the command line (`run --mode batch|auto`, `status`, `cancel`). A runtime
 * edge like `cli.ts`: it owns the job file beside the output, the output and errors files,
 * signals and the terminal; the job itself runs in `src/batch/`.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import type { CliIo } from "./io.ts";
import { stopThenQuit } from "./interrupt.ts";
import { moveAsideIfErrorsFile } from "./errors_file.ts";
import { answeredIds, recordIds, resumeCommand } from "./resume_files.ts";
import { providerFetch } from "../adapter/runtime.ts";
import { fileLines, shellQuote } from "../fs/files.ts";
import { formatDuration } from "../duration.ts";
import { duration, nonEmpty, parseFlag, positiveNumber } from "../flags.ts";
import { ConfigError } from "../errors.ts";
import { API_KEY_VARIABLES, envApiKey, envBaseUrl } from "../provider_env.ts";
import { IdSet } from "../id_set.ts";
import type { BatchLimits } from "../batch/backend.ts";
import {
  batchProgressLine,
  batchSummaryLines,
  jobStatusLines,
  type LiveBatch,
} from "../batch/batch_progress.ts";
import { createBatchBackend } from "../batch/create_batch_backend.ts";
import { activeParts, isUnfinished, type Job, parseJob } from "../batch/job.ts";
import {
  type BatchJobStats,
  PLAN_REJECT_CODES,
  type RescueOptions,
  runBatchJob,
} from "../batch/run_batch_job.ts";
import type { JobStore, PartWriter } from "../batch/store.ts";

/** `--mode auto` takes the batch path above this many input lines, realtime at or below it. */
export const BATCH_AUTO_THRESHOLD = 10_000;

/** How a run sends its requests. */
export type RunMode = "realtime" | "batch" | "auto";

/** `--mode` and `--deadline`, checked. */
export interface BatchFlags {
  mode: RunMode;
  deadlineMs?: number;
}

/**
 * Checks `--mode` and `--deadline` before anything is read or sent.
 * @throws {ConfigError} naming the flag and the value.
 */
export function parseBatchFlags(
  mode: string | undefined,
  deadline: string | undefined,
): BatchFlags {
  const m = mode ?? "realtime";
  if (m !== "realtime" && m !== "batch" && m !== "auto") {
    throw new ConfigError(`--mode must be realtime, batch or auto: got '${m}'`);
  }
  let deadlineMs: number | undefined;
  if (deadline !== undefined) {
    if (m === "realtime") throw new ConfigError("--deadline needs --mode batch or --mode auto");
    deadlineMs = parseFlag(duration("--deadline"), deadline);
  }
  return { mode: m, deadlineMs };
}

/** Paths of a job's files, all beside the output. */
export function jobPaths(output: string): { job: string; parts: string; cancel: string } {
  return {
    job: `${output}.batch.json`,
    parts: `${output}.batch`,
    cancel: `${output}.batch.cancel`,
  };
}

/** A {@linkcode JobStore} on disk: `<output>.batch.json`, `<output>.batch/`, `<output>.batch.cancel`. */
export function fileJobStore(output: string): JobStore {
  const paths = jobPaths(output);
  return {
    load() {
      if (!fs.existsSync(paths.job)) return Promise.resolve(undefined);
      try {
        return Promise.resolve(parseJob(JSON.parse(fs.readFileSync(paths.job, "utf8"))));
      } catch (error) {
        throw new ConfigError(`cannot read the job file ${paths.job}: ${(error as Error).message}`);
      }
    },
    save(job) {
      // Write, flush, rename: a crash leaves the old job file or the new one, never half of one.
      const tmp = `${paths.job}.tmp-${process.pid}`;
      fs.mkdirSync(path.dirname(path.resolve(paths.job)), { recursive: true });
      const fd = fs.openSync(tmp, "w");
      try {
        fs.writeSync(fd, JSON.stringify(job, null, 2) + "\n");
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, paths.job);
      return Promise.resolve();
    },
    createPart(name): PartWriter {
      fs.mkdirSync(paths.parts, { recursive: true });
      const fd = fs.openSync(path.join(paths.parts, `${name}.jsonl`), "w");
      let buffer: string[] = [];
      let size = 0;
      const flush = () => {
        if (buffer.length) fs.writeSync(fd, buffer.join(""));
        buffer = [];
        size = 0;
      };
      return {
        write(line) {
          buffer.push(line + "\n");
          size += line.length;
          if (size > 1 << 20) flush();
        },
        close() {
          flush();
          fs.fsyncSync(fd);
          fs.closeSync(fd);
          return Promise.resolve();
        },
      };
    },
    readPart(name) {
      return fileLines(path.join(paths.parts, `${name}.jsonl`));
    },
    removeParts() {
      fs.rmSync(paths.parts, { recursive: true, force: true });
      return Promise.resolve();
    },
    cancelRequested: () => Promise.resolve(fs.existsSync(paths.cancel)),
    requestCancel() {
      fs.writeFileSync(paths.cancel, new Date().toISOString() + "\n");
      return Promise.resolve();
    },
    clearCancel() {
      fs.rmSync(paths.cancel, { force: true });
      return Promise.resolve();
    },
  };
}

function envLimits(io: CliIo): Partial<BatchLimits> | undefined {
  const maxItems = parseFlag(
    positiveNumber("MFT_BATCH_MAX_ITEMS", true),
    nonEmpty(io.env.MFT_BATCH_MAX_ITEMS),
  );
  return maxItems === undefined ? undefined : { maxItems };
}

/** What `run` hands to batch mode. */
export interface BatchRunContext {
  flags: BatchFlags;
  io: CliIo;
  /** `run`'s arguments, for the resume hint. */
  argv: string[];
  /** The input path, or `-`. */
  input: string;
  output: string;
  errorsFile: string;
  resume: boolean;
  quiet: boolean;
  provider: string;
  apiKey?: string;
  baseUrl?: string;
  model?: string;
  timeoutMs: number;
  maxAttempts?: number;
  /** The input's lines (already opened by `run`). */
  lines: ReadableStream<string>;
  /** Opens a file's lines (used when the input must be moved aside first). */
  readLines: (file: string) => ReadableStream<string>;
  /** Counts a file's non-blank lines (for `--mode auto`). */
  countLines: (file: string) => Promise<number>;
  /** The realtime path for the deadline rescue. */
  realtime: RescueOptions;
}

/**
 * Runs `run` in batch mode, or returns undefined to let the realtime path run (`--mode
 * realtime`, or `--mode auto` below {@linkcode BATCH_AUTO_THRESHOLD}).
 * @throws {ConfigError} on a usage problem, before anything is sent.
 */
export async function runBatchMode(ctx: BatchRunContext): Promise<number | undefined> {
  const { flags, io, output, errorsFile, quiet } = ctx;
  const log = (text: string) => quiet || io.stderr(text);
  if (flags.mode === "realtime") return undefined;
  const auto = flags.mode === "auto";
  if (output === "-") {
    if (auto) return undefined;
    throw new ConfigError(
      "--mode batch needs an output file (its job file lives beside it), not -",
    );
  }
  if (ctx.provider === "mock") {
    if (auto) return undefined;
    createBatchBackend({ provider: ctx.provider }); // throws the explanation
  }
  const store = fileJobStore(output);
  let job = await store.load();
  const open = job !== undefined && isUnfinished(job);
  if (open && !ctx.resume) {
    throw new ConfigError(
      `a batch job (${job!.id}, ${
        activeParts(job!).length
      } batches open) is still running for ${output}: continue it with --resume, or cancel it with 'model-fine-tuner cancel ${output}'`,
    );
  }
  if (open && job!.provider !== ctx.provider) {
    throw new ConfigError(
      `the batch job for ${output} runs on ${job!.provider}; resume it with --provider ${
        job!.provider
      }`,
    );
  }
  if (auto && !open) {
    if (ctx.input === "-") {
      log("auto: input from stdin, so realtime (batch mode needs a file it can count)\n");
      return undefined;
    }
    const count = await ctx.countLines(ctx.input);
    const batch = count > BATCH_AUTO_THRESHOLD;
    log(
      `auto: ${count} lines ${batch ? ">" : "<="} ${BATCH_AUTO_THRESHOLD}: ${
        batch ? "batch" : "realtime"
      }\n`,
    );
    if (!batch) return undefined;
  }
  if (open && flags.deadlineMs !== undefined) {
    job!.deadlineAt = job!.createdAt + flags.deadlineMs;
    await store.save(job!);
  }

  const backend = createBatchBackend({
    provider: ctx.provider,
    apiKey: ctx.apiKey,
    baseUrl: ctx.baseUrl,
    model: open ? job!.model : ctx.model,
    timeoutMs: ctx.timeoutMs,
    fetch: providerFetch(),
    limits: envLimits(io),
  });
  const pollIntervalMs = parseFlag(
    duration("MFT_BATCH_POLL_INTERVAL"),
    nonEmpty(io.env.MFT_BATCH_POLL_INTERVAL),
  );
  const cancelGraceMs = parseFlag(
    duration("MFT_BATCH_CANCEL_GRACE"),
    nonEmpty(io.env.MFT_BATCH_CANCEL_GRACE),
  );

  // The errors file may be the input (`run errors.jsonl`): read it from a copy set aside.
  let lines: ReadableStream<string> | undefined = ctx.lines;
  let retryFile: string | undefined;
  if (open) {
    await ctx.lines.cancel();
    lines = undefined;
  } else {
    const moved = await moveAsideIfErrorsFile(ctx.input, {
      errorsFile,
      lines: ctx.lines,
      readLines: ctx.readLines,
      log,
    });
    if (moved) ({ file: retryFile, lines } = moved);
  }

  const note = (line: string) => io.stderr(`${line}\n`);
  const answered = ctx.resume ? await answeredIds(output, note) : new IdSet();
  const errored = open
    ? await recordIds(errorsFile, note, { skipCodes: PLAN_REJECT_CODES })
    : new IdSet();
  if (ctx.resume && answered.size > 0) log(`resume: ${answered.size} ids already in ${output}\n`);

  let out: number | undefined;
  let errs: number | undefined;
  const append = ctx.resume || open;
  const sink = {
    start() {
      fs.mkdirSync(path.dirname(path.resolve(output)), { recursive: true });
      fs.mkdirSync(path.dirname(path.resolve(errorsFile)), { recursive: true });
      out = fs.openSync(output, append ? "a" : "w");
      errs = fs.openSync(errorsFile, open ? "a" : "w");
    },
    write(r: { type: "ok" | "error"; record: Record<string, unknown> }) {
      fs.writeSync(r.type === "ok" ? out! : errs!, JSON.stringify(r.record) + "\n");
    },
    sync() {
      if (out !== undefined) fs.fsyncSync(out);
      if (errs !== undefined) fs.fsyncSync(errs);
    },
  };

  const stop = new AbortController();
  const hard = new AbortController();
  const removeInterrupt = stopThenQuit(io, {
    stop,
    hard,
    message: () =>
      "\ndetaching: the batches keep running at the provider (Ctrl-C again to quit now)\n",
  });

  log(
    `run: ${ctx.input} → ${output} (errors → ${errorsFile}) · batch mode · provider ${backend.name} · model ${backend.model}${
      flags.deadlineMs ? ` · deadline ${formatDuration(flags.deadlineMs)} after the start` : ""
    } · job file ${jobPaths(output).job}\n`,
  );
  let lastLine = "";
  let lastPrint = 0;
  const progress = (s: BatchJobStats) => {
    if (quiet) return;
    const line = batchProgressLine(s);
    const now = Date.now();
    if (io.isTTY) {
      if (now - lastPrint >= 250) io.stderr(`\r\x1b[K${line}`);
      lastPrint = now;
      return;
    }
    // Without a terminal: a line when something other than the clock changed, at most every 5 s.
    const key = line.replace(/ · elapsed [^·]+/, "");
    if (key !== lastLine && now - lastPrint >= 5000) {
      io.stderr(line + "\n");
      lastLine = key;
      lastPrint = now;
    }
  };
  const eventLine = (message: string) => log(`${io.isTTY ? "\r\x1b[K" : ""}${message}\n`);

  let stats: BatchJobStats;
  try {
    stats = await runBatchJob(lines, {
      backend,
      store,
      sink,
      answered,
      errored,
      deadlineMs: flags.deadlineMs,
      realtime: ctx.realtime,
      maxAttempts: ctx.maxAttempts,
      pollIntervalMs,
      cancelGraceMs,
      input: ctx.input === "-" ? "stdin" : path.resolve(ctx.input),
      baseUrl: ctx.baseUrl ? redactUrl(ctx.baseUrl) : undefined,
      signal: hard.signal,
      stopSignal: stop.signal,
      onProgress: progress,
      onEvent: eventLine,
    });
  } catch (error) {
    if (hard.signal.aborted || stop.signal.aborted) {
      io.stderr(`\ninterrupted; resume with:\n  ${resumeCommand(ctx.argv, ctx.input)}\n`);
      return 130;
    }
    throw error;
  } finally {
    removeInterrupt();
    if (out !== undefined) fs.closeSync(out);
    if (errs !== undefined) fs.closeSync(errs);
  }
  job = await store.load();
  if (retryFile && job && job.state !== "planning") fs.rmSync(retryFile, { force: true });
  if (!quiet && io.isTTY) io.stderr("\r\x1b[K");
  for (const line of batchSummaryLines(stats, { output, errors: errorsFile })) log(line + "\n");
  if (stats.stopped) {
    if (stats.fatal) {
      io.stderr(
        `stopped: ${stats.fatal.message}. Nothing more was sent; fix it, then resume with:\n  ${
          resumeCommand(ctx.argv, ctx.input)
        }\n`,
      );
      return 3;
    }
    io.stderr(
      `detached with ${stats.pending} items pending; the batches keep running at the provider. Re-attach with:\n  ${
        resumeCommand(ctx.argv, ctx.input)
      }\nor cancel them with:\n  model-fine-tuner cancel ${shellQuote(output)}\n`,
    );
    return 130;
  }
  return fs.existsSync(errorsFile) && fs.statSync(errorsFile).size > 0 ? 1 : 0;
}

/** A base URL without any user or password in it (job files are not secret). */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.href.replace(/\/$/, "");
  } catch {
    return url;
  }
}

// ---------------------------------------------------------------------------------------------
// status and cancel

/** Help of `status` and `cancel`. */
export const BATCH_COMMANDS_HELP = `Usage:
  model-fine-tuner status <output.jsonl> [--json] [--offline] [--base-url URL]
  model-fine-tuner cancel <output.jsonl> [--base-url URL]

status shows the batch job of an output: state, age, counts and each batch (live from the
provider when its key is set, else as last recorded). cancel cancels the job's open batches;
a later 'run … --resume' collects what finished and writes the rest to the errors file.
`;

/** Runs `status` or `cancel`; returns the exit code. */
export async function batchCommand(
  command: "status" | "cancel",
  argv: string[],
  io: CliIo,
): Promise<number> {
  let values: { json?: boolean; offline?: boolean; "base-url"?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: {
        json: { type: "boolean" },
        offline: { type: "boolean" },
        "base-url": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    io.stderr(`model-fine-tuner: ${(error as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(BATCH_COMMANDS_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    io.stderr(`model-fine-tuner: ${command} takes the output file of a batch run (try --help)\n`);
    return 2;
  }
  const output = positionals[0].replace(/\.batch\.json$/, "");
  const store = fileJobStore(output);
  let job: Job | undefined;
  try {
    job = await store.load();
  } catch (error) {
    io.stderr(`model-fine-tuner: ${(error as Error).message}\n`);
    return 2;
  }
  if (job === undefined) {
    io.stderr(`model-fine-tuner: no batch job for ${output} (no ${jobPaths(output).job})\n`);
    return 2;
  }
  const apiKey = envApiKey(job.provider, io.env);
  const baseUrl = values["base-url"] || envBaseUrl(job.provider, io.env) || job.baseUrl;
  const reachable = apiKey !== undefined || (baseUrl !== undefined && baseUrl !== "");
  const backend = reachable
    ? createBatchBackend({
      provider: job.provider,
      apiKey,
      baseUrl,
      model: job.model,
      timeoutMs: 30_000,
      fetch: providerFetch(),
    })
    : undefined;
  const keyName = API_KEY_VARIABLES[job.provider];

  if (command === "status") {
    const live = new Map<string, LiveBatch>();
    const notes: string[] = [];
    if (!values.offline && job.state !== "done") {
      if (backend === undefined) notes.push(`(recorded state: set ${keyName} for live counts)`);
      for (const part of backend ? job.parts : []) {
        if (part.state !== "submitted" || part.batchId === undefined) continue;
        try {
          const b = await backend!.get(part.batchId);
          live.set(part.name, { raw: b.rawState, ...b.counts });
        } catch (error) {
          notes.push(`${part.name}: could not ask ${job.provider}: ${(error as Error).message}`);
        }
      }
    }
    if (values.json) {
      io.stdout(
        JSON.stringify(
          { job, live: Object.fromEntries(live), path: jobPaths(output).job },
          null,
          2,
        ) +
          "\n",
      );
    } else {
      const lines = jobStatusLines(job, Date.now(), live);
      io.stdout([...lines, ...notes].join("\n") + "\n");
    }
    return 0;
  }

  // cancel
  if (job.state === "done") {
    io.stdout(`the batch job ${job.id} for ${output} is done; nothing to cancel\n`);
    return 0;
  }
  await store.requestCancel();
  if (backend === undefined) {
    io.stderr(
      `model-fine-tuner: cancel recorded, but ${keyName} is not set so the provider was not told; set it and run cancel again\n`,
    );
    return 2;
  }
  let sent = 0;
  let failed = 0;
  for (const part of activeParts(job)) {
    try {
      let id = part.batchId;
      if (id === undefined && part.createSent && part.tag) id = (await backend.find(part.tag))?.id;
      if (id === undefined) continue;
      await backend.cancel(id);
      sent++;
      io.stdout(`${part.name}: cancel sent for ${id}\n`);
    } catch (error) {
      failed++;
      io.stderr(`${part.name}: cancel failed: ${(error as Error).message}\n`);
    }
  }
  io.stdout(
    `cancel sent for ${sent} batch${
      sent === 1 ? "" : "es"
    } of job ${job.id}. To collect what finished (the rest goes to the errors file), run the same command again with --resume, or:\n  model-fine-tuner status ${
      shellQuote(output)
    }\n`,
  );
  return failed > 0 ? 1 : 0;
}
