/**
 * A fake LLM provider speaking the OpenAI (Chat Completions, Responses) and Gemini
 * (`generateContent`) wire formats, with planned faults, for tests and benchmarks.
 *
 * The HTTP handling is a runtime-agnostic Hono app ({@link createMockApp}); {@link startMockProvider}
 * serves it with `Bun.serve` or `Deno.serve` on 127.0.0.1. Faults are planned per request by
 * `[[mock:...]]` directives in the last user message (see the README table in this file's JSDoc
 * of {@link createMockApp}), or at random with a seeded PRNG via `failureRate`.
 *
 * CLI: `bun scripts/mock_provider.ts [--port N] [--hostname H] [--latency MS] [--jitter MS]
 * [--failure-rate F] [--failure-status S] [--seed N] [--require-key K] [--no-record]` prints
 * `{"url":"http://127.0.0.1:PORT"}` and serves until SIGTERM/SIGINT.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import process from "node:process";
import { parseArgs } from "node:util";

/** Options of {@link startMockProvider} and {@link createMockApp}. */
export interface MockProviderOptions {
  /**
   * TCP port; 0 picks a free one. Ignored by {@link createMockApp}.
   * @default 0
   */
  port?: number;
  /**
   * Interface to listen on. Ignored by {@link createMockApp}.
   * @default "127.0.0.1"
   */
  hostname?: string;
  /**
   * Base latency of every provider request, in ms, applied before answering (errors too).
   * @default 0
   */
  latencyMs?: number;
  /**
   * Adds a uniform random `[0, latencyJitterMs)` ms to the base latency (seeded PRNG).
   * @default 0
   */
  latencyJitterMs?: number;
  /**
   * Fraction of requests without directives answered with `failureStatus`, drawn from a seeded
   * PRNG in arrival order.
   * @default 0
   */
  failureRate?: number;
  /**
   * Status of the random failures of `failureRate` (400..599).
   * @default 500
   */
  failureStatus?: number;
  /**
   * Seed of the PRNGs behind `failureRate` and `latencyJitterMs`.
   * @default 1
   */
  seed?: number;
  /**
   * When set, requests whose API key differs get 401 in the provider's error shape. OpenAI reads
   * `Authorization: Bearer K`; Gemini reads `x-goog-api-key` or `?key=`.
   * @default undefined (no check)
   */
  requireKey?: string;
  /**
   * Keep every {@link Arrival}. Stats are kept either way; turn this off for very long runs.
   * @default true
   */
  recordArrivals?: boolean;
}

/** One provider request as the mock saw it. */
export interface Arrival {
  /** Arrival time in ms since the mock was created (`performance.now()` based). */
  t: number;
  /** Request path without the query, e.g. `/v1/chat/completions`. */
  path: string;
  /** The `x-mft-id` request header, or null when absent. */
  id: string | null;
  /**
   * Status the mock answered (or will answer, once the latency has passed); 0 for a planned
   * connection reset; -1 for the few microseconds while the body is still being read.
   */
  status: number;
}

/** Arrival statistics of a mock. */
export interface MockStats {
  /** Number of provider requests since start or the last reset. */
  count: number;
  /** Most arrivals in any sliding window `[t, t + 1000)` ms. */
  maxPerWindow: number;
  /** Time of the first arrival (ms since start), 0 when none. */
  firstMs: number;
  /** Time of the last arrival (ms since start), 0 when none. */
  lastMs: number;
  /**
   * Mean arrival rate in requests/s: `(count - 1) / ((lastMs - firstMs) / 1000)`; 0 with fewer
   * than two arrivals or when they all share one timestamp (keeps the JSON finite).
   */
  rate: number;
}

