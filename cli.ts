#!/usr/bin/env -S deno run -A
/**
 * The command line: `model-fine-tuner run <input.jsonl | -> [options]`. This is a runtime edge:
 * it owns files, the terminal, signals and the environment, through `node:` built-ins that Bun,
 * Deno and Node all provide. Everything else lives in `src/`.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { getRuntimeKey } from "hono/adapter";
import pkg from "./package.json" with { type: "json" };
import { isConfigError, UsageError } from "./src/errors.ts";
import { type InputFormat, parseLine } from "./src/formats.ts";
import { formatDuration, msToMidnightPacific } from "./src/duration.ts";
import * as v from "valibot";
import { duration, parseFlags, positiveNumber, SHARED_SETTINGS } from "./src/flags.ts";
import { IdSet } from "./src/id_set.ts";
import { finished, progressLine, RateMeter, summaryLines } from "./src/progress.ts";
import { createProvider, type ProviderName } from "./src/providers/create_provider.ts";
import type { Provider } from "./src/providers/provider.ts";
import { API_KEY_VARIABLES, providerAccess, providerWithKey } from "./src/provider_env.ts";
import { QUOTA_OPTIONS, sharedQuota } from "./src/redis/shared_quota.ts";
import { connectQuotaStore } from "./src/redis/connection.ts";
import { runRealtime, type RunStats } from "./src/run.ts";
import { providerFetch } from "./src/adapter/runtime.ts";
import { providerPost } from "./src/adapter/provider_post.ts";
import {
  DENO_YOUNG_GENERATION_CAP,
  sizesYoungGeneration,
  watchRate,
} from "./src/cli/rate_check.ts";
import { fileBytes, fileLines, linesOf, sameFile } from "./src/fs/files.ts";
import { serve } from "./server.ts";
import { openServerStorage } from "./src/fs/batch_storage.ts";
import { batchCommand, parseBatchFlags, runBatchMode } from "./src/cli/batch_job.ts";
import { recordRun, reportCommand, writeReport } from "./src/cli/report.ts";
import { acquireOutputLock, type OutputLock } from "./src/cli/output_lock.ts";
import {
  carryOverErrors,
  defaultErrorsFile,
  moveAsideIfErrorsFile,
} from "./src/cli/errors_file.ts";
import { stopThenQuit } from "./src/cli/interrupt.ts";
import { followParent, lifelineSpawnOptions } from "./src/cli/lifeline.ts";
import { describeDiskError, fileSink, isDiskError, textSink } from "./src/cli/jsonl_sink.ts";
import { answeredIds, resumeCommand } from "./src/cli/resume_files.ts";
import { type CliIo, processIo } from "./src/cli/io.ts";

export type { CliIo } from "./src/cli/io.ts";
export { processIo } from "./src/cli/io.ts";

export const HELP =
  `model-fine-tuner ${pkg.version}: rate-limited fire-and-forget batch LLM inference

Usage:
  model-fine-tuner run <input.jsonl | -> [options]
  model-fine-tuner serve [--host 127.0.0.1] [--port 8787] [options]   (serve --help)
  model-fine-tuner status <output.jsonl> [--json]    state of a batch job (status --help)
  model-fine-tuner cancel <output.jsonl>             cancel a batch job's open batches
  model-fine-tuner report <output.jsonl>             HTML report of a run (report --help)

Input lines (JSONL, format detected per line):
  OpenAI batch  {"custom_id","method","url","body"}
  Gemini batch  {"key","request":{...GenerateContentRequest}}
  simple        {"id"?, "prompt" | "messages", "system"?, "model"?, "temperature"?, "max_tokens"?, ...}

Options:
  --provider NAME        gemini | openai | mock (OpenAI-compatible servers: openai + --base-url)
  --auto                 pick the provider from the input format, else from which key is set
                         (also what happens when --provider is not given)
  --model NAME           model for lines that name none
  --rate-limit R|auto    requests per second, fractions allowed (0.25 = one every 4 s); auto
                         starts low and ramps up until the provider pushes back
                         default: gemini 60, openai 100, mock 1000
  -o, --output FILE      answers, one JSON line each; - for stdout (default: output.jsonl)
  --errors FILE          failures, re-runnable as input (default: the output's name with
                         .errors.jsonl: out.jsonl -> out.errors.jsonl)
  --base-url URL         provider base URL (also OPENAI_BASE_URL, GEMINI_BASE_URL);
                         OpenAI-compatible servers take it with /v1, e.g. http://127.0.0.1:8000/v1
  --max-attempts N       attempts per item, the first included (default 3)
  --timeout DUR          per-request timeout: 90, 30s, 2m, 500ms (default 120s)
  --tpm N                tokens per minute, a second limit held together with the rate, counted
                         as the provider counts them (OpenAI: request body/4 + max tokens;
                         Gemini: input tokens) and spread smoothly; also taken from
                         x-ratelimit-limit-tokens when the provider sends it
  --backoff DUR          wait before the 2nd attempt, doubling after (default 2s); a delay the
                         provider asks for (Retry-After, retry-after-ms, RetryInfo) wins
  --resume               skip ids already in the output and append to it
  --overwrite            replace an existing output file
  --dry-run              validate the whole input and print the plan; send nothing
  --report               write <output>.report.html at the end (from <output>.stats.jsonl,
                         the per-second record every run with an output file keeps)
  --mode MODE            realtime (default) | batch: the provider's batch API, half price,
                         results within 24 h, job file <output>.batch.json (resume re-attaches)
                         | auto: batch above 10,000 input lines, realtime at or below
  --deadline DUR         batch mode: what the batches have not finished DUR after the job
                         started (e.g. 6h) is cancelled and finished through realtime
  --max-in-flight N      safety ceiling on open requests (default 2 x rate x timeout + 64)
  --mock-latency DUR     mock provider answer time (default 20ms)
  --mock-failure-rate F  mock provider failure fraction, 0..1 (default 0)
  --quota URL            share one provider quota with every job on the same Redis and quota
                         name: redis://host:port/N, rediss://…, unix:///path.sock (also
                         MFT_QUOTA_URL); the rate and --tpm are for all of them together
  --quota-name NAME      the shared quota's name (default: a fingerprint of provider, model,
                         base URL and key; never the key)
  --quota-fallback local if the quota store cannot be reached at start, run alone with the
                         in-process scheduler at a fraction of the rate (default: exit 2)
  --quota-fallback-fraction F
                         that fraction, 0..1 (default 0.5)
  -q, --quiet            print nothing but errors
  -h, --help             this text
  -V, --version          the version

Keys come from the environment only: GEMINI_API_KEY (or GOOGLE_API_KEY), OPENAI_API_KEY.
Exit codes: 0 all ok · 1 finished, some lines in the errors file · 2 usage, configuration or
input-file error (nothing sent) · 3 stopped by the provider: billing, auth, a spent daily quota,
or a model/parameter it refuses on the first answers (resume with --resume) · 4 the disk refused
a write (full, quota, I/O error; resume with --resume once there is room) · 130 interrupted
(resume with --resume). Answers without text (blocked, cut off, refused) go to the errors file.
`;

const OPTIONS = {
  provider: { type: "string" },
  auto: { type: "boolean" },
  model: { type: "string" },
  "rate-limit": { type: "string" },
  tpm: { type: "string" },
  output: { type: "string", short: "o" },
  errors: { type: "string" },
  "base-url": { type: "string" },
  "max-attempts": { type: "string" },
  timeout: { type: "string" },
  backoff: { type: "string" },
  resume: { type: "boolean" },
  overwrite: { type: "boolean" },
  "dry-run": { type: "boolean" },
  report: { type: "boolean" },
  "max-in-flight": { type: "string" },
  "mock-latency": { type: "string" },
  "mock-failure-rate": { type: "string" },
  ...QUOTA_OPTIONS,
  quiet: { type: "boolean", short: "q" },
  mode: { type: "string" },
  deadline: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** `run`'s values that are checked (a valibot schema like every boundary's); messages name the flag. */
