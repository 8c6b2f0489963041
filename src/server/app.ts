/**
 * The HTTP server as a Hono app (web globals only): NDJSON in, NDJSON out, every run sharing one
 * scheduler per provider quota, round-robin between runs. `server.ts` serves it on a runtime.
 * @module
 */
import { Hono } from "hono";
import { getRuntimeKey } from "hono/adapter";
import { stream } from "hono/streaming";
import { type Clock, systemClock } from "../clock.ts";
import { FirstAnswers } from "../first_answers.ts";
import type { Provider } from "../providers/provider.ts";
import { runRealtime, type RunStats } from "../run.ts";
import { Quota } from "../quota.ts";
import { TextLineStream } from "../text_line_stream.ts";
import { apiError, onApiError } from "./api_error.ts";
import { BEARER_TOKEN_CHARS, bearerGuard, isBearerToken } from "./_auth.ts";
import { browserGuard } from "./_browser_guard.ts";
import { contentLengthLimit } from "./_body_limit.ts";
import type { BatchManager } from "./batch_api/batch_manager.ts";
import { type BatchApiOptions, createBatchApi } from "./batch_api/routes.ts";
import { parseRunOptions } from "./_run_options.ts";
import { createLiveMonitor } from "./live_monitor.ts";

/** Options for {@linkcode createApp}. */
export interface ServerOptions {
  /** Where every run's requests go. Callers can not change it (nor its base URL or key). */
  provider: Provider;
  /**
   * Requests per second for all runs together: the provider quota this app serves.
   * @default provider.defaultRate
   */
  rate?: number | "auto";
  /** Tokens per minute for all runs together. @default no token limit */
  tpm?: number;
  /**
   * Share this quota (for example one backed by a shared store, so several replicas share one
   * provider quota) instead of making one from `rate` and `tpm`.
   */
  quota?: Quota;
  /**
   * Bearer token callers must send on `/v1/*`. Without one the app answers everyone who can
   * reach it: `server.ts` then listens on loopback only; do the same when you mount it.
   * @default undefined (no check)
   */
  token?: string;
  /**
   * Longest input line, in characters; a longer line becomes an error line in the stream and
   * the run goes on.
   * @default 1_048_576 (1 MiB)
   */
  maxLineLength?: number;
  /**
   * Largest request body, in bytes: a larger `Content-Length` is refused with 413; a chunked
   * body that grows past it ends its run's input (in-flight items finish, the summary says why).
   * @default Infinity
   */
  maxBodyBytes?: number;
  /**
   * Attempts per item, the first included, when the caller sets no `max_attempts`.
   * @default 3
   */
  maxAttempts?: number;
  /**
   * Per-request timeout the provider was built with; sizes each run's in-flight ceiling.
   * @default 120000
   */
  timeoutMs?: number;
  /** Time source of the scheduler and the backoff waits. @default systemClock */
  clock?: Clock;
  /**
   * Shuts the app down gracefully: runs stop dispatching, their in-flight requests finish and
   * each stream ends with its summary; new runs get 503.
   */
  signal?: AbortSignal;
  /**
   * A cap the runtime puts on open outgoing requests per invocation (each run is one
   * invocation). Each run then keeps at most `maxOpenRequests` provider requests open, so its
   * rate can not pass `maxOpenRequests / latency`; the response says so up front (header
   * `x-mft-runtime-limit`) and the summary with the figures (`runtime_limit`). `null`: none.
   * @default on Cloudflare Workers (Hono's `getRuntimeKey() === "workerd"`)
   *   `{ runtime: "workerd", maxOpenRequests: 6 }`, elsewhere none
   */
  runtimeLimit?: RuntimeLimit | null;
  /**
   * Serves OpenAI's Batch API (`/v1/files`, `/v1/batches`, see `batch_api/routes.ts`) on this
   * storage, behind the same auth; its batches share this app's quota with runs, one lane each.
   * `onManager` receives the manager (to wait for batches on shutdown).
   * @default undefined (no Batch API)
   */
  batchApi?:
    & Pick<BatchApiOptions, "storage" | "maxFileBytes" | "checkpointMs" | "log" | "providerBatch">
    & { onManager?: (manager: BatchManager) => void };
}

/** A runtime's cap on open outgoing requests per invocation, see `ServerOptions.runtimeLimit`. */
export interface RuntimeLimit {
  /** Name of the runtime, e.g. `workerd`. */
  runtime: string;
  /** Most outgoing requests open at once; the runtime queues the rest. */
  maxOpenRequests: number;
}

