// OpenAI's Batch API on `serve`, driven by the official openai SDK: `cli.ts serve` runs as a real
// process on 127.0.0.1 in front of our mock provider server (tests/mocks/mock_provider.ts), with a
// fresh --data-dir per test; one test kills it with SIGKILL and restarts it on the same directory.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import OpenAI from "openai";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { startMockBatch } from "./mocks/mock_batch.ts";
import { TextLineStream } from "../src/text_line_stream.ts";
import { CLI } from "./_cli.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const KEY = "provider-key";
const TOKEN = "server-token";
const FINAL = ["completed", "failed", "cancelled", "expired"];

let mock: MockProvider;
let tmp: string;

beforeAll(async () => {
  mock = await startMockProvider({ latencyMs: 20, requireKey: KEY });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mft-batch-api-"));
});

afterAll(async () => {
  await mock.close();
  if (!process.env.MFT_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Served {
  url: string;
  proc: ReturnType<typeof Bun.spawn>;
  stderr: () => string;
  client: OpenAI;
}

/** Starts `cli.ts serve` on a free port with `args`; resolves once it listens. */
async function serve(
  dataDir: string,
  args: string[] = [],
  options: { baseUrl?: string; env?: Record<string, string> } = {},
): Promise<Served> {
  const proc = Bun.spawn([
    process.execPath,
    CLI,
    "serve",
    "--port",
    "0",
    "--provider",
    "openai",
    "--base-url",
    options.baseUrl ?? `${mock.url}/v1`,
    "--data-dir",
    dataDir,
    ...args,
  ], {
    // With Bun's fetch cap already lifted the CLI does not start itself again as a child, so the
    // process we kill is the server itself.
    env: {
      PATH: process.env.PATH ?? "",
      OPENAI_API_KEY: KEY,
      MFT_SERVER_TOKEN: TOKEN,
      BUN_CONFIG_MAX_HTTP_REQUESTS: "65535",
      ...options.env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  let err = "";
  (async () => {
    for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) err += chunk;
  })();
  const lines = proc.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TextLineStream(),
  );
  for await (const line of lines) {
    const m = /^listening on (\S+)/.exec(line);
    if (m) {
      const url = m[1];
      return {
        url,
        proc,
        stderr: () => err,
        client: new OpenAI({ baseURL: `${url}/v1`, apiKey: TOKEN, maxRetries: 0 }),
      };
    }
  }
  throw new Error(`serve did not start: ${err}`);
}

async function stop(s: Served): Promise<void> {
  s.proc.kill("SIGKILL");
  await s.proc.exited;
}

/** The error `p` rejects with (the SDK's promises are thenables that `expect().rejects` misreads). */
async function failure(p: PromiseLike<unknown>): Promise<Json> {
  try {
    await p;
  } catch (error) {
    return error as Json;
  }
  throw new Error("expected the call to fail");
}

function request(id: string, content: string, extra: Json = {}): Json {
  return {
    custom_id: id,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra },
  };
}

function jsonl(lines: unknown[]): string {
  return lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";
}

async function upload(client: OpenAI, text: string, name = "input.jsonl") {
  return await client.files.create({ file: new File([text], name), purpose: "batch" });
}

/** Polls until the batch is final; returns it and every status and count seen on the way. */
async function poll(client: OpenAI, id: string, timeoutMs = 60_000) {
  const seen: { status: string; completed: number; failed: number }[] = [];
  const end = Date.now() + timeoutMs;
  while (true) {
    const b = await client.batches.retrieve(id);
    seen.push({
      status: b.status,
      completed: b.request_counts!.completed,
      failed: b.request_counts!.failed,
    });
    if (FINAL.includes(b.status)) return { batch: b, seen };
    if (Date.now() > end) throw new Error(`batch ${id} still ${b.status} after ${timeoutMs} ms`);
    await Bun.sleep(50);
  }
}

async function download(client: OpenAI, id: string | null | undefined): Promise<Json[]> {
  if (!id) return [];
  const text = await (await client.files.content(id)).text();
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** Every id of `ids` in exactly one of the two files, and nothing else. */
function expectEachOnce(ids: string[], output: Json[], errors: Json[]): void {
  const all = [...output, ...errors].map((r) => r.custom_id as string);
  expect(all.length).toBe(ids.length);
  expect(new Set(all).size).toBe(ids.length);
  expect([...all].sort()).toEqual([...ids].sort());
}

test(
  "the openai SDK uploads, creates, polls, downloads, lists and deletes through serve",
  async () => {
    const s = await serve(path.join(tmp, "e2e"), ["--rate-limit", "100", "--max-attempts", "2"]);
    try {
      // The server's bearer token is the SDK's API key: a wrong one is refused like OpenAI's 401.
      const stranger = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "wrong", maxRetries: 0 });
      expect(await failure(stranger.batches.list())).toBeInstanceOf(OpenAI.AuthenticationError);

      const good = Array.from({ length: 40 }, (_, i) => request(`req-${i}`, `question ${i}`));
      const lines = [
        ...good,
        request("provider-400", "[[mock:400]] refused by the provider"),
        request("retried", "[[mock:fail=1:500]] fails once"),
        {
          custom_id: "no-messages",
          method: "POST",
          url: "/v1/chat/completions",
          body: { model: "m" },
        },
      ];
      const ids = lines.map((l) => l.custom_id as string);
      const text = jsonl(lines);
      const file = await upload(s.client, text);
      expect(file.id).toMatch(/^file-[A-Za-z0-9]+$/);
      expect(file).toMatchObject({
        object: "file",
        purpose: "batch",
        filename: "input.jsonl",
        bytes: new TextEncoder().encode(text).length,
        status: "processed",
      });
      expect(await s.client.files.retrieve(file.id)).toEqual(file);
      expect(await (await s.client.files.content(file.id)).text()).toBe(text);

      const created = await s.client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
        metadata: { project: "sdk-test" },
      });
      expect(created.id).toMatch(/^batch_[0-9a-f]+$/);
      expect(created).toMatchObject({
        object: "batch",
        status: "validating",
        input_file_id: file.id,
        metadata: { project: "sdk-test" },
        output_file_id: null,
      });
      const { batch, seen } = await poll(s.client, created.id);
      expect(batch.status).toBe("completed");
      expect(batch.request_counts).toEqual({ total: lines.length, completed: 41, failed: 2 });
      expect(batch.completed_at).toBeGreaterThanOrEqual(batch.created_at);
      expect(batch.finalizing_at).not.toBeNull();
      // The statuses come in OpenAI's order, and the counts only grow.
      const order = ["validating", "in_progress", "finalizing", "completed"];
      const statuses = seen.map((x) => order.indexOf(x.status));
      expect(statuses.every((v, i) => v >= 0 && (i === 0 || v >= statuses[i - 1]))).toBe(true);
      for (let i = 1; i < seen.length; i++) {
        expect(seen[i].completed + seen[i].failed).toBeGreaterThanOrEqual(
          seen[i - 1].completed + seen[i - 1].failed,
        );
      }

      const output = await download(s.client, batch.output_file_id);
      const errors = await download(s.client, batch.error_file_id);
      expectEachOnce(ids, output, errors);
      for (const r of output) {
        expect(r.id).toMatch(/^batch_req_[0-9a-f]+$/);
        expect(r.error).toBeNull();
        expect(r.response.status_code).toBe(200);
        expect(r.response.body.object).toBe("chat.completion");
        expect(typeof r.response.body.choices[0].message.content).toBe("string");
      }
      const byId = new Map(errors.map((r) => [r.custom_id, r]));
      // The provider's 400: the error file carries the status and an OpenAI error body.
      expect(byId.get("provider-400")).toMatchObject({
        error: null,
        response: { status_code: 400, body: { error: { type: "invalid_request_error" } } },
      });
      // A body that can not be a request is answered 400 without being sent.
      expect(byId.get("no-messages")).toMatchObject({
        error: null,
        response: {
          status_code: 400,
          body: { error: { param: "messages", code: "missing_required_parameter" } },
        },
      });
      const outFile = await s.client.files.retrieve(batch.output_file_id!);
      expect(outFile).toMatchObject({ purpose: "batch_output", object: "file" });

      // A second batch, then the list pages newest first with `after`, as the SDK walks it.
      const second = await s.client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      });
      const first = await s.client.batches.list({ limit: 1 });
      expect(first.data.map((b) => b.id)).toEqual([second.id]);
      expect(first.has_more).toBe(true);
      const all: string[] = [];
      for await (const b of s.client.batches.list({ limit: 1 })) all.push(b.id);
      expect(all).toEqual([second.id, batch.id]);
      await poll(s.client, second.id);

      // Bad requests get OpenAI's error shapes, which the SDK turns into its error classes.
      const bad = s.client.batches.create({
        input_file_id: "file-nope",
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      });
      expect(await failure(bad)).toMatchObject({ status: 400, param: "input_file_id" });
      expect(await failure(bad)).toBeInstanceOf(OpenAI.BadRequestError);
      expect(
        await failure(
          s.client.batches.create({
            input_file_id: file.id,
            endpoint: "/v1/chat/completions",
            completion_window: "1h" as "24h",
          }),
        ),
      ).toMatchObject({ status: 400, param: "completion_window" });
      expect(await failure(s.client.batches.retrieve("batch_nope"))).toBeInstanceOf(
        OpenAI.NotFoundError,
      );
      expect(
        await failure(
          s.client.files.create({ file: new File(["x"], "x.jsonl"), purpose: "assistants" }),
        ),
      ).toMatchObject({ status: 400, param: "purpose" });

      const deleted = await s.client.files.delete(file.id);
      expect(deleted).toEqual({ id: file.id, object: "file", deleted: true });
      expect(await failure(s.client.files.retrieve(file.id))).toBeInstanceOf(OpenAI.NotFoundError);
    } finally {
      await stop(s);
    }
  },
  60_000,
);

