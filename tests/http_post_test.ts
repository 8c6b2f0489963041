/**
 * The CLI's request senders, `nodeHttpPost` (src/adapter/node_http_post.ts, Node) and
 * `fetchPost` (src/providers/http.ts, Deno), against real servers on 127.0.0.1 (answers,
 * headers, timeout, abort, a refused connection); the adapters sending through one; the npm
 * package's bin on Node running a file against the mock provider.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { isProviderError } from "../src/errors.ts";
import { createProvider } from "../src/providers/create_provider.ts";
import { nodeHttpPost } from "../src/adapter/node_http_post.ts";
import { providerPost } from "../src/adapter/provider_post.ts";
import { fetchPost, type HttpPost } from "../src/providers/http.ts";
import { readJsonl, ROOT } from "./_cli.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
const WRONG_KEY = `wrong-key-${crypto.randomUUID()}`;

interface Seen {
  method?: string;
  headers?: http.IncomingHttpHeaders;
  body?: string;
}

let server: http.Server;
let base: string;
const seen: Seen = {};
let dir: string;
let mock: MockProvider;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      Object.assign(seen, { method: req.method, headers: req.headers, body });
      if (req.url === "/silent") return; // never answers
      res.statusCode = req.url === "/teapot" ? 418 : 200;
      res.setHeader("x-twice", ["a", "b"]);
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ echo: body, ünïcode: "✓" }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-runtime-"));
  mock = await startMockProvider({ latencyMs: 20, requireKey: KEY });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await mock?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("providerPost() is undefined on Bun: ky over Bun's own fetch", () => {
  expect(providerPost()).toBeUndefined();
});

const POSTS: [string, () => HttpPost][] = [
  ["nodeHttpPost", nodeHttpPost],
  ["fetchPost", () => fetchPost()],
];

for (const [name, makePost] of POSTS) {
  test(`${name}() sends the body and headers and returns status, headers and text`, async () => {
    const post = makePost();
    const body = JSON.stringify({ prompt: "héllo" });
    const res = await post(`${base}/echo`, {
      headers: { "content-type": "application/json", authorization: "Bearer k" },
      body,
      timeoutMs: 10_000,
    });
    expect(seen.method).toBe("POST");
    expect(seen.body).toBe(body);
    expect(seen.headers?.["content-type"]).toBe("application/json");
    expect(seen.headers?.authorization).toBe("Bearer k");
    expect(seen.headers?.["content-length"]).toBe(String(Buffer.byteLength(body)));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-twice")).toBe("a, b");
    expect(JSON.parse(res.text)).toEqual({ echo: body, ünïcode: "✓" });
    // Any status resolves: the adapters classify it.
    expect((await post(`${base}/teapot`, { headers: {}, body: "{}", timeoutMs: 10_000 })).status)
      .toBe(418);
  });

  test(`${name}() rejects with a TimeoutError when no answer comes in time`, async () => {
    const post = makePost();
    const error = await post(`${base}/silent`, { headers: {}, body: "{}", timeoutMs: 50 }).then(
      () => undefined,
      (e) => e,
    );
    expect((error as Error).name).toBe("TimeoutError");
  });

  test(`${name}() rejects with the signal's reason: aborted mid-request and already aborted`, async () => {
    const post = makePost();
    const controller = new AbortController();
    const reason = new Error("stop now");
    const pending = post(`${base}/silent`, {
      headers: {},
      body: "{}",
      signal: controller.signal,
      timeoutMs: 10_000,
    }).then(() => undefined, (e) => e);
    await new Promise((r) => setTimeout(r, 20));
    controller.abort(reason);
    expect(await pending).toBe(reason);
    const again = await post(`${base}/echo`, {
      headers: {},
      body: "{}",
      signal: controller.signal,
      timeoutMs: 10_000,
    }).then(() => undefined, (e) => e);
    expect(again).toBe(reason);
  });

  test(`${name}() rejects on a refused connection (not as a timeout)`, async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await makePost()(`http://127.0.0.1:${port}/x`, {
      headers: {},
      body: "{}",
      timeoutMs: 10_000,
    }).then(() => undefined, (e) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).not.toBe("TimeoutError");
  });
}

test("the OpenAI adapter sends through a given post: answers parsed, failures classified", async () => {
  let calls = 0;
  const post = nodeHttpPost();
  const provider = createProvider({
    provider: "openai",
    baseUrl: `${mock.url}/v1`,
    apiKey: KEY,
    model: "gpt-test",
    post: (url, init) => {
      calls++;
      return post(url, init);
    },
  });
  const item = {
    format: "simple",
    line: 1,
    id: "a",
    original: {},
    chat: { messages: [{ role: "user", content: "hi" }] },
  } as const;
  const ok = await provider.send(item as never);
  expect(ok.status).toBe(200);
  expect(ok.text?.length).toBeGreaterThan(0);
  const bad = createProvider({
    provider: "openai",
    baseUrl: `${mock.url}/v1`,
    apiKey: WRONG_KEY,
    model: "gpt-test",
    post,
  });
  const error = await bad.send(item as never).then(() => undefined, (e) => e);
  expect(isProviderError(error)).toBe(true);
  expect(error.info.status).toBe(401);
  expect(error.info.message).not.toContain(WRONG_KEY);
  expect(calls).toBe(1);
});

test("the npm package's bin on Node runs a file against the mock provider", async () => {
  const build = Bun.spawnSync(["sh", "scripts/compile", "--npm"], { cwd: ROOT });
  expect(build.exitCode).toBe(0);
  const input = path.join(dir, "in.jsonl");
  const output = path.join(dir, "out.jsonl");
  fs.writeFileSync(
    input,
    Array.from({ length: 30 }, (_, i) => JSON.stringify({ id: `n${i}`, prompt: `${i}` }))
      .join("\n") + "\n",
  );
  const proc = Bun.spawn([
    "node",
    path.join(ROOT, "dist", "npm", "cli.js"),
    "run",
    input,
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "200",
    "-o",
    output,
    "-q",
  ], {
    env: { PATH: process.env.PATH ?? "", OPENAI_API_KEY: KEY },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const records = readJsonl(output);
  expect(records.map((r) => r.custom_id ?? r.id).sort()).toEqual(
    Array.from({ length: 30 }, (_, i) => `n${i}`).sort(),
  );
}, 30_000);