/** `runtime_limit` in a run's summary: the cap, and the rate it allowed this run. */
export interface RuntimeLimitReport {
  runtime: string;
  max_open_requests: number;
  /** Mean time a provider request of this run was open, in ms; 0 when none was sent. */
  mean_latency_ms: number;
  /** `max_open_requests / mean latency`, in requests per second; null when none was sent. */
  achievable_rate: number | null;
  /** The same in words, with the rate asked for. */
  message: string;
}

/** Workers keep at most 6 outgoing connections open per invocation (Cloudflare's limits). */
const WORKERS_LIMIT: RuntimeLimit = { runtime: "workerd", maxOpenRequests: 6 };

function detectRuntimeLimit(): RuntimeLimit | null {
  return getRuntimeKey() === "workerd" ? WORKERS_LIMIT : null;
}

/** The last line of every `POST /v1/runs` response. */
export interface RunSummaryLine {
  summary: RunStats & {
    /** The run id, as in the `x-mft-run-id` response header. */
    id: string;
    /** Why the input ended early (body over the limit, upload broken), when it did. */
    error?: { code: string; message: string };
    /** Set when the runtime capped the run's open requests (Cloudflare Workers). */
    runtime_limit?: RuntimeLimitReport;
  };
}

/** One run in progress, as `GET /v1/stats` lists it. */
interface RunEntry {
  id: string;
  stats: RunStats;
  startedAt: string;
}

const DEFAULT_MAX_LINE_LENGTH = 1_048_576;

class BodyTooLargeError extends Error {
  override name = "BodyTooLargeError";
}

function assertPositive(name: string, value: number | undefined, integer: boolean): void {
  if (value === undefined) return;
  if (
    typeof value !== "number" || !(value > 0) ||
    (integer && !Number.isInteger(value) && value !== Infinity)
  ) {
    throw new RangeError(
      `Cannot create the server app as '${name}' must be a positive ${
        integer ? "integer" : "number"
      }: current value is ${value}`,
    );
  }
}

/** Counts bytes through; errors the stream once more than `max` have passed. */
function byteLimit(max: number): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > max) {
        controller.error(
          new BodyTooLargeError(`the request body is larger than the limit of ${max} bytes`),
        );
      } else {
        controller.enqueue(chunk);
      }
    },
  });
}

function describeInputError(error: unknown): { code: string; message: string } {
  const e = error as Error | undefined;
  if (e?.name === "BodyTooLargeError") return { code: "body_too_large", message: e.message };
  if (e?.name === "AbortError") return { code: "cancelled", message: "the run was cancelled" };
  return {
    code: "input_error",
    message: `reading the request body failed: ${e?.message ?? String(error)}`,
  };
}

function limitReport(
  limit: RuntimeLimit,
  latency: { total: number; count: number },
  asked: number | "auto",
): RuntimeLimitReport {
  const mean = latency.count > 0 ? latency.total / latency.count : 0;
  const achievable = mean > 0 ? Math.round((limit.maxOpenRequests * 100_000) / mean) / 100 : null;
  return {
    runtime: limit.runtime,
    max_open_requests: limit.maxOpenRequests,
    mean_latency_ms: Math.round(mean),
    achievable_rate: achievable,
    message: `${limit.runtime}: at most ${limit.maxOpenRequests} requests open per run; ${
      achievable === null
        ? "no request was sent"
        : `at ${Math.round(mean)} ms per request that allows at most ${achievable} req/s${
          typeof asked === "number" && achievable < asked
            ? `, below the ${asked} req/s asked for`
            : ` (asked for ${asked})`
        }`
    }`,
  };
}

