// Tests of src/server/app.ts (through app.request(), no socket) and of server.ts's pieces that
// need no socket: configuration from flags and environment, the loopback rule, the default
// export. tests/server_socket_test.ts serves the app for real.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import serverDefault, {
  buildServerApp,
  resolveServerConfig,
  serve,
  type ServeIo,
} from "../server.ts";
import type { HttpPostInit } from "../src/providers/http.ts";
import { createMockProvider } from "../src/providers/mock.ts";
import type { Provider } from "../src/providers/provider.ts";
import { createApp, type RunSummaryLine, type ServerOptions } from "../src/server/app.ts";
import { isLoopback } from "../src/server/loopback.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const SIMPLE = JSON.stringify({ id: "s1", prompt: "hello" });
const OPENAI = JSON.stringify({
  custom_id: "o1",
  method: "POST",
  url: "/v1/chat/completions",
  body: { messages: [{ role: "user", content: "hi there" }] },
});
const GEMINI = JSON.stringify({
  key: "g1",
  request: { contents: [{ role: "user", parts: [{ text: "hey" }] }] },
});

function makeApp(options: Partial<ServerOptions> = {}): Hono {
  return createApp({ provider: createMockProvider({ latencyMs: 5 }), rate: 1000, ...options });
}

function post(
  app: Hono,
  body: BodyInit | null,
  { query = "", headers = {} as Record<string, string> } = {},
) {
  return app.request(`/v1/runs${query}`, {
    method: "POST",
    body,
    headers,
    ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
  } as RequestInit);
}

async function ndjson(res: Response): Promise<Json[]> {
  const text = await res.text();
  expect(text.endsWith("\n")).toBe(true);
  return text.trimEnd().split("\n").map((line) => JSON.parse(line));
}