test("an invalid file fails the batch with errors naming each line and field", async () => {
  const s = await serve(path.join(tmp, "invalid"));
  try {
    const file = await upload(
      s.client,
      jsonl([
        request("a", "fine"),
        "{not json",
        request("a", "the same id again"),
        { ...request("c", "wrong url"), url: "/v1/embeddings" },
        { method: "POST", url: "/v1/chat/completions", body: {} },
        { ...request("e", "get"), method: "GET" },
      ]),
    );
    const created = await s.client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const { batch } = await poll(s.client, created.id);
    expect(batch.status).toBe("failed");
    expect(batch.failed_at).not.toBeNull();
    expect(batch.output_file_id).toBeNull();
    expect(batch.errors!.object).toBe("list");
    expect(batch.errors!.data!.map((e) => [e.code, e.line, e.param])).toEqual([
      ["invalid_json_line", 2, null],
      ["duplicate_custom_id", 3, "custom_id"],
      ["url_mismatch", 4, "url"],
      ["missing_required_parameter", 5, "custom_id"],
      ["invalid_value", 6, "method"],
    ]);
    expect(batch.errors!.data![1].message).toContain("line 1");

    const empty = await upload(s.client, "\n");
    const none = await s.client.batches.create({
      input_file_id: empty.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    const { batch: emptyBatch } = await poll(s.client, none.id);
    expect(emptyBatch.status).toBe("failed");
    expect(emptyBatch.errors!.data![0].code).toBe("empty_file");
  } finally {
    await stop(s);
  }
}, 60_000);

test(
  "cancel: in-flight requests finish, the rest go to the error file as batch_cancelled",
  async () => {
    const s = await serve(path.join(tmp, "cancel"), ["--rate-limit", "20"]);
    try {
      const lines = Array.from({ length: 200 }, (_, i) => request(`c-${i}`, `slow ${i}`));
      const file = await upload(s.client, jsonl(lines));
      const created = await s.client.batches.create({
        input_file_id: file.id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      });
      while ((await s.client.batches.retrieve(created.id)).request_counts!.completed < 10) {
        await Bun.sleep(50);
      }
      const cancelling = await s.client.batches.cancel(created.id);
      expect(["cancelling", "cancelled"]).toContain(cancelling.status);
      expect(cancelling.cancelling_at).not.toBeNull();
      const { batch } = await poll(s.client, created.id);
      expect(batch.status).toBe("cancelled");
      expect(batch.cancelled_at).not.toBeNull();
      const { completed, failed, total } = batch.request_counts!;
      expect(total).toBe(200);
      expect(completed).toBeGreaterThanOrEqual(10);
      expect(completed).toBeLessThan(200);
      expect(completed + failed).toBe(200);
      const output = await download(s.client, batch.output_file_id);
      const errors = await download(s.client, batch.error_file_id);
      expectEachOnce(lines.map((l) => l.custom_id), output, errors);
      expect(output.length).toBe(completed);
      for (const e of errors) {
        expect(e).toMatchObject({ response: null, error: { code: "batch_cancelled" } });
      }
      // Cancelling twice answers the batch as it is; a finished batch can not be cancelled.
      expect((await s.client.batches.cancel(created.id)).status).toBe("cancelled");
      const done = await s.client.batches.create({
        input_file_id: (await upload(s.client, jsonl([request("x", "y")]))).id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      });
      await poll(s.client, done.id);
      expect(await failure(s.client.batches.cancel(done.id))).toMatchObject({ status: 409 });
    } finally {
      await stop(s);
    }
  },
  60_000,
);

test(
  "a batch and a /v1/runs caller share the server's one rate: neither waits for the other",
  async () => {
    const s = await serve(path.join(tmp, "fair"), ["--rate-limit", "40"]);
    try {
      const lines = Array.from({ length: 400 }, (_, i) => request(`f-${i}`, `fair ${i}`));
      const created = await s.client.batches.create({
        input_file_id: (await upload(s.client, jsonl(lines))).id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      });
      while ((await s.client.batches.retrieve(created.id)).request_counts!.completed < 20) {
        await Bun.sleep(20);
      }
      const before = (await s.client.batches.retrieve(created.id)).request_counts!.completed;
      const body = Array.from({ length: 40 }, (_, i) =>
        JSON.stringify({ id: `r${i}`, prompt: `run ${i}` }))
        .join("\n") + "\n";
      const res = await fetch(`${s.url}/v1/runs`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body,
      });
      const out = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
      expect(out.at(-1).summary.ok).toBe(40);
      const after = await s.client.batches.retrieve(created.id);
      // At 40 req/s a lone batch needs 10 s for 400 lines and the run's 40 lines alone 1 s; shared
      // round-robin the run ends in about 2 s, long before the batch, which kept going meanwhile.
      expect(after.status).toBe("in_progress");
      expect(after.request_counts!.completed).toBeLessThan(400);
      expect(after.request_counts!.completed - before).toBeGreaterThanOrEqual(10);
      await s.client.batches.cancel(created.id);
      await poll(s.client, created.id);
    } finally {
      await stop(s);
    }
  },
  60_000,
);

test(
  "kill -9 mid-batch, restart on the same --data-dir: it resumes and resends only what was in flight",
  async () => {
    const dir = path.join(tmp, "crash");
    const n = 1500;
    const lines = Array.from({ length: n }, (_, i) => request(`k-${i}`, `crash ${i}`));
    const ids = lines.map((l) => l.custom_id);
    mock.reset();
    const first = await serve(dir, ["--rate-limit", "150"]);
    const file = await upload(first.client, jsonl(lines));
    const created = await first.client.batches.create({
      input_file_id: file.id,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
    });
    while ((await first.client.batches.retrieve(created.id)).request_counts!.completed < 300) {
      await Bun.sleep(20);
    }
    await stop(first);
    const arrivedAtKill = mock.stats().count;

    // What the dead server left on disk: its state names the progress files.
    const state = JSON.parse(fs.readFileSync(path.join(dir, `${created.id}.batch.json`), "utf8"));
    const progress = path.join(dir, `${state.outputFileId}.jsonl`);
    const onDisk = fs.readFileSync(progress, "utf8").split("\n").filter((l) => l !== "").length;
    expect(onDisk).toBeGreaterThanOrEqual(300);
    expect(onDisk).toBeLessThan(n);
    const inFlight = arrivedAtKill - onDisk;
    // A crash in the middle of a write leaves half a line: the restart must cut it.
    fs.appendFileSync(progress, '{"id":"batch_req_torn","custom_id":"k-');

    const second = await serve(dir, ["--rate-limit", "150"]);
    try {
      const { batch } = await poll(second.client, created.id);
      expect(batch.status).toBe("completed");
      expect(batch.request_counts).toEqual({ total: n, completed: n, failed: 0 });
      const output = await download(second.client, batch.output_file_id);
      expectEachOnce(ids, output, []);
      // Every line was sent once, plus at most those in flight when the server died.
      const resent = mock.stats().count - n;
      expect(resent).toBeGreaterThanOrEqual(0);
      expect(resent).toBeLessThanOrEqual(inFlight);
      expect(second.stderr()).toContain(`batch ${created.id}: resuming`);
    } finally {
      await stop(second);
    }
  },
  90_000,
);

test(
  "--mode batch: the provider's own Batch API runs it, and a kill -9 re-attaches without submitting again",
  async () => {
    const mb = await startMockBatch({
      validatingMs: 20,
      runningMs: 1500,
      finalizingMs: 10,
      cancellingMs: 10,
      itemErrorRate: 0.2,
    });
    const dir = path.join(tmp, "provider-batch");
    const opts = { baseUrl: `${mb.url}/v1`, env: { MFT_BATCH_POLL_INTERVAL: "20ms" } };
    try {
      const first = await serve(dir, ["--mode", "batch"], opts);
      const lines = Array.from({ length: 30 }, (_, i) => request(`p-${i}`, `batch ${i}`));
      const created = await first.client.batches.create({
        input_file_id: (await upload(first.client, jsonl(lines))).id,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
      });
      // Killed while the provider's batch runs; the restart finds it again by the saved job.
      while (mb.batches().length === 0) await Bun.sleep(10);
      await stop(first);
      const second = await serve(dir, ["--mode", "batch"], opts);
      try {
        const { batch } = await poll(second.client, created.id);
        expect(batch.status).toBe("completed");
        const { completed, failed, total } = batch.request_counts!;
        expect(total).toBe(30);
        expect(completed + failed).toBe(30);
        expect(failed).toBeGreaterThan(0); // the mock's item errors
        const output = await download(second.client, batch.output_file_id);
        const errors = await download(second.client, batch.error_file_id);
        expectEachOnce(lines.map((l) => l.custom_id), output, errors);
        for (const r of output) expect(r.response.status_code).toBe(200);
        for (const r of errors) expect(r.response?.status_code ?? r.error?.code).toBeDefined();
        expect(second.stderr()).toContain(`batch ${created.id}: resume: re-attached`);
        expect(mb.stats()).toMatchObject({
          batches: 1,
          batchItems: 30,
          resubmitted: [],
          answeredTwice: [],
          realtimeRequests: 0,
        });
      } finally {
        await stop(second);
      }
    } finally {
      await mb.close();
    }
  },
  60_000,
);