/**
 * Creates the server app. Routes:
 * - `POST /v1/runs`: body NDJSON lines in any input format the CLI takes, read as a stream;
 *   `?max_attempts=N` (or header `x-mft-max-attempts`). Answers `application/x-ndjson`, one
 *   output or error record per line as each finishes (the CLI's file shapes), then one
 *   {@linkcode RunSummaryLine}. The run id is in the `x-mft-run-id` header. A client that
 *   disconnects cancels its run: nothing more is sent for it, its in-flight requests are aborted.
 * - `GET /v1/stats`: `{ rate, in_flight, queued, runs: [{ id, read, ok, failed, invalid,
 *   in_flight, retrying, started_at }] }`.
 * - `GET /healthz`: `{ "status": "ok" }`, without auth.
 * - `GET /`: the live page (HTML, no data); `GET /live`: its Server-Sent Events, with auth
 *   (see `live_monitor.ts`).
 *
 * Errors are JSON `{ "error": { "code", "message" } }`: 400 bad option or no body, 401 missing or
 * wrong token, 403 (without a token) a request a web page could have sent (a Host that is not
 * loopback, a cross-origin `Origin`: see `_browser_guard.ts`), 413 body over `maxBodyBytes`,
 * 503 shutting down.
 *
 * @param options The provider, the shared rate and the limits.
 * @returns A Hono app; mount it with `parent.route("/mft", createApp(...))` or serve `app.fetch`.
 * @throws {RangeError} when a numeric option is not positive.
 * @throws {TypeError} when `token` is empty or has characters a bearer token can not have.
 *
 * @example
 * ```ts
 * import { createApp } from "./app.ts";
 * import { createMockProvider } from "../providers/mock.ts";
 * const app = createApp({ provider: createMockProvider({ latencyMs: 1 }), rate: 100 });
 * const res = await app.request("/v1/runs", { method: "POST", body: '{"prompt":"hi"}\n' });
 * const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
 * lines.at(-1).summary.ok; // 1
 * ```
 */
