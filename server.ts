/**
 * The HTTP server's runtime edge. `export default { fetch }` serves the app configured from the
 * environment (`bun server.ts`, `deno serve server.ts`, Cloudflare Workers); {@linkcode serve} is
 * `model-fine-tuner serve`, which listens with `Bun.serve`, `Deno.serve` or `@hono/node-server`.
 *
 * Node built-ins and the Node adapter are imported only when used, through a specifier bundlers
 * do not follow, so a Workers bundle needs no `nodejs_compat`.
 * @module
 */
import { providerFetch } from "./src/adapter/runtime.ts";
import type { HttpPost } from "./src/providers/http.ts";
import type { Provider } from "./src/providers/provider.ts";
import { importAtRuntime } from "./src/adapter/import_at_runtime.ts";
import { type RunningServer, startServer } from "./src/adapter/listen.ts";
export { type RunningServer, startServer, type StartServerOptions } from "./src/adapter/listen.ts";
import { QUOTA_OPTIONS, sharedQuota } from "./src/redis/shared_quota.ts";
import type { QuotaStoreConnection } from "./src/redis/connection.ts";
import type { Quota } from "./src/quota.ts";
import { GEMINI_DEFAULT_MODEL } from "./src/providers/gemini/realtime.ts";
import { OPENAI_DEFAULT_MODEL } from "./src/providers/openai/realtime.ts";
import type { Hono } from "hono";
import * as v from "valibot";
import {
  byteSize,
  duration,
  nonEmpty,
  parseFlags,
  positiveNumber,
  SHARED_SETTINGS,
} from "./src/flags.ts";
import { ConfigError, isConfigError, UsageError } from "./src/errors.ts";
import { createProvider, type ProviderName } from "./src/providers/create_provider.ts";
import { GEMINI_DEFAULT_RATE } from "./src/providers/gemini/realtime.ts";
import { MOCK_DEFAULT_RATE } from "./src/providers/mock.ts";
import { OPENAI_DEFAULT_RATE } from "./src/providers/openai/realtime.ts";
import { providerAccess, providerWithKey } from "./src/provider_env.ts";
import { onTwoStageInterrupt } from "./src/cli/interrupt.ts";
import { createApp } from "./src/server/app.ts";
import { createBatchBackend } from "./src/batch/create_batch_backend.ts";
import type { BatchManager } from "./src/server/batch_api/batch_manager.ts";
import type { BatchStorage } from "./src/server/batch_api/storage.ts";
import { isLoopback } from "./src/server/loopback.ts";
import { apiError } from "./src/server/api_error.ts";
import { BEARER_TOKEN_CHARS, isBearerToken } from "./src/server/_auth.ts";

/** Environment variables, as `process.env` or a Workers `env`. */
export type Env = Record<string, string | undefined>;

/** Where `serve` prints and how it learns of Ctrl-C; the CLI's `CliIo` fits. */
export interface ServeIo {
  env: Env;
  stdout: (text: string) => void | Promise<void>;
  stderr: (text: string) => void;
  /** Registers the Ctrl-C handler; returns a function that removes it. */
  onInterrupt: (handler: () => void) => () => void;
}

/** Settings of the server, from flags and the environment. */
export interface ServerConfig {
  provider: ProviderName;
  model?: string;
  /** Upstream base URL: from the server's flags or environment only, never from a caller. */
  baseUrl?: string;
  apiKey?: string;
  /** Requests per second shared by all runs, or "auto". */
  rate: number | "auto";
  /** Tokens per minute shared by all runs. */
  tpm?: number;
  maxAttempts: number;
  timeoutMs: number;
  maxLineLength?: number;
  /** Largest `/v1/runs` body in bytes (`--max-body-size`, `MFT_MAX_BODY_SIZE`); undefined: none. */
  maxBodyBytes?: number;
  mockLatencyMs?: number;
  mockFailureRate?: number;
  /** `MFT_SERVER_TOKEN`; undefined means loopback only. */
  token?: string;
  /** Batch API data directory (`--data-dir`, `MFT_DATA_DIR`); undefined: the default one. */
  dataDir?: string;
  /** Largest Batch API file upload in bytes (`--max-file-bytes`, `MFT_MAX_FILE_BYTES`). */
  maxFileBytes?: number;
  /** How Batch API batches run: `realtime` (the shared quota) or `batch` (the provider's Batch API). */
  batchMode?: "realtime" | "batch";
  /** `MFT_BATCH_POLL_INTERVAL` in ms: first wait between polls of the provider's batches. */
  batchPollMs?: number;
}

