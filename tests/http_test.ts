/**
 * src/providers/http.ts, the one HTTP layer of the realtime adapters (`postJson` over ky or an
 * injected `HttpPost`) and the batch backends (`call`, `callJson`, `responseLines`), against a
 * real server on 127.0.0.1: timeouts, refused connections, aborts, non-2xx answers read by the
 * provider's classifier, unreadable bodies, and the key scrubbed from every message.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as v from "valibot";
import { type FailureInfo, isProviderError } from "../src/errors.ts";
import {
  call,
  callJson,
  type Classify,
  classifyByStatus,
  createHttpContext,
  createPost,
  failureMessage,
  type HttpPostInit,
  postJson,
  responseLines,
} from "../src/providers/http.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;

let server: http.Server;
let base: string;
/** A URL on which nothing listens. */
let closedUrl: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const route = new URL(req.url ?? "/", "http://x").pathname;
      if (route === "/silent") return; // never answers
      if (route === "/limited") {
        res.writeHead(429, {
          "content-type": "application/json",
          "retry-after": "3",
          "x-ratelimit-remaining-requests": "0",
        });
        res.end(JSON.stringify({ error: { message: `slow down, ${KEY}` } }));
      } else if (route === "/gateway") {
        res.writeHead(502, { "content-type": "text/html" });
        res.end(`<html>bad gateway for ${KEY}</html>`);
      } else if (route === "/garbage") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("this is not json");
      } else if (route === "/lines") {
        res.writeHead(200, { "content-type": "application/jsonl" });
        res.end('{"a":1}\n\n  \n{"b":2}\n{"c":3}');
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ id: route === "/number-id" ? 5 : "x", method: req.method }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/gone`;
  await new Promise((resolve) => closed.close(resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** A classifier that keeps the body it was given, to see how the layer parsed it. */
function recordingClassify(): { classify: Classify; bodies: unknown[] } {
  const bodies: unknown[] = [];
  const classify: Classify = (status, body, headers) => {
    bodies.push(body);
    const message = (body as { error?: { message?: unknown } })?.error?.message;
    return classifyByStatus(
      status,
      `http_${status}`,
      failureMessage(status, body, message),
      headers,
    );
  };
  return { classify, bodies };
}

/** The FailureInfo of a ProviderError `promise` rejects with. */
async function failureOf(promise: Promise<unknown>): Promise<FailureInfo> {
  const error = await promise.then(() => undefined, (e) => e);
  if (!isProviderError(error)) throw new Error(`expected a ProviderError, got ${error}`);
  expect(error.message).toBe(error.info.message);
  return error.info;
}

/** The realtime POST and the batch call to `url`, each with the key and `timeoutMs`. */
function both(url: string, timeoutMs = 10_000, signal?: AbortSignal) {
  const { classify, bodies } = recordingClassify();
  const options = { apiKey: KEY, timeoutMs };
  const realtime = postJson(createPost(options), url, { q: 1 }, {
    headers: { authorization: `Bearer ${KEY}` },
    signal,
    apiKey: KEY,
    classify,
  });
  const batch = call(
    createHttpContext(options, { authorization: `Bearer ${KEY}` }, classify),
    url,
    {
      signal,
    },
  );
  return { realtime, batch, bodies };
}

test("a 2xx JSON answer: postJson returns the parsed body, callJson the validated one", async () => {
  const { realtime, batch } = both(`${base}/ok`);
  expect((await realtime).body).toEqual({ id: "x", method: "POST" });
  expect((await batch).status).toBe(200);
  const ctx = createHttpContext({}, {}, recordingClassify().classify);
  const answer = await callJson(ctx, `${base}/ok`, v.object({ id: v.string() }), {
    method: "DELETE",
  });
  expect(answer).toEqual({ id: "x" });
});

test("no answer in time: a retryable timeout on both paths, the key scrubbed from the URL", async () => {
  const url = `${base}/silent?key=${KEY}`;
  const { realtime, batch } = both(url, 150);
  const [r, b] = await Promise.all([failureOf(realtime), failureOf(batch)]);
  expect(r).toMatchObject({ status: 0, code: "timeout", retryable: true });
  expect(r.message).toBe("the request timed out");
  expect(b).toMatchObject({ status: 0, code: "timeout", retryable: true });
  expect(b.message).toBe(`GET ${base}/silent?key=[redacted] timed out`);
});

test("a refused connection: a retryable network_error on both paths", async () => {
  const { realtime, batch } = both(closedUrl);
  for (const info of await Promise.all([failureOf(realtime), failureOf(batch)])) {
    expect(info).toMatchObject({ status: 0, code: "network_error", retryable: true });
    expect(info.message).toStartWith("network error: ");
  }
});

test("an abort rejects with the signal's reason, not a ProviderError", async () => {
  const controller = new AbortController();
  const reason = new Error("stopped by the test");
  const { realtime, batch } = both(`${base}/silent`, 10_000, controller.signal);
  setTimeout(() => controller.abort(reason), 20);
  const errors = await Promise.all([realtime, batch].map((p) => p.then(() => undefined, (e) => e)));
  expect(errors).toEqual([reason, reason]);
});

test("a non-2xx JSON answer goes to the classifier parsed; the key leaves the message", async () => {
  const { realtime, batch, bodies } = both(`${base}/limited`);
  const [r, b] = await Promise.all([failureOf(realtime), failureOf(batch)]);
  expect(bodies).toEqual([
    { error: { message: `slow down, ${KEY}` } },
    { error: { message: `slow down, ${KEY}` } },
  ]);
  for (const info of [r, b]) {
    expect(info).toMatchObject({ status: 429, code: "http_429", retryable: true });
    expect(info.retryAfterMs).toBe(3000);
    expect(info.message).toBe("slow down, [redacted]");
  }
  // The realtime path also reads the rate-limit headers of the failure.
  expect(r.rateLimit?.remainingRequests).toBe(0);
});

test("a non-2xx text answer goes to the classifier as text", async () => {
  const { realtime, batch, bodies } = both(`${base}/gateway`);
  const [r, b] = await Promise.all([failureOf(realtime), failureOf(batch)]);
  expect(bodies).toEqual([
    `<html>bad gateway for ${KEY}</html>`,
    `<html>bad gateway for ${KEY}</html>`,
  ]);
  for (const info of [r, b]) {
    expect(info).toMatchObject({ status: 502, retryable: true });
    expect(info.message).toBe("HTTP 502: <html>bad gateway for [redacted]</html>");
  }
});

test("a 2xx answer that is not what was asked for is a retryable bad_response", async () => {
  const { realtime } = both(`${base}/garbage`);
  const r = await failureOf(realtime);
  expect(r).toMatchObject({ status: 200, code: "bad_response", retryable: true });
  expect(r.message).toBe("unparseable 200 body: this is not json");
  const ctx = createHttpContext({}, {}, recordingClassify().classify);
  const schema = v.object({ id: v.string() });
  const text = await failureOf(callJson(ctx, `${base}/garbage`, schema));
  expect(text).toMatchObject({ code: "bad_response", retryable: true });
  expect(text.message).toBe("unparseable 200 body from /garbage: this is not json");
  const shape = await failureOf(callJson(ctx, `${base}/number-id`, schema));
  expect(shape.code).toBe("bad_response");
  expect(shape.message).toStartWith("unexpected answer from /number-id at 'id': ");
});

test("responseLines streams the non-blank lines of a body", async () => {
  const ctx = createHttpContext({}, {}, recordingClassify().classify);
  const lines: string[] = [];
  for await (const line of responseLines(await call(ctx, `${base}/lines`))) lines.push(line);
  expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
});

test("an injected HttpPost sends the realtime requests, given the timeout", async () => {
  const seen: { url: string; init: HttpPostInit }[] = [];
  const post = createPost({
    timeoutMs: 4321,
    post: (url, init) => {
      seen.push({ url, init });
      return Promise.resolve({ status: 200, headers: new Headers(), text: '{"via":"post"}' });
    },
  });
  const { classify } = recordingClassify();
  const answer = await postJson(post, "http://example.invalid/x", { q: 1 }, {
    headers: { a: "b" },
    classify,
  });
  expect(answer.body).toEqual({ via: "post" });
  expect(seen).toEqual([{
    url: "http://example.invalid/x",
    init: {
      headers: { a: "b", "content-type": "application/json" },
      body: '{"q":1}',
      signal: undefined,
      timeoutMs: 4321,
    },
  }]);
});
