// The Batch API routes through app.request(): createApp() with the built-in mock provider and a
// file storage in a fresh temporary directory. (tests/batch_api_test.ts drives a real server.)
import { afterAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createFileStorage } from "../src/fs/batch_storage.ts";
import { createMockProvider } from "../src/providers/mock.ts";
import { createApp } from "../src/server/app.ts";
import type { BatchManager } from "../src/server/batch_api/batch_manager.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mft-batch-routes-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function makeApp(name: string, extra: { maxFileBytes?: number; token?: string } = {}) {
  let manager!: BatchManager;
  const app = createApp({
    provider: createMockProvider({ latencyMs: 1 }),
    rate: 500,
    token: extra.token,
    batchApi: {
      storage: createFileStorage(path.join(tmp, name)),
      maxFileBytes: extra.maxFileBytes,
      onManager: (m) => (manager = m),
    },
  });
  return { app, manager };
}

function form(fields: Record<string, string | File>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.set(k, v);
  return f;
}

const line = (id: string, body: Json = { messages: [{ role: "user", content: id }] }) =>
  JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body });

async function uploadText(app: ReturnType<typeof makeApp>["app"], text: string): Promise<Json> {
  const res = await app.request("/v1/files", {
    method: "POST",
    body: form({ purpose: "batch", file: new File([text], "in.jsonl") }),
  });
  expect(res.status).toBe(200);
  return await res.json();
}

async function settle(manager: BatchManager, app: ReturnType<typeof makeApp>["app"], id: string) {
  await manager.idle();
  return await (await app.request(`/v1/batches/${id}`)).json();
}

test("POST /v1/files refuses what is not an upload of a batch file, in OpenAI's error shape", async () => {
  const { app } = makeApp("refusals", { maxFileBytes: 100 });
  const cases: [RequestInit, number, string | null][] = [
    [{ method: "POST", body: "{}", headers: { "content-type": "application/json" } }, 400, null],
    [{ method: "POST", body: form({ purpose: "batch" }) }, 400, "file"],
    [{ method: "POST", body: form({ file: new File(["x"], "a.jsonl") }) }, 400, "purpose"],
    [
      { method: "POST", body: form({ purpose: "fine-tune", file: new File(["x"], "a") }) },
      400,
      "purpose",
    ],
    [
      { method: "POST", body: form({ purpose: "batch", file: new File(["x".repeat(101)], "a") }) },
      413,
      "file",
    ],
  ];
  for (const [init, status, param] of cases) {
    const res = await app.request("/v1/files", init);
    expect(res.status).toBe(status);
    const body = await res.json();
    expect(body.error.type).toBe(
      status === 413 ? "invalid_request_error" : "invalid_request_error",
    );
    expect(body.error.param).toBe(param);
    expect(typeof body.error.message).toBe("string");
  }
  // Nothing was kept of the refused uploads.
  expect((await (await app.request("/v1/files")).json()).data).toEqual([]);
  expect(fs.readdirSync(path.join(tmp, "refusals")).filter((n) => n !== "server.lock")).toEqual([]);
});

test("POST /v1/batches validates its body with the param named", async () => {
  const { app } = makeApp("create");
  const file = await uploadText(app, line("a") + "\n");
  const post = (body: unknown) =>
    app.request("/v1/batches", {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
  const base = {
    input_file_id: file.id,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  };
  const cases: [unknown, string | null, string][] = [
    ["{oops", null, "JSON"],
    [{ ...base, input_file_id: undefined }, "input_file_id", "Missing required parameter"],
    [{ ...base, endpoint: "/v1/embeddings" }, "endpoint", "/v1/chat/completions"],
    [{ ...base, completion_window: "48h" }, "completion_window", "24h"],
    [{ ...base, metadata: { k: 1 } }, "metadata.k", "strings"],
    [
      {
        ...base,
        metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])),
      },
      "metadata",
      "16",
    ],
  ];
  for (const [body, param, words] of cases) {
    const res = await post(body);
    expect(res.status).toBe(400);
    const e = (await res.json()).error;
    expect(e.param).toBe(param);
    expect(e.message).toContain(words);
  }
});

test("a batch through app.request(): request_counts, files, list pages and a 409 on deleting its input mid-run", async () => {
  const { app, manager } = makeApp("run");
  const text = Array.from({ length: 30 }, (_, i) => line(`id-${i}`)).join("\n") + "\n";
  const file = await uploadText(app, text);
  const created = await (await app.request("/v1/batches", {
    method: "POST",
    body: JSON.stringify({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    }),
  })).json();
  const del = await app.request(`/v1/files/${file.id}`, { method: "DELETE" });
  expect(del.status).toBe(409);
  const batch = await settle(manager, app, created.id);
  expect(batch.status).toBe("completed");
  expect(batch.request_counts).toEqual({ total: 30, completed: 30, failed: 0 });
  expect(batch.error_file_id).toBeNull();
  const out = await (await app.request(`/v1/files/${batch.output_file_id}/content`)).text();
  expect(out.trim().split("\n").map((l) => JSON.parse(l).custom_id).sort()).toEqual(
    Array.from({ length: 30 }, (_, i) => `id-${i}`).sort(),
  );
  const files = await (await app.request("/v1/files?limit=1")).json();
  expect(files).toMatchObject({ object: "list", has_more: true });
  expect(files.data[0].purpose).toBe("batch_output");
  const next = await (await app.request(`/v1/files?limit=5&after=${files.last_id}`)).json();
  expect(next.data.map((f: Json) => f.id)).toEqual([file.id]);
  expect((await app.request("/v1/batches?limit=0")).status).toBe(400);
  expect((await app.request(`/v1/files/${file.id}`, { method: "DELETE" })).status).toBe(200);
});

test("the Batch API sits behind the server's bearer token, /healthz does not", async () => {
  const { app } = makeApp("auth", { token: "t0ken" });
  expect((await app.request("/v1/batches")).status).toBe(401);
  expect(
    (await app.request("/v1/files", { method: "POST", body: form({ purpose: "batch" }) })).status,
  )
    .toBe(401);
  expect((await app.request("/v1/batches", { headers: { authorization: "Bearer t0ken" } })).status)
    .toBe(200);
  expect((await app.request("/healthz")).status).toBe(200);
});