export function createApp(options: ServerOptions): Hono {
  const { provider, clock, signal: appSignal } = options;
  if (typeof provider?.send !== "function") {
    throw new TypeError(`Expected 'provider' to be a Provider: current value is ${provider}`);
  }
  if (options.rate !== "auto") assertPositive("rate", options.rate, false);
  assertPositive("tpm", options.tpm, false);
  assertPositive("maxLineLength", options.maxLineLength, true);
  assertPositive("maxBodyBytes", options.maxBodyBytes, true);
  assertPositive("maxAttempts", options.maxAttempts, true);
  assertPositive("timeoutMs", options.timeoutMs, false);
  if (options.token !== undefined && (typeof options.token !== "string" || options.token === "")) {
    throw new TypeError("Expected 'token' to be a non-empty string or undefined");
  }
  if (options.token !== undefined && !isBearerToken(options.token)) {
    throw new TypeError(
      `Expected 'token' to be ${BEARER_TOKEN_CHARS}: the token given has other characters`,
    );
  }
  const rate = options.rate ?? provider.defaultRate;
  const maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
  const maxBodyBytes = options.maxBodyBytes ?? Infinity;
  const maxAttempts = options.maxAttempts ?? 3;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const runtimeLimit = options.runtimeLimit === undefined
    ? detectRuntimeLimit()
    : options.runtimeLimit;
  if (runtimeLimit) {
    assertPositive("runtimeLimit.maxOpenRequests", runtimeLimit.maxOpenRequests, true);
  }
  // One quota (slots, tokens, slow-down on 429s) for every run; each run is a lane of its
  // scheduler, so slots go round-robin between runs.
  const quota = options.quota ?? new Quota({ rate, tpm: options.tpm, clock });
  // One gate for every run: the first answer that shows the configuration works opens them all.
  const firstAnswers = new FirstAnswers();
  const scheduler = quota.scheduler;
  const runs = new Map<string, RunEntry>();
  const auth = options.token === undefined ? undefined : bearerGuard(options.token);

  const app = new Hono();
  // Without a token, first of all: refuse what a web page could send (cross-origin, rebound Host).
  if (!auth) app.use("*", browserGuard());
  app.onError(onApiError);
  app.notFound((c) => {
    throw apiError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`);
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  // The live page (`GET /`, `GET /live`): live_monitor.ts; `/live` has the API's auth.
  const live = createLiveMonitor({
    quota,
    auth,
    clock,
    provider,
    signal: appSignal,
  });
  app.route("/", live.app);

  if (auth) app.use("/v1/*", auth);

  if (options.batchApi) {
    const { onManager, ...batchOptions } = options.batchApi;
    const batches = createBatchApi({
      ...batchOptions,
      provider,
      quota,
      maxAttempts,
      timeoutMs,
      maxLineLength,
      maxInFlight: runtimeLimit?.maxOpenRequests,
      signal: appSignal,
      clock,
    });
    app.route("/v1", batches.app);
    batches.manager.start().catch((error) =>
      batchOptions.log?.(`batch API: cannot load ${batchOptions.storage.location}: ${error}`)
    );
    onManager?.(batches.manager);
  }

  app.get("/v1/stats", (c) => {
    let inFlight = 0;
    const list = [...runs.values()].map((r) => {
      inFlight += r.stats.inFlight;
      return {
        id: r.id,
        read: r.stats.read,
        ok: r.stats.ok,
        failed: r.stats.failed,
        invalid: r.stats.invalid,
        in_flight: r.stats.inFlight,
        retrying: r.stats.retrying,
        started_at: r.startedAt,
      };
    });
    return c.json({
      rate: scheduler.rate,
      in_flight: inFlight,
      queued: scheduler.waiting,
      runs: list,
    });
  });

  // A declared Content-Length over the limit is a 413 before anything is read; a chunked body
  // is counted as it streams (below).
  if (maxBodyBytes !== Infinity) {
    app.post(
      "/v1/runs",
      contentLengthLimit(maxBodyBytes, (c) => {
        const length = c.req.header("content-length");
        throw apiError(
          413,
          "body_too_large",
          `the request body is ${length} bytes, over the limit of ${maxBodyBytes}`,
        );
      }),
    );
  }
  app.post("/v1/runs", (c) => {
    const parsed = parseRunOptions(c.req.query(), c.req.raw.headers);
    if (!parsed.ok) throw apiError(400, parsed.code, parsed.message);
    const body = c.req.raw.body;
    if (body === null) {
      throw apiError(
        400,
        "empty_body",
        "the request body must be NDJSON lines (one request per line)",
      );
    }
    if (appSignal?.aborted) throw apiError(503, "shutting_down", "the server is shutting down");

    const id = crypto.randomUUID();
    const stop = new AbortController();
    const hard = new AbortController();
    const cancel = () => {
      const reason = new DOMException("the client disconnected", "AbortError");
      hard.abort(reason);
      stop.abort(reason);
    };
    const stopSignal = appSignal ? AbortSignal.any([stop.signal, appSignal]) : stop.signal;
    // The pipe's signal also cancels the body when the run is cancelled while waiting for a line.
    let bytes: ReadableStream<Uint8Array> = body;
    if (maxBodyBytes !== Infinity) {
      bytes = bytes.pipeThrough(byteLimit(maxBodyBytes), { signal: hard.signal });
    }
    const lines = bytes
      .pipeThrough(new TextDecoderStream(), { signal: hard.signal })
      .pipeThrough(new TextLineStream({ maxLineLength }));
    // Under a runtime cap, time every request: the summary reports the rate the cap allowed.
    const latency = { total: 0, count: 0 };
    const now = () => (clock ?? systemClock).now();
    const runProvider: Provider = runtimeLimit
      ? {
        name: provider.name,
        model: provider.model,
        defaultRate: provider.defaultRate,
        async send(item, sendOptions) {
          const started = now();
          try {
            return await provider.send(item, sendOptions);
          } finally {
            latency.total += now() - started;
            latency.count++;
          }
        },
      }
      : provider;
    const run = runRealtime(lines, {
      provider: runProvider,
      maxInFlight: runtimeLimit?.maxOpenRequests,
      quota,
      lane: { run: id },
      retry: { maxAttempts: parsed.options.maxAttempts ?? maxAttempts },
      timeoutMs,
      maxLineLength,
      stopSignal,
      signal: hard.signal,
      clock,
      firstAnswers,
      observer: live.observer,
    });
    runs.set(id, { id, stats: run.stats, startedAt: new Date().toISOString() });
    live.track(runs.get(id)!);

    c.header("content-type", "application/x-ndjson");
    c.header("cache-control", "no-store");
    c.header("x-content-type-options", "nosniff");
    c.header("x-accel-buffering", "no");
    c.header("x-mft-run-id", id);
    if (runtimeLimit) {
      c.header(
        "x-mft-runtime-limit",
        `${runtimeLimit.runtime}; max-open-requests=${runtimeLimit.maxOpenRequests}`,
      );
    }
    return stream(c, async (out) => {
      // A disconnect cancels the response body on Bun, Deno and Node, which ends up here.
      // (`request.signal` is not used: Deno aborts it after every successful response too.)
      out.onAbort(cancel);
      try {
        try {
          for await (const r of run.results) {
            await out.write(JSON.stringify(r.record) + "\n");
          }
        } catch {
          // The input failed; `run.done` says why, below.
        }
        let error: { code: string; message: string } | undefined;
        try {
          await run.done;
        } catch (e) {
          error = describeInputError(e);
        }
        const summary: RunSummaryLine = {
          summary: {
            id,
            ...run.stats,
            ...(error ? { error } : {}),
            ...(runtimeLimit
              ? { runtime_limit: limitReport(runtimeLimit, latency, run.stats.configuredRate) }
              : {}),
          },
        };
        await out.write(JSON.stringify(summary) + "\n");
      } finally {
        runs.delete(id);
      }
    });
  });

  return app;
}