/** A running mock provider, from {@link startMockProvider}. */
export interface MockProvider {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:43123`. */
  url: string;
  /** Copies of the recorded arrivals, in arrival order. */
  arrivals(): Arrival[];
  /** Current arrival statistics. */
  stats(): MockStats;
  /** Clears arrivals, stats and per-request attempt counters (the PRNGs keep their state). */
  reset(): void;
  /** Stops listening, closes open connections and cancels pending latency timers. */
  close(): Promise<void>;
}

/**
 * Most values of sorted `times` that fit in one window `[t, t + windowMs)`.
 *
 * Two points exactly `windowMs` apart fall in separate windows.
 *
 * @param times Non-decreasing times in ms.
 * @param windowMs Window length in ms.
 * @returns The maximum count, 0 for an empty array.
 * @throws {RangeError} When `windowMs` is not a positive finite number.
 *
 * @example
 * ```ts
 * maxPerWindow([0, 500, 999, 1000]); // 3
 * ```
 */
export function maxPerWindow(times: readonly number[], windowMs = 1000): number {
  if (!(windowMs > 0) || !Number.isFinite(windowMs)) {
    throw new RangeError(
      `Cannot count arrivals as 'windowMs' must be a positive finite number: current value is ${windowMs}`,
    );
  }
  let best = 0;
  let i = 0;
  for (let j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= windowMs) i++;
    if (j - i + 1 > best) best = j - i + 1;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Options

interface NormalizedOptions {
  port: number;
  hostname: string;
  latencyMs: number;
  latencyJitterMs: number;
  failureRate: number;
  failureStatus: number;
  seed: number;
  requireKey: string | undefined;
  recordArrivals: boolean;
}

function normalizeOptions(opts: MockProviderOptions = {}): NormalizedOptions {
  const o: NormalizedOptions = {
    port: opts.port ?? 0,
    hostname: opts.hostname ?? "127.0.0.1",
    latencyMs: opts.latencyMs ?? 0,
    latencyJitterMs: opts.latencyJitterMs ?? 0,
    failureRate: opts.failureRate ?? 0,
    failureStatus: opts.failureStatus ?? 500,
    seed: opts.seed ?? 1,
    requireKey: opts.requireKey,
    recordArrivals: opts.recordArrivals ?? true,
  };
  const fail = (name: string, want: string, value: unknown): never => {
    throw new RangeError(
      `Cannot start the mock provider as '${name}' must be ${want}: current value is ${value}`,
    );
  };
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    fail("port", "an integer in 0..65535", o.port);
  }
  if (typeof o.hostname !== "string" || o.hostname === "") {
    throw new TypeError(
      `Expected 'hostname' to be a non-empty string: current value is ${o.hostname}`,
    );
  }
  if (!Number.isFinite(o.latencyMs) || o.latencyMs < 0) {
    fail("latencyMs", "a finite number >= 0", o.latencyMs);
  }
  if (!Number.isFinite(o.latencyJitterMs) || o.latencyJitterMs < 0) {
    fail("latencyJitterMs", "a finite number >= 0", o.latencyJitterMs);
  }
  if (!(o.failureRate >= 0 && o.failureRate <= 1)) {
    fail("failureRate", "a number in [0, 1]", o.failureRate);
  }
  if (!Number.isInteger(o.failureStatus) || o.failureStatus < 400 || o.failureStatus > 599) {
    fail("failureStatus", "an integer in 400..599", o.failureStatus);
  }
  if (!Number.isInteger(o.seed)) fail("seed", "an integer", o.seed);
  if (o.requireKey !== undefined && typeof o.requireKey !== "string") {
    throw new TypeError(`Expected 'requireKey' to be a string: current value is ${o.requireKey}`);
  }
  return o;
}

/** mulberry32: tiny, fast and good enough to make fault injection reproducible from a seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// State

/**
 * Incremental sliding-window counter, so stats stay O(1) per request and work even with
 * `recordArrivals: false` (benchmarks send hundreds of thousands of requests).
 */
class ArrivalWindow {
  #times: number[] = [];
  #head = 0;
  count = 0;
  first = 0;
  last = 0;
  max = 0;

  add(t: number): void {
    if (this.count === 0) this.first = t;
    this.count++;
    this.last = t;
    this.#times.push(t);
    while (t - this.#times[this.#head] >= 1000) this.#head++;
    const inWindow = this.#times.length - this.#head;
    if (inWindow > this.max) this.max = inWindow;
    // Drop the consumed prefix now and then instead of shifting on every request.
    if (this.#head > 4096 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
  }

  stats(): MockStats {
    const span = this.last - this.first;
    return {
      count: this.count,
      maxPerWindow: this.max,
      firstMs: this.first,
      lastMs: this.last,
      rate: this.count > 1 && span > 0 ? (this.count - 1) / (span / 1000) : 0,
    };
  }
}

interface MockState {
  opts: NormalizedOptions;
  start: number;
  arrivals: Arrival[];
  window: ArrivalWindow;
  /** Attempts per directive-bearing prompt; prompts without directives are not counted. */
  attempts: Map<string, number>;
  /** Wakers of pending latency timers, so close() can end them all at once. */
  sleepers: Set<() => void>;
  failureRng: () => number;
  jitterRng: () => number;
  seq: number;
  /** Which server runs the app; see {@link resetResponse} and {@link handle}. */
  host: Host;
}

/** `app`: in-process `app.request()`/`app.fetch` with no socket of ours. */
type Host = "app" | "bun" | "deno";

function createState(opts: NormalizedOptions, host: Host): MockState {
  return {
    opts,
    start: performance.now(),
    arrivals: [],
    window: new ArrivalWindow(),
    attempts: new Map(),
    sleepers: new Set(),
    failureRng: mulberry32(opts.seed),
    // A separate stream so that turning jitter on does not change which requests fail.
    jitterRng: mulberry32(opts.seed ^ 0x5bd1e995),
    seq: 0,
    host,
  };
}

function resetState(state: MockState): void {
  state.arrivals = [];
  state.window = new ArrivalWindow();
  state.attempts.clear();
}

/** Waits with a timer (never busy-waits); ends early on client abort or close(). */
function sleep(state: MockState, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      state.sleepers.delete(wake);
      signal?.removeEventListener("abort", wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    state.sleepers.add(wake);
    signal?.addEventListener("abort", wake, { once: true });
  });
}

function wakeAll(state: MockState): void {
  for (const wake of [...state.sleepers]) wake();
}

// ---------------------------------------------------------------------------------------------
// Directives

/** What the mock does with one request. */
type Outcome =
  | { kind: "ok" }
  | { kind: "error"; status: number; quota?: boolean; message: string }
  | { kind: "reset" }
  | { kind: "badjson" };

type Action = number | "reset" | "badjson" | "insufficient_quota";

interface Directives {
  count: number;
  /** Outcome directives in text order; `upTo` limits them to the first attempts (fail=K). */
  actions: { action: Action; upTo: number }[];
  latencyMs?: number;
  retryAfter?: string;
  retryAfterMs?: string;
  retryDelay?: string;
  unknown?: string;
}

const DIRECTIVE = /\[\[mock:([^\]]*)\]\]/g;
const NUMBER = /^\d+(\.\d+)?$/;

function parseAction(s: string): Action | undefined {
  if (s === "reset" || s === "badjson" || s === "insufficient_quota") return s;
  if (/^\d{3}$/.test(s)) {
    const status = Number(s);
    if (status >= 400 && status <= 599) return status;
  }
  return undefined;
}

function parseDirectives(text: string): Directives {
  const d: Directives = { count: 0, actions: [] };
  if (!text.includes("[[mock:")) return d;
  for (const m of text.matchAll(DIRECTIVE)) {
    d.count++;
    const body = m[1].trim();
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? "" : body.slice(eq + 1);
    const action = eq < 0 ? parseAction(body) : undefined;
    if (action !== undefined) {
      d.actions.push({ action, upTo: Infinity });
    } else if (name === "fail" && /^\d+:/.test(value)) {
      const colon = value.indexOf(":");
      const failAction = parseAction(value.slice(colon + 1));
      if (failAction === undefined) d.unknown ??= m[0];
      else d.actions.push({ action: failAction, upTo: Number(value.slice(0, colon)) });
    } else if (name === "latency" && NUMBER.test(value)) {
      d.latencyMs = Number(value);
    } else if (name === "retry-after" && NUMBER.test(value)) {
      d.retryAfter = value;
    } else if (name === "retry-after-ms" && NUMBER.test(value)) {
      d.retryAfterMs = value;
    } else if (name === "retry-delay" && NUMBER.test(value)) {
      d.retryDelay = value;
    } else {
      d.unknown ??= m[0];
    }
  }
  return d;
}

function actionOutcome(action: Action, why: string): Outcome {
  if (action === "reset") return { kind: "reset" };
  if (action === "badjson") return { kind: "badjson" };
  if (action === "insufficient_quota") {
    return {
      kind: "error",
      status: 429,
      quota: true,
      message: "You exceeded your current quota, please check your plan and billing details.",
    };
  }
  return { kind: "error", status: action, message: `mock: planned ${action} (${why})` };
}

// ---------------------------------------------------------------------------------------------
// Wire formats

interface Extracted {
  model: string;
  /** Text of the last user message: source of the answer and of the directives. */
  userText: string;
  /** Characters of all prompt text, for the prompt token count. */
  promptChars: number;
}

interface Dialect {
  /** Error body in the provider's shape. */
  error(status: number, message: string, extra: { quota?: boolean; retryDelay?: string }): unknown;
  /** Body of a successful answer. */
  ok(model: string, text: string, p: number, c: number, id: string): unknown;
  /** Truncated JSON of the `badjson` fault. */
  badJson: string;
  /** Reads the parsed body; returns an error message for a request the provider would reject. */
  extract(body: unknown, pathModel: string): Extracted | string;
  /** API key the client sent. */
  key(c: Context): string | undefined;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Text of an OpenAI content value: a string or an array of `{type:"text"|"input_text", text}`. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const texts: string[] = [];
  for (const part of content) {
    if (isObject(part) && typeof part.text === "string") texts.push(part.text);
  }
  return texts.join("\n");
}

function openAiError(status: number, message: string, extra: { quota?: boolean }): unknown {
  let type = status >= 500 ? "server_error" : "invalid_request_error";
  let code: string | null = null;
  if (status === 401) code = "invalid_api_key";
  if (status === 429) {
    type = extra.quota ? "insufficient_quota" : "requests";
    code = extra.quota ? "insufficient_quota" : "rate_limit_exceeded";
  }
  return { error: { message, type, param: null, code } };
}

function bearer(c: Context): string | undefined {
  const auth = c.req.header("authorization");
  return auth?.startsWith("Bearer ") ? auth.slice(7).trim() : undefined;
}

const openAiChat: Dialect = {
  error: openAiError,
  ok: (model, text, p, c, id) => ({
    id: `chatcmpl-${id}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{
      index: 0,
      message: { role: "assistant", content: text },
      finish_reason: "stop",
    }],
    usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
  }),
  badJson: '{"choices": [',
  extract(body) {
    if (!isObject(body)) return "The request body must be a JSON object.";
    if (typeof body.model !== "string" || body.model === "") {
      return "you must provide a model parameter";
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return "'messages' must be a non-empty array.";
    }
    let userText = "";
    let promptChars = 0;
    for (const m of body.messages) {
      if (!isObject(m)) continue;
      const text = contentText(m.content);
      promptChars += text.length;
      if (m.role === "user") userText = text;
    }
    return { model: body.model, userText, promptChars };
  },
  key: bearer,
};

