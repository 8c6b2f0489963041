/**
 * Runtime specifics of outgoing HTTP, kept at the edge. Each runtime's fetch has a cap of its
 * own that would quietly turn a fixed rate into a concurrency limit; see README "Caps we found".
 * @module
 */

/**
 * The fetch the provider adapters should use on this runtime, or undefined for the global one.
 *
 * Deno's fetch sends every request to an origin over one HTTP/2 connection, so at most the
 * server's `SETTINGS_MAX_CONCURRENT_STREAMS` (often 100) are open at once and the rest queue:
 * 100 streams with 2 s answers is 50 req/s, whatever rate was asked for. An HTTP/1.1 client opens
 * one connection per open request instead, with no such cap.
 */
export function providerFetch(): typeof fetch | undefined {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno?.createHttpClient === undefined) return undefined;
  const client = deno.createHttpClient({ http2: false, http1: true });
  return ((input: RequestInfo | URL, init?: RequestInit) =>
    fetch(input, { ...init, client } as RequestInit)) as typeof fetch;
}
