/**
 * runBatchJob() end to end against the mock batch API in process: one fake clock drives the
 * job's polls and the mock's state transitions, so whole jobs (splitting, expiry, crash and
 * re-attach, deadline rescue, cancel, detach) run in milliseconds of real time.
 * @module
 */
import { expect, test } from "bun:test";
import type { Hono } from "hono";
import { createMockBatchApp, type MockBatchOptions } from "./mocks/mock_batch.ts";
import { createGeminiBatchBackend } from "../src/providers/gemini/batch.ts";
import { createOpenAIBatchBackend } from "../src/providers/openai/batch.ts";
import {
  type BatchJobOptions,
  type BatchJobStats,
  runBatchJob,
} from "../src/batch/run_batch_job.ts";
import { MemoryJobStore } from "../src/batch/store.ts";
import { IdSet } from "../src/id_set.ts";
import { createGeminiProvider } from "../src/providers/gemini/realtime.ts";
import { createOpenAIProvider } from "../src/providers/openai/realtime.ts";
import { runRealtime, type RunRecord } from "../src/run.ts";
import { FakeClock } from "./_fake_clock.ts";

type Json = Record<string, unknown>;

/** A fetch that serves `app` in process and honours the request's abort signal. */
function appFetch(app: Hono, hook?: (req: Request, res: Response) => Response | void) {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    req.signal.throwIfAborted();
    const res = await app.fetch(req);
    req.signal.throwIfAborted();
    return hook?.(req, res) ?? res;
  }) as typeof fetch;
}

/** Advances `clock` in steps until `promise` settles. */
async function drive<T>(clock: FakeClock, promise: Promise<T>, stepMs = 5): Promise<T> {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 20_000 && !settled; i++) await clock.advance(stepMs);
  return promise;
}

interface Harness {
  clock: FakeClock;
  mock: ReturnType<typeof createMockBatchApp>;
  store: MemoryJobStore;
  records: RunRecord[];
  events: string[];
  run(lines: string[] | undefined, extra?: Partial<BatchJobOptions>): Promise<BatchJobStats>;
}

function harness(
  provider: "openai" | "gemini",
  mockOptions: MockBatchOptions = {},
  backendOptions: { maxItems?: number; inlineMaxBytes?: number; apiKey?: string } = {},
  hook?: (req: Request, res: Response) => Response | void,
): Harness {
  const clock = new FakeClock(0);
  const mock = createMockBatchApp({
    validatingMs: 10,
    runningMs: 40,
    finalizingMs: 5,
    cancellingMs: 5,
    now: () => clock.now(),
    ...mockOptions,
  });
  const fetch = appFetch(mock.app, hook);
  const limits = backendOptions.maxItems ? { maxItems: backendOptions.maxItems } : undefined;
  const apiKey = backendOptions.apiKey ?? "test-key-123";
  const backend = provider === "openai"
    ? createOpenAIBatchBackend({ baseUrl: "http://mock/v1", apiKey, fetch, limits })
    : createGeminiBatchBackend({
      baseUrl: "http://mock",
      apiKey,
      fetch,
      limits,
      inlineMaxBytes: backendOptions.inlineMaxBytes,
    });
  const realtimeProvider = provider === "openai"
    ? createOpenAIProvider({ baseUrl: "http://mock/v1", apiKey, fetch })
    : createGeminiProvider({ baseUrl: "http://mock", apiKey, fetch });
  const store = new MemoryJobStore();
  const records: RunRecord[] = [];
  const events: string[] = [];
  return {
    clock,
    mock,
    store,
    records,
    events,
    run(lines, extra = {}) {
      const answered = new IdSet();
      const errored = new IdSet();
      for (const r of records) if (r.id) (r.type === "ok" ? answered : errored).add(r.id);
      return drive(
        clock,
        runBatchJob(lines === undefined ? undefined : ReadableStream.from(lines), {
          backend,
          store,
          sink: { write: (r) => void records.push(r) },
          answered,
          errored,
          clock,
          now: () => clock.now(),
          pollIntervalMs: 10,
          realtime: { provider: realtimeProvider, rate: 1000, retry: { baseDelayMs: 1 } },
          onEvent: (m) => void events.push(m),
          ...extra,
        }),
      );
    },
  };
}

const simple = (n: number, from = 0) =>
  Array.from(
    { length: n },
    (_, i) => JSON.stringify({ id: `k${from + i}`, prompt: `q ${from + i}` }),
  );

