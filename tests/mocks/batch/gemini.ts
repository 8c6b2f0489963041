/**
 * The batch mock's Gemini routes: Batch Mode (inline and file input), resumable upload,
 * download, operations and errors.
 * @module
 */
import type { Hono } from "hono";
import * as v from "valibot";
import { geminiPrompt, GRPC, itemError } from "./items.ts";
import {
  finish,
  geminiResponses,
  info,
  type Phase,
  phaseAt,
  register,
  TERMINAL,
} from "./lifecycle.ts";
import { type Batch, type Json, nextId, type State } from "./state.ts";

// ---------------------------------------------------------------------------------------------
// Gemini

export const GEMINI_STATE: Record<Phase, string> = {
  validating: "PENDING",
  in_progress: "RUNNING",
  finalizing: "RUNNING",
  completed: "SUCCEEDED",
  failed: "FAILED",
  expired: "EXPIRED",
  cancelling: "RUNNING",
  cancelled: "CANCELLED",
};
export const BatchBody = v.object({
  batch: v.looseObject({
    display_name: v.optional(v.string()),
    displayName: v.optional(v.string()),
    input_config: v.optional(v.unknown()),
    inputConfig: v.optional(v.unknown()),
  }),
});
export const InputConfig = v.union([
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
export const FileLine = v.looseObject({
  key: v.string(),
  request: v.looseObject({ contents: v.array(v.unknown()) }),
});

export function geminiError(status: number, message: string): Response {
  const [, name] = GRPC[status] ?? [2, "UNKNOWN"];
  return Response.json({ error: { code: status, message, status: name } }, { status });
}

export function operationJson(state: State, b: Batch): Json {
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

export function geminiRoutes(app: Hono, state: State): void {
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
