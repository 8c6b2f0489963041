/**
 * Which request sender the CLI's provider adapters use on this runtime: each runtime's cheapest
 * way to hold a high rate, measured at the receiving server (README "Caps we found"). Kept out
 * of `runtime.ts`, which the Workers bundle imports, for its `node:http`.
 * @module
 */
import process from "node:process";
import { fetchPost, type HttpPost } from "../providers/http.ts";
import { nodeHttpPost } from "./node_http_post.ts";
import { providerFetch } from "./runtime.ts";

/**
 * The {@linkcode HttpPost} for this runtime, or undefined for ky over `providerFetch()`:
 *
 * - Node: `node:http` keep-alive ({@linkcode nodeHttpPost}); undici's fetch cost about 1 ms of
 *   CPU per request;
 * - Deno: {@linkcode fetchPost} over Deno's HTTP/1.1 client; ky's own work per request was a
 *   fifth of the event loop at 1,000 req/s;
 * - Bun: ky over Bun's fetch, which holds 2,000 req/s as it is.
 */
export function providerPost(): HttpPost | undefined {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Deno !== undefined) return fetchPost(providerFetch());
  if (g.Bun !== undefined || !process.versions?.node) return undefined;
  return nodeHttpPost();
}