/** `model-fine-tuner serve --help`. */
export const SERVE_HELP = `Usage:
  model-fine-tuner serve [--host 127.0.0.1] [--port 8787] [options]

HTTP API:
  POST /v1/runs          NDJSON lines in (any input format), NDJSON results out as each finishes,
                         then {"summary": {...}}; ?max_attempts=N (or header x-mft-max-attempts)
  GET  /v1/stats         rate, in flight, queued, per-run progress
  /v1/files, /v1/batches OpenAI's Batch API (point the openai SDK at http://HOST:PORT/v1):
                         batches run through the shared rate limit, durable in --data-dir
  GET  /healthz          liveness, no auth

Options:
  --host HOST            interface to listen on (default 127.0.0.1); any non-loopback host
                         needs MFT_SERVER_TOKEN (callers send Authorization: Bearer <token>)
                         Without a token, what a web page could send (a cross-origin Origin,
                         a Host that is not 127.0.0.1, localhost or [::1]) gets 403
  --port N               TCP port, 0 for any free one (default 8787)
  --provider NAME        gemini | openai | mock (also MFT_PROVIDER; default: from the key set)
  --model NAME           model for lines that name none (also MFT_MODEL)
  --base-url URL         provider base URL (also OPENAI_BASE_URL, GEMINI_BASE_URL)
  --rate-limit R|auto    requests per second for all callers together (also MFT_RATE_LIMIT);
                         slows down on the provider's 429s and climbs back
  --tpm N                tokens per minute for all callers together (also MFT_TPM)
  --quota URL            share the provider quota with other servers and jobs through Redis:
                         redis://host:port/N (also MFT_QUOTA_URL); --quota-name NAME,
                         --quota-fallback local and --quota-fallback-fraction F as in run
  --max-attempts N       default attempts per item (also MFT_MAX_ATTEMPTS; default 3)
  --timeout DUR          per-request timeout (also MFT_TIMEOUT; default 120s)
  --max-line-length N    longest input line in characters (default 1048576)
  --max-body-size SIZE   largest /v1/runs body: 500000, 64M, 2G (also MFT_MAX_BODY_SIZE;
                         default no limit); a larger Content-Length is a 413, a chunked body
                         that grows past it ends its run's input
  --data-dir DIR         where Batch API files and batches live, resumed on restart (also
                         MFT_DATA_DIR; default $XDG_DATA_HOME/model-fine-tuner or
                         ~/.local/share/model-fine-tuner)
  --max-file-bytes N     largest Batch API upload (also MFT_MAX_FILE_BYTES; default 1073741824)
  --mode realtime|batch  how /v1/batches run: through the shared rate (default) or as batches at
                         the provider's own Batch API (openai, gemini; half price)
  --mock-latency DUR     mock provider answer time (default 20ms)
  --mock-failure-rate F  mock provider failure fraction, 0..1 (default 0)
  -h, --help             this text

Keys come from the environment only: GEMINI_API_KEY (or GOOGLE_API_KEY), OPENAI_API_KEY; they
never leave the server. Callers can not pick the provider, its URL or the model default.
`;

/** The model each adapter uses when none is set: part of the shared quota's default name. */
const DEFAULT_MODELS: Record<ProviderName, string> = {
  gemini: GEMINI_DEFAULT_MODEL,
  openai: OPENAI_DEFAULT_MODEL,
  mock: "mock-1",
};

/**
 * Each provider's own `defaultRate`, for a rate the server needs before it builds the provider
 * (the shared quota is connected first). The CLI reads `provider.defaultRate` instead.
 */
