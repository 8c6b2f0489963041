/**
 * `model-fine-tuner/redis`: a quota shared through Redis by several processes or machines. The
 * {@linkcode RedisScheduler} and {@linkcode RedisTokenGate} take any {@linkcode RedisEval}; {@linkcode connectQuotaStore} opens one with ioredis.
 *
 * @example
 * ```ts ignore
 * import { connectQuotaStore, RedisScheduler } from "./mod.ts";
 * import { Quota } from "../../mod.ts";
 * const store = await connectQuotaStore("redis://127.0.0.1:6379");
 * const scheduler = new RedisScheduler({ store: store.store, name: "gemini", rate: 60 });
 * const quota = new Quota({ rate: 60, scheduler });
 * ```
 * @module
 */
export { connectQuotaStore, type QuotaStoreConnection } from "./connection.ts";
export {
  type RedisEval,
  RedisScheduler,
  type RedisSchedulerOptions,
  StoreTimeoutError,
} from "./scheduler.ts";
export { RedisTokenGate, type RedisTokenGateOptions } from "./token_gate.ts";
export {
  defaultQuotaName,
  parseQuotaUrl,
  type QuotaIdentity,
  type QuotaUrl,
} from "../quota_store.ts";
