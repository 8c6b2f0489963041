/**
 * The Cloudflare Workers entry (`wrangler.jsonc` points here): the server's Hono app, configured
 * from the Worker's bindings, built for each request (see {@linkcode appFor}: on Workers the rate
 * is per run).
 *
 * Workers do not say who is calling, so there is no "loopback only" fallback as in `server.ts`:
 * without the `MFT_SERVER_TOKEN` secret every request is refused.
 *
 * A Worker invocation keeps at most 6 outgoing connections open, so on workerd the app caps each
 * run at 6 open requests and says so in the run's summary (`runtimeLimit` in
 * `src/server/app.ts`): at 2 s per answer a run gets 3 req/s, whatever rate it asks for. With the
 * `MFT_FANOUT` Durable Object binding and `MFT_FANOUT_OBJECTS` = K, every provider request is
 * sent from one of K Durable Objects instead (at most 6 open in each), and the cap becomes 6 × K.
 * Whether Cloudflare counts the Worker's calls to those objects against its own 6 could not be
 * checked offline (local workerd enforces no such limit): README "Deploy" says what was measured.
 * @module
 */
import type { Hono } from "hono";
import {
  buildServerApp,
  providerOf,
  resolveServerConfig,
  type ServerConfig,
} from "../../../server.ts";
import { type FailureInfo, isProviderError, ProviderError } from "../../errors.ts";
import type { ProviderResponse, RequestItem } from "../../formats.ts";
import type { Provider, SendOptions } from "../../providers/provider.ts";
import { createApp, type RuntimeLimit } from "../../server/app.ts";
import { apiError } from "../../server/api_error.ts";

/** Open outgoing connections one Workers invocation (or one Durable Object request) may have. */
const WORKERS_MAX_OPEN = 6;

/** The part of a Durable Object namespace binding this entry uses. */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

/**
 * The bindings the Worker reads. Secrets (`wrangler secret put NAME`): `MFT_SERVER_TOKEN`,
 * `OPENAI_API_KEY`, `GEMINI_API_KEY` (or `GOOGLE_API_KEY`). Vars (`wrangler.jsonc` `vars`): the
 * rest.
 */
export interface WorkerEnv {
  /** Bearer token callers must send. Required: without it every request gets 503. */
  MFT_SERVER_TOKEN?: string;
  /** `openai`, `gemini` or `mock`; default: from the key that is set. */
  MFT_PROVIDER?: string;
  /** Provider base URL; wins over `OPENAI_BASE_URL` and `GEMINI_BASE_URL`. */
  MFT_BASE_URL?: string;
  OPENAI_BASE_URL?: string;
  GEMINI_BASE_URL?: string;
  OPENAI_API_KEY?: string;
  GEMINI_API_KEY?: string;
  GOOGLE_API_KEY?: string;
  /** Model for lines that name none. */
  MFT_MODEL?: string;
  /** Requests per second shared by the runs of one isolate, or `auto`. */
  MFT_RATE_LIMIT?: string;
  /** Tokens per minute shared by the runs of one isolate. */
  MFT_TPM?: string;
  /** Attempts per item when the caller sets none. @default "3" */
  MFT_MAX_ATTEMPTS?: string;
  /** Per-request timeout, e.g. `90s`. @default "120s" */
  MFT_TIMEOUT?: string;
  /** Durable Objects to send provider requests from (1..64); needs `MFT_FANOUT`. @default off */
  MFT_FANOUT_OBJECTS?: string;
  /** The {@linkcode FanOutObject} namespace. */
  MFT_FANOUT?: DurableObjectNamespaceLike;
}

/** The configuration from the string bindings (a Workers `env` also holds objects). */
function configOf(env: WorkerEnv): ServerConfig {
  const strings: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(env)) {
    if (typeof value === "string") strings[key] = value;
  }
  return resolveServerConfig({ "base-url": strings.MFT_BASE_URL || undefined }, strings);
}

/** `MFT_FANOUT_OBJECTS` as a number of objects, 0 when fan-out is off. */
function fanOutObjects(env: WorkerEnv): number {
  const text = env.MFT_FANOUT_OBJECTS;
  if (text === undefined || text === "") return 0;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new Error(`MFT_FANOUT_OBJECTS must be a whole number from 1 to 64: got '${text}'`);
  }
  if (env.MFT_FANOUT === undefined) {
    throw new Error("MFT_FANOUT_OBJECTS is set but the MFT_FANOUT Durable Object binding is not");
  }
  return n;
}

/**
 * A provider that sends each request from one of `objects` Durable Objects: the least busy, so
 * none has more than {@linkcode WORKERS_MAX_OPEN} open while the run holds at most 6 × objects.
 */