/** A provider whose requests wait until released, counting sends and aborts. */
function gatedProvider() {
  const waiting = new Set<() => void>();
  const counts = { sent: 0, aborted: 0 };
  const inner = createMockProvider({ latencyMs: 0 });
  const provider: Provider = {
    name: "gated",
    model: "gated-1",
    defaultRate: 1000,
    send(item, options = {}) {
      counts.sent++;
      return new Promise((resolve, reject) => {
        const release = () => {
          waiting.delete(release);
          resolve(inner.send(item));
        };
        waiting.add(release);
        options.signal?.addEventListener("abort", () => {
          waiting.delete(release);
          counts.aborted++;
          reject(options.signal!.reason);
        }, { once: true });
      });
    },
  };
  return { provider, counts, releaseAll: () => [...waiting].forEach((r) => r()) };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One answered line through `app`: runs send one request at a time until an answer shows the
 * provider's configuration works, and the app shares that for every run after.
 */
async function warmUp(app: ReturnType<typeof createApp>, releaseAll: () => void) {
  let done = false;
  const lines = Promise.resolve(post(app, SIMPLE)).then((res) => ndjson(res)).finally(
    () => (done = true),
  );
  await until(() => {
    releaseAll();
    return done;
  });
  expect((await lines).at(-1)!.summary.ok).toBe(1);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out waiting for a condition");
    await wait(5);
  }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/runs

test("POST /v1/runs streams one CLI-shaped record per line of each format, then the summary", async () => {
  const app = makeApp();
  const res = await post(app, [SIMPLE, OPENAI, GEMINI].join("\n") + "\n");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("application/x-ndjson");
  const id = res.headers.get("x-mft-run-id");
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  const lines = await ndjson(res);
  expect(lines).toHaveLength(4);
  const records = lines.slice(0, 3);
  const simple = records.find((r) => r.id === "s1")!;
  expect(simple).toMatchObject({ text: "mock answer: hello", provider: "mock", attempts: 1 });
  const openai = records.find((r) => r.custom_id === "o1")!;
  expect(openai.response.status_code).toBe(200);
  expect(openai.response.body.choices[0].message.content).toBe("mock answer: hi there");
  expect(openai.error).toBeNull();
  const gemini = records.find((r) => r.key === "g1")!;
  expect(gemini.response.candidates[0].content.parts[0].text).toBe("mock answer: hey");
  const { summary } = lines[3] as RunSummaryLine;
  expect(summary).toMatchObject({
    id,
    read: 3,
    ok: 3,
    failed: 0,
    invalid: 0,
    rate: 1000,
    stopped: false,
  });
  expect(summary.error).toBeUndefined();
});

test("POST /v1/runs answers a bad line with an error line and goes on with the run", async () => {
  const app = makeApp();
  const body = [SIMPLE, "not json", '{"foo":1}', "", SIMPLE, '{"prompt":"last"}'].join("\n");
  const lines = await ndjson(await post(app, body));
  const errors = lines.filter((l) => l.error);
  expect(errors.map((e) => e.error.code).sort()).toEqual([
    "duplicate_id",
    "invalid_json",
    "unknown_format",
  ]);
  expect(errors.find((e) => e.error.code === "invalid_json")).toMatchObject({
    raw: "not json",
    error: { line: 2 },
  });
  expect(lines.find((l) => l.text === "mock answer: last")).toBeDefined();
  expect(lines.at(-1)!.summary).toMatchObject({ read: 5, ok: 2, invalid: 3 });
});

test("POST /v1/runs makes a line over maxLineLength a per-line error, not a failed request", async () => {
  const app = makeApp({ maxLineLength: 100 });
  const long = JSON.stringify({ prompt: "x".repeat(500) });
  const lines = await ndjson(await post(app, `${long}\n${SIMPLE}\n`));
  const error = lines.find((l) => l.error)!;
  expect(error.error).toMatchObject({ code: "invalid_line", line: 1 });
  expect(error.error.message).toContain("longer than the limit of 100");
  expect(error.raw.length).toBeLessThanOrEqual(101);
  expect(lines.at(-1)!.summary).toMatchObject({ ok: 1, invalid: 1 });
});

test("POST /v1/runs takes max_attempts from the query or an x-mft header", async () => {
  const app = createApp({
    provider: createMockProvider({ latencyMs: 1, failureRate: 1 }),
    rate: 1000,
  });
  for (const init of [{ query: "?max_attempts=1" }, { headers: { "x-mft-max-attempts": "1" } }]) {
    const lines = await ndjson(await post(app, SIMPLE, init));
    expect(lines[0].error).toMatchObject({ code: "mock_failure", status: 500, attempts: 1 });
    expect(lines[1].summary).toMatchObject({ failed: 1, requests: 1 });
  }
});

test("POST /v1/runs refuses a bad option with 400 and a JSON error", async () => {
  const app = makeApp();
  const cases: [string, Record<string, string>, string][] = [
    ["?max_attempts=0", {}, "invalid_option"],
    ["?max_attempts=11", {}, "invalid_option"],
    ["?max_attempts=two", {}, "invalid_option"],
    ["", { "x-mft-max-attempts": "1.5" }, "invalid_option"],
    ["?model=gpt-5", {}, "unknown_option"],
    ["?base_url=http://evil.example", {}, "unknown_option"],
    ["?colour=red", {}, "unknown_option"],
  ];
  for (const [query, headers, code] of cases) {
    const res = await post(app, SIMPLE, { query, headers });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toStartWith("application/json");
    const body = await res.json();
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe("string");
  }
  const fixed = await (await post(app, SIMPLE, { query: "?model=x" })).json();
  expect(fixed.error.message).toContain("fixed by the server");
});

test("POST /v1/runs without a body is a 400", async () => {
  const res = await post(makeApp(), null);
  expect(res.status).toBe(400);
  expect((await res.json()).error.code).toBe("empty_body");
});

test("POST /v1/runs refuses a Content-Length over maxBodyBytes with 413", async () => {
  const app = makeApp({ maxBodyBytes: 10 });
  const res = await post(app, SIMPLE + "\n" + SIMPLE, { headers: { "content-length": "200" } });
  expect(res.status).toBe(413);
  expect((await res.json()).error).toMatchObject({ code: "body_too_large" });
});

test("POST /v1/runs ends the input of a streamed body that grows past maxBodyBytes", async () => {
  const app = makeApp({ maxBodyBytes: 1000 });
  const chunks = Array.from({ length: 200 }, (_, i) => JSON.stringify({ prompt: `p${i}` }) + "\n");
  const lines = await ndjson(
    await post(app, ReadableStream.from(chunks.map((c) => new TextEncoder().encode(c)))),
  );
  const { summary } = lines.at(-1) as RunSummaryLine;
  expect(summary.error?.code).toBe("body_too_large");
  expect(summary.ok).toBeGreaterThan(0);
  expect(summary.ok).toBeLessThan(200);
  expect(lines.length - 1).toBe(summary.ok); // every item read before the cut was answered
});

test("POST /v1/runs reads a 1,000,000-line body only as fast as it dispatches", async () => {
  const app = makeApp();
  let pulled = 0;
  let cancelled = false;
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= 1_000_000) return controller.close();
      let chunk = "";
      for (let i = 0; i < 100; i++) chunk += JSON.stringify({ prompt: `line ${++pulled}` }) + "\n";
      controller.enqueue(encoder.encode(chunk));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  const res = await post(app, body);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (seen.split("\n").length <= 20) seen += (await reader.read()).value;
  await reader.cancel();
  await until(() => cancelled);
  expect(pulled).toBeLessThan(20_000);
});