/** Every record's id once, and every valid input id in exactly one record. */
function expectEachOnce(records: RunRecord[], ids: string[]) {
  const seen = records.map((r) => r.id).filter((id): id is string => id !== undefined);
  expect(seen.length).toBe(new Set(seen).size);
  expect(new Set(seen)).toEqual(new Set(ids));
}

test("runBatchJob() splits a job by the batch limits, endpoint and model, and writes each line once", async () => {
  const h = harness("openai", {}, { maxItems: 4 });
  const lines = [
    ...simple(10),
    ...[0, 1, 2].map((i) =>
      JSON.stringify({
        custom_id: `m2-${i}`,
        method: "POST",
        url: "/v1/chat/completions",
        body: { model: "m2", messages: [{ role: "user", content: `m2 ${i}` }] },
      })
    ),
    ...[0, 1].map((i) =>
      JSON.stringify({
        custom_id: `r-${i}`,
        url: "/v1/responses",
        body: { model: "m1", input: `resp ${i}` },
      })
    ),
    "not json",
    JSON.stringify({ id: "k1", prompt: "duplicate id" }),
  ];
  const stats = await h.run(lines);
  expect(stats).toMatchObject({ state: "done", items: 15, ok: 15, failed: 0, invalid: 2 });
  expect(stats.batches).toBe(5); // 4 + 4 + 2 simple, 3 of m2, 2 responses
  expectEachOnce(h.records.filter((r) => r.type === "ok"), [
    ...Array.from({ length: 10 }, (_, i) => `k${i}`),
    "m2-0",
    "m2-1",
    "m2-2",
    "r-0",
    "r-1",
  ]);
  const rejects = h.records.filter((r) => r.type === "error");
  expect(rejects.map((r) => (r.record.error as Json).code)).toEqual([
    "invalid_json",
    "duplicate_id",
  ]);
  expect([...h.mock.submissions().values()].every((n) => n === 1)).toBe(true);
  expect(h.store.job?.state).toBe("done");
  expect(h.store.parts.size).toBe(0);
});

/** Drops the fields that differ between any two runs (ids, timestamps, latency). */
function stable(record: Json): Json {
  const r = structuredClone(record);
  delete r.latency_ms;
  if (typeof r.id === "string" && r.id.startsWith("batch_req_")) r.id = "batch_req_*";
  const body = ((r.response as Json)?.body ?? r.response) as Json | undefined;
  if (body && typeof body === "object") {
    for (const key of ["id", "created", "responseId"]) delete body[key];
  }
  if ((r.response as Json)?.request_id) (r.response as Json).request_id = "*";
  return r;
}

for (const provider of ["openai", "gemini"] as const) {
  test(`runBatchJob() writes the records the realtime path writes (${provider})`, async () => {
    const lines = [
      JSON.stringify({ id: 7, prompt: "numeric id" }),
      JSON.stringify({ messages: [{ role: "user", content: "no id" }], temperature: 0 }),
      JSON.stringify({
        custom_id: "oa",
        method: "POST",
        url: "/v1/chat/completions",
        body: { messages: [{ role: "user", content: "openai line" }] },
      }),
      JSON.stringify({ key: "gk", request: { contents: [{ parts: [{ text: "gemini line" }] }] } }),
      JSON.stringify({ id: "bad", prompt: "[[mock:400]] refused" }),
    ];
    const h = harness(provider);
    await h.run(lines);
    const realtime = provider === "openai"
      ? createOpenAIProvider({ baseUrl: "http://mock/v1", fetch: appFetch(h.mock.app) })
      : createGeminiProvider({ baseUrl: "http://mock", fetch: appFetch(h.mock.app) });
    const run = runRealtime(ReadableStream.from(lines), { provider: realtime, rate: 1000 });
    const expected: RunRecord[] = [];
    for await (const r of run.results) expected.push(r);
    const byLine = (rs: RunRecord[]) =>
      Object.fromEntries(rs.map((r) => [r.line, { type: r.type, record: stable(r.record) }]));
    const got = byLine(h.records);
    const want = byLine(expected);
    // The realtime run retries nothing here (a 400 is final), so attempts match too.
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const line of Object.keys(want)) {
      expect({ line, ...got[line] }).toEqual({ line, ...want[line] });
      expect(Object.keys(got[line].record)).toEqual(Object.keys(want[line].record));
    }
  });
}

