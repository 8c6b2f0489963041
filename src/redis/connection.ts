/**
 * The Redis connection behind `--quota`, with ioredis (Node built-ins: sockets), loaded only when
 * a quota store is asked for. `cli.ts` and the `./redis` entry import this file.
 * @module
 */
import { ConfigError } from "../errors.ts";
import { parseQuotaUrl } from "../quota_store.ts";
import type { RedisEval } from "./scheduler.ts";

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
