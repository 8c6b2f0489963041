/**
 * The streaming pipeline: lines in, one record per line out, requests fired on the scheduler's
 * slots without waiting for answers. Memory is bounded by the in-flight ceiling and the result
 * buffer, never by the input's size.
 * @module
 */
import { type Clock, delay, systemClock } from "./clock.ts";
import { type FailureInfo, type FailureKind, isProviderError, type NoTextCode } from "./errors.ts";
import { FirstAnswers } from "./first_answers.ts";
import {
  type ErrorField,
  errorRecord,
  outputRecord,
  parseLine,
  type RequestItem,
} from "./formats.ts";
import { IdSet } from "./id_set.ts";
import type { Provider } from "./providers/provider.ts";
import { backoffDelay, normalizeRetryOptions, type RetryOptions } from "./retry.ts";
import { Quota } from "./quota.ts";
import type { RunObserver } from "./run_observer.ts";
import type { Scheduler } from "./scheduler.ts";
import { estimateTokens, type TokenEstimate } from "./tokens.ts";

/**
 * Upper bound of the default in-flight ceiling: below the usual open-file limit, past which
 * Node and Bun reject new connections and Deno crashes.
 */
export const MAX_IN_FLIGHT_DEFAULT_CAP = 16_384;

/** Quota 429s one item may absorb (each waits and slows everyone down) before it fails. */
export const MAX_RATE_LIMIT_RETRIES = 20;

/** Options for {@linkcode runRealtime}. */
export interface RunOptions {
  /** Where requests go. */
  provider: Provider;
  /** Requests per second. @default provider.defaultRate */
  rate?: number | "auto";
  /** Tokens per minute: a second limit that holds together with `rate`. */
  tpm?: number;
  /** Slow down on quota 429s and rate-limit headers, then climb back. @default true */
  adaptive?: boolean;
  /** A quota to share with other runs (the server's); `rate`, `tpm` and `scheduler` are then ignored. */
  quota?: Quota;
  /** A scheduler to share with other runs; `rate` is then ignored. */
  scheduler?: Scheduler;
  /** This run's lane in a shared scheduler (round-robin between lanes). @default a new object */
  lane?: unknown;
  /** Retry policy, or `maxAttempts` alone. @default { maxAttempts: 3, baseDelayMs: 2000 } */
  retry?: number | RetryOptions;
  /** Per-request timeout, used only to size the default in-flight ceiling. @default 120000 */
  timeoutMs?: number;
  /**
   * Safety ceiling on requests open at once. Far above rate × timeout, so a healthy run never
   * meets it; it bounds memory if the provider stops answering.
   * @default min(ceil(2 × rate × timeout) + 64, 16384)
   */
  maxInFlight?: number;
  /** Ids already answered (resume): their lines are skipped. */
  skip?: IdSet;
  /**
   * The set the run reads ids into for its duplicate check. Ids added to it beforehand as
   * answered (`add(id, line, { answered: true })`) are skipped the first time the input has
   * them: a resume then holds this one set instead of `skip` and a second one.
   * @default a new set
   */
  seen?: IdSet;
  /** Longest input line accepted, in characters. @default 10_000_000 */
  maxLineLength?: number;
  /** Stops dispatching: in-flight requests finish and are recorded, nothing new is sent. */
  stopSignal?: AbortSignal;
  /** Stops at once: in-flight requests are aborted and not recorded. */
  signal?: AbortSignal;
  /** Time source for backoff waits and the default scheduler. @default systemClock */
  clock?: Clock;
  /** Random source for jitter. @default Math.random */
  random?: () => number;
  /** Results buffered for a slow reader before dispatching pauses. @default 1024 */
  highWaterMark?: number;
  /**
   * Send one request at a time until an answer shows the configuration works, and stop (kind
   * `config`) when the first answers say it does not: see {@linkcode FirstAnswers}.
   * @default true
   */
  probe?: boolean;
  /**
   * The first-answers gate to use, shared by runs against the same provider (the server's), so
   * that once one run's answer showed the configuration works, every run goes at full rate.
   * @default a new one per run
   */
  firstAnswers?: FirstAnswers;
  /** Told of every request, answer, quota push and failure (the report's sidecar, the live page). */
  observer?: RunObserver;
}

/** One finished line. `record` is what goes in output.jsonl (`ok`) or errors.jsonl (`error`). */
export interface RunRecord {
  type: "ok" | "error";
  line: number;
  id?: string;
  record: Record<string, unknown>;
}