const RunSettings = v.object({
  ...SHARED_SETTINGS,
  "max-in-flight": v.optional(positiveNumber("--max-in-flight", true)),
  backoff: v.optional(duration("--backoff")),
});

/** Non-blank lines in a file, counted on bytes without decoding, for the progress total. */
async function countLines(file: string): Promise<number> {
  let count = 0;
  let content = false;
  for await (const chunk of fileBytes(file)) {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === 10) {
        if (content) count++;
        content = false;
      } else if (b !== 32 && b !== 9 && b !== 13) content = true;
    }
  }
  return content ? count + 1 : count;
}

/** Reads lines until one parses (at most 1,000), then gives back a stream that still has them all. */
async function peekFormat(
  lines: ReadableStream<string>,
): Promise<{ format?: InputFormat; lines: ReadableStream<string> }> {
  const reader = lines.getReader();
  const buffered: string[] = [];
  let format: InputFormat | undefined;
  let ended = false;
  while (buffered.length < 1000) {
    const { value, done } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    buffered.push(value);
    const parsed = parseLine(value, buffered.length);
    if (parsed.ok) {
      format = parsed.item.format;
      break;
    }
  }
  const rest = new ReadableStream<string>({
    start(controller) {
      for (const line of buffered) controller.enqueue(line);
      if (ended) controller.close();
    },
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { format, lines: rest };
}

/** Runs the CLI with `argv` (without the runtime and script) and returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    io.stdout(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === "-V" || command === "--version") {
    io.stdout(`model-fine-tuner ${pkg.version}\n`);
    return 0;
  }
  if (command === "serve") {
    return await serve(rest, io, {
      connectQuotaStore,
      post: providerPost(),
      openBatchStorage: (dir) => openServerStorage(dir, io.env, (line) => io.stderr(`${line}\n`)),
    });
  }
  if (command === "status" || command === "cancel") return await batchCommand(command, rest, io);
  if (command === "report") return reportCommand(rest, io);
  if (command !== "run") {
    io.stderr(`model-fine-tuner: unknown command '${command}' (try --help)\n`);
    return 2;
  }
  const locks: OutputLock[] = [];
  try {
    return await runCommand(rest, io, locks);
  } catch (error) {
    if (
      isConfigError(error) ||
      (error as { code?: string })?.code?.startsWith("ERR_PARSE_ARGS")
    ) {
      io.stderr(`model-fine-tuner: ${(error as Error).message}\n`);
      return 2;
    }
    if (isDiskError(error)) {
      io.stderr(`model-fine-tuner: stopped: ${describeDiskError(error)}\n`);
      return 4;
    }
    throw error;
  } finally {
    for (const lock of locks) lock.release();
  }
}

async function runCommand(argv: string[], io: CliIo, locks: OutputLock[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout(HELP);
    return 0;
  }
  if (values.version) {
    io.stdout(`model-fine-tuner ${pkg.version}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "run needs an input file (or - for stdin)"
        : `run takes one input file, got ${positionals.length}`,
    );
  }
  const input = positionals[0];
  const quiet = values.quiet ?? false;
  const log = (text: string) => quiet || io.stderr(text);
  // Every number, duration and fraction, checked before anything is read or sent.
  const settings = parseFlags(RunSettings, values);
  if (settings.provider !== undefined && values.auto) {
    throw new UsageError("give --provider or --auto, not both");
  }
  const rate = settings["rate-limit"];
  const tpm = settings.tpm;
  const maxAttempts = settings["max-attempts"];
  const maxInFlight = settings["max-in-flight"];
  const timeoutMs = settings.timeout ?? 120_000;
  const backoffMs = settings.backoff;
  const mockLatency = settings["mock-latency"];
  const failureRate = settings["mock-failure-rate"];
  const batchFlags = parseBatchFlags(values.mode, values.deadline); // batch mode: src/cli/batch_job.ts
  if (values.resume && values.overwrite) {
    throw new UsageError("give --resume or --overwrite, not both");
  }

  const output = values.output ?? "output.jsonl";
  const toStdout = output === "-";
  const errorsFile = values.errors ?? defaultErrorsFile(output);
  if (toStdout && values.resume) throw new UsageError("--resume needs an output file, not stdout");

  // Input: check it before anything else is touched.
  let inputFile = input;
  if (input !== "-") {
    try {
      const st = fs.statSync(input);
      if (!st.isFile()) throw new UsageError(`cannot read ${input}: not a file`);
      fs.accessSync(input, fs.constants.R_OK);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(
        `cannot read ${input}: ${
          (error as NodeJS.ErrnoException).code ?? (error as Error).message
        }`,
      );
    }
    if (!toStdout && sameFile(input, output)) {
      throw new UsageError(`the output ${output} is the input; choose another --output`);
    }
  }
  if (!toStdout && sameFile(output, errorsFile)) {
    throw new UsageError("--output and --errors must be different files");
  }
  if (
    !toStdout && !values.resume && !values.overwrite && !values["dry-run"] &&
    fs.existsSync(output) && fs.statSync(output).size > 0
  ) {
    throw new UsageError(
      `${output} already exists: pass --resume to continue it or --overwrite to replace it`,
    );
  }

  // One writer per output: a second run on it is refused here, before anything is touched.
  const lock = toStdout || values["dry-run"]
    ? undefined
    : acquireOutputLock(output, { log: (line) => io.stderr(`${line}\n`) });
  if (lock) locks.push(lock);

  let lines = linesOf(input === "-" ? io.stdin() : fileBytes(input));

  // Provider: named, or detected from the first valid line and the keys that are set.
  let providerName: ProviderName | undefined = settings.provider;
  if (providerName === undefined) {
    const peeked = await peekFormat(lines);
    lines = peeked.lines;
    const byFormat = peeked.format === "openai-batch"
      ? "openai"
      : peeked.format === "gemini-batch"
      ? "gemini"
      : undefined;
    providerName = byFormat ?? providerWithKey(io.env);
    if (providerName === undefined) {
      throw new UsageError(
        "cannot pick a provider: the input is in the simple format and neither GEMINI_API_KEY nor OPENAI_API_KEY is set; pass --provider (mock runs offline)",
      );
    }
    log(
      `auto: provider ${providerName} (${
        byFormat
          ? `input is in the ${peeked.format} format`
          : `${API_KEY_VARIABLES[providerName as "gemini" | "openai"]} is set`
      })\n`,
    );
  }
  const { apiKey, baseUrl } = providerAccess(providerName, io.env, values["base-url"]);
  const provider: Provider = createProvider({
    provider: providerName,
    apiKey,
    baseUrl: baseUrl || undefined,
    model: values.model,
    timeoutMs,
    mock: { latencyMs: mockLatency, failureRate },
    fetch: providerFetch(),
    post: providerPost(),
    // Said even with --quiet: a dropped parameter changes what the answers are.
    onWarning: (message) => io.stderr(`warning: ${message}\n`),
  });
  const targetRate = rate ?? provider.defaultRate;

  if (values["dry-run"]) {
    return await dryRun(lines, {
      io,
      provider,
      rate: targetRate === "auto" ? provider.defaultRate : targetRate,
      output,
      errorsFile,
    });
  }

  // A quota shared with other jobs and machines through Redis, connected before anything is sent.
  const shared = await sharedQuota(values, {
    io,
    log,
    provider,
    apiKey,
    baseUrl,
    rate: targetRate,
    tpm,
    connect: connectQuotaStore,
  });

  // Batch mode (--mode batch|auto) runs in src/cli/batch_job.ts; undefined means "run realtime".
  const batchExit = await runBatchMode({
    flags: batchFlags,
    io,
    argv,
    input,
    output,
    errorsFile,
    resume: values.resume ?? false,
    quiet,
    provider: providerName,
    apiKey,
    baseUrl: baseUrl || undefined,
    model: values.model,
    timeoutMs,
    maxAttempts,
    lines,
    readLines: fileLines,
    countLines,
    realtime: {
      provider,
      rate: targetRate,
      tpm,
      retry: { maxAttempts: maxAttempts ?? 3, baseDelayMs: backoffMs },
      timeoutMs,
      maxInFlight,
    },
  });
  if (batchExit !== undefined) return batchExit;

  // The errors file may be the input (the retry workflow: `run errors.jsonl`). Move the input
  // aside first so that nothing is read from a file being rewritten, and nothing is lost on a crash.
  const moved = await moveAsideIfErrorsFile(input, {
    errorsFile,
    lines,
    readLines: fileLines,
    log,
  });
  if (moved) ({ file: inputFile, lines } = moved);
  const skip = values.resume
    ? await answeredIds(output, (line) => io.stderr(`${line}\n`))
    : undefined;
  if (skip && skip.size > 0) log(`resume: ${skip.size} ids already answered in ${output}\n`);

  const total = input === "-" ? undefined : { value: undefined as number | undefined };
  if (total) countLines(inputFile).then((n) => (total.value = n), () => {});

  const stop = new AbortController();
  const hard = new AbortController();
  const out = toStdout ? textSink(io.stdout) : fileSink(output, values.resume ?? false);
  // On resume, earlier failures are set aside and those not re-run are put back at the end.
  const carry = values.resume ? await carryOverErrors(errorsFile, fileLines, log) : undefined;
  const errs = fileSink(errorsFile, false);
  // The per-second sidecar the report is built from (src/cli/report.ts).
  const record = toStdout ? undefined : recordRun({
    output,
    append: values.resume ?? false,
    command: ["model-fine-tuner", "run", ...argv],
    targetRate: shared.rate ?? targetRate,
    provider: provider.name,
    model: provider.model,
    input: inputFile,
    inFlight: () => run.stats.inFlight,
  });
  const run = runRealtime(lines, {
    provider,
    rate: shared.rate,
    quota: shared.quota,
    tpm,
    retry: { maxAttempts: maxAttempts ?? 3, baseDelayMs: backoffMs },
    timeoutMs,
    maxInFlight,
    seen: skip, // one set: the answered ids, and the ids read (duplicates)
    stopSignal: lock ? AbortSignal.any([stop.signal, lock.lost]) : stop.signal,
    signal: hard.signal,
    observer: record?.observer,
  });
  const removeInterrupt = stopThenQuit(io, {
    stop,
    hard,
    message: () =>
      `\nstopping: no new requests; waiting for ${run.stats.inFlight} in flight (Ctrl-C again to quit now)\n`,
  });

  log(
    `run: ${input} → ${
      toStdout ? "stdout" : output
    } (errors → ${errorsFile}) · provider ${provider.name} · model ${provider.model} · ${targetRate} req/s\n`,
  );

  // Progress: a live line on a terminal, a plain line every 5 s otherwise.
  const meter = new RateMeter();
  const tick = () => {
    const now = performance.now();
    const achieved = meter.sample(now, run.stats.requests);
    const line = progressLine(run.stats, now, achieved, total?.value);
    io.stderr(io.isTTY ? `\r\x1b[K${line}` : `${line}\n`);
  };
  const timer = quiet ? undefined : setInterval(tick, io.isTTY ? 250 : 5000);
  // Said even with --quiet: a process that cannot keep up sends clumps a provider refuses.
  const rateAsked = run.stats.configuredRate;
  const stopRateWatch = typeof rateAsked === "number"
    ? watchRate({ rate: rateAsked, stats: run.stats, warn: (m) => io.stderr(`warning: ${m}\n`) })
    : undefined;

  // A full disk (or an I/O error) stops dispatching; what is in flight is still tried.
  let disk: { message: string; unwritten: number } | undefined;
  const diskFailed = (error: unknown, file: string) => {
    if (!isDiskError(error)) throw error;
    disk ??= { message: describeDiskError(error, file), unwritten: 0 };
    stop.abort(new DOMException(disk.message, "AbortError"));
  };
  try {
    for await (const r of run.results) {
      try {
        await (r.type === "ok" ? out : errs).write(r.record);
        carry?.written(r.id, r.line);
      } catch (error) {
        diskFailed(error, r.type === "ok" ? output : errorsFile);
        disk!.unwritten++;
      }
    }
  } finally {
    stopRateWatch?.();
    if (timer) clearInterval(timer);
    out.close();
    errs.close();
    try {
      await carry?.finish(skip && { has: (id) => skip.answered(id) });
    } catch (error) {
      diskFailed(error, errorsFile); // .prev stays: the next --resume copies it back
    }
    removeInterrupt();
    shared.close();
  }
  const stats = await run.done;
  const again = resumeCommand(argv, input, inputFile);
  record?.finish(stats, stats.stopped ? again : undefined);
  if (!quiet && io.isTTY) io.stderr("\r\x1b[K");
  for (
    const line of summaryLines(stats, { output: toStdout ? "stdout" : output, errors: errorsFile })
  ) log(line + "\n");
  if (disk) {
    io.stderr(
      `stopped: ${disk.message}; ${disk.unwritten} answers could not be written and will be sent again. Free some space, then resume with:\n  ${again}\n`,
    );
    return 4;
  }
  if (values.report && !toStdout) log(`report: ${writeReport(output)}\n`);
  if (stats.stopped) {
    if (stats.fatal) io.stderr(fatalMessage(stats.fatal, provider.name) + "\n");
    io.stderr(
      `${stats.fatal ? "stopped" : "interrupted"} with ${finished(stats)} of ${
        total?.value ?? stats.read
      } lines done; resume${
        stats.fatal?.kind === "daily_quota" ? " after the reset" : ""
      } with:\n  ${again}\n`,
    );
    return stats.fatal ? 3 : 130;
  }
  if (inputFile !== input) fs.rmSync(inputFile);
  return stats.failed + stats.invalid > 0 ? 1 : 0;
}

/** One clear paragraph for a run the provider stopped. */
function fatalMessage(fatal: NonNullable<RunStats["fatal"]>, provider: string): string {
  const said = `${provider} answered ${fatal.status} ${fatal.code}: ${fatal.message}`;
  switch (fatal.kind) {
    case "billing":
      return /\blimit: 0\b/.test(fatal.message)
        ? `stopped: ${
          fatal.message.match(/model: ([\w.-]+)/)?.[1] ?? "this model"
        } has no quota at all on this project's tier (limit: 0; ${said}). Nothing more was sent; enable billing for the project or pick another model, then resume.`
        : `stopped: the account has no quota or credit left (${said}). Nothing more was sent; check billing, then resume.`;
    case "auth":
      return `stopped: the API key or its project was refused (${said}). Nothing more was sent; fix the key or enable the API for the project, then resume.`;
    case "config":
      return `stopped: the provider refused the run's configuration before any answer succeeded (${said}${
        fatal.param ? `; parameter '${fatal.param}'` : ""
      }). Nothing more was sent; fix the model or the parameter (--model, the lines' fields), then resume.`;
    case "daily_quota": {
      const resetMs = provider === "gemini"
        ? msToMidnightPacific(Date.now())
        : fatal.retryAfterMs ?? msToMidnightPacific(Date.now());
      const at = new Date(Date.now() + resetMs).toISOString().replace(/\.\d+Z$/, "Z");
      return `stopped: the daily quota${
        fatal.quotaId ? ` ${fatal.quotaId}` : ""
      } is spent (${said}). It resets in ${formatDuration(resetMs)} (about ${at}).`;
    }
    default:
      return `stopped: ${said}`;
  }
}

async function dryRun(
  lines: ReadableStream<string>,
  o: { io: CliIo; provider: Provider; rate: number; output: string; errorsFile: string },
): Promise<number> {
  const formats: Record<string, number> = {};
  const ids = new IdSet();
  let items = 0;
  let bad = 0;
  let lineNo = 0;
  for await (const text of lines) {
    lineNo++;
    if (text.trim() === "") continue;
    const parsed = parseLine(text, lineNo);
    if (!parsed.ok) {
      if (bad++ < 20) o.io.stderr(`${parsed.message}\n`);
      continue;
    }
    const first = ids.add(parsed.item.id, lineNo);
    if (first !== 0) {
      if (bad++ < 20) {
        o.io.stderr(`line ${lineNo}: id '${parsed.item.id}' was already used on line ${first}\n`);
      }
      continue;
    }
    items++;
    formats[parsed.item.format] = (formats[parsed.item.format] ?? 0) + 1;
  }
  if (bad > 20) o.io.stderr(`… and ${bad - 20} more bad lines\n`);
  const plan = {
    items,
    invalid_lines: bad,
    formats,
    provider: o.provider.name,
    model: o.provider.model,
    rate_per_s: o.rate,
    estimated_duration: formatDuration((items / o.rate) * 1000),
    output: o.output,
    errors: o.errorsFile,
  };
  o.io.stdout(JSON.stringify(plan, null, 2) + "\n");
  return bad > 0 ? 1 : 0;
}

/** The most open requests Bun's fetch allows; its default is 256. */
export const BUN_MAX_HTTP_REQUESTS = "65535";

/**
 * What a relaunch of this process must change, or undefined when it runs as it is.
 *
 * - Bun's fetch keeps at most 256 requests open unless `BUN_CONFIG_MAX_HTTP_REQUESTS` is set
 *   before the process starts (setting it at run time has no effect). With 2 s answers that
 *   turns any rate above 128 req/s into a semaphore.
 * - Deno lets V8 grow its young generation while thousands of requests are open, and each
 *   scavenge then copies all of them: 30-65 ms pauses at 1,000 req/s, longer than the
 *   scheduler's slack repays, so the run lost 1-3 % of its rate. Capped by
 *   {@linkcode DENO_YOUNG_GENERATION_CAP} (`DENO_V8_FLAGS`, read only at start) the pauses stay
 *   under 10-20 ms (README "Caps we found"). Only where every permission is granted (`-A`): the
 *   relaunch could not be given fewer than the user gave, and may not be given more.
 */
function relaunchSettings(): { args: string[]; env: Record<string, string> } | undefined {
  // Only the commands that open many requests pay for a second process start.
  const command = process.argv[2]; // argv[1] is the script or the embedded entry
  if (command !== "run" && command !== "serve") return undefined;
  const runtime = getRuntimeKey();
  if (runtime === "bun" && !process.env.BUN_CONFIG_MAX_HTTP_REQUESTS) {
    // A compiled executable sees its own embedded entry ("/$bunfs/...") as argv[1].
    const args = process.argv.slice(process.argv[1]?.includes("$bunfs") ? 2 : 1);
    return { args, env: { BUN_CONFIG_MAX_HTTP_REQUESTS: BUN_MAX_HTTP_REQUESTS } };
  }
  if (runtime === "deno") return denoRelaunch();
  return undefined;
}

function denoRelaunch(): { args: string[]; env: Record<string, string> } | undefined {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno!;
  // Asking costs no permission; reading the variable below needs one.
  const names = ["read", "write", "net", "env", "run", "sys", "ffi", "import"] as const;
  try {
    if (!names.every((name) => deno.permissions.querySync({ name }).state === "granted")) {
      return undefined;
    }
  } catch {
    return undefined;
  }
  const flags = process.env.DENO_V8_FLAGS ?? "";
  if (sizesYoungGeneration(flags)) return undefined; // set already: by the user or by us
  // `deno run` only: a `deno compile`d binary has its flags built in (scripts/compile).
  if (!/^deno(\.exe)?$/.test(path.basename(process.execPath))) return undefined;
  if (!deno.mainModule.startsWith("file:")) return undefined;
  const main = decodeURIComponent(new URL(deno.mainModule).pathname);
  const cap = DENO_YOUNG_GENERATION_CAP;
  return {
    args: ["run", "-A", main, ...process.argv.slice(2)],
    env: { DENO_V8_FLAGS: flags ? `${flags},${cap}` : cap },
  };
}

/**
 * Starts this process again with {@linkcode relaunchSettings} and waits for it. Returns the
 * child's exit code, or undefined when no relaunch is needed.
 */
async function relaunch(): Promise<number | undefined> {
  const settings = relaunchSettings();
  if (!settings) return undefined;
  const { spawn } = await import("node:child_process");
  // The child gets a lifeline (fd 3): it exits when this process dies, even by SIGKILL.
  const lifeline = lifelineSpawnOptions();
  const child = spawn(process.execPath, settings.args, {
    stdio: lifeline.stdio,
    env: { ...process.env, ...settings.env, ...lifeline.env },
  });
  // Ctrl-C reaches the child through the terminal's process group; we only wait for it.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => child.kill("SIGTERM"));
  return await new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 1)));
  });
}

if (import.meta.main) {
  // Started by our own relaunch: nothing of ours may outlive the process the user started.
  followParent(process.env, () => {
    process.stderr.write("model-fine-tuner: the process that started this one is gone; exiting\n");
    process.exit(1);
  });
  const code = (await relaunch()) ?? (await main(process.argv.slice(2), processIo()));
  process.exit(code);
}