const openAiResponses: Dialect = {
  error: openAiError,
  ok: (model, text, p, c, id) => ({
    id: `resp_${id}`,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status: "completed",
    model,
    output: [{
      type: "message",
      id: `msg_${id}`,
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text, annotations: [] }],
    }],
    output_text: text,
    usage: { input_tokens: p, output_tokens: c, total_tokens: p + c },
  }),
  badJson: '{"output": [',
  extract(body) {
    if (!isObject(body)) return "The request body must be a JSON object.";
    if (typeof body.model !== "string" || body.model === "") {
      return "you must provide a model parameter";
    }
    // `instructions` is the system prompt of this API, so it counts as prompt text.
    let promptChars = typeof body.instructions === "string" ? body.instructions.length : 0;
    let userText = "";
    if (typeof body.input === "string") {
      userText = body.input;
      promptChars += userText.length;
    } else if (Array.isArray(body.input)) {
      for (const item of body.input) {
        if (!isObject(item)) continue;
        const text = contentText(item.content);
        promptChars += text.length;
        if (item.role === "user") userText = text;
      }
    } else {
      return "'input' must be a string or an array.";
    }
    return { model: body.model, userText, promptChars };
  },
  key: bearer,
};

const GEMINI_STATUS: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  408: "DEADLINE_EXCEEDED",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  501: "UNIMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