/** Live counters of a run. */
export interface RunStats {
  /** Lines read from the input. */
  read: number;
  /** Lines skipped because their id was already answered (resume). */
  skipped: number;
  ok: number;
  failed: number;
  /** Lines rejected before sending (bad JSON, unknown format, validation, duplicate id). */
  invalid: number;
  /** Requests open now. */
  inFlight: number;
  /** Items waiting out a backoff before their next attempt. */
  retrying: number;
  /** HTTP requests sent, retries included. */
  requests: number;
  retries: number;
  tokensIn: number;
  tokensOut: number;
  /** Items abandoned by a stop (not written anywhere; a resume sends them). */
  unsent: number;
  /** Requests per second in force now (it changes when the provider pushes back). */
  rate: number;
  /** Requests per second asked for. */
  configuredRate: number | "auto";
  /** Lowest rate a slow-down reached. */
  lowestRate: number;
  /** Quota 429s absorbed by waiting and slowing down (they do not use up attempts). */
  rateLimited: number;
  /** Answers that came back without text, by reason; they are in the errors file. */
  noText: Record<NoTextCode, number>;
  /** Answers in the output cut at the max tokens (`finish_reason: "length"`): partial text. */
  truncated: number;
  /**
   * Set when the provider stopped the run: billing, auth, a spent daily quota, or (before any
   * success) a configuration it refuses.
   */
  fatal?: {
    kind: FailureKind;
    status: number;
    code: string;
    message: string;
    quotaId?: string;
    retryAfterMs?: number;
    /** The parameter the provider named, for a `config` stop. */
    param?: string;
  };
  startedAt: number;
  endedAt?: number;
  /** True once dispatching stopped early because of a stop signal. */
  stopped: boolean;
}

/** A run in progress. */
export interface RealtimeRun {
  /** One record per finished line, in completion order. */
  results: ReadableStream<RunRecord>;
  /** Live counters; final once `results` has closed. */
  stats: RunStats;
  /** Resolves with the final stats when every record has been produced. */
  done: Promise<RunStats>;
}

type Lines = ReadableStream<string> | AsyncIterable<string>;

/**
 * Runs every line of `lines` through `options.provider` at a fixed rate.
 *
 * @example
 * ```ts
 * import { runRealtime, createMockProvider } from "../mod.ts";
 * const run = runRealtime(ReadableStream.from(['{"prompt":"hi"}']), { provider: createMockProvider() });
 * for await (const r of run.results) console.log(r.type, r.record);
 * ```
 */
