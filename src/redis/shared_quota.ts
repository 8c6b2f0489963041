/**
 * The edge of a quota shared through Redis (`--quota`): the flags and the {@linkcode Quota} that
 * `run` and `serve` draw from. The connection itself is injected (`connection.ts`), so
 * that bundles without it (the Workers entry) never pull in a Node Redis client.
 * @module
 */
import { ConfigError, isConfigError } from "../errors.ts";
import { formatDuration } from "../duration.ts";
import { fraction as fractionOf, parseFlag } from "../flags.ts";
import { Quota } from "../quota.ts";
import { defaultQuotaName } from "../quota_store.ts";
import { RedisScheduler } from "./scheduler.ts";
import { RedisTokenGate } from "./token_gate.ts";
import type { QuotaStoreConnection } from "./connection.ts";

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
    /** Opens the store: {@linkcode connectQuotaStore} from `connection.ts`. */
    connect: (url: string) => Promise<QuotaStoreConnection>;
  },
): Promise<{ quota?: Quota; rate: number | "auto"; close: () => void }> {
  const url = values.quota ?? (o.io.env.MFT_QUOTA_URL || undefined);
  const fallback = values["quota-fallback"];
  if (fallback !== undefined && fallback !== "local") {
    throw new ConfigError(`--quota-fallback must be 'local': got '${fallback}'`);
  }
  const fraction =
    parseFlag(fractionOf("--quota-fallback-fraction", true), values["quota-fallback-fraction"]) ??
      0.5;
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
    connection = await o.connect(url);
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
  // The token budget is shared too: --tpm is for every job on the quota together.
  const tokenGate = o.tpm === undefined
    ? undefined
    : new RedisTokenGate({ store: connection.store, name, tpm: o.tpm });
  const quota = new Quota({ rate: o.rate, tpm: o.tpm, scheduler, tokenGate });
  o.log(
    `quota: shared "${name}" on ${connection.display}: ${o.rate} req/s${
      o.tpm === undefined ? "" : ` and ${o.tpm} tokens/min`
    } for every job on it together\n`,
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
