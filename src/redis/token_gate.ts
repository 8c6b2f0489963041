/**
 * One tokens-per-minute budget shared by many processes and machines: every
 * {@linkcode RedisTokenGate} on the same store and quota name charges one GCRA over tokens kept
 * in Redis, as `RedisScheduler` shares the request rate.
 * @module
 */
import { type Clock, delay, systemClock, type TimerHandle } from "../clock.ts";
import type { RedisEval } from "./scheduler.ts";
import { TOKEN_BURST_SHARE, TOKEN_PACE, type TokenBudget } from "../token_gate.ts";

/** Options for {@linkcode RedisTokenGate}. */
export interface RedisTokenGateOptions {
  /** The store (the same connection the request scheduler uses will do). */
  store: RedisEval;
  /** The quota's name: gates with the same store and name share one budget. */
  name: string;
  /** Tokens per minute for all of them together. */
  tpm: number;
  /** Prefix of the key `<prefix>:{<name>}:tokens`. @default "mft" */
  keyPrefix?: string;
  /** A store call that has not answered in this long counts as failed. @default 2000 */
  callTimeoutMs?: number;
  /** Wait before retrying a failed store call; doubles up to 500 ms. @default 100 */
  retryDelayMs?: number;
  /** @default systemClock */
  clock?: Clock;
}

// Times are integer microseconds from the Redis server's `TIME`, so every machine agrees.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
`;

/**
 * Reserves `cost` tokens. ARGV: cost, µs per token, bucket capacity (µs). The reservation starts
 * at `max(tat, now)` (idle time is not banked beyond the bucket); the caller goes once the
 * bucket has room for it, or, for one larger than the bucket, once the bucket is full.
 * Returns the wait in µs.
 */
const TAKE = `${NOW}
local per = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
local start = math.max(tat, now)
local nexttat = start + tonumber(ARGV[1]) * per
local wait = math.min(nexttat - cap, start) - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX',
  math.ceil((nexttat - now) / 1000) + 60000)
return math.ceil(wait)
`;

/** Moves `tat` by ARGV[1] µs (negative refunds), if the budget has one. */
const ADJUST = `${NOW}
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local nexttat = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX',
  math.max(1, math.ceil((nexttat - now) / 1000)) + 60000)
return 1
`;

/** At most ARGV[2] tokens (given in µs) may go now: `tat >= now + capacity − remaining`. */
const SYNC = `${NOW}
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
local floor = now + tonumber(ARGV[1]) - tonumber(ARGV[2])
if floor > tat then
  redis.call('SET', KEYS[1], string.format('%.0f', floor), 'PX',
    math.max(1, math.ceil((floor - now) / 1000)) + 60000)
end
return 1
`;

/**
 * A token budget on Redis: the same smooth GCRA as `TokenGate` (a bucket of
 * {@linkcode TOKEN_BURST_SHARE} × tpm refilled at {@linkcode TOKEN_PACE} × tpm), charged
 * atomically by every process on the quota, so three jobs with `--tpm 180000` on one Redis send
 * 180,000 tokens a minute together, not each. While the store is unreachable, `take` retries
 * (dispatch waits, as for the shared request rate).
 *
 * @example
 * ```ts
 * import { RedisTokenGate } from "./token_gate.ts";
 * declare const store: import("./scheduler.ts").RedisEval;
 * const gate = new RedisTokenGate({ store, name: "my-quota", tpm: 180_000 });
 * await gate.take(500);
 * ```
 */
export class RedisTokenGate implements TokenBudget {
  /** Tokens per minute for every process on the quota together. */
  tpm: number;
  #store: RedisEval;
  #keys: string[];
  #clock: Clock;
  #callTimeoutMs: number;
  #retryDelayMs: number;

  /** @throws {RangeError} for a tpm not above 0 or a name Redis keys cannot carry. */
  constructor(options: RedisTokenGateOptions) {
    const { tpm, name } = options;
    if (!(Number.isFinite(tpm) && tpm > 0)) {
      throw new RangeError(`Cannot gate tokens as 'tpm' must be above 0: current value is ${tpm}`);
    }
    if (typeof name !== "string" || !/^[\w.:-]{1,200}$/.test(name)) {
      throw new RangeError(
        `Cannot gate tokens as 'name' must be 1 to 200 letters, digits or ._:- : current value is ${
          JSON.stringify(name)
        }`,
      );
    }
    this.tpm = tpm;
    this.#store = options.store;
    this.#keys = [`${options.keyPrefix ?? "mft"}:{${name}}:tokens`];
    this.#clock = options.clock ?? systemClock;
    this.#callTimeoutMs = options.callTimeoutMs ?? 2000;
    this.#retryDelayMs = options.retryDelayMs ?? 100;
  }

  get #usPerToken(): number {
    return 60_000_000 / (this.tpm * TOKEN_PACE);
  }

  get #capacityUs(): number {
    return this.tpm * TOKEN_BURST_SHARE * this.#usPerToken;
  }

  async take(tokens: number, signal?: AbortSignal): Promise<void> {
    let retry = this.#retryDelayMs;
    let waitUs: number;
    while (true) {
      signal?.throwIfAborted();
      try {
        waitUs = Number(
          await this.#call(TAKE, [tokens, this.#usPerToken, this.#capacityUs]),
        );
        break;
      } catch {
        await delay(retry, { clock: this.#clock, signal });
        retry = Math.min(500, retry * 2);
      }
    }
    if (waitUs <= 0) return;
    try {
      await delay(waitUs / 1000, { clock: this.#clock, signal });
    } catch (error) {
      this.adjust(-tokens); // not sent: give the reservation back
      throw error;
    }
  }

  adjust(tokens: number): void {
    if (tokens === 0) return;
    this.#call(ADJUST, [tokens * this.#usPerToken]).catch(() => {});
  }

  sync(remaining: number): void {
    if (!Number.isFinite(remaining)) return;
    this.#call(SYNC, [this.#capacityUs, Math.max(0, remaining) * this.#usPerToken]).catch(
      () => {},
    );
  }

  async #call(source: string, args: (string | number)[]): Promise<unknown> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(
        () => reject(new Error(`the quota store did not answer in ${this.#callTimeoutMs} ms`)),
        this.#callTimeoutMs,
      );
    });
    try {
      return await Promise.race([this.#store.eval(source, this.#keys, args), timeout]);
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }
}