const DEFAULT_RATES: Record<ProviderName, number> = {
  gemini: GEMINI_DEFAULT_RATE,
  openai: OPENAI_DEFAULT_RATE,
  mock: MOCK_DEFAULT_RATE,
};

/** Flags of `serve`, as parseArgs gives them; also the shape `resolveServerConfig` reads. */
export interface ServeFlags {
  provider?: string;
  model?: string;
  "base-url"?: string;
  "rate-limit"?: string;
  tpm?: string;
  "max-attempts"?: string;
  timeout?: string;
  "max-line-length"?: string;
  "max-body-size"?: string;
  "mock-latency"?: string;
  "mock-failure-rate"?: string;
  "data-dir"?: string;
  "max-file-bytes"?: string;
  mode?: string;
}

/**
 * A variable the server can do without: Deno run with a narrower `--allow-env` list throws on
 * reading it, which means unset here.
 */
function optionalEnv(env: Env, name: string): string | undefined {
  try {
    return env[name];
  } catch {
    return undefined;
  }
}

/** `MFT_SERVER_TOKEN`, checked: a token clients could not send is a ConfigError at start. */
function serverToken(token: string | undefined): string | undefined {
  if (token !== undefined && !isBearerToken(token)) {
    throw new ConfigError(`MFT_SERVER_TOKEN must be ${BEARER_TOKEN_CHARS}`);
  }
  return token;
}

/**
 * `serve`'s settings as text, each from its flag or else its environment variable (an empty
 * variable counts as unset), checked in one go; every message names the flag.
 */
const ServeSettings = v.object({
  ...SHARED_SETTINGS,
  "max-line-length": v.optional(positiveNumber("--max-line-length", true)),
  "max-body-size": v.optional(byteSize("--max-body-size")),
  "max-file-bytes": v.optional(positiveNumber("--max-file-bytes", true)),
  mode: v.optional(
    v.picklist(
      ["realtime", "batch"],
      (issue) => `--mode must be realtime or batch: got '${issue.input}'`,
    ),
  ),
  "batch-poll-interval": v.optional(duration("MFT_BATCH_POLL_INTERVAL")),
});

/**
 * Resolves the server's settings: flags first, then the environment (`MFT_PROVIDER`,
 * `MFT_MODEL`, `MFT_RATE_LIMIT`, `MFT_MAX_ATTEMPTS`, `MFT_TIMEOUT`, `MFT_SERVER_TOKEN`, the key
 * and base-URL variables of `run`).
 * @throws {UsageError} with a message for the user, when a setting is invalid.
 */
export function resolveServerConfig(flags: ServeFlags, env: Env): ServerConfig {
  const settings = parseFlags(ServeSettings, {
    provider: flags.provider ?? (env.MFT_PROVIDER || undefined),
    "rate-limit": nonEmpty(flags["rate-limit"] ?? env.MFT_RATE_LIMIT),
    tpm: nonEmpty(flags.tpm ?? env.MFT_TPM),
    "max-attempts": nonEmpty(flags["max-attempts"] ?? env.MFT_MAX_ATTEMPTS),
    timeout: nonEmpty(flags.timeout ?? env.MFT_TIMEOUT),
    "max-line-length": nonEmpty(flags["max-line-length"]),
    "max-body-size": nonEmpty(flags["max-body-size"] ?? optionalEnv(env, "MFT_MAX_BODY_SIZE")),
    "mock-latency": nonEmpty(flags["mock-latency"]),
    "mock-failure-rate": flags["mock-failure-rate"],
    "max-file-bytes": nonEmpty(flags["max-file-bytes"] ?? optionalEnv(env, "MFT_MAX_FILE_BYTES")),
    mode: flags.mode,
    "batch-poll-interval": nonEmpty(optionalEnv(env, "MFT_BATCH_POLL_INTERVAL")),
  });
  const provider = settings.provider ?? providerWithKey(env);
  if (provider === undefined) {
    throw new UsageError(
      "cannot pick a provider: pass --provider (or set MFT_PROVIDER), or set GEMINI_API_KEY or OPENAI_API_KEY (mock runs offline)",
    );
  }
  const { apiKey, baseUrl } = providerAccess(provider, env, flags["base-url"]);
  if (settings.mode === "batch" && provider === "mock") {
    throw new UsageError(
      "--mode batch needs --provider openai or gemini (offline: serve scripts/start_mock_batch.ts and pass its URL as --base-url)",
    );
  }
  return {
    provider,
    model: flags.model ?? (env.MFT_MODEL || undefined),
    baseUrl,
    apiKey,
    rate: settings["rate-limit"] ?? DEFAULT_RATES[provider],
    tpm: settings.tpm,
    maxAttempts: settings["max-attempts"] ?? 3,
    timeoutMs: settings.timeout ?? 120_000,
    maxLineLength: settings["max-line-length"],
    maxBodyBytes: settings["max-body-size"],
    mockLatencyMs: settings["mock-latency"],
    mockFailureRate: settings["mock-failure-rate"],
    token: serverToken(env.MFT_SERVER_TOKEN || undefined),
    dataDir: flags["data-dir"] ?? (optionalEnv(env, "MFT_DATA_DIR") || undefined),
    maxFileBytes: settings["max-file-bytes"],
    batchMode: settings.mode ?? "realtime",
    batchPollMs: settings["batch-poll-interval"],
  };
}

