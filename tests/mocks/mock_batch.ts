/**
 * A fake batch API for tests and benchmarks: OpenAI's Files and Batches endpoints and Gemini's
 * Batch Mode (inline and file input, resumable upload, download), with states that advance on
 * a clock in milliseconds, per-item errors, expired batches, stuck batches and failed ones.
 *
 * {@link createMockBatchApp} is a runtime-agnostic Hono app that also serves the realtime mock
 * of `tests/mocks/mock_provider.ts` (the deadline rescue talks to it); {@link startMockBatch} serves
 * it on 127.0.0.1 with `Bun.serve` or `Deno.serve`.
 *
 * CLI: `bun scripts/start_mock_batch.ts [--port N] [--validating MS] [--running MS] [--finalizing MS]
 * [--item-error-rate F] [--expire 1,3] [--stuck 2] [--gemini-states BATCH|JOB]` prints
 * `{"url":"http://127.0.0.1:PORT"}` and serves until SIGTERM/SIGINT.
 * @module
 */
import { type Context, Hono } from "hono";
import { runMain, serveUntilSignal } from "./_command_line.ts";
import { parseArgs } from "node:util";
import { createMockApp } from "./mock_provider.ts";
import { geminiError, geminiRoutes } from "./batch/gemini.ts";
import { geminiPrompt, isObject, openAiPrompt } from "./batch/items.ts";
import { info, type MockBatchInfo } from "./batch/lifecycle.ts";
import { openAiError, openAiRoutes } from "./batch/openai.ts";
import { type MockBatchOptions, normalize, type State } from "./batch/state.ts";
import { startServer } from "../../src/adapter/listen.ts";

export type { MockBatchOptions } from "./batch/state.ts";
export type { MockBatchInfo } from "./batch/lifecycle.ts";

/** What the mock saw. */
export interface MockBatchStats {
  batches: number;
  /** Items submitted in batches, all batches together. */
  batchItems: number;
  /**
   * Keys submitted again while an earlier submission was still open or had already been
   * answered (sending again what an expired or cancelled batch never ran is not counted).
   */
  resubmitted: string[];
  /** Keys a batch answered (with a result or an item error) more than once. */
  answeredTwice: string[];
  /** Realtime requests (chat completions, responses, generateContent). */
  realtimeRequests: number;
  /** User texts that arrived more than once on the realtime path. */
  realtimeRepeats: string[];
}

