/**
 * The mock batch API through `app.request()`: OpenAI files and batches, Gemini batch mode
 * (inline, file upload and download), states on an injected clock, item errors, expiry, stuck
 * and failed batches, cancel, listing.
 * @module
 */
import { expect, test } from "bun:test";
import { createMockBatchApp, type MockBatchOptions } from "./mocks/mock_batch.ts";

type Json = Record<string, unknown>;

function setup(options: MockBatchOptions = {}) {
  let t = 0;
  const mock = createMockBatchApp({
    validatingMs: 10,
    runningMs: 100,
    finalizingMs: 10,
    cancellingMs: 5,
    now: () => t,
    ...options,
  });
  const req = async (path: string, init: RequestInit = {}) => {
    const res = await mock.app.request(path, init);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // raw file content
    }
    return { status: res.status, headers: res.headers, body: body as Json, text };
  };
  return { mock, req, at: (ms: number) => (t = ms) };
}

function openAiLines(n: number, model = "m1", from = 0): string {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      custom_id: `c${from + i}`,
      method: "POST",
      url: "/v1/chat/completions",
      body: { model, messages: [{ role: "user", content: `question ${from + i}` }] },
    })).join("\n") + "\n";
}

async function openAiBatch(
  req: ReturnType<typeof setup>["req"],
  content: string,
  tag = "t",
): Promise<Json> {
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", new Blob([content]), "in.jsonl");
  const file = await req("/v1/files", { method: "POST", body: form });
  expect(file.status).toBe(200);
  const created = await req("/v1/batches", {
    method: "POST",
    body: JSON.stringify({
      input_file_id: file.body.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { mft_tag: tag },
    }),
  });
  expect(created.status).toBe(200);
  return created.body;
}

const lines = (text: string) => text.trim().split("\n").map((l) => JSON.parse(l) as Json);

test("mock OpenAI batch moves validating → in_progress → finalizing → completed on its clock", async () => {
  const { req, at } = setup();
  const batch = await openAiBatch(req, openAiLines(10));
  expect(batch.status).toBe("validating");
  const poll = async () => (await req(`/v1/batches/${batch.id}`)).body;
  at(60);
  const running = await poll();
  expect(running.status).toBe("in_progress");
  expect(running.request_counts).toEqual({ total: 10, completed: 5, failed: 0 });
  at(115);
  expect((await poll()).status).toBe("finalizing");
  at(200);
  const done = await poll();
  expect(done.status).toBe("completed");
  expect(done.error_file_id).toBeNull();
  const out = lines((await req(`/v1/files/${done.output_file_id}/content`)).text);
  expect(out.map((l) => l.custom_id)).toEqual(Array.from({ length: 10 }, (_, i) => `c${i}`));
  const first = out[0].response as { status_code: number; body: { choices: Json[] } };
  expect(first.status_code).toBe(200);
  expect(first.body.choices[0]).toMatchObject({ message: { content: "mock answer: question 0" } });
  expect(String(out[0].id)).toStartWith("batch_req_");
});

test("mock OpenAI batch puts item errors in the error file, the same keys every time", async () => {
  const { req, at } = setup({ itemErrorRate: 0.3, seed: 7 });
  const batch = await openAiBatch(req, openAiLines(50));
  at(500);
  const done = (await req(`/v1/batches/${batch.id}`)).body;
  const errors = lines((await req(`/v1/files/${done.error_file_id}/content`)).text);
  const ok = lines((await req(`/v1/files/${done.output_file_id}/content`)).text);
  expect(errors.length).toBeGreaterThan(5);
  expect(errors.length + ok.length).toBe(50);
  expect((errors[0].response as { status_code: number }).status_code).toBe(400);
  expect(done.request_counts).toMatchObject({ total: 50, failed: errors.length });
  // The same seed draws the same keys in a fresh mock.
  const again = setup({ itemErrorRate: 0.3, seed: 7 });
  const b2 = await openAiBatch(again.req, openAiLines(50));
  again.at(500);
  const d2 = (await again.req(`/v1/batches/${b2.id}`)).body;
  const e2 = lines((await again.req(`/v1/files/${d2.error_file_id}/content`)).text);
  expect(e2.map((e) => e.custom_id)).toEqual(errors.map((e) => e.custom_id));
});

