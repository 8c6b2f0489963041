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
import process from "node:process";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { createMockApp, type MockProviderOptions } from "./mock_provider.ts";
import { startServer } from "../../src/adapter/listen.ts";

/** Options of {@link createMockBatchApp} and {@link startMockBatch}. */
export interface MockBatchOptions {
  /** TCP port for {@link startMockBatch}; 0 picks a free one. @default 0 */
  port?: number;
  /** Time a batch spends validating (Gemini: pending), ms. @default 20 */
  validatingMs?: number;
  /** Time a batch spends in progress, ms; its counts grow linearly over it. @default 60 */
  runningMs?: number;
  /** Time a batch spends finalizing, ms. @default 10 */
  finalizingMs?: number;
  /** Time between a cancel and `cancelled`, ms. @default 10 */
  cancellingMs?: number;
  /** Fraction of items answered with an error, drawn per key from a seeded hash. @default 0 */
  itemErrorRate?: number;
  /** HTTP status of those item errors. @default 400 */
  itemErrorStatus?: number;
  /** Seed of the per-key error draw. @default 1 */
  seed?: number;
  /** Ordinals (1-based, in creation order over both providers) of batches that expire. */
  expire?: number[];
  /** Fraction of an expiring batch's items answered before it expires. @default 0.5 */
  expireAnswered?: number;
  /**
   * What an expired OpenAI batch says about the items it did not run: `error-file` lines with
   * code `batch_expired`, or nothing at all (`missing`). @default "error-file"
   */
  expiredUnanswered?: "error-file" | "missing";
  /** Ordinals of batches that never leave validating / pending. */
  stuck?: number[];
  /** Ordinals of batches that fail validation, with the error code (`token_limit_exceeded`). */
  fail?: Record<number, string>;
  /** Gemini state names: REST's `BATCH_STATE_*` or the SDKs' `JOB_STATE_*`. @default "BATCH" */
  geminiStates?: "BATCH" | "JOB";
  /** When set, requests with another key get 401. */
  requireKey?: string;
  /** Time source, ms. @default performance.now */
  now?: () => number;
  /** Awaited when a batch has been created, before the answer goes out (tests crash the client here). */
  onCreate?: (batch: MockBatchInfo) => void | Promise<void>;
  /** Options of the realtime mock served alongside. */
  realtime?: MockProviderOptions;
}

/** A created batch, as the mock reports it. */
export interface MockBatchInfo {
  provider: "openai" | "gemini";
  id: string;
  /** 1-based creation order over both providers. */
  ordinal: number;
  /** OpenAI `metadata.mft_tag` or Gemini `display_name`. */
  tag: string | undefined;
  items: number;
  state: string;
}

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
// State

type Json = Record<string, unknown>;

interface Item {
  key: string;
  /** OpenAI: the batch line's url; Gemini: "generateContent". */
  kind: string;
  model: string;
  userText: string;
  promptChars: number;
}

interface Batch {
  provider: "openai" | "gemini";
  id: string;
  ordinal: number;
  tag: string | undefined;
  metadata: Json | null;
  endpoint: string;
  model: string;
  inputFileId?: string;
  /** Gemini: results go to a file when the input came as one. */
  fileOutput: boolean;
  items: Item[];
  createdAt: number;
  createdUnix: number;
  fate: "ok" | "expire" | "stuck" | "fail";
  failCode?: string;
  failLine?: number;
  failMessage?: string;
  cancelAt?: number;
  /** Files made when it ended (OpenAI), or the responses file (Gemini). */
  outputFileId?: string | null;
  errorFileId?: string | null;
  finished?: boolean;
}

interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  content: string;
  createdUnix: number;
}

interface State {
  o: Required<Omit<MockBatchOptions, "port" | "requireKey" | "onCreate" | "realtime" | "fail">> & {
    fail: Record<number, string>;
    requireKey?: string;
    onCreate?: MockBatchOptions["onCreate"];
  };
  files: Map<string, StoredFile>;
  batches: Map<string, Batch>;
  order: Batch[];
  uploads: Map<string, { displayName: string }>;
  submissions: Map<string, number>;
  /** Keys in batches that have not ended, with their batch. */
  live: Map<string, string>;
  /** Keys a batch ran, with how many times. */
  processed: Map<string, number>;
  resubmitted: Set<string>;
  realtime: Map<string, number>;
  realtimeCount: number;
  seq: number;
}

