/**
 * OpenAI's Batch API as Hono routes (`/v1/files`, `/v1/batches`), mounted by `createApp` behind
 * the server's auth: the official `openai` SDK, or any client of that API, pointed at the server.
 * @module
 */
import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as v from "valibot";
import { OPENAI_BATCH_URLS } from "../../formats.ts";
import { BatchApiError, BatchManager, type BatchManagerOptions } from "./batch_manager.ts";
import { multipartBoundary, MultipartError, readMultipart } from "./multipart.ts";
import { errorBody, listPage } from "./records.ts";

/** Options for {@linkcode createBatchApi}. */
export interface BatchApiOptions extends BatchManagerOptions {
  /**
   * Largest file upload, in bytes. Uploads stream to storage, so this bounds disk, not memory;
   * it is separate from the limit on `/v1/runs` bodies.
   * @default 1_073_741_824 (1 GiB)
   */
  maxFileBytes?: number;
}

/** The default of {@linkcode BatchApiOptions.maxFileBytes}: 1 GiB. */
export const DEFAULT_MAX_FILE_BYTES = 1_073_741_824;

const Metadata = v.pipe(
  v.record(
    v.pipe(v.string(), v.maxLength(64, "keys must be at most 64 characters")),
    v.pipe(
      v.string("values must be strings"),
      v.maxLength(512, "values must be at most 512 characters"),
    ),
    "must be an object of strings",
  ),
  v.check((m) => Object.keys(m).length <= 16, "must have at most 16 keys"),
);

function createBody(endpoints: readonly string[]) {
  return v.object({
    input_file_id: v.pipe(v.string("must be a string"), v.nonEmpty("must not be empty")),
    endpoint: v.picklist(
      endpoints,
      `must be ${endpoints.length === 1 ? "" : "one of "}${
        endpoints.map((e) => `'${e}'`).join(", ")
      } on this server`,
    ),
    completion_window: v.literal("24h", "must be '24h'"),
    metadata: v.optional(v.nullable(Metadata)),
    output_expires_after: v.optional(v.unknown()),
  });
}

const ListQuery = v.object({
  after: v.optional(v.pipe(v.string(), v.nonEmpty("must not be empty"))),
  limit: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, "must be a whole number from 1 to 100"),
      v.transform(Number),
      v.minValue(1, "must be at least 1"),
      v.maxValue(100, "must be at most 100"),
    ),
  ),
  purpose: v.optional(v.string()),
  order: v.optional(v.literal("desc", "must be 'desc' on this server")),
});

function openAIError(c: Context, status: ContentfulStatusCode, e: BatchApiError | Error) {
  const be = e as BatchApiError;
  return c.json(errorBody(status, e.message, be.code ?? null, be.param ?? null), status);
}

function invalid(issue: v.BaseIssue<unknown>, what: string): BatchApiError {
  const param = v.getDotPath(issue);
  return new BatchApiError(
    400,
    param
      ? issue.input === undefined
        ? `Missing required parameter: '${param}'.`
        : `Invalid '${param}': ${issue.message}.`
      : `Invalid ${what}: ${issue.message}.`,
    issue.input === undefined ? "missing_required_parameter" : "invalid_value",
    param ?? null,
  );
}

/**
 * Creates the Batch API routes and the manager that runs the batches; call `manager.start()` to
 * load the storage and resume unfinished batches (the routes wait for it).
 * Routes (under the mount point, e.g. `/v1`): `POST /files` (multipart, `purpose=batch`),
 * `GET /files`, `GET /files/:id`, `GET /files/:id/content`, `DELETE /files/:id`,
 * `POST /batches`, `GET /batches`, `GET /batches/:id`, `POST /batches/:id/cancel`.
 * Errors are OpenAI's `{ "error": { "message", "type", "param", "code" } }`.
 *
 * @example
 * ```ts ignore
 * const { app, manager } = createBatchApi({ storage, provider, quota });
 * parent.route("/v1", app);
 * await manager.start();
 * ```
 */