test("mock OpenAI batch that expires answers part and reports the rest as batch_expired or not at all", async () => {
  for (const expiredUnanswered of ["error-file", "missing"] as const) {
    const { req, at, mock } = setup({ expire: [1], expireAnswered: 0.4, expiredUnanswered });
    const batch = await openAiBatch(req, openAiLines(10));
    at(500);
    const done = (await req(`/v1/batches/${batch.id}`)).body;
    expect(done.status).toBe("expired");
    const ok = lines((await req(`/v1/files/${done.output_file_id}/content`)).text);
    expect(ok).toHaveLength(4);
    if (expiredUnanswered === "error-file") {
      const errors = lines((await req(`/v1/files/${done.error_file_id}/content`)).text);
      expect(errors).toHaveLength(6);
      expect(errors[0].error).toMatchObject({ code: "batch_expired" });
    } else {
      expect(done.error_file_id).toBeNull();
    }
    // Sending the 6 again is not a resubmission of answered work.
    await openAiBatch(req, openAiLines(6, "m1", 4));
    expect(mock.stats().resubmitted).toEqual([]);
    await openAiBatch(req, openAiLines(1, "m1", 0));
    expect(mock.stats().resubmitted).toEqual(["openai:c0"]);
  }
});

test("mock stuck batch never leaves validating until it is cancelled", async () => {
  const { req, at } = setup({ stuck: [1] });
  const batch = await openAiBatch(req, openAiLines(3));
  at(1e9);
  expect((await req(`/v1/batches/${batch.id}`)).body.status).toBe("validating");
  const cancelling = await req(`/v1/batches/${batch.id}/cancel`, { method: "POST" });
  expect(cancelling.body.status).toBe("cancelling");
  at(1e9 + 10);
  const done = (await req(`/v1/batches/${batch.id}`)).body;
  expect(done.status).toBe("cancelled");
  const errors = lines((await req(`/v1/files/${done.error_file_id}/content`)).text);
  expect(errors.map((e) => (e.error as Json).code)).toEqual(Array(3).fill("batch_cancelled"));
});

test("mock fails a batch as planned, and one that mixes models", async () => {
  const { req, at } = setup({ fail: { 1: "token_limit_exceeded" } });
  const planned = await openAiBatch(req, openAiLines(3));
  const mixed = await openAiBatch(req, openAiLines(2, "m1") + openAiLines(1, "m2", 2));
  at(100);
  const a = (await req(`/v1/batches/${planned.id}`)).body;
  expect(a.status).toBe("failed");
  expect((a.errors as { data: Json[] }).data[0]).toMatchObject({ code: "token_limit_exceeded" });
  const b = (await req(`/v1/batches/${mixed.id}`)).body;
  expect(b.status).toBe("failed");
  expect((b.errors as { data: Json[] }).data[0]).toMatchObject({ line: 3 });
});

test("mock lists OpenAI batches newest first with cursors and finds them by metadata", async () => {
  const { req } = setup();
  const ids: unknown[] = [];
  for (let i = 0; i < 5; i++) ids.push((await openAiBatch(req, openAiLines(1), `tag${i}`)).id);
  const page1 = (await req("/v1/batches?limit=2")).body;
  expect((page1.data as Json[]).map((b) => b.id)).toEqual([ids[4], ids[3]]);
  expect(page1.has_more).toBe(true);
  const page3 = (await req(`/v1/batches?limit=2&after=${ids[1]}`)).body;
  expect((page3.data as Json[]).map((b) => (b.metadata as Json).mft_tag)).toEqual(["tag0"]);
  expect(page3.has_more).toBe(false);
});