function normalize(options: MockBatchOptions = {}): State["o"] {
  const o = {
    validatingMs: options.validatingMs ?? 20,
    runningMs: options.runningMs ?? 60,
    finalizingMs: options.finalizingMs ?? 10,
    cancellingMs: options.cancellingMs ?? 10,
    itemErrorRate: options.itemErrorRate ?? 0,
    itemErrorStatus: options.itemErrorStatus ?? 400,
    seed: options.seed ?? 1,
    expire: options.expire ?? [],
    expireAnswered: options.expireAnswered ?? 0.5,
    expiredUnanswered: options.expiredUnanswered ?? "error-file",
    stuck: options.stuck ?? [],
    fail: options.fail ?? {},
    geminiStates: options.geminiStates ?? "BATCH",
    now: options.now ?? (() => performance.now()),
    requireKey: options.requireKey,
    onCreate: options.onCreate,
  };
  for (const key of ["validatingMs", "runningMs", "finalizingMs", "cancellingMs"] as const) {
    if (!Number.isFinite(o[key]) || o[key] < 0) {
      throw new RangeError(
        `Cannot start the mock batch API as '${key}' must be a finite number >= 0: current value is ${
          o[key]
        }`,
      );
    }
  }
  for (const key of ["itemErrorRate", "expireAnswered"] as const) {
    if (!(o[key] >= 0 && o[key] <= 1)) {
      throw new RangeError(
        `Cannot start the mock batch API as '${key}' must be in [0, 1]: current value is ${o[key]}`,
      );
    }
  }
  return o;
}