function fanOutProvider(
  base: Provider,
  namespace: DurableObjectNamespaceLike,
  objects: number,
): Provider {
  const open: number[] = new Array(objects).fill(0);
  // Objects of their own for each run, so runs never share an object's connections. Ids are
  // plain values; stubs are made per request (an I/O object belongs to one request).
  const run = crypto.randomUUID();
  const ids = open.map((_, k) => namespace.idFromName(`mft-fanout-${run}-${k}`));
  return {
    name: base.name,
    model: base.model,
    defaultRate: base.defaultRate,
    async send(item: RequestItem, options?: SendOptions): Promise<ProviderResponse> {
      options?.signal?.throwIfAborted();
      let k = 0;
      for (let i = 1; i < objects; i++) if (open[i] < open[k]) k = i;
      open[k]++;
      try {
        let answer: { ok: ProviderResponse } | { error: FailureInfo };
        try {
          const res = await namespace.get(ids[k]).fetch("https://fanout.invalid/send", {
            method: "POST",
            body: JSON.stringify(item),
            headers: { "content-type": "application/json" },
            signal: options?.signal,
          });
          answer = await res.json();
        } catch (error) {
          if (options?.signal?.aborted) throw options.signal.reason;
          throw new ProviderError({
            status: 0,
            code: "network_error",
            message: `the fan-out object failed: ${(error as Error)?.message ?? error}`,
            retryable: true,
          });
        }
        if ("error" in answer) throw new ProviderError(answer.error);
        return answer.ok;
      } finally {
        open[k]--;
      }
    },
  };
}

/**
 * A fresh app, so a fresh quota, for every request. Runs in one isolate can not share a
 * scheduler: workerd cancels a continuation that one request's timer resolves for another
 * (measured: a run hung once a shorter one beside it had ended). So on Workers the rate is per
 * run.
 */
function appFor(env: WorkerEnv): { app: Hono } | { error: string } {
  let built: { app: Hono } | { error: string };
  try {
    const config = configOf(env);
    const objects = fanOutObjects(env);
    if (objects === 0) {
      built = { app: buildServerApp(config) };
    } else {
      const provider = providerOf(config);
      const limit: RuntimeLimit = {
        runtime: `workerd (fan-out over ${objects} Durable Objects)`,
        maxOpenRequests: WORKERS_MAX_OPEN * objects,
      };
      built = {
        app: createApp({
          provider: fanOutProvider(provider, env.MFT_FANOUT!, objects),
          rate: config.rate,
          tpm: config.tpm,
          token: config.token,
          maxAttempts: config.maxAttempts,
          timeoutMs: config.timeoutMs,
          maxLineLength: config.maxLineLength,
          runtimeLimit: limit,
        }),
      };
    }
  } catch (error) {
    built = { error: (error as Error)?.message ?? String(error) };
  }
  return built;
}

/**
 * The Durable Object behind `MFT_FANOUT`: `POST` one {@linkcode RequestItem} as JSON, get
 * `{ "ok": ProviderResponse }` or `{ "error": FailureInfo }` back. Reachable only through the
 * binding, never from the Internet, so it needs no token; the key stays in its own `env`.
 */
export class FanOutObject {
  #env: WorkerEnv;
  #provider: Provider | undefined;

  constructor(_state: unknown, env: WorkerEnv) {
    this.#env = env;
  }

  /** Sends one item through the configured provider. */
  async fetch(request: Request): Promise<Response> {
    let info: FailureInfo;
    try {
      if (this.#provider === undefined) {
        this.#provider = providerOf(configOf(this.#env));
      }
      const item = await request.json() as RequestItem;
      return Response.json({ ok: await this.#provider.send(item) });
    } catch (error) {
      info = isProviderError(error) ? error.info : {
        status: 0,
        code: "internal_error",
        message: (error as Error)?.message ?? String(error),
        retryable: false,
      };
    }
    return Response.json({ error: info });
  }
}

/** The Worker: `export default { fetch }`. */
export default {
  fetch(request: Request, env: WorkerEnv, ctx: unknown): Response | Promise<Response> {
    if (!env.MFT_SERVER_TOKEN) {
      return apiError(
        503,
        "server_misconfigured",
        "MFT_SERVER_TOKEN is not set: a Worker cannot tell who is calling, so it serves no one without a token (wrangler secret put MFT_SERVER_TOKEN)",
      ).getResponse();
    }
    const got = appFor(env);
    if ("error" in got) {
      return apiError(500, "server_misconfigured", `the server is not configured: ${got.error}`)
        .getResponse();
    }
    // deno-lint-ignore no-explicit-any
    return got.app.fetch(request, env, ctx as any);
  },
};