test("POST /v1/runs cancels the run when the client goes away, and no other run", async () => {
  const { provider, counts, releaseAll } = gatedProvider();
  const app = createApp({ provider, rate: 100 });
  await warmUp(app, releaseAll);
  const body = Array.from({ length: 200 }, (_, i) => JSON.stringify({ prompt: `p${i}` })).join(
    "\n",
  );
  const leaving = await post(app, body);
  const staying = post(app, [SIMPLE, OPENAI, GEMINI].join("\n"));
  await until(() => counts.sent >= 10);
  await leaving.body!.cancel();
  await until(() => counts.aborted > 0);
  const sentAtCancel = counts.sent;
  releaseAll();
  const lines = await ndjson(await staying);
  expect(lines.at(-1)!.summary).toMatchObject({ ok: 3, failed: 0 });
  await wait(100);
  expect(counts.sent).toBeLessThanOrEqual(sentAtCancel + 1);
  expect(counts.sent).toBeLessThan(200);
  const stats = await (await app.request("/v1/stats")).json();
  expect(stats.runs).toEqual([]);
});

test("POST /v1/runs serves runs round-robin: a short run is not starved by a long one", async () => {
  const app = createApp({ provider: createMockProvider({ latencyMs: 1 }), rate: 100 });
  const longBody = Array.from({ length: 300 }, (_, i) => JSON.stringify({ prompt: `long ${i}` }))
    .join("\n");
  const long = post(app, longBody);
  await wait(50);
  const short = await ndjson(
    await post(
      app,
      Array.from({ length: 5 }, (_, i) => JSON.stringify({ prompt: `s${i}` })).join("\n"),
    ),
  );
  expect(short.at(-1)!.summary.ok).toBe(5);
  const stats = await (await app.request("/v1/stats")).json();
  expect(stats.runs).toHaveLength(1);
  expect(stats.runs[0].read).toBeLessThan(100); // the long run is far from done
  await (await long).body!.cancel();
});

test("POST /v1/runs ends every stream with its summary when the app's signal aborts; new runs get 503", async () => {
  const { provider, releaseAll } = gatedProvider();
  const shutdown = new AbortController();
  const app = createApp({ provider, rate: 100, signal: shutdown.signal });
  await warmUp(app, releaseAll);
  const res = await post(
    app,
    Array.from({ length: 100 }, (_, i) => JSON.stringify({ prompt: `p${i}` })).join("\n"),
  );
  await wait(50);
  shutdown.abort();
  releaseAll();
  const lines = await ndjson(res);
  const { summary } = lines.at(-1) as RunSummaryLine;
  expect(summary.stopped).toBe(true);
  expect(summary.ok).toBe(lines.length - 1);
  expect(summary.ok).toBeLessThan(100);
  const refused = await post(app, SIMPLE);
  expect(refused.status).toBe(503);
  expect((await refused.json()).error.code).toBe("shutting_down");
});

// ---------------------------------------------------------------------------------------------
// Auth, stats, health, errors

test("/v1/* needs the bearer token when one is set: 401 with a JSON body otherwise", async () => {
  const app = makeApp({ token: "s3cret-token" });
  const cases: [Record<string, string>, string][] = [
    [{}, "missing_token"],
    [{ authorization: "Basic czNjcmV0" }, "missing_token"],
    [{ authorization: "Bearer wrong" }, "invalid_token"],
    [{ authorization: "Bearer s3cret-token-and-more" }, "invalid_token"],
    [{ authorization: "Bearer s3cret token" }, "missing_token"], // not one token: 401, not 400
    [{ authorization: "Bearer" }, "missing_token"],
  ];
  for (const [headers, code] of cases) {
    for (
      const res of [
        await post(app, SIMPLE, { headers }),
        await app.request("/v1/stats", { headers }),
      ]
    ) {
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="model-fine-tuner"');
      expect(res.headers.get("content-type")).toStartWith("application/json");
      expect((await res.json()).error.code).toBe(code);
    }
  }
  const ok = await post(app, SIMPLE, { headers: { authorization: "Bearer s3cret-token" } });
  expect(ok.status).toBe(200);
  expect((await ndjson(ok)).at(-1)!.summary.ok).toBe(1);
  expect((await app.request("/healthz")).status).toBe(200);
});

