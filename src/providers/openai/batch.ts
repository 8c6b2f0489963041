/**
 * OpenAI's Batch API: the input uploaded as a `purpose=batch` file, one batch per endpoint and
 * model, output and error files read back line by line.
 * @module
 */
import * as v from "valibot";
import type { ProviderResponse, RequestItem } from "../../formats.ts";
import { classifyOpenAI, openAIResponse } from "./classify.ts";
import { OPENAI_BASE_URL, OPENAI_DEFAULT_MODEL } from "./realtime.ts";
import { openAIHeaders, openAIRequest } from "./request.ts";
import type { HttpProviderOptions } from "../provider.ts";
import type {
  BatchBackend,
  BatchCounts,
  BatchInput,
  BatchLimits,
  BatchResult,
  BatchState,
  CallOptions,
  EncodedItem,
  RemoteBatch,
} from "../../batch/backend.ts";
import { call, callJson, createHttpContext, joinUrl, parseObject, responseLines } from "../http.ts";

/**
 * OpenAI's limits are 50,000 requests and 200 MB per input file; we stay a little under the
 * byte limit so that a file we measured never fails on the provider's count.
 */
export const OPENAI_BATCH_LIMITS: BatchLimits = { maxItems: 50_000, maxBytes: 190_000_000 };

/** Options for {@linkcode createOpenAIBatchBackend}. */
export interface OpenAIBatchOptions extends HttpProviderOptions {
  /** Per-batch limits. @default OPENAI_BATCH_LIMITS */
  limits?: Partial<BatchLimits>;
  /** Pages of 100 batches searched by `find` before giving up. @default 10 */
  findPages?: number;
}

const Metadata = v.optional(v.nullable(v.record(v.string(), v.unknown())));
const OpenAIBatch = v.looseObject({
  id: v.string(),
  status: v.string(),
  output_file_id: v.optional(v.nullable(v.string())),
  error_file_id: v.optional(v.nullable(v.string())),
  request_counts: v.optional(v.nullable(v.looseObject({
    total: v.optional(v.number(), 0),
    completed: v.optional(v.number(), 0),
    failed: v.optional(v.number(), 0),
  }))),
  metadata: Metadata,
  errors: v.optional(v.nullable(v.looseObject({
    data: v.optional(v.nullable(v.array(v.looseObject({
      code: v.optional(v.nullable(v.string())),
      message: v.optional(v.nullable(v.string())),
      line: v.optional(v.nullable(v.number())),
    })))),
  }))),
});
type OpenAIBatchObject = v.InferOutput<typeof OpenAIBatch>;
const OpenAIBatchList = v.looseObject({
  data: v.array(OpenAIBatch),
  has_more: v.optional(v.boolean()),
  last_id: v.optional(v.nullable(v.string())),
});
const OpenAIFile = v.looseObject({ id: v.string() });
const ResultLine = v.looseObject({
  id: v.optional(v.nullable(v.string())),
  custom_id: v.string(),
  response: v.optional(v.nullable(v.looseObject({
    status_code: v.number(),
    request_id: v.optional(v.nullable(v.string())),
    body: v.optional(v.unknown()),
  }))),
  error: v.optional(v.nullable(v.looseObject({
    code: v.optional(v.nullable(v.string())),
    message: v.optional(v.nullable(v.string())),
  }))),
});

const STATES: Record<string, BatchState> = {
  validating: "pending",
  in_progress: "running",
  finalizing: "finalizing",
  completed: "succeeded",
  failed: "failed",
  expired: "expired",
  cancelling: "cancelling",
  cancelled: "cancelled",
};

/** Error codes of items the batch never ran: they are sent again. */
const UNFINISHED = new Set(["batch_expired", "batch_cancelled"]);
/** Error codes of items worth sending again. */
const RETRYABLE = new Set(["request_timeout", "server_error", "rate_limit_exceeded"]);

function remote(b: OpenAIBatchObject): RemoteBatch {
  const counts: BatchCounts | undefined = b.request_counts ?? undefined;
  const tag = b.metadata?.mft_tag;
  return {
    id: b.id,
    state: STATES[b.status] ?? "running",
    rawState: b.status,
    counts,
    tag: typeof tag === "string" ? tag : undefined,
    errors: b.errors?.data?.map((e) => ({
      code: e.code ?? "batch_failed",
      message: e.message ?? "the batch failed",
      line: e.line ?? undefined,
    })),
    raw: b,
  };
}

/**
 * Creates the OpenAI batch backend. `baseUrl` includes `/v1`, as for the realtime adapter.
 *
 * @example
 * ```ts
 * import { createOpenAIBatchBackend } from "./batch.ts";
 * const backend = createOpenAIBatchBackend({ apiKey: "sk-…" });
 * backend.limits.maxItems; // 50000
 * ```
 */
