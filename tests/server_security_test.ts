/**
 * `model-fine-tuner serve` without a token, as a web page would reach it: a real server process
 * (`bun cli.ts serve`) in front of the mock provider server, raw HTTP requests with the `Host`,
 * `Origin` and `Sec-Fetch-Site` a browser sends. Nothing a page sends may reach the provider;
 * curl-like requests still work. Also `--max-body-size` (413).
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { cliHarness } from "./_cli.ts";
import { rawHttp, waitFor, watchText } from "./_processes.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
let mock: MockProvider;
let server: ReturnType<typeof spawnCli>;
let url: string;

const { spawnCli } = cliHarness({
  dir: () => "/tmp",
  drop: /API_KEY|BASE_URL|MFT_/,
  detached: true,
});

beforeAll(async () => {
  mock = await startMockProvider({ latencyMs: 5, requireKey: KEY });
  server = spawnCli([
    "serve",
    "--port",
    "0",
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--max-body-size",
    "1k",
  ], { OPENAI_API_KEY: KEY });
  let out = "";
  watchText(server.stdout, (t) => (out = t));
  url = await waitFor("listening", () => /listening on (http:\/\/\S+)/.exec(out)?.[1]);
});

afterAll(async () => {
  server.kill("SIGTERM");
  await server.exited;
  await mock.close();
});

const LINE = JSON.stringify({ id: "x", prompt: "spend my quota" }) + "\n";

function post(headers: string[], body = LINE) {
  const port = new URL(url).port;
  return rawHttp(
    url,
    [
      "POST /v1/runs HTTP/1.1",
      ...(headers.some((h) => /^host:/i.test(h)) ? [] : [`Host: 127.0.0.1:${port}`]),
      "Content-Type: text/plain",
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...headers,
    ].join("\r\n"),
    body,
  );
}

test("serve without a token refuses a cross-origin POST before anything reaches the provider", async () => {
  mock.reset();
  const evil = await post(["Origin: https://evil.example"]);
  expect(evil.status).toBe(403);
  expect(JSON.parse(evil.body).error.code).toBe("cross_origin");
  const fetchMeta = await post(["Sec-Fetch-Site: cross-site"]);
  expect(fetchMeta.status).toBe(403);
  // Another page on this machine is a cross origin too.
  const local = await post(["Origin: http://localhost:3000"]);
  expect(local.status).toBe(403);
  const nullOrigin = await post(["Origin: null"]);
  expect(nullOrigin.status).toBe(403);
  expect(mock.stats().count).toBe(0);
});

test("serve without a token refuses a rebound Host (DNS rebinding)", async () => {
  mock.reset();
  const port = new URL(url).port;
  for (const host of [`evil.example:${port}`, "evil.example", `app.localhost:${port}`]) {
    const r = await post([`Host: ${host}`]);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error.code).toBe("host_not_loopback");
  }
  const stats = await rawHttp(url, `GET /v1/stats HTTP/1.1\r\nHost: evil.example`);
  expect(stats.status).toBe(403);
  expect(mock.stats().count).toBe(0);
});

test("serve without a token answers curl-like requests on every loopback Host", async () => {
  mock.reset();
  const port = new URL(url).port;
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "localhost"]) {
    const r = await post([`Host: ${host}`]);
    expect(r.status).toBe(200);
    expect(r.body).toContain('"summary"');
  }
  // A page served from the server's own origin is not cross-origin.
  const own = await post([`Origin: http://127.0.0.1:${port}`, "Sec-Fetch-Site: same-origin"]);
  expect(own.status).toBe(200);
  expect(mock.stats().count).toBe(5);
  // And fetch (no Origin outside a browser) works as before.
  const res = await fetch(`${url}/v1/runs`, { method: "POST", body: LINE });
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('"ok":1');
});

test("serve --max-body-size answers 413 to a larger Content-Length, before sending anything", async () => {
  mock.reset();
  const body = Array.from({ length: 40 }, (_, i) => JSON.stringify({ id: `b${i}`, prompt: "p" }))
    .join("\n") + "\n";
  expect(Buffer.byteLength(body)).toBeGreaterThan(1024);
  const r = await post([], body);
  expect(r.status).toBe(413);
  expect(JSON.parse(r.body).error.code).toBe("body_too_large");
  expect(mock.stats().count).toBe(0);
  // Under the limit it runs.
  const small = await post([], body.split("\n").slice(0, 5).join("\n") + "\n");
  expect(small.status).toBe(200);
});

test("serve refuses a --max-body-size it can not read (exit 2)", async () => {
  const bad = spawnCli(["serve", "--port", "0", "--provider", "mock", "--max-body-size", "lots"]);
  const [err, code] = await Promise.all([new Response(bad.stderr).text(), bad.exited]);
  expect(code).toBe(2);
  expect(err).toContain("--max-body-size");
});