/** A running mock, from {@link startMockBatch}. */
export interface MockBatchServer {
  url: string;
  /** The batches created so far. */
  batches(): MockBatchInfo[];
  stats(): MockBatchStats;
  /** How many times each key was submitted in a batch (`openai:` / `gemini:` prefixed). */
  submissions(): Map<string, number>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The app

function keyOf(c: Context): string | undefined {
  const auth = c.req.header("authorization");
  if (auth?.startsWith("Bearer ")) return auth.slice(7).trim();
  return c.req.header("x-goog-api-key") ?? c.req.query("key");
}

function build(options: MockBatchOptions | undefined): { app: Hono; state: State } {
  const state: State = {
    o: normalize(options),
    files: new Map(),
    batches: new Map(),
    order: [],
    uploads: new Map(),
    submissions: new Map(),
    live: new Map(),
    processed: new Map(),
    resubmitted: new Set(),
    realtime: new Map(),
    realtimeCount: 0,
    seq: 0,
  };
  const app = new Hono();
  app.use("*", async (c, next) => {
    if (state.o.requireKey !== undefined && !c.req.path.startsWith("/__mock")) {
      if (keyOf(c) !== state.o.requireKey) {
        return c.req.path.includes("v1beta")
          ? geminiError(401, "API key not valid. Please pass a valid API key.")
          : openAiError(401, "Incorrect API key provided.", "invalid_api_key");
      }
    }
    await next();
  });
  // Realtime requests are counted by their user text, to prove the rescue sends each item once.
  app.use("*", async (c, next) => {
    const p = c.req.path;
    const realtime = c.req.method === "POST" &&
      (p === "/v1/chat/completions" || p === "/v1/responses" || p.endsWith(":generateContent"));
    if (realtime) {
      const body = await c.req.raw.clone().json().catch(() => undefined);
      if (isObject(body)) {
        const text = p.endsWith(":generateContent")
          ? geminiPrompt(body).userText
          : openAiPrompt(body).userText;
        state.realtimeCount++;
        state.realtime.set(text, (state.realtime.get(text) ?? 0) + 1);
      }
    }
    await next();
  });
  openAiRoutes(app, state);
  geminiRoutes(app, state);
  app.route("/", createMockApp(options?.realtime));
  app.notFound((c) =>
    c.req.path.includes("v1beta")
      ? geminiError(404, `mock: no route for ${c.req.method} ${c.req.path}`)
      : openAiError(404, `mock: no route for ${c.req.method} ${c.req.path}`)
  );
  return { app, state };
}

function statsOf(state: State): MockBatchStats {
  return {
    batches: state.order.length,
    batchItems: state.order.reduce((n, b) => n + b.items.length, 0),
    resubmitted: [...state.resubmitted],
    answeredTwice: [...state.processed].filter(([, n]) => n > 1).map(([k]) => k),
    realtimeRequests: state.realtimeCount,
    realtimeRepeats: [...state.realtime].filter(([, n]) => n > 1).map(([k]) => k),
  };
}

/**
 * The mock batch API as a Hono app, for `app.request()` tests or mounting in another app.
 *
 * Routes: OpenAI `POST /v1/files`, `GET /v1/files/{id}/content`, `POST /v1/batches`,
 * `GET /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`; Gemini
 * `POST /v1beta/models/{model}:batchGenerateContent`, `GET /v1beta/batches`,
 * `GET /v1beta/batches/{id}`, `POST /v1beta/batches/{id}:cancel`, `POST /upload/v1beta/files`
 * (resumable start, then upload+finalize), `GET /download/v1beta/files/{id}:download?alt=media`;
 * and every realtime route of `tests/mocks/mock_provider.ts`.
 *
 * @example
 * ```ts
 * const { app } = createMockBatchApp({ runningMs: 0 });
 * const res = await app.request("/v1/batches");
 * (await res.json()).data; // []
 * ```
 */
export function createMockBatchApp(
  options?: MockBatchOptions,
): Omit<MockBatchServer, "url" | "close"> & { app: Hono } {
  const { app, state } = build(options);
  return {
    app,
    stats: () => statsOf(state),
    batches: () => state.order.map((b) => info(state, b)),
    submissions: () => new Map(state.submissions),
  };
}

/**
 * Serves the mock batch API on 127.0.0.1 (`Bun.serve` or `Deno.serve`).
 *
 * @example
 * ```ts
 * const mock = await startMockBatch({ expire: [1] });
 * // … point the tool at mock.url (OpenAI: `${mock.url}/v1`) …
 * await mock.close();
 * ```
 */
export async function startMockBatch(options?: MockBatchOptions): Promise<MockBatchServer> {
  if (!("Bun" in globalThis) && !("Deno" in globalThis)) {
    throw new Error("Cannot start the mock batch API: it needs Bun or Deno");
  }
  const { app, state } = build(options);
  const server = await startServer((request) => app.fetch(request), {
    hostname: "127.0.0.1",
    port: options?.port ?? 0,
  });
  // Bun drops open connections at once; Deno's shutdown waits for the handlers.
  const stop = () => server.close({ force: server.runtime === "bun" });
  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    batches: () => state.order.map((b) => info(state, b)),
    stats: () => statsOf(state),
    submissions: () => new Map(state.submissions),
    close: () => (closing ??= stop()),
  };
}

// ---------------------------------------------------------------------------------------------
// CLI

function list(value: string | undefined): number[] | undefined {
  return value === undefined ? undefined : value.split(",").filter(Boolean).map(Number);
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      validating: { type: "string" },
      running: { type: "string" },
      finalizing: { type: "string" },
      "item-error-rate": { type: "string" },
      expire: { type: "string" },
      stuck: { type: "string" },
      "gemini-states": { type: "string" },
      "require-key": { type: "string" },
    },
    strict: true,
  });
  const num = (x: string | undefined) => (x === undefined ? undefined : Number(x));
  const mock = await startMockBatch({
    port: num(values.port),
    validatingMs: num(values.validating),
    runningMs: num(values.running),
    finalizingMs: num(values.finalizing),
    itemErrorRate: num(values["item-error-rate"]),
    expire: list(values.expire),
    stuck: list(values.stuck),
    geminiStates: values["gemini-states"] === "JOB" ? "JOB" : "BATCH",
    requireKey: values["require-key"],
  });
  serveUntilSignal(mock);
}

if (import.meta.main) await runMain("mock_batch", main);
