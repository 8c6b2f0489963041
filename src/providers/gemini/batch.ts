/**
 * Gemini's Batch Mode (`models/{model}:batchGenerateContent`): inline requests for small
 * batches, a JSONL file through the Files API (resumable upload) for large ones; the operation
 * polled until done; inlined responses or a responses file read back. Understands both the
 * `BATCH_STATE_*` names of the REST API and the `JOB_STATE_*` names of the SDKs and Vertex.
 * @module
 */
import * as v from "valibot";
import type { ProviderResponse, RequestItem } from "../../formats.ts";
import { classifyGemini, geminiResponse } from "./classify.ts";
import { GEMINI_BASE_URL, GEMINI_DEFAULT_MODEL } from "./realtime.ts";
import { geminiHeaders, geminiRequest } from "./request.ts";
import type { HttpProviderOptions } from "../provider.ts";
import type {
  BatchBackend,
  BatchInput,
  BatchLimits,
  BatchResult,
  BatchState,
  CallOptions,
  EncodedItem,
  RemoteBatch,
} from "../../batch/backend.ts";
import { call, callJson, createHttpContext, parseObject, responseLines } from "../http.ts";

/**
 * Gemini documents no request-count limit and a 2 GB input file; 50,000 items per batch keeps a
 * batch's results (held per batch while they are matched to items) bounded.
 */
export const GEMINI_BATCH_LIMITS: BatchLimits = { maxItems: 50_000, maxBytes: 1_900_000_000 };
/** Batches up to this many bytes go inline; Gemini caps an inline batch request at 20 MB. */
export const GEMINI_INLINE_MAX_BYTES = 10_000_000;

/** Options for {@linkcode createGeminiBatchBackend}. */
export interface GeminiBatchOptions extends HttpProviderOptions {
  /** Per-batch limits. @default GEMINI_BATCH_LIMITS */
  limits?: Partial<BatchLimits>;
  /** Largest batch sent inline; larger ones are uploaded first. @default 10_000_000 */
  inlineMaxBytes?: number;
  /** Pages of 100 batches searched by `find` before giving up. @default 10 */
  findPages?: number;
}

const Count = v.optional(v.union([v.number(), v.pipe(v.string(), v.transform(Number))]));
const Stats = v.optional(v.nullable(v.looseObject({
  requestCount: Count,
  successfulRequestCount: Count,
  failedRequestCount: Count,
  pendingRequestCount: Count,
})));
const Meta = v.looseObject({
  state: v.optional(v.string()),
  displayName: v.optional(v.string()),
  display_name: v.optional(v.string()),
  batchStats: Stats,
});
const Operation = v.looseObject({
  name: v.string(),
  done: v.optional(v.boolean()),
  // A bare GenerateContentBatch carries these at the top instead of in `metadata`.
  state: v.optional(v.string()),
  displayName: v.optional(v.string()),
  batchStats: Stats,
  metadata: v.optional(v.nullable(Meta)),
  response: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  output: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  error: v.optional(v.nullable(v.looseObject({
    code: v.optional(v.number()),
    message: v.optional(v.string()),
    status: v.optional(v.string()),
  }))),
});
type OperationObject = v.InferOutput<typeof Operation>;
const OperationList = v.looseObject({
  operations: v.optional(v.array(Operation)),
  batches: v.optional(v.array(Operation)),
  nextPageToken: v.optional(v.string()),
});
const UploadedFile = v.looseObject({ file: v.looseObject({ name: v.string() }) });
const ItemStatus = v.looseObject({
  code: v.optional(v.number()),
  message: v.optional(v.string()),
  status: v.optional(v.string()),
});
const ResultItem = v.looseObject({
  key: v.optional(v.union([v.string(), v.number()])),
  metadata: v.optional(v.nullable(v.looseObject({
    key: v.optional(v.union([v.string(), v.number()])),
  }))),
  response: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  error: v.optional(v.nullable(ItemStatus)),
  status: v.optional(v.nullable(ItemStatus)),
});

const STATES: Record<string, BatchState> = {
  UNSPECIFIED: "pending",
  PENDING: "pending",
  QUEUED: "pending",
  RUNNING: "running",
  PAUSED: "running",
  UPDATING: "running",
  SUCCEEDED: "succeeded",
  PARTIALLY_SUCCEEDED: "succeeded",
  FAILED: "failed",
  CANCELLING: "cancelling",
  CANCELLED: "cancelled",
  EXPIRED: "expired",
};