/** FNV-1a of `seed:key`, mixed, as a fraction in [0, 1): the same key always draws the same. */
function draw(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ seed;
  const text = `${seed}:${key}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // murmur3's finaliser: FNV alone leaves the high bits of short, similar keys alike.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

function nextId(state: State, prefix: string): string {
  state.seq++;
  return `${prefix}${state.seq.toString(36).padStart(6, "0")}${
    crypto.randomUUID().replaceAll("-", "").slice(0, 10)
  }`;
}

// ---------------------------------------------------------------------------------------------
// Items and answers

const isObject = (x: unknown): x is Json =>
  typeof x === "object" && x !== null && !Array.isArray(x);

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((p) => (isObject(p) && typeof p.text === "string" ? p.text : "")).join("\n");
}

/** The last user text and all prompt characters of an OpenAI body. */
function openAiPrompt(body: Json): { userText: string; promptChars: number } {
  let userText = "";
  let promptChars = typeof body.instructions === "string" ? body.instructions.length : 0;
  if (Array.isArray(body.messages)) {
    for (const m of body.messages) {
      if (!isObject(m)) continue;
      const t = textOf(m.content);
      promptChars += t.length;
      if (m.role === "user") userText = t;
    }
  } else if (typeof body.input === "string") {
    userText = body.input;
    promptChars += userText.length;
  } else if (Array.isArray(body.input)) {
    for (const m of body.input) {
      if (!isObject(m)) continue;
      const t = textOf(m.content);
      promptChars += t.length;
      if (m.role === "user") userText = t;
    }
  } else if (typeof body.prompt === "string") {
    userText = body.prompt;
    promptChars += userText.length;
  }
  return { userText, promptChars };
}

function geminiPrompt(request: Json): { userText: string; promptChars: number } {
  let userText = "";
  let promptChars = 0;
  const system = request.systemInstruction ?? request.system_instruction;
  if (isObject(system)) promptChars += textOf(system.parts).length;
  for (const c of Array.isArray(request.contents) ? request.contents : []) {
    if (!isObject(c)) continue;
    const t = textOf(c.parts);
    promptChars += t.length;
    if (c.role === undefined || c.role === "user") userText = t;
  }
  return { userText, promptChars };
}

/** The message of an item's planned error: a directive's reads as the realtime mock's does. */
function itemErrorMessage(item: Item, status: number): string {
  return /\[\[mock:\d{3}\]\]/.test(item.userText)
    ? `mock: planned ${status} (attempt 1)`
    : `mock: planned item error ${status}`;
}

/** Status of an item's planned error, or 0 when it is answered. */
function itemError(state: State, item: Item): number {
  const m = /\[\[mock:(\d{3})\]\]/.exec(item.userText);
  if (m) return Number(m[1]);
  return state.o.itemErrorRate > 0 && draw(state.o.seed, item.key) < state.o.itemErrorRate
    ? state.o.itemErrorStatus
    : 0;
}

function answerText(item: Item): string {
  return `mock answer: ${item.userText.slice(0, 200)}`;
}

function openAiBody(item: Item, id: string): Json {
  const text = answerText(item);
  const p = Math.ceil(item.promptChars / 4);
  const c = Math.ceil(text.length / 4);
  const created = Math.floor(Date.now() / 1000);
  if (item.kind === "/v1/responses") {
    return {
      id: `resp_${id}`,
      object: "response",
      created_at: created,
      status: "completed",
      model: item.model,
      output: [{
        type: "message",
        id: `msg_${id}`,
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text, annotations: [] }],
      }],
      usage: { input_tokens: p, output_tokens: c, total_tokens: p + c },
    };
  }
  if (item.kind === "/v1/embeddings") {
    return {
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2, 0.3] }],
      model: item.model,
      usage: { prompt_tokens: p, total_tokens: p },
    };
  }
  if (item.kind === "/v1/completions") {
    return {
      id: `cmpl-${id}`,
      object: "text_completion",
      created,
      model: item.model,
      choices: [{ index: 0, text, finish_reason: "stop" }],
      usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
    };
  }
  return {
    id: `chatcmpl-${id}`,
    object: "chat.completion",
    created,
    model: item.model,
    choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
    usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c },
  };
}

function geminiBody(item: Item, id: string): Json {
  const text = answerText(item);
  const p = Math.ceil(item.promptChars / 4);
  const c = Math.ceil(text.length / 4);
  return {
    candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason: "STOP", index: 0 }],
    usageMetadata: { promptTokenCount: p, candidatesTokenCount: c, totalTokenCount: p + c },
    modelVersion: item.model,
    responseId: id,
  };
}

const GRPC: Record<number, [number, string]> = {
  400: [3, "INVALID_ARGUMENT"],
  401: [16, "UNAUTHENTICATED"],
  403: [7, "PERMISSION_DENIED"],
  404: [5, "NOT_FOUND"],
  429: [8, "RESOURCE_EXHAUSTED"],
  500: [13, "INTERNAL"],
  503: [14, "UNAVAILABLE"],
};

// ---------------------------------------------------------------------------------------------
// The state machine

type Phase =
  | "validating"
  | "in_progress"
  | "finalizing"
  | "completed"
  | "failed"
  | "expired"
  | "cancelling"
  | "cancelled";

/** A batch's phase at `t` and how many of its items are done. */
function phaseAt(state: State, b: Batch, t: number): { phase: Phase; done: number } {
  const { validatingMs: V, runningMs: R, finalizingMs: F, cancellingMs: C } = state.o;
  const age = t - b.createdAt;
  const n = b.items.length;
  const progress = (at: number) => {
    if (b.fate === "stuck" || b.fate === "fail") return 0;
    const share = b.fate === "expire" ? state.o.expireAnswered : 1;
    const f = R === 0 ? 1 : Math.min(1, Math.max(0, (at - b.createdAt - V) / R));
    return Math.floor(n * share * f);
  };
  if (b.cancelAt !== undefined) {
    const done = progress(b.cancelAt);
    return { phase: t - b.cancelAt < C ? "cancelling" : "cancelled", done };
  }
  if (b.fate === "stuck" || age < V) return { phase: "validating", done: 0 };
  if (b.fate === "fail") return { phase: "failed", done: 0 };
  if (b.fate === "expire" && age >= V + R) return { phase: "expired", done: progress(t) };
  if (age < V + R) return { phase: "in_progress", done: progress(t) };
  if (age < V + R + F) return { phase: "finalizing", done: n };
  return { phase: "completed", done: n };
}

const TERMINAL = new Set<Phase>(["completed", "failed", "expired", "cancelled"]);

/** Writes a finished batch's result files once. */
function finish(state: State, b: Batch, phase: Phase, done: number): void {
  if (b.finished || !TERMINAL.has(phase)) return;
  b.finished = true;
  for (const [i, item] of b.items.entries()) {
    const key = `${b.provider}:${item.key}`;
    if (state.live.get(key) === b.id) state.live.delete(key);
    if (i < done) state.processed.set(key, (state.processed.get(key) ?? 0) + 1);
  }
  if (phase === "failed") return;
  if (b.provider === "openai") {
    const ok: string[] = [];
    const bad: string[] = [];
    for (const [i, item] of b.items.entries()) {
      const id = nextId(state, "");
      if (i >= done) {
        if (phase === "expired" && state.o.expiredUnanswered === "missing") continue;
        const code = phase === "expired" ? "batch_expired" : "batch_cancelled";
        bad.push(JSON.stringify({
          id: `batch_req_${id}`,
          custom_id: item.key,
          response: null,
          error: {
            code,
            message: phase === "expired"
              ? "This request could not be executed before the completion window expired."
              : "This request was cancelled before it ran.",
          },
        }));
        continue;
      }
      const status = itemError(state, item);
      if (status === 0) {
        ok.push(JSON.stringify({
          id: `batch_req_${id}`,
          custom_id: item.key,
          response: { status_code: 200, request_id: `req_${id}`, body: openAiBody(item, id) },
          error: null,
        }));
      } else {
        bad.push(JSON.stringify({
          id: `batch_req_${id}`,
          custom_id: item.key,
          response: {
            status_code: status,
            request_id: `req_${id}`,
            body: {
              error: {
                message: itemErrorMessage(item, status),
                type: status >= 500 ? "server_error" : "invalid_request_error",
                param: null,
                code: /\[\[mock:/.test(item.userText) ? null : "mock_item_error",
              },
            },
          },
          error: null,
        }));
      }
    }
    const file = (lines: string[], name: string) => {
      if (lines.length === 0) return null;
      const id = nextId(state, "file-");
      state.files.set(id, {
        id,
        filename: name,
        purpose: "batch_output",
        content: lines.join("\n") + "\n",
        createdUnix: Math.floor(Date.now() / 1000),
      });
      return id;
    };
    b.outputFileId = file(ok, `${b.id}_output.jsonl`);
    b.errorFileId = file(bad, `${b.id}_error.jsonl`);
  } else if (b.fileOutput) {
    const lines = geminiResponses(state, b, done).map((r) => {
      const { metadata, ...rest } = r as { metadata: { key: string } };
      return JSON.stringify({ key: metadata.key, ...rest });
    });
    const id = `files/batch-${nextId(state, "")}`;
    state.files.set(id, {
      id,
      filename: id,
      purpose: "batch_output",
      content: lines.join("\n") + (lines.length ? "\n" : ""),
      createdUnix: Math.floor(Date.now() / 1000),
    });
    b.outputFileId = id;
  }
}

function geminiResponses(state: State, b: Batch, done: number): Json[] {
  const out: Json[] = [];
  for (const item of b.items.slice(0, done)) {
    const status = itemError(state, item);
    if (status === 0) {
      out.push({ response: geminiBody(item, nextId(state, "")), metadata: { key: item.key } });
    } else {
      const [code, name] = GRPC[status] ?? [2, "UNKNOWN"];
      out.push({
        error: { code, message: itemErrorMessage(item, status), status: name },
        metadata: { key: item.key },
      });
    }
  }
  return out;
}

function register(state: State, b: Batch): void {
  b.ordinal = state.order.length + 1;
  if (b.fate === "fail") {
    // failed validation: nothing runs, so nothing counts as submitted
    state.batches.set(b.id, b);
    state.order.push(b);
    return;
  }
  if (state.o.stuck.includes(b.ordinal)) b.fate = "stuck";
  else if (state.o.expire.includes(b.ordinal)) b.fate = "expire";
  else if (state.o.fail[b.ordinal] !== undefined) {
    b.fate = "fail";
    b.failCode = state.o.fail[b.ordinal];
    b.failMessage = `mock: planned failure ${b.failCode}`;
  }
  state.batches.set(b.id, b);
  state.order.push(b);
  for (const item of b.items) {
    const key = `${b.provider}:${item.key}`;
    if (state.live.has(key) || state.processed.has(key)) state.resubmitted.add(key);
    state.live.set(key, b.id);
    state.submissions.set(key, (state.submissions.get(key) ?? 0) + 1);
  }
}

function info(state: State, b: Batch): MockBatchInfo {
  return {
    provider: b.provider,
    id: b.id,
    ordinal: b.ordinal,
    tag: b.tag,
    items: b.items.length,
    state: phaseAt(state, b, state.o.now()).phase,
  };
}

// ---------------------------------------------------------------------------------------------
// OpenAI

const OPENAI_ENDPOINTS = [
  "/v1/chat/completions",
  "/v1/responses",
  "/v1/embeddings",
  "/v1/completions",
];
const CreateBatchBody = v.object({
  input_file_id: v.string(),
  endpoint: v.string(),
  completion_window: v.string(),
  metadata: v.optional(v.nullable(v.record(v.string(), v.string()))),
});
const OpenAILine = v.object({
  custom_id: v.pipe(v.string(), v.nonEmpty()),
  method: v.literal("POST"),
  url: v.string(),
  body: v.looseObject({ model: v.string() }),
});

function openAiError(status: number, message: string, code: string | null = null): Response {
  return Response.json({
    error: {
      message,
      type: status >= 500 ? "server_error" : "invalid_request_error",
      param: null,
      code,
    },
  }, { status });
}

function openAiBatchJson(state: State, b: Batch): Json {
  const { phase, done } = phaseAt(state, b, state.o.now());
  finish(state, b, phase, done);
  const failed = phase === "failed"
    ? 0
    : b.items.slice(0, done).filter((i) => itemError(state, i) !== 0).length;
  const at = (p: Phase) => (phase === p ? Math.floor(Date.now() / 1000) : null);
  return {
    id: b.id,
    object: "batch",
    endpoint: b.endpoint,
    errors: phase === "failed"
      ? {
        object: "list",
        data: [{ code: b.failCode, message: b.failMessage, param: null, line: b.failLine ?? null }],
      }
      : null,
    input_file_id: b.inputFileId,
    completion_window: "24h",
    status: phase,
    output_file_id: b.finished ? b.outputFileId ?? null : null,
    error_file_id: b.finished ? b.errorFileId ?? null : null,
    created_at: b.createdUnix,
    in_progress_at: null,
    expires_at: b.createdUnix + 86400,
    finalizing_at: null,
    completed_at: at("completed"),
    failed_at: at("failed"),
    expired_at: at("expired"),
    cancelling_at: at("cancelling"),
    cancelled_at: at("cancelled"),
    request_counts: { total: b.items.length, completed: done - failed, failed },
    metadata: b.metadata,
  };
}

function openAiRoutes(app: Hono, state: State): void {
  app.post("/v1/files", async (c) => {
    const form = await c.req.formData().catch(() => undefined);
    const file = form?.get("file");
    const purpose = form?.get("purpose");
    if (!form || !(file instanceof Blob) || typeof purpose !== "string") {
      return openAiError(400, "expected multipart form fields 'file' and 'purpose'");
    }
    if (purpose !== "batch") return openAiError(400, `unsupported purpose '${purpose}'`);
    const id = nextId(state, "file-");
    const stored: StoredFile = {
      id,
      filename: (file as File).name ?? "upload.jsonl",
      purpose,
      content: await file.text(),
      createdUnix: Math.floor(Date.now() / 1000),
    };
    state.files.set(id, stored);
    return c.json({
      id,
      object: "file",
      bytes: new TextEncoder().encode(stored.content).length,
      created_at: stored.createdUnix,
      filename: stored.filename,
      purpose,
    });
  });
  app.get("/v1/files/:id/content", (c) => {
    const file = state.files.get(c.req.param("id"));
    if (!file) return openAiError(404, `No such File object: ${c.req.param("id")}`);
    return new Response(file.content, { headers: { "content-type": "application/jsonl" } });
  });
  app.post("/v1/batches", async (c) => {
    const parsed = v.safeParse(CreateBatchBody, await c.req.json().catch(() => undefined));
    if (!parsed.success) {
      return openAiError(400, `invalid batch request: ${parsed.issues[0].message}`);
    }
    const body = parsed.output;
    if (!OPENAI_ENDPOINTS.includes(body.endpoint)) {
      return openAiError(400, `unsupported endpoint '${body.endpoint}'`);
    }
    if (body.completion_window !== "24h") {
      return openAiError(400, "completion_window must be '24h'");
    }
    const file = state.files.get(body.input_file_id);
    if (!file) return openAiError(404, `No such File object: ${body.input_file_id}`);
    const b: Batch = {
      provider: "openai",
      id: nextId(state, "batch_"),
      ordinal: 0,
      tag: body.metadata?.mft_tag,
      metadata: body.metadata ?? null,
      endpoint: body.endpoint,
      model: "",
      inputFileId: file.id,
      fileOutput: true,
      items: [],
      createdAt: state.o.now(),
      createdUnix: Math.floor(Date.now() / 1000),
      fate: "ok",
    };
    const lines = file.content.split("\n").filter((l) => l.trim() !== "");
    const keys = new Set<string>();
    for (const [i, text] of lines.entries()) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      const line = v.safeParse(OpenAILine, json);
      let problem = line.success ? undefined : `line ${i + 1}: ${line.issues[0].message}`;
      if (line.success) {
        if (line.output.url !== body.endpoint) problem = `url must be ${body.endpoint}`;
        else if (keys.has(line.output.custom_id)) problem = "duplicate custom_id";
        else if (b.model && line.output.body.model !== b.model) {
          problem = "all requests of a batch must use the same model";
        }
      }
      if (problem || !line.success) {
        b.fate = "fail";
        b.failCode = "invalid_request";
        b.failMessage = problem;
        b.failLine = i + 1;
        break;
      }
      keys.add(line.output.custom_id);
      b.model = line.output.body.model;
      b.items.push({
        key: line.output.custom_id,
        kind: body.endpoint,
        model: line.output.body.model,
        ...openAiPrompt(line.output.body),
      });
    }
    if (b.items.length > 50_000) {
      b.fate = "fail";
      b.failCode = "too_many_requests_in_file";
      b.failMessage = "a batch holds at most 50,000 requests";
    }
    register(state, b);
    await state.o.onCreate?.(info(state, b));
    return c.json(openAiBatchJson(state, b));
  });
  app.get("/v1/batches", (c) => {
    const limit = Math.min(100, Math.max(1, Number(c.req.query("limit") ?? 20) || 20));
    const after = c.req.query("after");
    const all = state.order.filter((b) => b.provider === "openai").reverse();
    const start = after ? all.findIndex((b) => b.id === after) + 1 : 0;
    const page = all.slice(start, start + limit);
    return c.json({
      object: "list",
      data: page.map((b) => openAiBatchJson(state, b)),
      first_id: page[0]?.id ?? null,
      last_id: page.at(-1)?.id ?? null,
      has_more: start + limit < all.length,
    });
  });
  app.get("/v1/batches/:id", (c) => {
    const b = state.batches.get(c.req.param("id"));
    if (!b || b.provider !== "openai") {
      return openAiError(404, `No batch found with id '${c.req.param("id")}'`);
    }
    return c.json(openAiBatchJson(state, b));
  });
  app.post("/v1/batches/:id/cancel", (c) => {
    const b = state.batches.get(c.req.param("id"));
    if (!b || b.provider !== "openai") {
      return openAiError(404, `No batch found with id '${c.req.param("id")}'`);
    }
    const { phase } = phaseAt(state, b, state.o.now());
    if (!TERMINAL.has(phase) && b.cancelAt === undefined) b.cancelAt = state.o.now();
    return c.json(openAiBatchJson(state, b));
  });
}

// ---------------------------------------------------------------------------------------------
// Gemini

const GEMINI_STATE: Record<Phase, string> = {
  validating: "PENDING",
  in_progress: "RUNNING",
  finalizing: "RUNNING",
  completed: "SUCCEEDED",
  failed: "FAILED",
  expired: "EXPIRED",
  cancelling: "RUNNING",
  cancelled: "CANCELLED",
};
const BatchBody = v.object({
  batch: v.looseObject({
    display_name: v.optional(v.string()),
    displayName: v.optional(v.string()),
    input_config: v.optional(v.unknown()),
    inputConfig: v.optional(v.unknown()),
  }),
});
const InputConfig = v.union([
  v.looseObject({ file_name: v.string() }),
  v.looseObject({ fileName: v.string() }),
  v.looseObject({
    requests: v.looseObject({
      requests: v.array(v.looseObject({
        request: v.looseObject({ contents: v.array(v.unknown()) }),
        metadata: v.optional(v.looseObject({ key: v.optional(v.string()) })),
      })),
    }),
  }),
]);
const FileLine = v.looseObject({
  key: v.string(),
  request: v.looseObject({ contents: v.array(v.unknown()) }),
});

function geminiError(status: number, message: string): Response {
  const [, name] = GRPC[status] ?? [2, "UNKNOWN"];
  return Response.json({ error: { code: status, message, status: name } }, { status });
}

function operationJson(state: State, b: Batch): Json {
  const { phase, done } = phaseAt(state, b, state.o.now());
  finish(state, b, phase, done);
  const stateName = `${state.o.geminiStates}_STATE_${GEMINI_STATE[phase]}`;
  const failed = b.items.slice(0, done).filter((i) => itemError(state, i) !== 0).length;
  const terminal = TERMINAL.has(phase);
  const op: Json = {
    name: b.id,
    metadata: {
      "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
      model: `models/${b.model}`,
      displayName: b.tag,
      createTime: new Date(Date.now() - (state.o.now() - b.createdAt)).toISOString(),
      state: stateName,
      name: b.id,
      batchStats: {
        requestCount: String(b.items.length),
        successfulRequestCount: String(done - failed),
        failedRequestCount: String(failed),
        pendingRequestCount: String(b.items.length - done),
      },
    },
    done: terminal,
  };
  if (phase === "failed") {
    op.error = { code: 8, message: b.failMessage, status: b.failCode };
  } else if (terminal) {
    op.response = b.fileOutput
      ? {
        "@type":
          "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
        responsesFile: b.outputFileId,
      }
      : {
        "@type":
          "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
        inlinedResponses: { inlinedResponses: geminiResponses(state, b, done) },
      };
  }
  return op;
}

function geminiRoutes(app: Hono, state: State): void {
  app.post("/:version{v1beta|v1}/models/:modelAction{.+}", async (c, next) => {
    const modelAction = c.req.param("modelAction");
    const colon = modelAction.lastIndexOf(":");
    if (modelAction.slice(colon + 1) !== "batchGenerateContent") return await next();
    const model = modelAction.slice(0, colon);
    const parsed = v.safeParse(BatchBody, await c.req.json().catch(() => undefined));
    if (!parsed.success) return geminiError(400, `invalid batch: ${parsed.issues[0].message}`);
    const batch = parsed.output.batch;
    const config = v.safeParse(InputConfig, batch.input_config ?? batch.inputConfig);
    if (!config.success) {
      return geminiError(400, "batch.input_config must give requests or file_name");
    }
    const b: Batch = {
      provider: "gemini",
      id: `batches/${nextId(state, "")}`,
      ordinal: 0,
      tag: batch.display_name ?? batch.displayName,
      metadata: null,
      endpoint: "generateContent",
      model,
      fileOutput: false,
      items: [],
      createdAt: state.o.now(),
      createdUnix: Math.floor(Date.now() / 1000),
      fate: "ok",
    };
    const cfg = config.output as Json;
    const fileName = (cfg.file_name ?? cfg.fileName) as string | undefined;
    if (fileName !== undefined) {
      const file = state.files.get(fileName);
      if (!file) return geminiError(404, `file ${fileName} not found`);
      b.fileOutput = true;
      for (const [i, text] of file.content.split("\n").filter((l) => l.trim()).entries()) {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const line = v.safeParse(FileLine, json);
        if (!line.success) {
          return geminiError(400, `line ${i + 1} of ${fileName} is not {key, request}`);
        }
        b.items.push({
          key: line.output.key,
          kind: "generateContent",
          model,
          ...geminiPrompt(line.output.request),
        });
      }
    } else {
      const reqs = (cfg.requests as { requests: { request: Json; metadata?: { key?: string } }[] })
        .requests;
      for (const [i, r] of reqs.entries()) {
        b.items.push({
          key: r.metadata?.key ?? String(i),
          kind: "generateContent",
          model,
          ...geminiPrompt(r.request),
        });
      }
    }
    register(state, b);
    await state.o.onCreate?.(info(state, b));
    return c.json(operationJson(state, b));
  });
  app.get("/:version{v1beta|v1}/batches", (c) => {
    const size = Math.min(100, Math.max(1, Number(c.req.query("pageSize") ?? 50) || 50));
    const start = Number(c.req.query("pageToken") ?? 0) || 0;
    const all = state.order.filter((b) => b.provider === "gemini").reverse();
    const page = all.slice(start, start + size);
    const more = start + size < all.length;
    return c.json({
      operations: page.map((b) => operationJson(state, b)),
      ...(more ? { nextPageToken: String(start + size) } : {}),
    });
  });
  app.get("/:version{v1beta|v1}/batches/:id", (c) => {
    const b = state.batches.get(`batches/${c.req.param("id")}`);
    if (!b) return geminiError(404, `batch ${c.req.param("id")} not found`);
    return c.json(operationJson(state, b));
  });
  app.post("/:version{v1beta|v1}/batches/:idAction{.+}", (c) => {
    const idAction = c.req.param("idAction");
    if (!idAction.endsWith(":cancel")) return geminiError(404, `no method ${c.req.path}`);
    const b = state.batches.get(`batches/${idAction.slice(0, -":cancel".length)}`);
    if (!b) return geminiError(404, `batch ${idAction} not found`);
    const { phase } = phaseAt(state, b, state.o.now());
    if (!TERMINAL.has(phase) && b.cancelAt === undefined) b.cancelAt = state.o.now();
    return c.json({});
  });
  app.post("/upload/:version{v1beta|v1}/files", async (c) => {
    const command = (c.req.header("x-goog-upload-command") ?? "").toLowerCase();
    if (command === "start") {
      const body = await c.req.json().catch(() => ({})) as { file?: { display_name?: string } };
      const id = nextId(state, "up");
      state.uploads.set(id, { displayName: body.file?.display_name ?? id });
      const url = new URL(c.req.url);
      return new Response("{}", {
        headers: {
          "content-type": "application/json",
          "x-goog-upload-status": "active",
          "x-goog-upload-url":
            `${url.origin}${url.pathname}?upload_id=${id}&upload_protocol=resumable`,
        },
      });
    }
    const upload = state.uploads.get(c.req.query("upload_id") ?? "");
    if (!upload || !command.includes("upload")) return geminiError(400, "unknown upload session");
    const name = `files/${nextId(state, "")}`;
    const content = await c.req.text();
    state.files.set(name, {
      id: name,
      filename: upload.displayName,
      purpose: "batch",
      content,
      createdUnix: Math.floor(Date.now() / 1000),
    });
    return c.json({
      file: {
        name,
        displayName: upload.displayName,
        mimeType: "application/jsonl",
        sizeBytes: String(new TextEncoder().encode(content).length),
        state: "ACTIVE",
      },
    });
  });
  app.get("/download/:version{v1beta|v1}/files/:nameAction{.+}", (c) => {
    const nameAction = c.req.param("nameAction");
    const file = state.files.get(`files/${nameAction.replace(/:download$/, "")}`);
    if (!file || c.req.query("alt") !== "media") return geminiError(404, "file not found");
    return new Response(file.content, { headers: { "content-type": "application/jsonl" } });
  });
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
    console.error(`mock_batch: ${(e as Error).message}`);
    process.exit(2);
  }
}