test("runBatchJob() sends what an expired batch did not run again, and nothing twice", async () => {
  for (const expiredUnanswered of ["error-file", "missing"] as const) {
    const h = harness("openai", { expire: [2], expireAnswered: 0.25, expiredUnanswered }, {
      maxItems: 8,
    });
    const stats = await h.run(simple(24));
    expect(stats).toMatchObject({ state: "done", ok: 24, failed: 0, resent: 6, batches: 4 });
    expectEachOnce(h.records, simple(24).map((l) => JSON.parse(l).id));
    expect(h.mock.stats()).toMatchObject({ resubmitted: [], answeredTwice: [] });
    expect(h.events.some((e) => /expired: 2 answered, 0 failed, 6 sent again as p3/.test(e)))
      .toBe(true);
  }
});

test("runBatchJob() gives up on items after maxAttempts submissions and writes them as errors", async () => {
  const h = harness("openai", { expire: [1, 2], expireAnswered: 0 });
  const stats = await h.run(simple(3), { maxAttempts: 2 });
  expect(stats).toMatchObject({ ok: 0, failed: 3, batches: 2 });
  expect(h.records.map((r) => r.record.error)).toEqual(
    [0, 1, 2].map((i) =>
      expect.objectContaining({ code: "batch_expired", attempts: 2, line: i + 1 })
    ),
  );
});

test("runBatchJob() re-attaches after a crash between 'batch created' and saving its id", async () => {
  const crash = new AbortController();
  const h = harness("openai", {
    // The provider has created the batch; the process dies before it hears back.
    onCreate: (b) => {
      if (b.ordinal === 2) crash.abort(new Error("power cut"));
    },
  }, { maxItems: 5 });
  await expect(h.run(simple(15), { signal: crash.signal })).rejects.toThrow("power cut");
  const saved = h.store.job!;
  expect(saved.parts.map((p) => [p.state, p.createSent ?? false, p.batchId !== undefined]))
    .toEqual([["submitted", false, true], ["creating", true, false], ["planned", false, false]]);
  expect(h.mock.batches()).toHaveLength(2);

  const stats = await h.run(undefined);
  expect(stats).toMatchObject({ attached: true, state: "done", ok: 15 });
  expect(h.events.some((e) => /p1: re-attached to batch_/.test(e))).toBe(true);
  expect(h.mock.batches()).toHaveLength(3);
  expect([...h.mock.submissions().values()].every((n) => n === 1)).toBe(true);
  expectEachOnce(h.records, simple(15).map((l) => JSON.parse(l).id));
});