test("GET /healthz answers ok", async () => {
  const res = await makeApp().request("/healthz");
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: "ok" });
});

test("GET /v1/stats shows the rate, what is in flight and each run's progress", async () => {
  const { provider, releaseAll } = gatedProvider();
  const app = createApp({ provider, rate: 20 });
  await warmUp(app, releaseAll);
  const res = await post(
    app,
    Array.from({ length: 5 }, (_, i) => JSON.stringify({ prompt: `p${i}` })).join("\n"),
  );
  await wait(150);
  const stats = await (await app.request("/v1/stats")).json();
  expect(stats.rate).toBe(20);
  expect(stats.runs).toHaveLength(1);
  const run = stats.runs[0];
  expect(run.id).toBe(res.headers.get("x-mft-run-id"));
  expect(run.in_flight).toBeGreaterThan(0);
  expect(stats.in_flight).toBe(run.in_flight);
  expect(run.read).toBeGreaterThanOrEqual(run.in_flight);
  expect(typeof stats.queued).toBe("number");
  expect(new Date(run.started_at).getTime()).not.toBeNaN();
  const lines = ndjson(res);
  await until(async () => {
    releaseAll();
    return (await (await app.request("/v1/stats")).json()).runs.length === 0;
  });
  expect((await lines).at(-1)!.summary.ok).toBe(5);
});

test("unknown routes are a JSON 404", async () => {
  const res = await makeApp().request("/v1/nothing");
  expect(res.status).toBe(404);
  expect((await res.json()).error.code).toBe("not_found");
});

test("createApp() mounts inside another Hono app", async () => {
  const parent = new Hono();
  parent.route("/mft", makeApp({ token: "t0ken" }));
  expect((await parent.request("/mft/healthz")).status).toBe(200);
  expect((await parent.request("/mft/v1/stats")).status).toBe(401);
  const res = await parent.request("/mft/v1/runs", {
    method: "POST",
    body: SIMPLE,
    headers: { authorization: "Bearer t0ken" },
  });
  expect((await ndjson(res)).at(-1)!.summary.ok).toBe(1);
});

test("createApp() validates its options eagerly", () => {
  const provider = createMockProvider();
  expect(() => createApp({ provider, rate: 0 })).toThrow(RangeError);
  expect(() => createApp({ provider, maxLineLength: -1 })).toThrow(RangeError);
  expect(() => createApp({ provider, maxAttempts: 1.5 })).toThrow(RangeError);
  expect(() => createApp({ provider, token: "" })).toThrow(TypeError);
  // A bearer token is letters, digits and -._~+/ (RFC 6750): another one could never be sent.
  expect(() => createApp({ provider, token: "s3cret token" })).toThrow(TypeError);
  expect(() => createApp({ provider, token: "pa$$word" })).toThrow(/other characters/);
  expect(() => createApp({ provider, token: "YWJj+/._~-==" })).not.toThrow();
  expect(() => createApp({} as ServerOptions)).toThrow(TypeError);
});

// ---------------------------------------------------------------------------------------------
// server.ts without a socket

test("isLoopback() accepts loopback names and addresses only", () => {
  for (
    const host of [
      "127.0.0.1",
      "127.1.2.3",
      "localhost",
      "::1",
      "[::1]",
      "::ffff:127.0.0.1",
      "api.localhost",
    ]
  ) {
    expect(isLoopback(host)).toBe(true);
  }
  for (
    const host of [
      "0.0.0.0",
      "::",
      "192.168.1.2",
      "10.0.0.1",
      "example.com",
      "127.0.0.256",
      "128.0.0.1",
      "",
    ]
  ) {
    expect(isLoopback(host)).toBe(false);
  }
});