export function createOpenAIBatchBackend(options: OpenAIBatchOptions = {}): BatchBackend {
  const base = options.baseUrl ?? OPENAI_BASE_URL;
  const model = options.model ?? OPENAI_DEFAULT_MODEL;
  const limits = { ...OPENAI_BATCH_LIMITS, ...options.limits };
  const findPages = options.findPages ?? 10;
  const ctx = createHttpContext(options, openAIHeaders(options), classifyOpenAI);
  const url = (path: string) => joinUrl(base, path);

  async function* fileLines(id: string, signal?: AbortSignal): AsyncIterable<string> {
    const response = await call(ctx, url(`files/${encodeURIComponent(id)}/content`), { signal });
    yield* responseLines(response);
  }

  function readLine(text: string): BatchResult | undefined {
    const r = v.safeParse(ResultLine, parseObject(text));
    if (!r.success) return undefined;
    const { custom_id: key, response, error } = r.output;
    if (response && response.status_code >= 200 && response.status_code < 300) {
      const body = response.body;
      if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
      return {
        key,
        ok: true,
        status: response.status_code,
        body: body as Record<string, unknown>,
        requestId: response.request_id ?? undefined,
        resultId: r.output.id ?? undefined,
      };
    }
    if (response) {
      const info = classifyOpenAI(response.status_code, response.body, new Headers());
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
    const code = error?.code ?? "batch_error";
    return {
      key,
      ok: false,
      status: 0,
      code,
      message: error?.message ?? `the batch did not run this request (${code})`,
      retryable: RETRYABLE.has(code),
      unfinished: UNFINISHED.has(code),
    };
  }

  return {
    name: "openai",
    model,
    limits,
    encode(item: RequestItem): EncodedItem {
      const { path, body } = openAIRequest(item, model);
      // OpenAI runs one model per batch, so the model is part of the group.
      return {
        group: `${path} ${String(body.model)}`,
        line: JSON.stringify({ custom_id: item.id, method: "POST", url: path, body }),
      };
    },
    async upload(input: BatchInput, { signal }: CallOptions = {}): Promise<string> {
      const form = new FormData();
      form.append("purpose", "batch");
      form.append(
        "file",
        new Blob(input.lines.map((l) => l + "\n"), { type: "application/jsonl" }),
        `${input.tag}.jsonl`,
      );
      const file = await callJson(ctx, url("files"), OpenAIFile, {
        method: "POST",
        body: form,
        signal,
      });
      return file.id;
    },
    async create(input: BatchInput, fileId: string | undefined, { signal }: CallOptions = {}) {
      if (fileId === undefined) throw new TypeError("OpenAI batches need an uploaded file");
      const batch = await callJson(ctx, url("batches"), OpenAIBatch, {
        method: "POST",
        json: {
          input_file_id: fileId,
          endpoint: input.group.split(" ")[0],
          completion_window: "24h",
          metadata: { mft_job: input.jobId, mft_tag: input.tag },
        },
        signal,
      });
      return remote(batch);
    },
    async find(tag: string, { signal }: CallOptions = {}) {
      let after: string | undefined;
      for (let page = 0; page < findPages; page++) {
        const query = `batches?limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`;
        const list = await callJson(ctx, url(query), OpenAIBatchList, { signal });
        const hit = list.data.find((b) => b.metadata?.mft_tag === tag);
        if (hit) return remote(hit);
        after = list.last_id ?? list.data.at(-1)?.id;
        if (!list.has_more || after === undefined) return undefined;
      }
      return undefined;
    },
    async get(id: string, { signal }: CallOptions = {}) {
      return remote(
        await callJson(ctx, url(`batches/${encodeURIComponent(id)}`), OpenAIBatch, { signal }),
      );
    },
    async cancel(id: string, { signal }: CallOptions = {}) {
      await callJson(ctx, url(`batches/${encodeURIComponent(id)}/cancel`), OpenAIBatch, {
        method: "POST",
        signal,
      });
    },
    async *results(batch: RemoteBatch, { signal }: CallOptions = {}) {
      const b = batch.raw as OpenAIBatchObject;
      for (const id of [b.output_file_id, b.error_file_id]) {
        if (!id) continue;
        for await (const line of fileLines(id, signal)) {
          const result = readLine(line);
          if (result) yield result;
        }
      }
    },
    response(item, result): ProviderResponse {
      const requested = item.format === "openai-batch"
        ? item.body.model
        : item.format === "simple"
        ? item.chat.model
        : undefined;
      return openAIResponse(item, result.status, result.body, String(requested ?? model), {
        requestId: result.requestId,
      });
    },
  };
}
