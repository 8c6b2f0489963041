/**
 * A fake LLM provider speaking the OpenAI (Chat Completions, Responses) and Gemini
 * (`generateContent`) wire formats, with planned faults, for tests and benchmarks.
 *
 * The HTTP handling is a runtime-agnostic Hono app ({@link createMockApp}); {@link startMockProvider}
 * serves it with `Bun.serve` or `Deno.serve` on 127.0.0.1. Faults are planned per request by
 * `[[mock:...]]` directives in the last user message (see the README table in this file's JSDoc
 * of {@link createMockApp}), or at random with a seeded PRNG via `failureRate`.
 *
 * CLI: `bun scripts/start_mock_provider.ts [--port N] [--hostname H] [--latency MS] [--jitter MS]
 * [--failure-rate F] [--failure-status S] [--seed N] [--require-key K] [--no-record]
 * [--quota-requests N [--quota-window MS] [--quota-kind sliding|fixed] [--quota-retry-after S]
 * [--quota-detail one|many|none]] [--daily-quota N] [--token-quota N [--token-window MS]
 * [--token-count prompt|request|input] [--token-headers]] [--models A,B] [--failure-retry-after S]`
 * prints `{"url":"http://127.0.0.1:PORT"}` and serves until SIGTERM/SIGINT. Quotas (provider
 * 429s with retry hints and `x-ratelimit-*` headers) are described at {@link createMockApp}.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { runMain, serveUntilSignal } from "./_command_line.ts";
import { parseArgs } from "node:util";
import { startServer } from "../../src/adapter/listen.ts";
import { baseLatency, type Outcome, type Plan, plan, resetResponse } from "./provider/faults.ts";
import {
  type Dialect,
  type Extracted,
  gemini,
  json,
  openAiChat,
  openAiError,
  openAiResponses,
} from "./provider/formats.ts";
import {
  DEFAULT_MAX_TOKENS,
  type MockProviderOptions,
  normalizeOptions,
  type RequestQuota,
  type TokenAcceptance,
  type TokenCount,
} from "./provider/options.ts";
import {
  admit,
  checkTokens,
  quotaPattern,
  quotaResponse,
  rateLimitHeaders,
  release,
  tokenCost,
} from "./provider/quotas.ts";
import { type Api, modelRefusal, realBody, realStatus } from "./provider/real_answers.ts";
import {
  createState,
  type Host,
  type MockState,
  type QuotaSnapshot,
  quotaSnapshot,
  resetState,
  sleep,
  wakeAll,
} from "./provider/state.ts";
import type { Arrival, MockStats } from "./provider/windows.ts";

export {
  DEFAULT_MAX_TOKENS,
  type MockProviderOptions,
  type RequestQuota,
  type TokenAcceptance,
  type TokenCount,
  type TokenQuota,
} from "./provider/options.ts";
export { type Arrival, maxPerWindow, type MockStats } from "./provider/windows.ts";
export { type QuotaSnapshot } from "./provider/state.ts";
export { formatResetDuration } from "./provider/quotas.ts";

/** A running mock provider, from {@link startMockProvider}. */
export interface MockProvider {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:43123`. */
  url: string;
  /** Copies of the recorded arrivals, in arrival order. */
  arrivals(): Arrival[];
  /** Current arrival statistics. */
  stats(): MockStats;
  /** Current quota usage (as `GET /__mock/quota`). */
  quota(): QuotaSnapshot;
  /**
   * Copies of the accepted requests' token costs, in acceptance order, to check token windows
   * with. Empty with `recordArrivals: false`.
   */
  tokensAccepted(): TokenAcceptance[];
  /**
   * Clears arrivals, stats, quota usage and per-request attempt counters (the PRNGs keep their
   * state).
   */
  reset(): void;
  /** Stops listening, closes open connections and cancels pending latency timers. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The app

const ANSWER_PREFIX = "mock answer: ";

function nextId(state: MockState): string {
  state.seq++;
  return `mock${state.start.toString(36).replace(".", "")}${state.seq.toString(36)}`;
}

/** The mock answer, cut to `maxTokens * 4` characters (our 4 characters per token). */
function answerText(userText: string, maxTokens: number): { text: string; cut: boolean } {
  const text = ANSWER_PREFIX + userText.slice(0, 200);
  const maxChars = maxTokens * 4;
  if (text.length <= maxChars) return { text, cut: false };
  let end = maxChars;
  // Keep a surrogate pair whole rather than end on half of it.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return { text: text.slice(0, end), cut: true };
}

function statusOf(outcome: Outcome, api: Api): number {
  if (outcome.kind === "real") return realStatus(api, outcome.name);
  return outcome.kind === "reset" ? 0 : outcome.kind === "error" ? outcome.status : 200;
}

function apiOf(dialect: Dialect): Api {
  return dialect === gemini
    ? "gemini"
    : dialect === openAiChat
    ? "openai-chat"
    : "openai-responses";
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
  // Captured, like the quota state below, so that a reset() mid-request leaves the new ones be.
  const stats = state.window;
  stats.add(arrival.t);
  const settle = (status: number) => {
    arrival.status = status;
    stats.answered(status, arrival.t);
  };

  const id = nextId(state);
  const openAi = dialect !== gemini;
  const baseHeaders: Record<string, string> = openAi ? { "x-request-id": id } : {};
  let p: Plan;
  let parsed: Extracted | undefined;
  /** `x-ratelimit-*` as of the decision, for OpenAI 2xx and 429 answers. */
  let limitHeaders: Record<string, string> = {};
  const { requireKey } = state.opts;
  if (requireKey !== undefined && dialect.key(c) !== requireKey && dialect === gemini) {
    // Gemini's real answer to a bad key is a 400 with ErrorInfo API_KEY_INVALID, not a 401.
    p = { outcome: { kind: "real", name: "bad_key" }, latencyMs: baseLatency(state), headers: {} };
  } else if (requireKey !== undefined && dialect.key(c) !== requireKey) {
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
    // The quotas that need no body are decided now, in the arrival's tick: see RequestWindow.
    const quota = state.quota;
    const hold = admit(state, quota, arrival.t);
    if (!("slot" in hold)) {
      settle(429);
      const rl = openAi ? rateLimitHeaders(state, quota, arrival.t) : {};
      return quotaResponse(
        dialect,
        hold,
        pathModel,
        { ...baseHeaders, ...rl },
        quotaPattern(state.opts),
      );
    }
    let body: unknown;
    let bad: string | undefined;
    let bodyBytes = 0;
    try {
      const raw = await c.req.text();
      bodyBytes = new TextEncoder().encode(raw).length;
      body = JSON.parse(raw);
    } catch (e) {
      bad = `We could not parse the JSON body of your request. (${(e as Error).message})`;
    }
    if (bad === undefined) {
      const x = dialect.extract(body, pathModel);
      if (typeof x === "string") bad = x;
      else parsed = x;
    }
    if (parsed === undefined) {
      release(hold);
      p = {
        outcome: { kind: "error", status: 400, message: bad! },
        latencyMs: baseLatency(state),
        headers: {},
      };
    } else {
      const now = performance.now() - state.start;
      const cost = tokenCost(state.opts.tokenQuota?.count ?? "prompt", parsed, bodyBytes);
      const refused = checkTokens(state, quota, now, cost);
      if (refused) {
        release(hold);
        settle(429);
        const rl = openAi ? rateLimitHeaders(state, quota, now) : {};
        return quotaResponse(dialect, refused, parsed.model, { ...baseHeaders, ...rl });
      }
      // Only now, so that a refused request is not an attempt and draws no random failure.
      const refusal = modelRefusal(apiOf(dialect), parsed.model, body, state.opts.knownModels);
      p = refusal
        ? { outcome: refusal, latencyMs: baseLatency(state), headers: {} }
        : plan(state, parsed);
      if (statusOf(p.outcome, apiOf(dialect)) === 200) {
        quota.tokens.add(now, cost);
        if (state.opts.recordArrivals) quota.log.push({ t: now, tokens: cost, id: arrival.id });
      } else {
        release(hold);
      }
      if (openAi) limitHeaders = rateLimitHeaders(state, quota, now);
    }
  }

  const { outcome } = p;
  settle(statusOf(outcome, apiOf(dialect)));
  // Deno.serve (legacy mode) aborts request.signal on every successful response and warns when
  // it is used, so there the timers are only ended by their own expiry or by close().
  await sleep(state, p.latencyMs, state.host === "deno" ? undefined : c.req.raw.signal);

  switch (outcome.kind) {
    case "reset":
      return resetResponse(state.host);
    case "real": {
      const body = realBody(apiOf(dialect), outcome, {
        model: parsed?.model || pathModel,
        id,
        promptTokens: Math.ceil((parsed?.promptChars ?? 0) / 4),
        maxTokens: parsed?.maxTokens ?? DEFAULT_MAX_TOKENS,
      });
      return json(body, realStatus(apiOf(dialect), outcome.name), {
        ...baseHeaders,
        ...limitHeaders,
      });
    }
    case "badjson":
      return new Response(dialect.badJson, {
        status: 200,
        headers: { "content-type": "application/json", ...baseHeaders, ...limitHeaders },
      });
    case "error":
      return json(
        dialect.error(outcome.status, outcome.message, {
          quota: outcome.quota,
          retryDelay: p.retryDelay,
        }),
        outcome.status,
        { ...baseHeaders, ...(outcome.status === 429 ? limitHeaders : {}), ...p.headers },
      );
    case "ok": {
      const { model, userText, promptChars, maxTokens } = parsed!;
      const { text, cut } = answerText(userText, maxTokens ?? DEFAULT_MAX_TOKENS);
      const body = dialect.ok(
        model,
        text,
        Math.ceil(promptChars / 4),
        Math.ceil(text.length / 4),
        id,
        cut,
      );
      return json(body, 200, { ...baseHeaders, ...limitHeaders });
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
  app.get("/__mock/quota", (c) => c.json(quotaSnapshot(state)));
  app.get("/__mock/tokens", (c) => c.json({ tokens: state.quota.log }));
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
 * `GET /__mock/arrivals`, `GET /__mock/stats`, `GET /__mock/quota` ({@link QuotaSnapshot}),
 * `GET /__mock/tokens` (`{tokens: TokenAcceptance[]}`), `POST /__mock/reset`.
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
 * | `[[mock:blocked]]` | 200 without text: Gemini `promptFeedback.blockReason: SAFETY`, no candidates; OpenAI `finish_reason: content_filter` |
 * | `[[mock:safety]]` | 200 without text: Gemini candidate `finishReason: SAFETY`, no content; OpenAI `content_filter` |
 * | `[[mock:thought_cutoff]]` | 200 without text: Gemini `MAX_TOKENS` with no parts (thinking spent the budget); OpenAI `""` with `finish_reason: length` |
 * | `[[mock:refusal]]` | 200 without text: OpenAI `content: null` with `refusal` (Responses: a `refusal` part); Gemini `SAFETY` |
 * | `[[mock:empty]]` | 200 without text and no reason: Gemini `STOP` with no parts, OpenAI `""` with `stop` |
 * | `[[mock:model_not_found]]` | OpenAI 404 `model_not_found`, Gemini 404 `NOT_FOUND` |
 * | `[[mock:bad_key]]` | OpenAI 401 `invalid_api_key`, Gemini 400 `INVALID_ARGUMENT` with `ErrorInfo` `API_KEY_INVALID` |
 * | `[[mock:service_disabled]]` | Gemini 403 `PERMISSION_DENIED` `SERVICE_DISABLED`; OpenAI 403 project without access |
 * | `[[mock:daily_second]]` | 429, Gemini `QuotaFailure` with three violations, the per-day one second; OpenAI "requests per day (RPD)" |
 * | `[[mock:limit0]]` | 429, Gemini free tier `limit: 0`; OpenAI `insufficient_quota` |
 * | `[[mock:quota_no_detail]]` | 429 with no detail and no retry hint |
 *
 * Model checks, after the quotas: with `knownModels`, any other model gets the real 404. OpenAI
 * reasoning models (`gpt-5*` but `gpt-5*-chat*`, `o1`, `o3`, `o4`…) on chat completions answer
 * `max_tokens` with 400 `unsupported_parameter` and a `temperature` or `top_p` other than 1 with
 * 400 `unsupported_value`, as OpenAI does.
 *
 * The attempt number counts arrivals with the same model and user text, from 1; requests
 * refused before their body is read (401 for the key, 400 for the JSON) do not count. Outcome
 * directives are tried in text order; the first that applies to this attempt wins. An unknown
 * directive answers 400, so a typo in a test fails loudly.
 *
 * Quotas (`quota`, `dailyQuota`, `tokenQuota`) count accepted requests: those answered 2xx (or
 * to be, once their latency has passed). Order of checks: API key (401), daily quota, request
 * quota (both before the body is read, at the arrival time), body (400), token quota, then
 * directives and `failureRate`; so a request a quota refuses is neither an attempt of
 * `fail=K` nor a random draw. Quota refusals are 429s answered at once, without latency, and
 * recorded as arrivals with status 429:
 *
 * - OpenAI: body `{"error": {"message": "Rate limit reached ... on requests per min (RPM): Limit
 *   L, Used U, Requested 1. Please try again in 350ms. ...", "type": "requests", "param": null,
 *   "code": "rate_limit_exceeded"}}` (`type: "tokens"` and `tokens per min (TPM)` for the token
 *   quota, `requests per day (RPD)` for the daily one; `per 1s (mock window)` when a window is
 *   not 60 s), headers `retry-after-ms: <ms until it would be accepted, integer >= 1>` and
 *   `retry-after: <ceil seconds>`; the daily quota sends only `retry-after: 3600`.
 * - Gemini: `{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": ..., "details":
 *   [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric":
 *   "generativelanguage.googleapis.com/generate_content_requests", "quotaId":
 *   "GenerateRequestsPerMinutePerProjectPerModel"}]}, {"@type":
 *   "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.35s"}]}}`; quotaId
 *   `GenerateRequestsPerDayPerProjectPerModel` (retryDelay `3600s`) for the daily quota,
 *   `GenerateContentInputTokensPerModelPerMinute` (metric `..._input_token_count`) for tokens.
 * - A request costing more tokens than the whole token quota can never pass: 429 `Request too
 *   large ...` (OpenAI `type: "tokens"`) without any retry header or RetryInfo.
 *
 * With a 60 s window, OpenAI 2xx and 429 answers also carry `x-ratelimit-limit-requests`,
 * `x-ratelimit-remaining-requests` (after this request) and `x-ratelimit-reset-requests` (time
 * until the oldest accepted request leaves the window, e.g. `59.65s`, `1m0s`, `350ms`), and the
 * same three `-tokens` headers for the token quota. A window holds the requests accepted in the
 * last `windowMs` ms; one accepted exactly `windowMs` ago has left it (as in
 * {@link maxPerWindow}). Answers honour the max tokens: the text is cut to `4 × max tokens`
 * characters (`finish_reason: "length"`, Gemini `MAX_TOKENS`, Responses `incomplete`), so the
 * reported completion tokens never exceed them.
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
  // Option errors reject rather than throw.
  try {
    return serve(options);
  } catch (e) {
    return Promise.reject(e);
  }
}

async function serve(options: MockProviderOptions | undefined): Promise<MockProvider> {
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
  // startServer turns Bun's idle timeout off: a request waiting on its latency counts as idle,
  // and 30 s latencies must survive.
  const server = await startServer((req) => app.fetch(req), { hostname, port });
  // Bun drops open connections at once; Deno's shutdown waits for the (woken) handlers.
  const stop = () => server.close({ force: runtime === "bun" });

  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    arrivals: () => state.arrivals.map((a) => ({ ...a })),
    stats: () => state.window.stats(),
    quota: () => quotaSnapshot(state),
    tokensAccepted: () => state.quota.log.map((x) => ({ ...x })),
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

export async function main(argv: string[]): Promise<void> {
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
      "quota-requests": { type: "string" },
      "quota-window": { type: "string" },
      "daily-quota": { type: "string" },
      "token-quota": { type: "string" },
      "token-window": { type: "string" },
      "token-count": { type: "string" },
      "token-headers": { type: "boolean" },
      models: { type: "string" },
      // issue 17: real 429 patterns
      "quota-kind": { type: "string" },
      "quota-retry-after": { type: "string" },
      "quota-detail": { type: "string" },
      "failure-retry-after": { type: "string" },
    },
    strict: true,
  });
  const quotaRequests = numberArg("quota-requests", values["quota-requests"]);
  const quotaWindow = numberArg("quota-window", values["quota-window"]);
  const tokenQuota = numberArg("token-quota", values["token-quota"]);
  const tokenWindow = numberArg("token-window", values["token-window"]);
  if (quotaWindow !== undefined && quotaRequests === undefined) {
    throw new TypeError("Cannot use --quota-window without --quota-requests");
  }
  if (tokenWindow !== undefined && tokenQuota === undefined) {
    throw new TypeError("Cannot use --token-window without --token-quota");
  }
  if (
    (values["token-count"] !== undefined || values["token-headers"]) && tokenQuota === undefined
  ) {
    throw new TypeError("Cannot use --token-count or --token-headers without --token-quota");
  }
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
    quota: quotaRequests === undefined ? undefined : {
      requests: quotaRequests,
      windowMs: quotaWindow,
      kind: values["quota-kind"] as RequestQuota["kind"],
      retryAfterS: numberArg("quota-retry-after", values["quota-retry-after"]),
      detail: values["quota-detail"] as RequestQuota["detail"],
    },
    dailyQuota: numberArg("daily-quota", values["daily-quota"]),
    tokenQuota: tokenQuota === undefined ? undefined : {
      tokens: tokenQuota,
      windowMs: tokenWindow,
      count: values["token-count"] as TokenCount | undefined,
      headers: values["token-headers"] || undefined,
    },
    knownModels: values.models?.split(","),
    failureRetryAfterS: numberArg("failure-retry-after", values["failure-retry-after"]),
  });
  serveUntilSignal(mock);
}

if (import.meta.main) await runMain("mock_provider", main);