/**
 * The provider `config` names, with its key (which stays here), sending through `post` when
 * given (see {@linkcode buildServerApp}), else ky over this runtime's fetch.
 * @throws {ConfigError} when the provider settings are invalid.
 */
export function providerOf(config: ServerConfig, post?: HttpPost): Provider {
  return createProvider({
    provider: config.provider,
    apiKey: config.apiKey,
    baseUrl: config.baseUrl,
    model: config.model,
    timeoutMs: config.timeoutMs,
    mock: { latencyMs: config.mockLatencyMs, failureRate: config.mockFailureRate },
    fetch: providerFetch(),
    post,
  });
}

/**
 * Builds the app for `config`: the provider (with the key, which stays here) and the shared
 * scheduler.
 * @throws {ConfigError} when the provider settings are invalid.
 */
export function buildServerApp(
  config: ServerConfig,
  options: {
    signal?: AbortSignal;
    quota?: Quota;
    /**
     * Sends the provider's requests instead of ky (the CLI's `providerPost()`: `node:http` on
     * Node, plain `fetch` on Deno). Injected, so that this file, which the Workers entry
     * imports, does not pull in `node:http`. @default ky over `providerFetch()`
     */
    post?: HttpPost;
    /** Serves the Batch API on this storage. */
    batch?: {
      storage: BatchStorage;
      log?: (line: string) => void;
      onManager?: (m: BatchManager) => void;
    };
  } = {},
): Hono {
  const provider = providerOf(config, options.post);
  return createApp({
    provider,
    rate: config.rate,
    tpm: config.tpm,
    token: config.token,
    maxAttempts: config.maxAttempts,
    timeoutMs: config.timeoutMs,
    maxLineLength: config.maxLineLength,
    maxBodyBytes: config.maxBodyBytes,
    signal: options.signal,
    quota: options.quota,
    batchApi: options.batch && {
      ...options.batch,
      maxFileBytes: config.maxFileBytes,
      providerBatch: config.batchMode === "batch"
        ? {
          backend: createBatchBackend({
            provider: config.provider,
            apiKey: config.apiKey,
            baseUrl: config.baseUrl,
            model: config.model,
            timeoutMs: config.timeoutMs,
            fetch: providerFetch(),
          }),
          pollIntervalMs: config.batchPollMs,
        }
        : undefined,
    },
  });
}

const SERVE_OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  provider: { type: "string" },
  model: { type: "string" },
  "base-url": { type: "string" },
  "rate-limit": { type: "string" },
  tpm: { type: "string" },
  "max-attempts": { type: "string" },
  timeout: { type: "string" },
  "max-line-length": { type: "string" },
  "max-body-size": { type: "string" },
  "mock-latency": { type: "string" },
  "mock-failure-rate": { type: "string" },
  "data-dir": { type: "string" },
  "max-file-bytes": { type: "string" },
  mode: { type: "string" },
  ...QUOTA_OPTIONS,
  help: { type: "boolean", short: "h" },
} as const;