/** `BATCH_STATE_RUNNING`, `JOB_STATE_RUNNING` → `running`; unknown names count as running. */
export function geminiState(raw: string | undefined, done = false): BatchState {
  const name = (raw ?? "").replace(/^(BATCH|JOB)_STATE_/, "");
  return STATES[name] ?? (done ? "succeeded" : "running");
}

/** google.rpc.Code → HTTP status, for item errors that carry the gRPC code. */
const GRPC_HTTP: Record<number, number> = {
  1: 499,
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  6: 409,
  7: 403,
  8: 429,
  9: 400,
  10: 409,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  15: 500,
  16: 401,
};

function modelOf(item: RequestItem, fallback: string): string {
  const named = item.format === "gemini-batch"
    ? item.request.model
    : item.format === "simple"
    ? item.chat.model
    : item.body.model;
  return (typeof named === "string" ? named : fallback).replace(/^models\//, "");
}

function remote(op: OperationObject): RemoteBatch {
  const meta = op.metadata ?? {};
  const stats = meta.batchStats ?? op.batchStats;
  const rawState = meta.state ?? op.state ?? (op.done ? "SUCCEEDED" : "PENDING");
  let state = geminiState(rawState, op.done);
  if (op.error && !["cancelled", "expired"].includes(state)) state = "failed";
  const total = stats?.requestCount ?? 0;
  return {
    id: op.name,
    state,
    rawState,
    counts: stats
      ? {
        total,
        completed: (stats.successfulRequestCount ?? 0) + (stats.failedRequestCount ?? 0),
        failed: stats.failedRequestCount ?? 0,
      }
      : undefined,
    tag: meta.displayName ?? meta.display_name ?? op.displayName,
    errors: op.error
      ? [{
        code: op.error.status ?? `grpc_${op.error.code ?? 2}`,
        message: op.error.message ?? "the batch failed",
      }]
      : undefined,
    raw: op,
  };
}

/** Where the operation keeps its output: inlined responses, or the name of a responses file. */
function outputOf(op: OperationObject): { inlined?: unknown[]; file?: string } {
  const places = [op.response, op.response?.output, op.metadata?.output, op.output];
  for (const place of places) {
    if (typeof place !== "object" || place === null) continue;
    const p = place as Record<string, unknown>;
    const inlined = p.inlinedResponses as unknown;
    if (Array.isArray(inlined)) return { inlined };
    const nested = (inlined as { inlinedResponses?: unknown } | undefined)?.inlinedResponses;
    if (Array.isArray(nested)) return { inlined: nested };
    if (typeof p.responsesFile === "string") return { file: p.responsesFile };
  }
  return {};
}

function readItem(value: unknown, fallbackKey: string | undefined): BatchResult | undefined {
  const r = v.safeParse(ResultItem, value);
  if (!r.success) return undefined;
  const o = r.output;
  const rawKey = o.key ?? o.metadata?.key ?? fallbackKey;
  if (rawKey === undefined) return undefined;
  const key = String(rawKey);
  const error = o.error ?? (o.response ? undefined : o.status);
  if (o.response && !error) return { key, ok: true, status: 200, body: o.response };
  const grpc = error?.code ?? 2;
  const status = grpc >= 100 ? grpc : GRPC_HTTP[grpc] ?? 500;
  const info = classifyGemini(
    status,
    { error: { code: status, message: error?.message, status: error?.status } },
    new Headers(),
  );
  return {
    key,
    ok: false,
    status: info.status,
    code: info.code,
    message: info.message,
    retryable: info.retryable,
    unfinished: false,
  };
}

/**
 * Creates the Gemini batch backend. `baseUrl` is the API host, with or without `/v1beta`.
 *
 * @example
 * ```ts
 * import { createGeminiBatchBackend } from "./batch.ts";
 * const backend = createGeminiBatchBackend({ apiKey: Deno.env.get("GEMINI_API_KEY") });
 * backend.name; // "gemini"
 * ```
 */
export function createGeminiBatchBackend(options: GeminiBatchOptions = {}): BatchBackend {
  const base = (options.baseUrl ?? GEMINI_BASE_URL).replace(/\/+$/, "");
  const version = /\/(v1beta|v1)$/.exec(base)?.[1] ?? "v1beta";
  const origin = base.replace(/\/(v1beta|v1)$/, "");
  const root = `${origin}/${version}`;
  const model = (options.model ?? GEMINI_DEFAULT_MODEL).replace(/^models\//, "");
  const limits = { ...GEMINI_BATCH_LIMITS, ...options.limits };
  const inlineMaxBytes = options.inlineMaxBytes ?? GEMINI_INLINE_MAX_BYTES;
  const findPages = options.findPages ?? 10;
  const ctx = createHttpContext(options, geminiHeaders(options), classifyGemini);
  /** `batches/abc` → `{root}/batches/abc`, each segment escaped. */
  const resource = (name: string) =>
    `${root}/${name.split("/").map((s) => encodeURIComponent(s)).join("/")}`;

  return {
    name: "gemini",
    model,
    limits,
    encode(item: RequestItem): EncodedItem {
      const { request } = geminiRequest(item);
      return { group: modelOf(item, model), line: JSON.stringify({ key: item.id, request }) };
    },
    async upload(input: BatchInput, { signal }: CallOptions = {}) {
      if (input.bytes <= inlineMaxBytes) return undefined;
      const start = await call(ctx, `${origin}/upload/${version}/files`, {
        method: "POST",
        headers: {
          "x-goog-upload-protocol": "resumable",
          "x-goog-upload-command": "start",
          "x-goog-upload-header-content-length": String(input.bytes),
          "x-goog-upload-header-content-type": "application/jsonl",
        },
        json: { file: { display_name: input.tag } },
        signal,
      });
      await start.body?.cancel();
      const uploadUrl = start.headers.get("x-goog-upload-url");
      if (!uploadUrl) throw new TypeError("Gemini's upload start sent no x-goog-upload-url");
      // The key goes only back to the API's own origin.
      const sameOrigin = new URL(uploadUrl, origin).origin === new URL(origin).origin;
      const done = await callJson(ctx, new URL(uploadUrl, origin).href, UploadedFile, {
        method: "POST",
        headers: {
          "x-goog-upload-command": "upload, finalize",
          "x-goog-upload-offset": "0",
          "content-type": "application/jsonl",
        },
        body: new Blob(input.lines.map((l) => l + "\n")),
        bare: !sameOrigin,
        signal,
      });
      return done.file.name;
    },
    async create(input: BatchInput, fileId: string | undefined, { signal }: CallOptions = {}) {
      const inputConfig = fileId !== undefined ? { file_name: fileId } : {
        requests: {
          requests: input.lines.map((line) => {
            const { key, request } = JSON.parse(line) as { key: string; request: unknown };
            return { request, metadata: { key } };
          }),
        },
      };
      const url = `${root}/models/${encodeURIComponent(input.group)}:batchGenerateContent`;
      const op = await callJson(ctx, url, Operation, {
        method: "POST",
        json: { batch: { display_name: input.tag, input_config: inputConfig } },
        signal,
      });
      return remote(op);
    },
    async find(tag: string, { signal }: CallOptions = {}) {
      let token: string | undefined;
      for (let page = 0; page < findPages; page++) {
        const query = `${root}/batches?pageSize=100${
          token ? `&pageToken=${encodeURIComponent(token)}` : ""
        }`;
        const list = await callJson(ctx, query, OperationList, { signal });
        for (const op of [...(list.operations ?? []), ...(list.batches ?? [])]) {
          const batch = remote(op);
          if (batch.tag === tag) return batch;
        }
        token = list.nextPageToken || undefined;
        if (token === undefined) return undefined;
      }
      return undefined;
    },
    async get(id: string, { signal }: CallOptions = {}) {
      return remote(await callJson(ctx, resource(id), Operation, { signal }));
    },
    async cancel(id: string, { signal }: CallOptions = {}) {
      const response = await call(ctx, `${resource(id)}:cancel`, { method: "POST", signal });
      await response.body?.cancel();
    },
    async *results(batch: RemoteBatch, { signal, order }: CallOptions & { order?: string[] } = {}) {
      const out = outputOf(batch.raw as OperationObject);
      if (out.inlined) {
        for (const [i, value] of out.inlined.entries()) {
          const result = readItem(value, order?.[i]);
          if (result) yield result;
        }
      } else if (out.file) {
        const url = `${origin}/download/${version}/${
          out.file.split("/").map((s) => encodeURIComponent(s)).join("/")
        }:download?alt=media`;
        let i = 0;
        for await (const line of responseLines(await call(ctx, url, { signal }))) {
          const result = readItem(parseObject(line), order?.[i++]);
          if (result) yield result;
        }
      }
    },
    response(item, result): ProviderResponse {
      return geminiResponse(item, result.status, result.body, modelOf(item, model));
    },
  };
}