function partsText(content: unknown): string {
  return isObject(content) ? contentText(content.parts) : "";
}

const gemini: Dialect = {
  error(status, message, extra) {
    const details: unknown[] = [];
    if (status === 401) {
      details.push({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "API_KEY_INVALID",
        domain: "googleapis.com",
      });
    }
    if (extra.retryDelay !== undefined) {
      details.push({
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        retryDelay: `${extra.retryDelay}s`,
      });
    }
    return {
      error: { code: status, message, status: GEMINI_STATUS[status] ?? "UNKNOWN", details },
    };
  },
  ok: (model, text, p, c, id) => ({
    candidates: [{
      content: { role: "model", parts: [{ text }] },
      finishReason: "STOP",
      index: 0,
    }],
    usageMetadata: { promptTokenCount: p, candidatesTokenCount: c, totalTokenCount: p + c },
    modelVersion: model,
    responseId: id,
  }),
  badJson: '{"candidates": [',
  extract(body, pathModel) {
    if (!isObject(body)) return "Invalid JSON payload received. Expected an object.";
    if (!Array.isArray(body.contents) || body.contents.length === 0) {
      return "* GenerateContentRequest.contents: contents is not specified";
    }
    // The REST API accepts both spellings of the system prompt.
    const system = body.systemInstruction ?? body.system_instruction;
    let promptChars = partsText(system).length;
    let userText = "";
    for (const content of body.contents) {
      const text = partsText(content);
      promptChars += text.length;
      if (isObject(content) && (content.role === undefined || content.role === "user")) {
        userText = text;
      }
    }
    return { model: pathModel, userText, promptChars };
  },
  key: (c) => c.req.header("x-goog-api-key") ?? c.req.query("key"),
};