test("runBatchJob() looks for its batch before creating again when a create answer is lost", async () => {
  let dropped = false;
  const h = harness("gemini", {}, {}, (req, res) => {
    if (!dropped && req.url.endsWith(":batchGenerateContent")) {
      dropped = true;
      throw new TypeError("connection reset");
    }
    return res;
  });
  const stats = await h.run(simple(6));
  expect(stats).toMatchObject({ state: "done", ok: 6 });
  expect(h.mock.batches()).toHaveLength(1);
  expect(h.events.some((e) => /re-attached to batches\//.test(e))).toBe(true);
});

for (const provider of ["openai", "gemini"] as const) {
  test(`runBatchJob() past the deadline cancels a stuck batch and finishes it in realtime, once each (${provider})`, async () => {
    const h = harness(provider, { stuck: [1] }, { maxItems: 5 });
    const stats = await h.run(simple(10), { deadlineMs: 200 });
    expect(stats).toMatchObject({ state: "done", ok: 10, realtime: 5, batches: 2 });
    expect(h.mock.stats()).toMatchObject({ realtimeRequests: 5, realtimeRepeats: [] });
    expect(h.mock.batches().map((b) => b.state)).toEqual(["cancelled", "completed"]);
    expectEachOnce(h.records, simple(10).map((l) => JSON.parse(l).id));
    expect(h.events.some((e) => e.startsWith("deadline reached: cancelling 1 open batch;")))
      .toBe(true);
    // Realtime answers carry the realtime fields (attempts, provider) like any realtime run.
    const rescued = h.records.find((r) => r.id === "k0")!.record;
    expect(rescued).toMatchObject({ attempts: 1, provider });
  });
}

test("runBatchJob() without a realtime path fails what the deadline left", async () => {
  const h = harness("openai", { stuck: [1] });
  const stats = await h.run(simple(2), { deadlineMs: 100, realtime: undefined });
  expect(stats).toMatchObject({ ok: 0, failed: 2 });
  expect(h.records[0].record.error).toMatchObject({ code: "deadline_exceeded" });
});

test("runBatchJob() submits a batch that hit the enqueued-token limit again later", async () => {
  const h = harness("openai", { fail: { 1: "token_limit_exceeded" } });
  const stats = await h.run(simple(4));
  expect(stats).toMatchObject({ state: "done", ok: 4, batches: 1 });
  expect(h.mock.batches().map((b) => b.state)).toEqual(["failed", "completed"]);
  expect(h.events.some((e) => /token_limit_exceeded\); submitting it again/.test(e))).toBe(true);
});

test("runBatchJob() writes the items of a batch that failed validation as errors", async () => {
  const h = harness("openai", { fail: { 1: "invalid_request" } });
  const stats = await h.run(simple(2));
  expect(stats).toMatchObject({ ok: 0, failed: 2 });
  expect(h.records[0].record.error).toMatchObject({ code: "invalid_request", attempts: 1 });
});

test("runBatchJob() fails what a cancel request leaves unfinished and keeps what finished", async () => {
  const h = harness("openai", { stuck: [2] }, { maxItems: 3 });
  const running = h.run(simple(6));
  while (!h.events.some((e) => /p0: batch_\w+ completed/.test(e))) await h.clock.advance(5);
  await h.store.requestCancel();
  const stats = await running;
  expect(stats).toMatchObject({ state: "done", ok: 3, failed: 3 });
  expect(h.records.filter((r) => r.type === "error").map((r) => (r.record.error as Json).code))
    .toEqual(["batch_cancelled", "batch_cancelled", "batch_cancelled"]);
  expect(h.store.cancel).toBe(false);
});

test("runBatchJob() detaches on stop; a later run re-attaches and finishes without duplicates", async () => {
  const stop = new AbortController();
  const h = harness("openai", { validatingMs: 50 }, { maxItems: 4 });
  const first = h.run(simple(8), { stopSignal: stop.signal });
  while (h.mock.batches().length < 2) await h.clock.advance(1);
  stop.abort();
  const detached = await first;
  expect(detached).toMatchObject({ stopped: true, state: "running", pending: 8 });
  const resumed = await h.run(undefined);
  expect(resumed).toMatchObject({ stopped: false, state: "done", attached: true, ok: 8 });
  expect(h.mock.batches()).toHaveLength(2);
  expectEachOnce(h.records, simple(8).map((l) => JSON.parse(l).id));
});

test("runBatchJob() with Gemini: inline and file batches, JOB_STATE names, item errors", async () => {
  const h = harness("gemini", { geminiStates: "JOB", itemErrorRate: 0.2, seed: 3 }, {
    maxItems: 10,
    inlineMaxBytes: 500,
  });
  const lines = [
    ...simple(20),
    ...[0, 1].map((i) =>
      JSON.stringify({
        key: `g${i}`,
        request: { model: "models/gemini-other", contents: [{ parts: [{ text: `g ${i}` }] }] },
      })
    ),
  ];
  const stats = await h.run(lines);
  expect(stats.state).toBe("done");
  expect(stats.ok + stats.failed).toBe(22);
  expect(stats.failed).toBeGreaterThan(0);
  expect(stats.batches).toBe(3); // 10 + 10 by file, 2 of gemini-other inline
  const failed = h.records.find((r) => r.type === "error")!.record.error as Json;
  expect(failed).toMatchObject({ status: 400, code: "INVALID_ARGUMENT", attempts: 1 });
  expectEachOnce(h.records, lines.map((l) => String(JSON.parse(l).id ?? JSON.parse(l).key)));
});

test("runBatchJob() stops with `fatal` when the key is refused and leaves the job resumable", async () => {
  const h = harness("openai", { requireKey: "right-key-1" }, { apiKey: "wrong-key-1" });
  const stats = await h.run(simple(2));
  expect(stats).toMatchObject({ stopped: true, fatal: { kind: "auth", status: 401 } });
  expect(stats.fatal!.message).not.toContain("wrong-key-1");
  expect(h.store.job?.state).toBe("running");
  expect(h.mock.batches()).toHaveLength(0);
});

test("runBatchJob() with an aborted signal sends nothing", async () => {
  const h = harness("openai");
  const signal = AbortSignal.abort(new Error("already"));
  await expect(h.run(simple(2), { signal })).rejects.toThrow("already");
  expect(h.mock.batches()).toHaveLength(0);
});

test("runBatchJob() validates its options before any work", async () => {
  const h = harness("openai");
  await expect(h.run(simple(1), { pollIntervalMs: -1 })).rejects.toThrow(RangeError);
  await expect(h.run(simple(1), { deadlineMs: 0 })).rejects.toThrow(/deadlineMs/);
  await expect(h.run(simple(1), { maxAttempts: 0 })).rejects.toThrow(/maxAttempts/);
  expect(h.store.saves).toBe(0);
});
