// The server over real sockets on 127.0.0.1: the app served by startServer() (Bun.serve here),
// in front of the mock provider from tests/mocks/mock_provider.ts; then serve() on Bun, and the
// server on Deno (`deno eval` of serve(), `deno serve server.ts`) as subprocesses.
import { afterAll, beforeAll, expect, test } from "bun:test";
import process from "node:process";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { type RunningServer, serve, type ServeIo, startServer } from "../server.ts";
import { createProvider } from "../src/providers/create_provider.ts";
import { createApp, type ServerOptions } from "../src/server/app.ts";
import { TextLineStream } from "../src/text_line_stream.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = `${ROOT}node_modules/.bin/deno`;
const KEY = "test-key";
const LATENCY_MS = 300;

let mock: MockProvider;

beforeAll(async () => {
  mock = await startMockProvider({ latencyMs: LATENCY_MS, requireKey: KEY });
});

afterAll(async () => {
  await mock.close();
});

function provider() {
  return createProvider({ provider: "openai", baseUrl: `${mock.url}/v1`, apiKey: KEY });
}

/** Serves a fresh app (its own scheduler) on a free port; `fn` runs, then the server stops. */
async function withServer(
  options: Partial<ServerOptions>,
  fn: (server: RunningServer) => Promise<void>,
): Promise<void> {
  const app = createApp({ provider: provider(), rate: 10, ...options });
  const server = await startServer(app.fetch, { hostname: "127.0.0.1", port: 0 });
  try {
    await fn(server);
  } finally {
    await server.close({ force: true });
  }
}

function prompts(n: number, tag: string): string {
  return Array.from(
    { length: n },
    (_, i) => JSON.stringify({ id: `${tag}${i}`, prompt: `${tag} ${i}` }),
  ).join("\n") + "\n";
}

/** The response's NDJSON lines as they arrive, each with the time it was read. */
async function* lines(res: Response): AsyncGenerator<{ at: number; value: Json }> {
  const stream = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new TextLineStream());
  for await (const line of stream) {
    if (line !== "") yield { at: performance.now(), value: JSON.parse(line) };
  }
}

async function collect(res: Response): Promise<{ at: number; value: Json }[]> {
  const out = [];
  for await (const line of lines(res)) out.push(line);
  return out;
}

function postRun(url: string, body: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}/v1/runs`, { method: "POST", body, ...init });
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("socket: results stream out as they finish, the first before the last request is answered", async () => {
  mock.reset();
  await withServer({ rate: 20 }, async (server) => {
    const n = 40;
    const res = await postRun(server.url, prompts(n, "inc"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/x-ndjson");
    const got: Json[] = [];
    let sentAtFirst = -1;
    for await (const { value } of lines(res)) {
      if (sentAtFirst < 0) sentAtFirst = mock.stats().count;
      got.push(value);
    }
    // At 20/s, 40 requests take about 2 s to send, while the first answer takes 0.3 s.
    expect(sentAtFirst).toBeGreaterThan(0);
    expect(sentAtFirst).toBeLessThan(n);
    expect(got).toHaveLength(n + 1);
    expect(got.slice(0, n).every((r) => r.text?.startsWith("mock answer: inc"))).toBe(true);
    expect(got[n].summary).toMatchObject({ ok: n, failed: 0, requests: n });
    expect(mock.arrivals().every((a) => a.status === 200)).toBe(true); // the key reached the mock
  });
});

test("socket: two concurrent callers share the rate and both progress", async () => {
  mock.reset();
  const rate = 10;
  await withServer({ rate }, async (server) => {
    const n = 30;
    const [resA, resB] = await Promise.all([
      postRun(server.url, prompts(n, "a")),
      postRun(server.url, prompts(n, "b")),
    ]);
    const during = wait(1500).then(async () => (await fetch(`${server.url}/v1/stats`)).json());
    const [a, b, stats] = await Promise.all([collect(resA), collect(resB), during]);
    expect(stats.runs).toHaveLength(2);
    expect(stats.rate).toBe(rate);
    for (const run of [a, b]) {
      expect(run).toHaveLength(n + 1);
      expect(run[n].value.summary).toMatchObject({ ok: n, failed: 0 });
    }
    const s = mock.stats();
    expect(s.count).toBe(2 * n);
    expect(s.maxPerWindow).toBeLessThanOrEqual(rate + 1);
    // Round-robin: each caller is half done before the other one finishes.
    expect(a[n / 2].at).toBeLessThan(b[n - 1].at);
    expect(b[n / 2].at).toBeLessThan(a[n - 1].at);
  });
}, 15_000);

test("socket: a caller that disconnects cancels its unsent items, and no one else's", async () => {
  mock.reset();
  await withServer({ rate: 10 }, async (server) => {
    const leaving = new AbortController();
    const resA = await postRun(server.url, prompts(50, "gone"), { signal: leaving.signal });
    const resB = await postRun(server.url, prompts(5, "stay"));
    const b = collect(resB);
    for await (const _ of lines(resA)) break; // the first result, then hang up
    leaving.abort();
    const stay = await b;
    expect(stay.at(-1)!.value.summary).toMatchObject({ ok: 5, failed: 0 });
    await wait(300);
    const settled = mock.stats().count;
    await wait(700);
    expect(mock.stats().count).toBe(settled); // nothing more is sent for the cancelled run
    expect(settled).toBeLessThan(25);
    const stats = await (await fetch(`${server.url}/v1/stats`)).json();
    expect(stats.runs).toEqual([]);
    expect(stats.queued).toBe(0);
  });
});

test("socket: the bearer token is required when set", async () => {
  mock.reset();
  await withServer({ rate: 100, token: "sock-token" }, async (server) => {
    for (const headers of [{}, { authorization: "Bearer nope" }] as Record<string, string>[]) {
      const res = await postRun(server.url, prompts(2, "auth"), { headers });
      expect(res.status).toBe(401);
      expect((await res.json()).error.code).toMatch(/token/);
    }
    expect(mock.stats().count).toBe(0);
    const res = await postRun(server.url, prompts(2, "auth"), {
      headers: { authorization: "Bearer sock-token" },
    });
    expect(res.status).toBe(200);
    expect((await collect(res)).at(-1)!.value.summary.ok).toBe(2);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});

test("socket: serve() on Bun prints where it listens, serves, and stops on Ctrl-C", async () => {
  mock.reset();
  const out: string[] = [];
  let interrupt: (() => void) | undefined;
  let listening!: (url: string) => void;
  const url = new Promise<string>((resolve) => (listening = resolve));
  const io: ServeIo = {
    env: { OPENAI_API_KEY: KEY },
    stdout(text) {
      out.push(text);
      const m = /^listening on (http:\/\/\S+)\n$/.exec(text);
      if (m) listening(m[1]);
    },
    stderr: () => {},
    onInterrupt(handler) {
      interrupt = handler;
      return () => (interrupt = undefined);
    },
  };
  const code = serve(
    ["--provider", "openai", "--base-url", `${mock.url}/v1`, "--port", "0", "--rate-limit", "50"],
    io,
  );
  const base = await url;
  expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const got = await collect(await postRun(base, prompts(3, "cli")));
  expect(got.at(-1)!.value.summary).toMatchObject({ ok: 3 });
  interrupt!();
  expect(await code).toBe(0);
  expect(out).toHaveLength(1);
});

// ---------------------------------------------------------------------------------------------
// Deno

/** Env for a Deno child: no update check, no prompt, none of the caller's MFT or key settings. */
function denoEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1" };
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(MFT_|OPENAI_|GEMINI_|GOOGLE_)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Reads a child's stdout and stderr until `pattern` matches; returns the match. */
async function waitForOutput(
  child: Bun.Subprocess<"ignore", "pipe", "pipe">,
  pattern: RegExp,
): Promise<RegExpExecArray> {
  let text = "";
  const decoder = new TextDecoder();
  return await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} from deno within 10 s; got: ${text}`)),
      10_000,
    );
    const read = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) {
        text += decoder.decode(chunk, { stream: true });
        const m = pattern.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      }
    };
    read(child.stdout).catch(() => {});
    read(child.stderr).catch(() => {});
  });
}