// ---------------------------------------------------------------------------------------------
// The app

const ANSWER_PREFIX = "mock answer: ";

/**
 * The `reset` fault. Neither Bun.serve nor Deno.serve lets a handler destroy its socket, so:
 *
 * - Bun: a body that errors before its first byte. Bun.serve then drops the TCP connection
 *   (RST) without a status line, so any client's fetch rejects (Bun: `ECONNRESET`, Deno/Node:
 *   `TypeError: fetch failed`). `error()` without a reason keeps Bun from logging every reset.
 * - In process (`app.request()`, `app.fetch`): the same body, erroring with a TypeError; the
 *   Response resolves and reading its body rejects.
 * - Deno.serve always sends the status line first, so the closest is a body that ends short of
 *   its `content-length`: the client's fetch resolves with 200 and reading the body rejects.
 *   An erroring stream would do the same but Deno logs it; the short body is silent.
 */
function resetResponse(host: Host): Response {
  if (host === "deno") {
    return new Response(
      new ReadableStream({
        start(controller) {
          controller.close();
        },
      }),
      { headers: { "content-type": "application/json", "content-length": "64" } },
    );
  }
  // In process there is no log to keep quiet, and a reason tells the reader what happened.
  const reason = host === "app" ? new TypeError("mock: connection reset") : undefined;
  return new Response(
    new ReadableStream({
      start(controller) {
        controller.error(reason);
      },
    }),
  );
}

interface Plan {
  outcome: Outcome;
  latencyMs: number;
  headers: Record<string, string>;
  retryDelay?: string;
}

/** Base latency plus jitter, for every provider request that has no latency directive. */
function baseLatency(state: MockState): number {
  const { latencyMs, latencyJitterMs } = state.opts;
  return latencyJitterMs > 0 ? latencyMs + state.jitterRng() * latencyJitterMs : latencyMs;
}

