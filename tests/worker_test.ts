/**
 * The Workers entry under workerd, locally: src/adapter/workers/worker.ts bundled with esbuild the way wrangler does
 * it, served by Miniflare on 127.0.0.1 with wrangler.jsonc's compatibility date and the bindings
 * a deployment has, streaming runs to the mock provider server. Local workerd does not enforce
 * Cloudflare's 6 open outgoing connections per invocation; the app does, and says so.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { maxPerWindow, type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { createMockProvider } from "../src/providers/mock.ts";
import type { Provider } from "../src/providers/provider.ts";
import { createApp } from "../src/server/app.ts";
import { TextLineStream } from "../src/text_line_stream.ts";

const ROOT = path.resolve(import.meta.dir, "..");
/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
const TOKEN = "worker-test-token";
const LATENCY_MS = 400;

let dir: string;
let script: string;
let mock: MockProvider;
const started: Miniflare[] = [];

/** wrangler.jsonc without its comment lines, as JSON. */
function wranglerConfig(): { main: string; compatibility_date: string } {
  const text = fs.readFileSync(path.join(ROOT, "wrangler.jsonc"), "utf8");
  return JSON.parse(text.split("\n").filter((l) => !/^\s*\/\//.test(l)).join("\n"));
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-worker-"));
  script = path.join(dir, "worker.js");
  await build({
    entryPoints: [path.join(ROOT, wranglerConfig().main)],
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    outfile: script,
    logLevel: "error",
  });
  mock = await startMockProvider({ latencyMs: LATENCY_MS, requireKey: KEY });
}, 30_000);

afterAll(async () => {
  for (const mf of started) await mf.dispose();
  await mock?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Starts the bundled worker under workerd on a free loopback port; returns its URL. */
async function startWorker(
  bindings: Record<string, string>,
  options: { fanOut?: boolean } = {},
): Promise<string> {
  const mf = new Miniflare({
    modules: true,
    scriptPath: script,
    modulesRoot: dir,
    compatibilityDate: wranglerConfig().compatibility_date,
    cf: false,
    host: "127.0.0.1",
    port: 0,
    bindings,
    durableObjects: options.fanOut ? { MFT_FANOUT: "FanOutObject" } : undefined,
  });
  started.push(mf);
  return String(await mf.ready).replace(/\/$/, "");
}

function prompts(n: number, tag: string): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${tag}${i}`, prompt: `${i}` }))
    .join("\n") + "\n";
}

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

/** POSTs a run and reads its NDJSON lines as they come; `countAtFirst`: mock count then. */
async function postRun(
  url: string,
  body: string,
): Promise<{ res: Response; lines: Json[]; countAtFirst: number }> {
  const res = await fetch(`${url}/v1/runs`, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const lines: Json[] = [];
  let countAtFirst = -1;
  const stream = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new TextLineStream());
  for await (const line of stream) {
    if (line === "") continue;
    if (countAtFirst < 0) countAtFirst = mock.stats().count;
    lines.push(JSON.parse(line));
  }
  return { res, lines, countAtFirst };
}

const deployed = () => ({
  MFT_SERVER_TOKEN: TOKEN,
  MFT_PROVIDER: "openai",
  MFT_BASE_URL: `${mock.url}/v1`,
  OPENAI_API_KEY: KEY,
  MFT_RATE_LIMIT: "20",
});

test("worker: without the MFT_SERVER_TOKEN binding every request is refused", async () => {
  const { MFT_SERVER_TOKEN: _, ...rest } = deployed();
  const url = await startWorker(rest);
  for (const [method, route] of [["GET", "/healthz"], ["POST", "/v1/runs"]]) {
    const res = await fetch(`${url}${route}`, {
      method,
      body: method === "POST" ? prompts(1, "x") : undefined,
    });
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe("server_misconfigured");
  }
  expect(mock.stats().count).toBe(0);
}, 30_000);

test(
  "worker: streams a run to the mock provider, at most 6 open, and says so in the summary",
  async () => {
    mock.reset();
    const url = await startWorker(deployed());
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const refused = await fetch(`${url}/v1/runs`, { method: "POST", body: prompts(1, "x") });
    expect(refused.status).toBe(401);
    const wrong = await fetch(`${url}/v1/runs`, {
      method: "POST",
      body: prompts(1, "x"),
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.status).toBe(401);

    const n = 24;
    const { res, lines, countAtFirst } = await postRun(url, prompts(n, "w"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/x-ndjson");
    expect(res.headers.get("x-mft-runtime-limit")).toBe("workerd; max-open-requests=6");
    expect(lines.length).toBe(n + 1);
    expect(countAtFirst).toBeLessThan(n); // streamed: the first answer came before the last request
    const ids = lines.slice(0, -1).map((l) => l.id).sort();
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => `w${i}`).sort());

    const { summary } = lines.at(-1)!;
    expect(summary).toMatchObject({ ok: n, failed: 0, configuredRate: 20 });
    expect(summary.runtime_limit).toMatchObject({ runtime: "workerd", max_open_requests: 6 });
    // 6 open at ~400 ms each allows about 15 req/s, under the 20 asked for.
    expect(summary.runtime_limit.mean_latency_ms).toBeGreaterThanOrEqual(LATENCY_MS);
    expect(summary.runtime_limit.achievable_rate).toBeLessThanOrEqual(15.1);
    expect(summary.runtime_limit.message).toContain("below the 20 req/s asked for");

    // Every answer takes 400 ms, so arrivals within 380 ms were open at the same time: never
    // more than 6 (uncapped, 20 req/s puts 8 there).
    const arrivals = mock.arrivals().map((a) => a.t);
    expect(arrivals.length).toBe(n);
    expect(maxPerWindow(arrivals, 380)).toBeLessThanOrEqual(6);
  },
  30_000,
);

test("worker: two runs at once both finish (each request has its own app and quota)", async () => {
  mock.reset();
  const url = await startWorker(deployed());
  // A short run beside a long one: with one scheduler shared across requests, workerd cancelled
  // the long run's continuations once the short one had ended, and it hung.
  const long = postRun(url, prompts(16, "long"));
  await Bun.sleep(200);
  const short = await postRun(url, prompts(3, "short"));
  expect(short.lines.at(-1)!.summary).toMatchObject({ ok: 3, failed: 0 });
  expect((await long).lines.at(-1)!.summary).toMatchObject({ ok: 16, failed: 0 });
}, 30_000);

test(
  "worker: MFT_FANOUT_OBJECTS sends from Durable Objects, 6 open in each, and the rate holds",
  async () => {
    mock.reset();
    const url = await startWorker({ ...deployed(), MFT_FANOUT_OBJECTS: "3" }, { fanOut: true });
    const n = 24;
    const { res, lines } = await postRun(url, prompts(n, "f"));
    expect(res.headers.get("x-mft-runtime-limit")).toBe(
      "workerd (fan-out over 3 Durable Objects); max-open-requests=18",
    );
    expect(lines.length).toBe(n + 1);
    const { summary } = lines.at(-1)!;
    expect(summary).toMatchObject({ ok: n, failed: 0 });
    expect(summary.runtime_limit).toMatchObject({ max_open_requests: 18 });
    expect(summary.runtime_limit.achievable_rate).toBeGreaterThan(20);
    // 20 req/s at 400 ms is 8 open: more than one invocation's 6, within 3 objects' 18.
    const arrivals = mock.arrivals().map((a) => a.t);
    expect(maxPerWindow(arrivals, 380)).toBeGreaterThan(6);
    expect(lines.slice(0, -1).every((l) => typeof l.id === "string")).toBe(true);
  },
  30_000,
);

test(
  "createApp({ runtimeLimit }) keeps each run within the cap and reports it; off elsewhere",
  async () => {
    const base = createMockProvider({ latencyMs: 40 });
    let open = 0;
    let most = 0;
    const counting: Provider = {
      name: base.name,
      model: base.model,
      defaultRate: base.defaultRate,
      async send(item, options) {
        most = Math.max(most, ++open);
        try {
          return await base.send(item, options);
        } finally {
          open--;
        }
      },
    };
    const capped = createApp({
      provider: counting,
      rate: 1000,
      runtimeLimit: { runtime: "test-runtime", maxOpenRequests: 3 },
    });
    const res = await capped.request("/v1/runs", { method: "POST", body: prompts(20, "c") });
    expect(res.headers.get("x-mft-runtime-limit")).toBe("test-runtime; max-open-requests=3");
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.at(-1).summary).toMatchObject({
      ok: 20,
      runtime_limit: { runtime: "test-runtime", max_open_requests: 3 },
    });
    expect(lines.at(-1).summary.runtime_limit.achievable_rate).toBeLessThanOrEqual(75);
    expect(most).toBe(3);

    // Not on workerd (here: Bun) nothing is capped or reported.
    most = 0;
    const plain = createApp({ provider: counting, rate: 1000 });
    const res2 = await plain.request("/v1/runs", { method: "POST", body: prompts(20, "p") });
    expect(res2.headers.get("x-mft-runtime-limit")).toBeNull();
    const last = JSON.parse((await res2.text()).trim().split("\n").at(-1)!);
    expect(last.summary).toMatchObject({ ok: 20 });
    expect(last.summary).not.toHaveProperty("runtime_limit");
    expect(most).toBeGreaterThan(3);
  },
  30_000,
);

test(
  "worker: the live page, and /live streaming with the token (each request its own app)",
  async () => {
    mock.reset();
    const url = await startWorker(deployed());
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await page.text()).toContain('id="live-chart"');
    expect((await fetch(`${url}/live`)).status).toBe(401);
    const run = postRun(url, prompts(6, "live"));
    const res = await fetch(`${url}/live`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (text.split("\n\n").length < 3) text += (await reader.read()).value ?? "";
    await reader.cancel();
    const second = JSON.parse(
      text.split("\n\n")[1].split("\n").find((l) => l.startsWith("data:"))!.slice(5),
    );
    expect(second.target).toBe(20);
    expect(second.history.length).toBe(300);
    // On Workers every request has its own app (worker.ts, appFor), so /live sees no other
    // request's run: the page streams, but a run's progress shows only on a long-running server.
    expect(second.runs).toEqual([]);
    expect((await run).lines.at(-1)!.summary).toMatchObject({ ok: 6 });
  },
  30_000,
);