/**
 * `model-fine-tuner serve [flags]`: starts the server and prints `listening on http://HOST:PORT`
 * on stdout. The first Ctrl-C stops it gracefully (runs stop dispatching, in-flight requests
 * finish, every stream ends with its summary), a second one at once.
 * @param argv The arguments after `serve`.
 * @returns The exit code: 0 after a graceful stop, 1 when it can not listen, 2 for a usage or
 *   configuration error (including a non-loopback `--host` without `MFT_SERVER_TOKEN`), 130
 *   after a forced stop.
 */
export async function serve(
  argv: string[],
  io: ServeIo,
  options: {
    connectQuotaStore?: (url: string) => Promise<QuotaStoreConnection>;
    /**
     * Opens the Batch API's storage in a directory (the default one when undefined); without it
     * there is no Batch API. May throw a `ConfigError` (exit 2).
     */
    openBatchStorage?: (dir: string | undefined) => BatchStorage | undefined;
    /** The provider's request sender: see {@linkcode buildServerApp}. */
    post?: HttpPost;
  } = {},
): Promise<number> {
  const { parseArgs } = await importAtRuntime<typeof import("node:util")>("node:util");
  let hostname: string;
  let port: number;
  let config: ServerConfig;
  const shutdown = new AbortController();
  let app: Hono;
  let shared: Awaited<ReturnType<typeof sharedQuota>> | undefined;
  let batches: BatchManager | undefined;
  let storage: BatchStorage | undefined;
  try {
    const { values } = parseArgs({
      args: argv,
      options: SERVE_OPTIONS,
      allowPositionals: false,
      strict: true,
    });
    if (values.help) {
      await io.stdout(SERVE_HELP);
      return 0;
    }
    hostname = values.host ?? "127.0.0.1";
    const portText = values.port ?? "8787";
    port = Number(portText);
    if (portText.trim() === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UsageError(`--port must be a whole number from 0 to 65535: got '${portText}'`);
    }
    config = resolveServerConfig(values, io.env);
    if (config.token === undefined && !isLoopback(hostname)) {
      throw new UsageError(
        `refusing to listen on ${hostname} without MFT_SERVER_TOKEN: set it (callers then send 'Authorization: Bearer <token>') or use a loopback --host such as 127.0.0.1`,
      );
    }
    // Several replicas (or servers and CLI jobs) can share one provider quota through Redis.
    shared = await sharedQuota(values, {
      io,
      log: (text) => io.stderr(text),
      provider: { name: config.provider, model: config.model ?? DEFAULT_MODELS[config.provider] },
      apiKey: config.apiKey,
      baseUrl: config.baseUrl,
      rate: config.rate,
      tpm: config.tpm,
      // Injected by the CLI, so that this file (which the Workers entry imports) does not pull
      // in a Node Redis client.
      connect: options.connectQuotaStore ?? (() => {
        throw new ConfigError("--quota needs the model-fine-tuner CLI (cli.ts serve)");
      }),
    });
    config.rate = shared.rate;
    storage = options.openBatchStorage?.(config.dataDir);
    app = buildServerApp(config, {
      signal: shutdown.signal,
      quota: shared.quota,
      post: options.post,
      batch: storage && {
        storage,
        log: (line) => io.stderr(`${line}\n`),
        onManager: (m) => (batches = m),
      },
    });
  } catch (error) {
    shared?.close();
    const e = error as Error & { code?: string };
    if (e?.code?.startsWith("ERR_PARSE_ARGS") || isConfigError(e)) {
      io.stderr(`model-fine-tuner serve: ${e.message}\n`);
      return 2;
    }
    throw error;
  }

  let server: RunningServer;
  try {
    server = await startServer(app.fetch, { hostname, port });
  } catch (error) {
    io.stderr(
      `model-fine-tuner serve: cannot listen on ${hostname}:${port}: ${
        (error as Error)?.message ?? error
      }\n`,
    );
    return 1;
  }
  await io.stdout(`listening on ${server.url}\n`);
  io.stderr(
    `serve: provider ${config.provider}${
      config.model ? ` · model ${config.model}` : ""
    } · ${config.rate} req/s shared · ${
      config.token ? "bearer token required" : "no token: loopback only"
    }${
      storage
        ? ` · batch API data in ${storage.location}${
          config.batchMode === "batch" ? ` · batches go to ${config.provider}'s Batch API` : ""
        }`
        : ""
    }\n`,
  );

  return await new Promise<number>((resolve) => {
    const remove = onTwoStageInterrupt(
      io,
      () => {
        io.stderr(
          "stopping: no new requests; open runs finish what is in flight (Ctrl-C again to quit now)\n",
        );
        shutdown.abort(new DOMException("the server is shutting down", "AbortError"));
        // Batches stop sending too; their in-flight answers are written before the exit.
        Promise.all([server.close(), batches?.idle()]).then(() => {
          remove();
          shared?.close();
          resolve(0);
        }, () => {
          remove();
          shared?.close();
          resolve(1);
        });
      },
      () => {
        remove();
        shared?.close();
        server.close({ force: true }).catch(() => {});
        resolve(130);
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// export default: the app from the environment, built on the first request

/** What a runtime passes beside the request: Bun's server, Deno's info, or a Workers env. */
interface Peer {
  address?: string;
  env?: Env;
}

function peerOf(request: Request, arg: unknown): Peer {
  if (typeof arg !== "object" || arg === null) return {};
  const bun = arg as {
    requestIP?: (r: Request) => { address: string } | null;
    timeout?: (r: Request, s: number) => void;
  };
  if (typeof bun.requestIP === "function") {
    // Bun cuts a connection idle for 10 s; a run's stream can be quiet for longer.
    bun.timeout?.(request, 0);
    return { address: bun.requestIP(request)?.address };
  }
  const deno = arg as { remoteAddr?: { transport: string; hostname?: string } };
  if (deno.remoteAddr) {
    // A Unix socket is as local as loopback.
    return {
      address: deno.remoteAddr.transport === "unix" ? "localhost" : deno.remoteAddr.hostname,
    };
  }
  const env: Env = {};
  for (const [key, value] of Object.entries(arg)) if (typeof value === "string") env[key] = value;
  return { env };
}

function processEnv(): Env {
  const g = globalThis as { process?: { env: Env } };
  if (g.process?.env) return { ...g.process.env };
  if (typeof Deno !== "undefined") return Deno.env.toObject();
  return {};
}

let fromEnv: { app: Hono; token?: string } | undefined;

/**
 * The server for `bun server.ts`, `deno serve server.ts` and Workers, configured from the
 * environment (see {@linkcode resolveServerConfig}). Nothing is read at import: a missing key
 * answers 500 with the reason. Without `MFT_SERVER_TOKEN` only loopback clients are answered
 * (403 otherwise, and always on Workers, which do not say who is calling).
 */
export default {
  fetch(request: Request, arg?: unknown, ctx?: unknown): Response | Promise<Response> {
    const peer = peerOf(request, arg);
    if (fromEnv === undefined) {
      try {
        const config = resolveServerConfig({}, peer.env ?? processEnv());
        fromEnv = { app: buildServerApp(config), token: config.token };
      } catch (error) {
        return apiError(
          500,
          "server_misconfigured",
          `the server is not configured: ${(error as Error)?.message ?? error}`,
        ).getResponse();
      }
    }
    if (fromEnv.token === undefined && !(peer.address !== undefined && isLoopback(peer.address))) {
      return apiError(
        403,
        "loopback_only",
        "MFT_SERVER_TOKEN is not set, so this server answers loopback clients only",
      ).getResponse();
    }
    // deno-lint-ignore no-explicit-any
    return fromEnv.app.fetch(request, peer.env, ctx as any);
  },
};