export function createBatchApi(options: BatchApiOptions): { app: Hono; manager: BatchManager } {
  const maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (!(maxFileBytes > 0) || !Number.isInteger(maxFileBytes)) {
    throw new RangeError(
      `Cannot create the Batch API as 'maxFileBytes' must be a positive integer: current value is ${maxFileBytes}`,
    );
  }
  const manager = new BatchManager(options);
  // The realtime path converts chat completions for every provider; other endpoints go as they
  // are, so only an OpenAI(-compatible) provider takes them.
  const endpoints = options.provider.name === "openai"
    ? OPENAI_BATCH_URLS
    : ["/v1/chat/completions"] as const;
  const CreateBody = createBody(endpoints);
  const app = new Hono();

  app.onError((error, c) => {
    if ((error as Error)?.name === "BatchApiError") {
      const e = error as BatchApiError;
      return openAIError(c, e.status, e);
    }
    return c.json(
      errorBody(500, (error as Error)?.message ?? String(error), "internal_error"),
      500,
    );
  });
  // Not "*": mounted under /v1 that would also hold up the parent's other /v1 routes.
  for (const path of ["/files", "/files/*", "/batches", "/batches/*"]) {
    app.use(path, async (_c, next) => {
      await manager.start();
      await next();
    });
  }

  const listOptions = (c: Context) => {
    const r = v.safeParse(ListQuery, c.req.query());
    if (!r.success) throw invalid(r.issues[0], "query");
    return { after: r.output.after, limit: r.output.limit ?? 20, purpose: r.output.purpose };
  };

  app.post("/files", async (c) => {
    const length = Number(c.req.header("content-length") ?? NaN);
    // A little over the file limit for the multipart framing and the purpose field.
    if (length > maxFileBytes + 65_536) {
      throw new BatchApiError(
        413,
        `The upload is ${length} bytes, over this server's file limit of ${maxFileBytes} bytes (serve --max-file-bytes).`,
        "file_too_large",
        "file",
      );
    }
    const boundary = multipartBoundary(c.req.header("content-type"));
    const body = c.req.raw.body;
    if (!boundary || !body) {
      throw new BatchApiError(
        400,
        "The body must be multipart/form-data with the fields 'file' and 'purpose'.",
        "invalid_request",
      );
    }
    let purpose: string | undefined;
    let upload: { id: string; name: string; filename: string; bytes: number } | undefined;
    try {
      for await (const part of readMultipart(body, boundary)) {
        if (part.name === "purpose") {
          purpose = (await new Response(part.body).text()).trim().slice(0, 100);
        } else if (part.name === "file" && upload === undefined) {
          const { id, name } = manager.newUpload();
          const bytes = await options.storage.writeStream(name, part.body, maxFileBytes);
          upload = { id, name, filename: part.filename ?? "upload.jsonl", bytes };
        }
        // Other fields (expires_after...) are read past.
      }
      if (!upload) {
        throw new BatchApiError(
          400,
          "Missing required parameter: 'file'.",
          "missing_required_parameter",
          "file",
        );
      }
      if (purpose === undefined) {
        throw new BatchApiError(
          400,
          "Missing required parameter: 'purpose'.",
          "missing_required_parameter",
          "purpose",
        );
      }
      if (purpose !== "batch") {
        throw new BatchApiError(
          400,
          `Invalid 'purpose': this server takes only files with purpose 'batch', got '${purpose}'.`,
          "invalid_value",
          "purpose",
        );
      }
      return c.json(
        await manager.addUpload(upload.id, {
          filename: upload.filename,
          bytes: upload.bytes,
          purpose,
        }),
      );
    } catch (error) {
      if (upload) await options.storage.remove(upload.name);
      const name = (error as Error)?.name;
      if (name === "TooLargeError") {
        throw new BatchApiError(
          413,
          `The file is over this server's limit of ${maxFileBytes} bytes (serve --max-file-bytes).`,
          "file_too_large",
          "file",
        );
      }
      if (name === "MultipartError" || error instanceof MultipartError) {
        throw new BatchApiError(400, (error as Error).message, "invalid_multipart");
      }
      throw error;
    }
  });

  app.get("/files", (c) => {
    const page = manager.listFiles(listOptions(c));
    return c.json(listPage(page.data, page.hasMore));
  });

  app.get("/files/:id", (c) => c.json(manager.getFile(c.req.param("id"))));

  app.get("/files/:id/content", async (c) => {
    const id = c.req.param("id");
    const file = manager.getFile(id);
    return new Response(await manager.fileContent(id), {
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(file.bytes),
        "content-disposition": `attachment; filename="${file.filename.replaceAll('"', "")}"`,
      },
    });
  });

  app.delete("/files/:id", async (c) => c.json(await manager.deleteFile(c.req.param("id"))));

  app.post("/batches", async (c) => {
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      throw new BatchApiError(400, "The body must be a JSON object.", "invalid_json");
    }
    const r = v.safeParse(CreateBody, raw);
    if (!r.success) throw invalid(r.issues[0], "body");
    return c.json(await manager.createBatch(r.output));
  });

  app.get("/batches", (c) => {
    const page = manager.listBatches(listOptions(c));
    return c.json(listPage(page.data, page.hasMore));
  });

  app.get("/batches/:id", (c) => c.json(manager.getBatch(c.req.param("id"))));

  app.post(
    "/batches/:id/cancel",
    async (c) => c.json(await manager.cancelBatch(c.req.param("id"))),
  );

  return { app, manager };
}