const SERVE_SCRIPT = `
import process from "node:process";
import { serve } from "./server.ts";
const code = await serve(Deno.args, {
  env: process.env,
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  onInterrupt(h) { process.on("SIGINT", h); return () => void process.off("SIGINT", h); },
});
process.exit(code);
`;

test("deno: serve() streams a run as it goes and stops on SIGINT", async () => {
  mock.reset();
  const child = Bun.spawn([
    DENO,
    "eval",
    "--ext=ts",
    SERVE_SCRIPT,
    "--",
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--port",
    "0",
    "--rate-limit",
    "20",
  ], {
    cwd: ROOT,
    env: denoEnv({ OPENAI_API_KEY: KEY }),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    const [, base] = await waitForOutput(child, /listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
    const res = await postRun(base, prompts(10, "deno"));
    expect(res.headers.get("content-type")).toStartWith("application/x-ndjson");
    let sentAtFirst = -1;
    const got: Json[] = [];
    for await (const { value } of lines(res)) {
      if (sentAtFirst < 0) sentAtFirst = mock.stats().count;
      got.push(value);
    }
    expect(got.at(-1)!.summary).toMatchObject({ ok: 10, failed: 0 });
    expect(sentAtFirst).toBeLessThan(10);
    child.kill("SIGINT");
    expect(await child.exited).toBe(0);
  } finally {
    child.kill("SIGKILL");
  }
}, 15_000);

test(
  "deno: `deno serve server.ts` serves the default export with its token and cancels on disconnect",
  async () => {
    mock.reset();
    const child = Bun.spawn([
      DENO,
      "serve",
      "-A",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "server.ts",
    ], {
      cwd: ROOT,
      env: denoEnv({
        MFT_PROVIDER: "openai",
        OPENAI_BASE_URL: `${mock.url}/v1`,
        OPENAI_API_KEY: KEY,
        MFT_RATE_LIMIT: "10",
        MFT_SERVER_TOKEN: "deno-token",
      }),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const [, base] = await waitForOutput(child, /Listening on (http:\/\/127\.0\.0\.1:\d+)\//);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const refused = await postRun(base, prompts(2, "ds"), {
        headers: { authorization: "Bearer wrong" },
      });
      expect(refused.status).toBe(401);
      expect((await refused.json()).error.code).toBe("invalid_token");
      const leaving = new AbortController();
      const res = await postRun(base, prompts(40, "ds"), {
        signal: leaving.signal,
        headers: { authorization: "Bearer deno-token" },
      });
      expect(res.status).toBe(200);
      for await (const _ of lines(res)) break;
      leaving.abort();
      await wait(300);
      const settled = mock.stats().count;
      await wait(600);
      expect(mock.stats().count).toBe(settled);
      expect(settled).toBeLessThan(20);
    } finally {
      child.kill("SIGKILL");
      await child.exited;
    }
  },
  15_000,
);