export function runRealtime(lines: Lines, options: RunOptions): RealtimeRun {
  const { provider, clock = systemClock, random = Math.random, signal, stopSignal } = options;
  const retry = normalizeRetryOptions(options.retry);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const maxLineLength = options.maxLineLength ?? 10_000_000;
  const ownQuota = options.quota === undefined;
  const configuredRate = options.quota?.stats.configuredRate ?? options.scheduler?.rate ??
    options.rate ?? provider.defaultRate;
  const quota = options.quota ?? new Quota({
    rate: configuredRate,
    tpm: options.tpm,
    adaptive: options.adaptive,
    scheduler: options.scheduler,
    clock,
  });
  // "auto" has no ceiling to size from: assume the provider's default rate.
  const sizingRate = configuredRate === "auto" ? provider.defaultRate : configuredRate;
  const lane = options.lane ?? {};
  const maxInFlight = options.maxInFlight ?? Math.min(
    Math.ceil((2 * sizingRate * timeoutMs) / 1000) + 64,
    MAX_IN_FLIGHT_DEFAULT_CAP,
  );
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new RangeError(
      `Cannot run as 'maxInFlight' must be a positive integer: current value is ${maxInFlight}`,
    );
  }
  const seen = options.seen ?? new IdSet();
  const observe = options.observer ?? (() => {});
  const stats: RunStats = {
    read: 0,
    skipped: 0,
    ok: 0,
    failed: 0,
    invalid: 0,
    inFlight: 0,
    retrying: 0,
    requests: 0,
    retries: 0,
    tokensIn: 0,
    tokensOut: 0,
    unsent: 0,
    rate: quota.scheduler.rate,
    configuredRate,
    lowestRate: quota.scheduler.rate,
    rateLimited: 0,
    noText: { blocked: 0, cut_off: 0, refused: 0, empty_answer: 0 },
    truncated: 0,
    startedAt: clock.now(),
    stopped: false,
  };

  let controller!: ReadableStreamDefaultController<RunRecord>;
  let onPull: (() => void) | undefined;
  let onSettle: (() => void) | undefined;
  let tasks = 0; // items between dispatch and their record (in flight or waiting to retry)
  let closed = false;
  const results = new ReadableStream<RunRecord>({
    start(c) {
      controller = c;
    },
    pull() {
      onPull?.();
    },
    cancel() {
      closed = true;
      onPull?.();
    },
  }, { highWaterMark: options.highWaterMark ?? 1024 });

  const emit = (r: RunRecord) => {
    if (!closed) controller.enqueue(r);
  };
  const fail = (
    item: RequestItem,
    attempts: number,
    info: Pick<FailureInfo, "status" | "code" | "message" | "finishReason" | "response" | "kind">,
    latencyMs = 0,
  ) => {
    stats.failed++;
    observe({
      type: "failed",
      at: clock.now(),
      latencyMs,
      kind: info.kind,
      code: info.code,
      status: info.status,
      attempts,
    });
    if (info.code in stats.noText) stats.noText[info.code as NoTextCode]++;
    const error: ErrorField = {
      status: info.status,
      code: info.code,
      message: info.message,
      attempts,
      line: item.line,
    };
    if (info.finishReason !== undefined) error.finish_reason = info.finishReason;
    if (info.response !== undefined) error.response = info.response;
    emit({
      type: "error",
      line: item.line,
      id: item.id,
      record: errorRecord(item.original, item.id, error),
    });
  };
  const settle = () => {
    tasks--;
    onSettle?.();
  };
  // The provider can stop the run too (billing, auth, a spent daily quota): no point sending more.
  const fatalStop = new AbortController();
  const stops = [stopSignal, signal, fatalStop.signal].filter((s): s is AbortSignal =>
    s !== undefined
  );
  /** Aborts on a graceful stop, a hard one or a fatal answer: ends waits for slots and backoffs. */
  const halt = AbortSignal.any(stops);
  const stopping = () => !!(halt?.aborted || closed);
  /** Resolves when `ready()` holds, re-checking on every settle and pull, or on a stop. */
  const until = async (ready: () => boolean) => {
    while (!ready() && !stopping()) {
      await new Promise<void>((resolve) => {
        onSettle = onPull = resolve;
        halt?.addEventListener("abort", () => resolve(), { once: true });
      }).finally(() => {
        onSettle = onPull = undefined;
      });
    }
  };
  const reject = async (line: number, original: unknown, error: ErrorField, id?: string) => {
    stats.invalid++;
    emit({ type: "error", line, id, record: errorRecord(original, id, error) });
    await until(() => controller.desiredSize! > 0);
  };

  const first = options.firstAnswers ?? new FirstAnswers();
  if (options.probe === false) first.success();
  /** Wakes the dispatch loop when the first answers open the full rate. */
  const wake = () => onSettle?.();

  const track = () => {
    if (stats.rate !== quota.scheduler.rate) {
      observe({ type: "rate", at: clock.now(), rate: quota.scheduler.rate });
    }
    stats.rate = quota.scheduler.rate;
    stats.lowestRate = Math.min(stats.lowestRate, stats.rate);
  };

  async function attempt(
    item: RequestItem,
    estimate: TokenEstimate,
    ticket: number,
  ): Promise<void> {
    let attempts = 0;
    let failures = 0; // attempts that count against maxAttempts (quota 429s do not)
    let rateLimits = 0;
    try {
      while (true) {
        attempts++;
        stats.requests++;
        stats.inFlight++;
        const started = clock.now();
        observe({ type: "sent", at: started });
        try {
          const response = await provider.send(item, { signal });
          stats.inFlight--;
          quota.onSuccess({
            estimate,
            usage: response.usage,
            rateLimit: response.rateLimit,
            ticket,
          });
          track();
          stats.ok++;
          if (response.finishReason === "length") stats.truncated++;
          if (!first.confirmed) {
            const wasOpen = first.open;
            first.success();
            if (!wasOpen) wake();
          }
          stats.tokensIn += response.usage.input_tokens;
          stats.tokensOut += response.usage.output_tokens;
          const answeredAt = clock.now();
          observe({
            type: "answered",
            at: answeredAt,
            latencyMs: answeredAt - started,
            tokensIn: response.usage.input_tokens,
            tokensOut: response.usage.output_tokens,
            attempts,
          });
          emit({
            type: "ok",
            line: item.line,
            id: item.id,
            record: outputRecord(item, response, { attempts, latencyMs: answeredAt - started }),
          });
          return;
        } catch (error) {
          stats.inFlight--;
          if (signal?.aborted) {
            stats.unsent++;
            return;
          }
          const latencyMs = clock.now() - started;
          if (!isProviderError(error)) {
            fail(item, attempts, {
              status: 0,
              code: "internal_error",
              message: (error as Error)?.message ?? String(error),
            }, latencyMs);
            return;
          }
          const wasOpen = first.open;
          const info = first.failure(error.info) ?? error.info;
          if (first.open !== wasOpen) wake();
          quota.onFailure(info, estimate, ticket);
          track();
          if (
            info.kind === "billing" || info.kind === "auth" || info.kind === "daily_quota" ||
            (info.kind === "config" && !first.confirmed)
          ) {
            // Not this item's fault: it stays unsent (resumable) and nothing more is sent.
            stats.fatal ??= {
              kind: info.kind,
              status: info.status,
              code: info.code,
              message: info.message,
              quotaId: info.quotaId,
              retryAfterMs: info.retryAfterMs,
              param: info.param,
            };
            observe({ type: "fatal", at: clock.now(), kind: info.kind, code: info.code });
            fatalStop.abort(new DOMException(info.message, "AbortError"));
            stats.unsent++;
            return;
          }
          const absorbed = info.kind === "rate_limit" && rateLimits < MAX_RATE_LIMIT_RETRIES;
          if (absorbed) {
            rateLimits++;
            stats.rateLimited++;
          } else {
            failures++;
          }
          if (!info.retryable || (!absorbed && failures >= retry.maxAttempts)) {
            fail(item, attempts, info, latencyMs);
            return;
          }
          observe(
            absorbed
              ? {
                type: "rate_limited",
                at: clock.now(),
                latencyMs,
                retryAfterMs: info.retryAfterMs,
                rate: stats.rate,
              }
              : { type: "retry", at: clock.now(), latencyMs, code: info.code },
          );
          // A quota 429 waits for the provider's hint (only this item: the quota decides whether
          // everyone pauses); other failures back off, unless the provider said how long.
          const wait = info.retryAfterMs !== undefined
            ? Math.min(info.retryAfterMs, retry.maxDelayMs)
            : absorbed
            ? 0
            : backoffDelay(failures, retry, random);
          stats.retrying++;
          try {
            await delay(wait, { clock, signal: halt });
            // Every retry passes the same rate gate as a first attempt.
            ticket = await quota.acquire({ signal: halt, lane, tokens: estimate });
          } catch {
            stats.unsent++;
            return;
          } finally {
            stats.retrying--;
          }
          stats.retries++;
        }
      }
    } finally {
      settle();
    }
  }

  async function dispatch(): Promise<void> {
    let lineNo = 0;
    let inputError: { error: unknown } | undefined;
    try {
      for await (const text of lines as AsyncIterable<string>) {
        lineNo++;
        if (text.trim() === "") continue; // blank lines are not items
        stats.read++;
        const parsed = parseLine(text, lineNo, maxLineLength);
        if (!parsed.ok) {
          const { code, message } = parsed;
          await reject(lineNo, parsed.original ?? text, {
            status: 0,
            code,
            message,
            attempts: 0,
            line: lineNo,
          });
          if (stopping()) break;
          continue;
        }
        const item = parsed.item;
        const firstLine = seen.visit(item.id, lineNo);
        if (firstLine > 0) {
          const message = `line ${lineNo}: id '${item.id}' was already used on line ${firstLine}`;
          await reject(lineNo, item.original, {
            status: 0,
            code: "duplicate_id",
            message,
            attempts: 0,
            line: lineNo,
          }, item.id);
          if (stopping()) break;
          continue;
        }
        if (firstLine < 0 || options.skip?.has(item.id)) {
          stats.skipped++;
          continue;
        }
        const estimate = provider.estimate?.(item) ?? estimateTokens(item);
        // Until the first answers show the configuration works, one request at a time.
        const gated = !first.open;
        await until(() =>
          (first.open || tasks === 0) && tasks < maxInFlight && controller.desiredSize! > 0
        );
        let ticket: number;
        try {
          if (stopping()) throw halt?.reason;
          // After waiting on the gate, the grid starts again here: the slots that passed while
          // the first answer was on its way are not owed as a burst.
          ticket = await quota.acquire({ signal: halt, lane, tokens: estimate, restart: gated });
        } catch {
          stats.unsent++; // read but never sent: a resume picks it up
          break;
        }
        tasks++;
        void attempt(item, estimate, ticket); // fire and forget: the next slot never waits for this answer
      }
    } catch (error) {
      // The input failed mid-way: what is in flight still finishes and is recorded.
      inputError = { error };
    }
    if (stopping()) stats.stopped = true;
    while (tasks > 0) {
      await new Promise<void>((resolve) => (onSettle = resolve));
      onSettle = undefined;
    }
    // The provider's stop may come with the last answers, after the whole input was read: it
    // ends the run the same way (the unsent lines are resumable).
    if (stats.fatal) stats.stopped = true;
    if (inputError) throw inputError.error;
  }

  const done = dispatch().then(
    () => {
      stats.endedAt = clock.now();
      if (ownQuota && !options.scheduler) quota.close();
      if (!closed) controller.close();
      return stats;
    },
    (error) => {
      stats.endedAt = clock.now();
      if (ownQuota && !options.scheduler) quota.close();
      if (!closed) controller.error(error);
      closed = true;
      throw error;
    },
  );
  done.catch(() => {});
  return { results, stats, done };
}
