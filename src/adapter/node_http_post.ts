/**
 * Outgoing HTTP on Node through `node:http`, kept at the edge (and out of `runtime.ts`, which
 * the Workers bundle imports): see README "Caps we found". `providerPost()` (provider_post.ts)
 * picks it on Node.
 * @module
 */
import { Buffer } from "node:buffer";
import { setMaxListeners } from "node:events";
import * as http from "node:http";
import * as https from "node:https";
import type { HttpPost, HttpPostResult } from "../providers/http.ts";

/**
 * POSTs over `node:http`/`node:https` with keep-alive agents (no socket cap: one connection per
 * open request, reused once answered).
 *
 * Why not ky over Node's fetch: undici builds, clones and tees a web Request and its body stream
 * for every request. Profiled at 1,000 req/s with 2 s answers, that was about 1 ms of CPU per
 * request in our process alone, so the event loop fell seconds behind and the requests reached
 * the provider in clumps of up to 3 × R in one second (README "Caps we found").
 *
 * @example
 * ```ts
 * import { nodeHttpPost } from "./node_http_post.ts";
 * const post = nodeHttpPost();
 * const { status, text } = await post("http://127.0.0.1:8000/v1/chat/completions", {
 *   headers: { "content-type": "application/json" },
 *   body: "{}",
 *   timeoutMs: 30_000,
 * });
 * ```
 */
export function nodeHttpPost(): HttpPost {
  // One listener per open request on the run's signal: thousands, on purpose (not a leak).
  const unlimited = new WeakSet<AbortSignal>();
  const agents = {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true }),
  };
  return (url, { headers, body, signal, timeoutMs }) =>
    new Promise<HttpPostResult>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const secure = url.startsWith("https:");
      const request = (secure ? https : http).request(url, {
        method: "POST",
        agent: secure ? agents.https : agents.http,
        headers: { ...headers, "content-length": Buffer.byteLength(body) },
      });
      let settled = false;
      const finish = (error: unknown, result?: HttpPostResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (error === undefined) resolve(result!);
        else reject(error);
      };
      const fail = (error: unknown) => {
        finish(error);
        request.destroy();
      };
      const onAbort = () => fail(signal!.reason);
      const timer = setTimeout(
        () => fail(new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError")),
        timeoutMs,
      );
      if (signal && !unlimited.has(signal)) {
        unlimited.add(signal);
        setMaxListeners(0, signal);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      request.on("error", (error) => finish(error));
      request.on("response", (response) => {
        response.setEncoding("utf8");
        let text = "";
        response.on("data", (chunk: string) => (text += chunk));
        response.on("error", (error) => finish(error));
        response.on("end", () => {
          const responseHeaders = new Headers();
          const raw = response.rawHeaders;
          for (let i = 0; i + 1 < raw.length; i += 2) responseHeaders.append(raw[i], raw[i + 1]);
          finish(undefined, { status: response.statusCode ?? 0, headers: responseHeaders, text });
        });
      });
      request.end(body);
    });
}
