/**
 * The batch mock's OpenAI routes: Files and Batches endpoints, their bodies and errors.
 * @module
 */
import type { Hono } from "hono";
import * as v from "valibot";
import { itemError, openAiPrompt } from "./items.ts";
import { finish, info, type Phase, phaseAt, register, TERMINAL } from "./lifecycle.ts";
import { type Batch, type Json, nextId, type State, type StoredFile } from "./state.ts";

// ---------------------------------------------------------------------------------------------
// OpenAI

export const OPENAI_ENDPOINTS = [
  "/v1/chat/completions",
  "/v1/responses",
  "/v1/embeddings",
  "/v1/completions",
];
export const CreateBatchBody = v.object({
  input_file_id: v.string(),
  endpoint: v.string(),
  completion_window: v.string(),
  metadata: v.optional(v.nullable(v.record(v.string(), v.string()))),
});
export const OpenAILine = v.object({
  custom_id: v.pipe(v.string(), v.nonEmpty()),
  method: v.literal("POST"),
  url: v.string(),
  body: v.looseObject({ model: v.string() }),
});

export function openAiError(status: number, message: string, code: string | null = null): Response {
  return Response.json({
    error: {
      message,
      type: status >= 500 ? "server_error" : "invalid_request_error",
      param: null,
      code,
    },
  }, { status });
}

export function openAiBatchJson(state: State, b: Batch): Json {
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

export function openAiRoutes(app: Hono, state: State): void {
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