test("resolveServerConfig() takes flags over the environment, like run", () => {
  const key = `test-key-${crypto.randomUUID()}`;
  const env = {
    MFT_PROVIDER: "openai",
    OPENAI_API_KEY: key,
    OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
    MFT_RATE_LIMIT: "7",
    MFT_MODEL: "m-env",
    MFT_SERVER_TOKEN: "tok",
  };
  expect(resolveServerConfig({}, env)).toMatchObject({
    provider: "openai",
    apiKey: key,
    baseUrl: "http://127.0.0.1:9/v1",
    rate: 7,
    model: "m-env",
    maxAttempts: 3,
    timeoutMs: 120_000,
    token: "tok",
  });
  expect(resolveServerConfig({ "rate-limit": "2.5", model: "m-flag", timeout: "30s" }, env))
    .toMatchObject({
      rate: 2.5,
      model: "m-flag",
      timeoutMs: 30_000,
    });
  expect(resolveServerConfig({}, { GEMINI_API_KEY: "g" })).toMatchObject({
    provider: "gemini",
    rate: 60,
  });
  expect(resolveServerConfig({ provider: "mock" }, {})).toMatchObject({
    provider: "mock",
    rate: 1000,
  });
  expect(() => resolveServerConfig({}, {})).toThrow(/cannot pick a provider/);
  // A token no client could send as a bearer token: refused at start, never echoed.
  expect(() => resolveServerConfig({ provider: "mock" }, { MFT_SERVER_TOKEN: "pa$$word" }))
    .toThrow(/^MFT_SERVER_TOKEN must be letters, digits and -\._~\+\/ [^$]*$/);
  expect(() => resolveServerConfig({ provider: "openai" }, {})).toThrow(
    /OPENAI_API_KEY is not set/,
  );
  expect(() => resolveServerConfig({ provider: "nope" }, {})).toThrow(/unknown provider 'nope'/);
  expect(() => resolveServerConfig({ provider: "mock", "rate-limit": "0" }, {})).toThrow(
    /--rate-limit/,
  );
});

function captureIo(env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: ServeIo = {
    env,
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    onInterrupt: () => () => {},
  };
  return { io, out, err };
}

test("serve() refuses a non-loopback --host without MFT_SERVER_TOKEN (exit 2)", async () => {
  const { io, err } = captureIo();
  expect(await serve(["--provider", "mock", "--host", "0.0.0.0", "--port", "0"], io)).toBe(2);
  expect(err.join("")).toContain("refusing to listen on 0.0.0.0 without MFT_SERVER_TOKEN");
});

test("serve() reports usage errors with exit 2 and prints its help", async () => {
  for (
    const argv of [["--provider", "nope"], ["--provider", "mock", "--port", "x"], ["--bogus"], [
      "extra",
    ]]
  ) {
    const { io, err } = captureIo();
    expect(await serve(argv, io)).toBe(2);
    expect(err.join("")).toStartWith("model-fine-tuner serve: ");
  }
  const { io, out } = captureIo();
  expect(await serve(["--help"], io)).toBe(0);
  expect(out.join("")).toContain("POST /v1/runs");
});

test("the default export answers 500 when unconfigured, then serves from the environment", async () => {
  const fetch = serverDefault.fetch;
  const bad = await fetch(new Request("http://x/healthz"), { SOME_BINDING: "x" });
  expect(bad.status).toBe(500);
  expect((await bad.json()).error.code).toBe("server_misconfigured");
  // A Workers-style env: no caller address, so the token is what lets callers in.
  const env = { MFT_PROVIDER: "mock", MFT_SERVER_TOKEN: "edge-token" };
  expect((await fetch(new Request("http://x/v1/stats"), env)).status).toBe(401);
  const res = await fetch(
    new Request("http://x/v1/runs", {
      method: "POST",
      body: SIMPLE,
      headers: { authorization: "Bearer edge-token" },
    }),
    env,
  );
  expect(res.status).toBe(200);
  expect((await ndjson(res)).at(-1)!.summary.ok).toBe(1);
});

test("buildServerApp({ post }) sends the provider's requests through the given post (the CLI's)", async () => {
  const key = `test-key-${crypto.randomUUID()}`;
  const config = resolveServerConfig({ provider: "openai" }, {
    OPENAI_API_KEY: key,
    OPENAI_BASE_URL: "http://127.0.0.1:9/v1", // nothing listens: only the post may answer
  });
  const calls: { url: string; init: HttpPostInit }[] = [];
  const app = buildServerApp(config, {
    post: (url, init) => {
      calls.push({ url, init });
      const body = {
        id: "chatcmpl-1",
        object: "chat.completion",
        model: "gpt-test",
        choices: [{
          index: 0,
          message: { role: "assistant", content: "from the post" },
          finish_reason: "stop",
        }],
        usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
      };
      return Promise.resolve({
        status: 200,
        headers: new Headers({ "content-type": "application/json" }),
        text: JSON.stringify(body),
      });
    },
  });
  const res = await post(app, SIMPLE + "\n", { headers: { host: "127.0.0.1" } });
  expect(res.status).toBe(200);
  const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
  expect(lines[0]).toMatchObject({ id: "s1", text: "from the post" });
  expect(lines.at(-1).summary).toMatchObject({ ok: 1, failed: 0 });
  expect(calls).toHaveLength(1);
  expect(calls[0].url).toBe("http://127.0.0.1:9/v1/chat/completions");
  expect(calls[0].init.headers.authorization).toBe(`Bearer ${key}`);
});
