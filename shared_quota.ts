/**
 * The edge of a quota shared through Redis (`--quota`): connecting with ioredis, and building the
 * {@linkcode Quota} that `run` and `serve` draw from. Runtime code (sockets), so not in `src/`.
 * @module
 */
import { ConfigError, isConfigError } from "./src/errors.ts";
import { formatDuration } from "./src/duration.ts";
import { Quota } from "./src/quota.ts";
import { defaultQuotaName, parseQuotaUrl } from "./src/quota_store.ts";
import { type RedisEval, RedisScheduler } from "./src/redis_scheduler.ts";

/** The `--quota` flags, as parseArgs gives them. */
export interface QuotaFlags {
  quota?: string;
  "quota-name"?: string;
  "quota-fallback"?: string;
  "quota-fallback-fraction"?: string;
}

/** parseArgs options of the `--quota` flags, shared by `run` and `serve`. */
export const QUOTA_OPTIONS = {
  quota: { type: "string" },
  "quota-name": { type: "string" },
  "quota-fallback": { type: "string" },
  "quota-fallback-fraction": { type: "string" },
} as const;

/** The Redis connection behind a shared quota, from {@linkcode connectQuotaStore}. */
export interface QuotaStoreConnection {
  store: RedisEval;
  /** The address, password hidden. */
  display: string;
  close(): void;
}

/**
 * Connects to a quota store (`--quota`) with ioredis, loaded only when asked for. Calls fail at
 * once while the connection is down (no offline queue, no per-request retries), so the scheduler
 * pauses dispatching and retries by itself while ioredis reconnects in the background.
 * @throws {ConfigError} when the address is malformed or the store cannot be reached now.
 */
export async function connectQuotaStore(url: string): Promise<QuotaStoreConnection> {
  let target: string;
  let display: string;
  try {
    ({ target, display } = parseQuotaUrl(url));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const { Redis } = await import("ioredis");
  let lastError: Error | undefined;
  const client = new Redis(target, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    commandTimeout: 2000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** times, 500),
  });
  client.on("error", (error: Error) => (lastError = error));
  client.on("ready", () => (lastError = undefined));
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new ConfigError(
      `cannot reach the quota store ${display}: ${(lastError ?? (error as Error)).message}`,
    );
  }
  const call = (first: string, keys: string[], args: (string | number)[]) =>
    [first, keys.length, ...keys, ...args] as [string, number, ...(string | number)[]];
  // While disconnected ioredis says "Stream isn't writeable…": say what the connection says.
  const explain = (error: unknown): never => {
    if (client.status === "ready" && !/writeable/.test((error as Error)?.message)) throw error;
    throw new Error(`not connected: ${lastError?.message ?? "connection closed"}`, {
      cause: error,
    });
  };
  return {
    display,
    store: {
      eval: (script, keys, args) => client.eval(...call(script, keys, args)).catch(explain),
      evalsha: (sha1, keys, args) => client.evalsha(...call(sha1, keys, args)).catch(explain),
    },
    close: () => client.disconnect(),
  };
}

/**
 * `--quota` / `MFT_QUOTA_URL`: a {@linkcode Quota} on a {@linkcode RedisScheduler}, or with
 * `--quota-fallback local` and the store unreachable, the in-process rate times the fallback
 * fraction. Without a store: the plain rate and no shared quota.
 */
export async function sharedQuota(
  values: QuotaFlags,
  o: {
    io: { env: Record<string, string | undefined>; stderr: (text: string) => void };
    log: (text: string) => void;
    provider: { name: string; model: string };
    apiKey?: string;
    baseUrl?: string;
    rate: number | "auto";
    tpm?: number;
  },
): Promise<{ quota?: Quota; rate: number | "auto"; close: () => void }> {
  const url = values.quota ?? (o.io.env.MFT_QUOTA_URL || undefined);
  const fallback = values["quota-fallback"];
  if (fallback !== undefined && fallback !== "local") {
    throw new ConfigError(`--quota-fallback must be 'local': got '${fallback}'`);
  }
  const fractionText = values["quota-fallback-fraction"];
  const fraction = fractionText === undefined ? 0.5 : Number(fractionText);
  if (!(fraction > 0 && fraction <= 1) || fractionText?.trim() === "") {
    throw new ConfigError(
      `--quota-fallback-fraction must be above 0 and at most 1: got '${fractionText}'`,
    );
  }
  if (url === undefined) {
    for (const flag of ["quota-name", "quota-fallback", "quota-fallback-fraction"] as const) {
      if (values[flag] !== undefined) {
        throw new ConfigError(`--${flag} needs --quota URL (or MFT_QUOTA_URL)`);
      }
    }
    return { rate: o.rate, close: () => {} };
  }
  const name = values["quota-name"] ?? await defaultQuotaName({
    provider: o.provider.name,
    model: o.provider.model,
    baseUrl: o.baseUrl,
    apiKey: o.apiKey,
  });
  let connection: QuotaStoreConnection;
  try {
    connection = await connectQuotaStore(url);
  } catch (error) {
    if (fallback !== "local" || !isConfigError(error)) throw error;
    const rate = o.rate === "auto" ? "auto" : o.rate * fraction;
    o.io.stderr(
      `${(error as Error).message}; --quota-fallback local: running alone with the in-process ` +
        `scheduler at ${rate === "auto" ? "auto" : `${rate} req/s (${fraction} of ${o.rate})`}\n`,
    );
    return { rate, close: () => {} };
  }
  let scheduler: RedisScheduler;
  try {
    scheduler = new RedisScheduler({
      store: connection.store,
      name,
      rate: o.rate === "auto" ? 1 : o.rate,
      ceiling: o.rate === "auto" ? Infinity : o.rate,
      onStoreLost: (error) =>
        o.io.stderr(
          `quota store ${connection.display} lost (${
            (error as Error)?.message ?? error
          }): dispatch paused, reconnecting; requests in flight go on\n`,
        ),
      onStoreBack: (ms) =>
        o.io.stderr(
          `quota store ${connection.display} back after ${formatDuration(ms)}: dispatch resumed\n`,
        ),
    });
  } catch (error) {
    connection.close();
    throw new ConfigError(`--quota-name: ${(error as Error).message}`);
  }
  const quota = new Quota({ rate: o.rate, tpm: o.tpm, scheduler });
  o.log(
    `quota: shared "${name}" on ${connection.display}: ${o.rate} req/s for every job on it together\n`,
  );
  return {
    quota,
    rate: o.rate,
    close: () => {
      quota.close();
      connection.close();
      o.log(
        `quota: ${scheduler.released} slots of the shared schedule used, ${scheduler.late} dropped late (this process could not send them on time), ${
          scheduler.wasted - scheduler.late
        } unused\n`,
      );
    },
  };
}