test("mock Gemini inline batch reports JOB_STATE names and inlined responses with keys", async () => {
  const { req, at } = setup({ geminiStates: "JOB", itemErrorRate: 0 });
  const requests = [0, 1, 2].map((i) => ({
    request: {
      contents: [{ role: "user", parts: [{ text: i === 2 ? "[[mock:500]] x" : `q${i}` }] }],
    },
    metadata: { key: `g${i}` },
  }));
  const op = await req("/v1beta/models/gemini-x:batchGenerateContent", {
    method: "POST",
    body: JSON.stringify({
      batch: { display_name: "tag-g", input_config: { requests: { requests } } },
    }),
  });
  expect(op.status).toBe(200);
  expect((op.body.metadata as Json).state).toBe("JOB_STATE_PENDING");
  at(500);
  const done = (await req(`/v1beta/${op.body.name}`)).body;
  expect(done.done).toBe(true);
  expect((done.metadata as Json).state).toBe("JOB_STATE_SUCCEEDED");
  const inlined = ((done.response as Json).inlinedResponses as { inlinedResponses: Json[] })
    .inlinedResponses;
  expect(inlined.map((r) => (r.metadata as Json).key)).toEqual(["g0", "g1", "g2"]);
  expect(inlined[0].response).toHaveProperty("candidates");
  expect(inlined[2].error).toMatchObject({ code: 13, status: "INTERNAL" });
  const list = (await req("/v1beta/batches?pageSize=10")).body;
  expect((list.operations as Json[]).map((o) => (o.metadata as Json).displayName)).toEqual([
    "tag-g",
  ]);
});

test("mock Gemini file batch: resumable upload, responses file, download, cancel", async () => {
  const { req, at } = setup();
  const content =
    [0, 1].map((i) =>
      JSON.stringify({ key: `f${i}`, request: { contents: [{ parts: [{ text: `file q${i}` }] }] } })
    ).join("\n") + "\n";
  const start = await req("/upload/v1beta/files", {
    method: "POST",
    headers: { "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start" },
    body: JSON.stringify({ file: { display_name: "in" } }),
  });
  const uploadUrl = start.headers.get("x-goog-upload-url")!;
  expect(uploadUrl).toContain("upload_id=");
  const up = await req(uploadUrl, {
    method: "POST",
    headers: { "x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0" },
    body: content,
  });
  const fileName = (up.body.file as Json).name as string;
  expect(fileName).toStartWith("files/");
  const op = await req("/v1beta/models/gemini-x:batchGenerateContent", {
    method: "POST",
    body: JSON.stringify({ batch: { display_name: "f", input_config: { file_name: fileName } } }),
  });
  at(500);
  const done = (await req(`/v1beta/${op.body.name}`)).body;
  const responsesFile = (done.response as Json).responsesFile as string;
  const out = lines((await req(`/download/v1beta/${responsesFile}:download?alt=media`)).text);
  expect(out.map((l) => l.key)).toEqual(["f0", "f1"]);
  expect(out[1].response).toHaveProperty("candidates");

  const other = await req("/v1beta/models/gemini-x:batchGenerateContent", {
    method: "POST",
    body: JSON.stringify({ batch: { display_name: "c", input_config: { file_name: fileName } } }),
  });
  expect((await req(`/v1beta/${other.body.name}:cancel`, { method: "POST" })).status).toBe(200);
  at(600);
  const cancelled = (await req(`/v1beta/${other.body.name}`)).body;
  expect((cancelled.metadata as Json).state).toBe("BATCH_STATE_CANCELLED");
});

test("mock serves the realtime routes too and counts their user texts", async () => {
  const { req, mock } = setup();
  const chat = (text: string) =>
    req("/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: text }] }),
    });
  expect((await chat("hello")).body).toHaveProperty("choices");
  await chat("hello");
  expect(mock.stats()).toMatchObject({ realtimeRequests: 2, realtimeRepeats: ["hello"] });
});

test("mock refuses a wrong key in each provider's error shape", async () => {
  const { req } = setup({ requireKey: "right" });
  const a = await req("/v1/batches", { headers: { authorization: "Bearer wrong" } });
  expect(a.status).toBe(401);
  expect(a.body.error).toMatchObject({ code: "invalid_api_key" });
  const b = await req("/v1beta/batches", { headers: { "x-goog-api-key": "wrong" } });
  expect(b.status).toBe(401);
  expect(b.body.error).toMatchObject({ status: "UNAUTHENTICATED" });
});

test("mock rejects out-of-range options", () => {
  expect(() => createMockBatchApp({ runningMs: -1 })).toThrow(RangeError);
  expect(() => createMockBatchApp({ itemErrorRate: 2 })).toThrow(/itemErrorRate/);
});
