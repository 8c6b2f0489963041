/**
 * The mock provider's planned faults: `[[mock:...]]` directives, the random `failureRate`
 * failures and latency, and the `reset` fault's response.
 * @module
 */
import { REAL_ANSWERS, type RealName, type RealOutcome } from "./real_answers.ts";
import type { Extracted } from "./formats.ts";
import type { Host, MockState } from "./state.ts";

// ---------------------------------------------------------------------------------------------
// Directives

/** What the mock does with one request. */
export type Outcome =
  | { kind: "ok" }
  | { kind: "error"; status: number; quota?: boolean; message: string }
  | { kind: "reset" }
  | { kind: "badjson" }
  | RealOutcome;

export type Action = number | "reset" | "badjson" | "insufficient_quota" | RealName;

export interface Directives {
  count: number;
  /** Outcome directives in text order; `upTo` limits them to the first attempts (fail=K). */
  actions: { action: Action; upTo: number }[];
  latencyMs?: number;
  retryAfter?: string;
  retryAfterMs?: string;
  retryDelay?: string;
  unknown?: string;
}

export const DIRECTIVE = /\[\[mock:([^\]]*)\]\]/g;
export const NUMBER = /^\d+(\.\d+)?$/;

export function parseAction(s: string): Action | undefined {
  if (s === "reset" || s === "badjson" || s === "insufficient_quota") return s;
  if ((REAL_ANSWERS as readonly string[]).includes(s)) return s as RealName;
  if (/^\d{3}$/.test(s)) {
    const status = Number(s);
    if (status >= 400 && status <= 599) return status;
  }
  return undefined;
}

export function parseDirectives(text: string): Directives {
  const d: Directives = { count: 0, actions: [] };
  if (!text.includes("[[mock:")) return d;
  for (const m of text.matchAll(DIRECTIVE)) {
    d.count++;
    const body = m[1].trim();
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? "" : body.slice(eq + 1);
    const action = eq < 0 ? parseAction(body) : undefined;
    if (action !== undefined) {
      d.actions.push({ action, upTo: Infinity });
    } else if (name === "fail" && /^\d+:/.test(value)) {
      const colon = value.indexOf(":");
      const failAction = parseAction(value.slice(colon + 1));
      if (failAction === undefined) d.unknown ??= m[0];
      else d.actions.push({ action: failAction, upTo: Number(value.slice(0, colon)) });
    } else if (name === "latency" && NUMBER.test(value)) {
      d.latencyMs = Number(value);
    } else if (name === "retry-after" && NUMBER.test(value)) {
      d.retryAfter = value;
    } else if (name === "retry-after-ms" && NUMBER.test(value)) {
      d.retryAfterMs = value;
    } else if (name === "retry-delay" && NUMBER.test(value)) {
      d.retryDelay = value;
    } else {
      d.unknown ??= m[0];
    }
  }
  return d;
}

export function actionOutcome(action: Action, why: string): Outcome {
  if (action === "reset") return { kind: "reset" };
  if (action === "badjson") return { kind: "badjson" };
  if (typeof action === "string" && action !== "insufficient_quota") {
    return { kind: "real", name: action };
  }
  if (action === "insufficient_quota") {
    return {
      kind: "error",
      status: 429,
      quota: true,
      message: "You exceeded your current quota, please check your plan and billing details.",
    };
  }
  return { kind: "error", status: action, message: `mock: planned ${action} (${why})` };
}

/**
 * The `reset` fault. Neither Bun.serve nor Deno.serve lets a handler destroy its socket, so:
 *
 * - Bun: a body that errors before its first byte. Bun.serve then drops the TCP connection
 *   (RST) without a status line, so any client's fetch rejects (Bun: `ECONNRESET`, Deno/Node:
 *   `TypeError: fetch failed`). `error()` without a reason keeps Bun from logging every reset.
 * - In process (`app.request()`, `app.fetch`): the same body, erroring with a TypeError; the
 *   Response resolves and reading its body rejects.
 * - Deno.serve always sends the status line first, so the closest is a body that ends short of
 *   its `content-length`: the client's fetch resolves with 200 and reading the body rejects.
 *   An erroring stream would do the same but Deno logs it; the short body is silent.
 */
export function resetResponse(host: Host): Response {
  if (host === "deno") {
    return new Response(
      new ReadableStream({
        start(controller) {
          controller.close();
        },
      }),
      { headers: { "content-type": "application/json", "content-length": "64" } },
    );
  }
  // In process there is no log to keep quiet, and a reason tells the reader what happened.
  const reason = host === "app" ? new TypeError("mock: connection reset") : undefined;
  return new Response(
    new ReadableStream({
      start(controller) {
        controller.error(reason);
      },
    }),
  );
}

export interface Plan {
  outcome: Outcome;
  latencyMs: number;
  headers: Record<string, string>;
  retryDelay?: string;
}

/** Base latency plus jitter, for every provider request that has no latency directive. */
export function baseLatency(state: MockState): number {
  const { latencyMs, latencyJitterMs } = state.opts;
  return latencyJitterMs > 0 ? latencyMs + state.jitterRng() * latencyJitterMs : latencyMs;
}

export function plan(state: MockState, parsed: Extracted): Plan {
  const d = parseDirectives(parsed.userText);
  const { opts } = state;
  let latencyMs = baseLatency(state);
  const headers: Record<string, string> = {};
  if (d.count === 0) {
    // Only plain requests draw, so adding a directive test does not shift the random failures.
    if (opts.failureRate > 0 && state.failureRng() < opts.failureRate) {
      return {
        outcome: {
          kind: "error",
          status: opts.failureStatus,
          message: `mock: random failure (failureRate ${opts.failureRate})`,
        },
        latencyMs,
        headers: opts.failureRetryAfterS === undefined
          ? headers
          : { "retry-after": String(opts.failureRetryAfterS) },
      };
    }
    return { outcome: { kind: "ok" }, latencyMs, headers };
  }
  const key = `${parsed.model}\u0000${parsed.userText}`;
  const attempt = (state.attempts.get(key) ?? 0) + 1;
  state.attempts.set(key, attempt);
  if (d.latencyMs !== undefined) latencyMs = d.latencyMs;
  if (d.retryAfter !== undefined) headers["retry-after"] = d.retryAfter;
  if (d.retryAfterMs !== undefined) headers["retry-after-ms"] = d.retryAfterMs;
  let outcome: Outcome = { kind: "ok" };
  if (d.unknown !== undefined) {
    // A typo in a test should fail loudly rather than silently succeed.
    outcome = { kind: "error", status: 400, message: `mock: unknown directive ${d.unknown}` };
  } else {
    const hit = d.actions.find((a) => attempt <= a.upTo);
    if (hit) outcome = actionOutcome(hit.action, `attempt ${attempt}`);
  }
  return { outcome, latencyMs, headers, retryDelay: d.retryDelay };
}