function plan(state: MockState, parsed: Extracted): Plan {
  const d = parseDirectives(parsed.userText);
  const { opts } = state;
  let latencyMs = baseLatency(state);
  const headers: Record<string, string> = {};
  if (d.count === 0) {
    // Only plain requests draw, so adding a directive test does not shift the random failures.
    if (opts.failureRate > 0 && state.failureRng() < opts.failureRate) {
      return {
        outcome: {
          kind: "error",
          status: opts.failureStatus,
          message: `mock: random failure (failureRate ${opts.failureRate})`,
        },
        latencyMs,
        headers,
      };
    }
    return { outcome: { kind: "ok" }, latencyMs, headers };
  }
  const key = `${parsed.model}\u0000${parsed.userText}`;
  const attempt = (state.attempts.get(key) ?? 0) + 1;
  state.attempts.set(key, attempt);
  if (d.latencyMs !== undefined) latencyMs = d.latencyMs;
  if (d.retryAfter !== undefined) headers["retry-after"] = d.retryAfter;
  if (d.retryAfterMs !== undefined) headers["retry-after-ms"] = d.retryAfterMs;
  let outcome: Outcome = { kind: "ok" };
  if (d.unknown !== undefined) {
    // A typo in a test should fail loudly rather than silently succeed.
    outcome = { kind: "error", status: 400, message: `mock: unknown directive ${d.unknown}` };
  } else {
    const hit = d.actions.find((a) => attempt <= a.upTo);
    if (hit) outcome = actionOutcome(hit.action, `attempt ${attempt}`);
  }
  return { outcome, latencyMs, headers, retryDelay: d.retryDelay };
}

function nextId(state: MockState): string {
  state.seq++;
  return `mock${state.start.toString(36).replace(".", "")}${state.seq.toString(36)}`;
}

