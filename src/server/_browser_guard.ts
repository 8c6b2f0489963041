/**
 * Keeps web pages from spending a tokenless loopback server. A page the user opens can send a
 * `text/plain` POST to `http://127.0.0.1:8787` without a CORS preflight, and through DNS
 * rebinding (a name of the page's own that resolves to 127.0.0.1) even read the answer. Both
 * show in the request: a browser always names the page in `Origin` (and `Sec-Fetch-Site`) on a
 * cross-origin POST, and a rebound request carries the page's name in `Host`. curl and scripts
 * send no `Origin` and a loopback `Host`, so they pass.
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { apiError } from "./api_error.ts";
import { isLoopback } from "./loopback.ts";

/** Why a request was refused, or undefined when it may pass. */
export interface BrowserRefusal {
  code: "host_not_loopback" | "cross_origin";
  message: string;
}

/** The host name of a `Host` header value (`127.0.0.1:8787`, `[::1]:80`, `localhost`). */
function hostName(host: string): string {
  const h = host.trim();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(":");
  return colon < 0 ? h : h.slice(0, colon);
}

/** True for the loopback names a tokenless server answers to: 127.0.0.1, localhost, [::1]. */
function loopbackHost(host: string): boolean {
  const name = hostName(host).toLowerCase();
  // `*.localhost` is loopback to the resolver, but any page can be served under such a name
  // by a local dev server: accept the plain names only.
  return (name === "localhost" || name === "[::1]" || /^127(\.\d{1,3}){3}$/.test(name)) &&
    isLoopback(name);
}

/**
 * Checks one request: its `Host` must be a loopback name, and it must carry no `Origin` other
 * than its own and no `Sec-Fetch-Site: cross-site`.
 * @param request The request as it arrived.
 * @returns The refusal, or undefined when it may pass.
 */
export function refuseBrowserRequest(request: Request): BrowserRefusal | undefined {
  const url = new URL(request.url);
  const host = request.headers.get("host") ?? url.host;
  if (!loopbackHost(host)) {
    return {
      code: "host_not_loopback",
      message:
        `this server has no MFT_SERVER_TOKEN, so it answers only requests addressed to a loopback name (127.0.0.1, localhost, [::1]); got Host '${host}'`,
    };
  }
  const origin = request.headers.get("origin");
  const site = request.headers.get("sec-fetch-site");
  const own = `${url.protocol}//${host}`.toLowerCase();
  if ((origin !== null && origin.toLowerCase() !== own) || site === "cross-site") {
    return {
      code: "cross_origin",
      message:
        `this server has no MFT_SERVER_TOKEN, so it refuses requests from web pages (Origin '${
          origin ?? "-"
        }', Sec-Fetch-Site '${site ?? "-"}'); call it from a script or set a token`,
    };
  }
  return undefined;
}

/**
 * Middleware answering 403 `{error:{code,message}}` to requests a web page could have made
 * (see the module note). Use it first, before anything reads the body or reaches a provider.
 */
export function browserGuard(): MiddlewareHandler {
  return async (c, next) => {
    const refusal = refuseBrowserRequest(c.req.raw);
    if (refusal) throw apiError(403, refusal.code, refusal.message);
    await next();
  };
}