function json(body: unknown, status: number, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

async function handle(
  state: MockState,
  dialect: Dialect,
  c: Context,
  pathModel = "",
): Promise<Response> {
  const arrival: Arrival = {
    t: performance.now() - state.start,
    path: c.req.path,
    id: c.req.header("x-mft-id") ?? null,
    status: -1,
  };
  // Recorded before the body is read so that arrivals stay sorted by t.
  if (state.opts.recordArrivals) state.arrivals.push(arrival);
  state.window.add(arrival.t);

  const id = nextId(state);
  const baseHeaders: Record<string, string> = dialect === gemini ? {} : { "x-request-id": id };
  let p: Plan;
  let parsed: Extracted | undefined;
  const { requireKey } = state.opts;
  if (requireKey !== undefined && dialect.key(c) !== requireKey) {
    p = {
      outcome: {
        kind: "error",
        status: 401,
        message: dialect === gemini
          ? "API key not valid. Please pass a valid API key."
          : "Incorrect API key provided.",
      },
      latencyMs: baseLatency(state),
      headers: {},
    };
  } else {
    let body: unknown;
    let bad: string | undefined;
    try {
      body = JSON.parse(await c.req.text());
    } catch (e) {
      bad = `We could not parse the JSON body of your request. (${(e as Error).message})`;
    }
    if (bad === undefined) {
      const x = dialect.extract(body, pathModel);
      if (typeof x === "string") bad = x;
      else parsed = x;
    }
    p = parsed ? plan(state, parsed) : {
      outcome: { kind: "error", status: 400, message: bad! },
      latencyMs: baseLatency(state),
      headers: {},
    };
  }

  const { outcome } = p;
  arrival.status = outcome.kind === "reset" ? 0 : outcome.kind === "error" ? outcome.status : 200;
  // Deno.serve (legacy mode) aborts request.signal on every successful response and warns when
  // it is used, so there the timers are only ended by their own expiry or by close().
  await sleep(state, p.latencyMs, state.host === "deno" ? undefined : c.req.raw.signal);

  switch (outcome.kind) {
    case "reset":
      return resetResponse(state.host);
    case "badjson":
      return new Response(dialect.badJson, {
        status: 200,
        headers: { "content-type": "application/json", ...baseHeaders },
      });
    case "error":
      return json(
        dialect.error(outcome.status, outcome.message, {
          quota: outcome.quota,
          retryDelay: p.retryDelay,
        }),
        outcome.status,
        { ...baseHeaders, ...p.headers },
      );
    case "ok": {
      const { model, userText, promptChars } = parsed!;
      const text = ANSWER_PREFIX + userText.slice(0, 200);
      const body = dialect.ok(
        model,
        text,
        Math.ceil(promptChars / 4),
        Math.ceil(text.length / 4),
        id,
      );
      return json(body, 200, baseHeaders);
    }
  }
}

function buildMock(
  options: MockProviderOptions | undefined,
  host: Host,
): { app: Hono; state: MockState } {
  const state = createState(normalizeOptions(options), host);
  const app = new Hono();

  app.post("/v1/chat/completions", (c) => handle(state, openAiChat, c));
  app.post("/v1/responses", (c) => handle(state, openAiResponses, c));
  // Gemini puts the method after a colon (`models/gemini-2.0-flash:generateContent`), which
  // Hono's `:param` syntax cannot split, so one greedy param takes both and we split ourselves.
  app.post("/:version{v1beta|v1}/models/:modelAction{.+}", (c) => {
    const modelAction = c.req.param("modelAction");
    const colon = modelAction.lastIndexOf(":");
    if (colon < 0 || modelAction.slice(colon + 1) !== "generateContent") {
      return json(
        gemini.error(404, `mock: no such method ${c.req.path}`, {}),
        404,
        {},
      );
    }
    return handle(state, gemini, c, modelAction.slice(0, colon));
  });

  app.get("/__mock/arrivals", (c) => c.json({ arrivals: state.arrivals }));
  app.get("/__mock/stats", (c) => c.json(state.window.stats()));
  app.post("/__mock/reset", (c) => {
    resetState(state);
    return c.json({ ok: true });
  });

  app.notFound((c) => {
    const message = `mock: no route for ${c.req.method} ${c.req.path}`;
    return c.req.path.startsWith("/v1beta/")
      ? json(gemini.error(404, message, {}), 404, {})
      : json(openAiError(404, message, {}), 404, {});
  });
  app.onError((err) => json(openAiError(500, `mock: internal error: ${err.message}`, {}), 500, {}));
  return { app, state };
}

/**
 * The mock's Hono app, for `app.request()` tests without a socket.
 *
 * Routes: `POST /v1/chat/completions`, `POST /v1/responses`,
 * `POST /v1beta/models/{model}:generateContent` (also `/v1/models/...`), and the control routes
 * `GET /__mock/arrivals`, `GET /__mock/stats`, `POST /__mock/reset`.
 *
 * Directives in the last user message text, any number of them:
 *
 * | directive | effect |
 * |---|---|
 * | `[[mock:NNN]]` (400..599) | always that status, e.g. 429, 500, 503, 400, 401, 408, 409 |
 * | `[[mock:insufficient_quota]]` | 429 with OpenAI `code`/`type` `insufficient_quota` |
 * | `[[mock:reset]]` | connection dropped without a response (arrival status 0) |
 * | `[[mock:badjson]]` | 200 with truncated JSON |
 * | `[[mock:fail=K:X]]` | the first K attempts do X (status, `reset`, `badjson`, `insufficient_quota`), then succeed |
 * | `[[mock:latency=MS]]` | this request's latency, replacing base latency and jitter |
 * | `[[mock:retry-after=S]]` / `[[mock:retry-after-ms=N]]` | `Retry-After` / `retry-after-ms` headers on errors |
 * | `[[mock:retry-delay=N]]` | Gemini `RetryInfo` detail `retryDelay: "Ns"` on errors |
 *
 * The attempt number counts arrivals with the same model and user text, from 1; requests
 * refused before their body is read (401 for the key, 400 for the JSON) do not count. Outcome
 * directives are tried in text order; the first that applies to this attempt wins. An unknown
 * directive answers 400, so a typo in a test fails loudly.
 *
 * @param options Fault and latency settings; `port` and `hostname` are ignored.
 * @returns A Hono app whose `fetch` serves the mock.
 * @throws {RangeError} On invalid options.
 *
 * @example
 * ```ts
 * const app = createMockApp();
 * const res = await app.request("/v1/chat/completions", {
 *   method: "POST",
 *   body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
 * });
 * (await res.json()).choices[0].message.content; // "mock answer: hi"
 * ```
 */
export function createMockApp(options?: MockProviderOptions): Hono {
  return buildMock(options, "app").app;
}

/**
 * Starts the mock provider on a real socket: `Bun.serve` under Bun, `Deno.serve` under Deno.
 *
 * @param options Port, latency and fault settings.
 * @returns The running mock; call `close()` when done.
 * @throws {RangeError} On invalid options.
 * @throws {Error} When neither Bun nor Deno runs this code.
 *
 * @example
 * ```ts
 * const mock = await startMockProvider({ latencyMs: 50 });
 * await fetch(`${mock.url}/v1/chat/completions`, { method: "POST", body: "{}" });
 * mock.stats().count; // 1
 * await mock.close();
 * ```
 */
export function startMockProvider(options?: MockProviderOptions): Promise<MockProvider> {
  // A promise even though both servers bind synchronously, so a later runtime that binds
  // asynchronously needs no API change; option errors reject rather than throw.
  try {
    return Promise.resolve(serve(options));
  } catch (e) {
    return Promise.reject(e);
  }
}

function serve(options: MockProviderOptions | undefined): MockProvider {
  const runtime: Host | undefined = "Bun" in globalThis
    ? "bun"
    : "Deno" in globalThis
    ? "deno"
    : undefined;
  if (runtime === undefined) {
    throw new Error("Cannot start the mock provider: it needs Bun or Deno (globalThis.Bun/Deno)");
  }
  const { app, state } = buildMock(options, runtime);
  const { hostname, port } = state.opts;
  let boundPort: number;
  let stop: () => Promise<void>;

  if (runtime === "bun") {
    const server = Bun.serve({
      hostname,
      port,
      // Bun closes a connection idle for 10 s by default, and a request waiting on its
      // latency counts as idle; 0 turns that off so 30 s latencies survive.
      idleTimeout: 0,
      fetch: (req) => app.fetch(req),
    });
    boundPort = server.port!;
    stop = () => server.stop(true);
  } else {
    const server = Deno.serve({ hostname, port, onListen() {} }, (req) => app.fetch(req));
    boundPort = server.addr.port;
    stop = () => server.shutdown();
  }

  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${boundPort}`,
    arrivals: () => state.arrivals.map((a) => ({ ...a })),
    stats: () => state.window.stats(),
    reset: () => resetState(state),
    close() {
      closing ??= (async () => {
        // Wake sleepers first: Deno's shutdown waits for in-flight handlers to finish.
        wakeAll(state);
        await stop();
        wakeAll(state);
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CLI

function numberArg(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new TypeError(`Expected --${name} to be a number: current value is ${value}`);
  }
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      hostname: { type: "string" },
      latency: { type: "string" },
      jitter: { type: "string" },
      "failure-rate": { type: "string" },
      "failure-status": { type: "string" },
      seed: { type: "string" },
      "require-key": { type: "string" },
      "no-record": { type: "boolean" },
    },
    strict: true,
  });
  const mock = await startMockProvider({
    port: numberArg("port", values.port),
    hostname: values.hostname,
    latencyMs: numberArg("latency", values.latency),
    latencyJitterMs: numberArg("jitter", values.jitter),
    failureRate: numberArg("failure-rate", values["failure-rate"]),
    failureStatus: numberArg("failure-status", values["failure-status"]),
    seed: numberArg("seed", values.seed),
    requireKey: values["require-key"],
    recordArrivals: !values["no-record"],
  });
  console.log(JSON.stringify({ url: mock.url }));
  const shutdown = async () => {
    await mock.close();
    process.exit(0);
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

if (import.meta.main) {
  try {
    await main(process.argv.slice(2));
  } catch (e) {
    console.error(`mock_provider: ${(e as Error).message}`);
    process.exit(2);
  }
}
