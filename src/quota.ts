/**
 * The quota a run (or a whole server) draws from: request slots from the {@linkcode Scheduler},
 * a tokens-per-minute gate, and the feedback loop that slows everyone down on a provider's 429
 * and climbs back (AIMD), or finds the rate by itself (`rate: "auto"`).
 * @module
 */
import { type Clock, delay, systemClock } from "./clock.ts";
import type { FailureInfo } from "./errors.ts";
import type { RateLimitInfo } from "./rate_limit_headers.ts";
import { type AcquireOptions, Scheduler } from "./scheduler.ts";
import type { TokenEstimate } from "./tokens.ts";

/**
 * Why the quota changes the rate, so that a slot source shared by several processes (see
 * `RedisScheduler`) can arbitrate: one slow-down per burst of 429s for all of them, at most one
 * increase per second for all of them. The in-process {@linkcode Scheduler} ignores it.
 */
export type RateChange =
  /** A burst of 429s: lower, then no other slow-down for `cooldownMs`. */
  | { kind: "slowdown"; cooldownMs: number }
  /** Climbing back (or slow start): at most once a second, never above the ceiling. */
  | { kind: "increase" }
  /** A limit the provider stated (`x-ratelimit-limit-requests`): applies at once. */
  | { kind: "limit" };

/**
 * Where the quota's request slots come from: the in-process {@linkcode Scheduler}, or a shared
 * one such as `RedisScheduler` (one schedule for many processes and machines).
 */
export interface SlotSource {
  /** Slots per second now in force. */
  readonly rate: number;
  /** Waiters not yet given a slot. */
  readonly waiting: number;
  /** Slots released since creation. */
  readonly released: number;
  /** Clock time (ms) before which no slot is released, or -Infinity. */
  readonly pausedUntil: number;
  /** Waits for a slot; resolves with the clock time it was released at. */
  acquire(options?: AcquireOptions): Promise<number>;
  /** Changes the rate; without `change`, sets the configured rate. */
  setRate(rate: number, change?: RateChange): void;
  /** Releases no slot before clock time `until` (ms). */
  pauseUntil(until: number): void;
  /** Rejects every waiter with `reason`. */
  close(reason?: unknown): void;
}

/** Options for {@linkcode Quota}. */
export interface QuotaOptions {
  /**
   * Requests per second: the ceiling the rate climbs back to after a slow-down, or `"auto"` to
   * start low and ramp up until the provider pushes back.
   */
  rate: number | "auto";
  /** Tokens per minute; undefined = no token gate until the provider's headers name one. */
  tpm?: number;
  /** Adjust the rate on 429s and rate-limit headers. @default true */
  adaptive?: boolean;
  /** First rate of `"auto"`, req/s. @default 1 */
  autoStartRate?: number;
  /** Lowest rate a slow-down may reach, req/s. @default min(0.1, rate) */
  minRate?: number;
  /** Use this slot source (for example a shared one) instead of making a scheduler. */
  scheduler?: SlotSource;
  /** @default systemClock */
  clock?: Clock;
}

/** Options for {@linkcode Quota.acquire}. */
export interface QuotaAcquireOptions {
  signal?: AbortSignal;
  lane?: unknown;
  /** Expected tokens of the request, for the tokens-per-minute gate. */
  tokens?: TokenEstimate;
  /** The caller held back on purpose: see {@linkcode AcquireOptions.restart}. @default false */
  restart?: boolean;
}

/** What the quota did, for progress and the summary. */
export interface QuotaStats {
  /** The rate asked for (`"auto"` or a number). */
  configuredRate: number | "auto";
  /** The rate in force now. */
  rate: number;
  /** Lowest rate the slow-down went to. */
  lowestRate: number;
  /** 429s absorbed by slowing down. */
  rateLimited: number;
  /** Slow-downs made (one per burst of 429s). */
  slowdowns: number;
  /** Tokens per minute in force, if any. */
  tpm?: number;
  /** Clock time until which dispatch is paused, if in the future. */
  pausedUntil?: number;
}

const SUCCESS_WINDOW_MS = 2000;

/**
 * The share of a tokens-per-minute budget kept as burst capacity; the rest is the pacing rate.
 * A bucket of capacity C refilled at r admits at most C + 60·r in any 60 s, so C = 5 % and
 * r = 95 % per minute keeps every sliding minute within the budget, as providers count it.
 */
export const TOKEN_BURST_SHARE = 0.05;

/** GCRA over tokens: a bucket of `TOKEN_BURST_SHARE × tpm` refilled at the rest of `tpm`. */
class TokenGate {
  tpm: number;
  #tat = -Infinity;
  #clock: Clock;
  constructor(tpm: number, clock: Clock) {
    this.tpm = tpm;
    this.#clock = clock;
  }
  get #msPerToken(): number {
    return 60_000 / (this.tpm * (1 - TOKEN_BURST_SHARE));
  }
  /** The waiter being served; later ones queue behind it. */
  #queue: Promise<void> = Promise.resolve();

  /**
   * Waits its turn, then until the bucket has room for `tokens`, then charges them. Waiters are
   * served first come, first served, so a large request is not starved by small ones that would
   * always fit first. Rejects with the signal's reason as soon as it aborts.
   */
  take(tokens: number, signal?: AbortSignal): Promise<void> {
    const turn = this.#queue.then(() => this.#take(tokens, signal));
    this.#queue = turn.catch(() => {});
    if (!signal) return turn;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      turn.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  async #take(tokens: number, signal?: AbortSignal): Promise<void> {
    const capacityMs = this.tpm * TOKEN_BURST_SHARE * this.#msPerToken;
    while (true) {
      signal?.throwIfAborted();
      const now = this.#clock.now();
      const start = Math.max(this.#tat, now);
      // Room for the whole request; one larger than the bucket goes once the bucket is full.
      const wait = Math.min(start + tokens * this.#msPerToken - capacityMs, start) - now;
      if (wait <= 0) {
        this.#tat = start + tokens * this.#msPerToken;
        return;
      }
      await delay(wait, { clock: this.#clock, signal });
    }
  }
  /** Corrects an earlier charge by `tokens` (negative refunds). */
  adjust(tokens: number): void {
    if (Number.isFinite(this.#tat)) this.#tat += tokens * this.#msPerToken;
  }
}

/**
 * A provider quota: request rate, token rate and the slow-down-and-recover loop. Shared by every
 * run that uses the same provider key and model (the server keeps one).
 *
 * @example
 * ```ts
 * import { Quota } from "./quota.ts";
 * const quota = new Quota({ rate: 20, tpm: 30_000 });
 * await quota.acquire({ tokens: { prompt: 100, output: 256, outputFromLine: false } });
 * quota.close();
 * ```
 */
export class Quota {
  /** The request-slot source: a {@linkcode Scheduler} unless one was given. */
  readonly scheduler: SlotSource;
  #clock: Clock;
  #adaptive: boolean;
  #configured: number | "auto";
  #ceiling: number;
  #minRate: number;
  #tokens: TokenGate | undefined;
  #tpmFromUser: boolean;
  #slowStart: boolean;
  #lastFailRate = Infinity;
  #cooldownUntil = -Infinity;
  #lastIncreaseAt: number;
  #successes: number[] = [];
  #promptScale = 1;
  #closed = new AbortController();
  #stats: QuotaStats;

  constructor(options: QuotaOptions) {
    const { rate, clock = systemClock } = options;
    if (rate !== "auto" && !(Number.isFinite(rate) && rate > 0)) {
      throw new RangeError(
        `Cannot limit as 'rate' must be a number above 0 or "auto": current value is ${rate}`,
      );
    }
    if (options.tpm !== undefined && !(Number.isFinite(options.tpm) && options.tpm > 0)) {
      throw new RangeError(
        `Cannot limit as 'tpm' must be a number above 0: current value is ${options.tpm}`,
      );
    }
    this.#clock = clock;
    this.#adaptive = options.adaptive ?? true;
    this.#configured = rate;
    this.#ceiling = rate === "auto" ? Infinity : rate;
    const start = rate === "auto" ? options.autoStartRate ?? 1 : rate;
    if (
      options.minRate !== undefined && !(Number.isFinite(options.minRate) && options.minRate > 0)
    ) {
      throw new RangeError(
        `Cannot limit as 'minRate' must be a number above 0: current value is ${options.minRate}`,
      );
    }
    // A floor above the starting rate would turn a slow-down into a speed-up.
    this.#minRate = Math.min(options.minRate ?? 0.1, start);
    this.#slowStart = rate === "auto";
    this.scheduler = options.scheduler ?? new Scheduler({ rate: start, clock });
    if (options.scheduler && rate !== "auto") this.scheduler.setRate(start);
    this.#tpmFromUser = options.tpm !== undefined;
    this.#tokens = options.tpm === undefined ? undefined : new TokenGate(options.tpm, clock);
    this.#lastIncreaseAt = clock.now();
    this.#stats = {
      configuredRate: rate,
      rate: this.scheduler.rate,
      lowestRate: this.scheduler.rate,
      rateLimited: 0,
      slowdowns: 0,
      tpm: options.tpm,
    };
  }

  /** Counters and the rate in force. */
  get stats(): QuotaStats {
    const paused = this.scheduler.pausedUntil;
    this.#stats.rate = this.scheduler.rate;
    this.#stats.tpm = this.#tokens?.tpm;
    this.#stats.pausedUntil = paused > this.#clock.now() ? paused : undefined;
    return this.#stats;
  }

  /** Expected tokens of a request, with the prompt estimate calibrated by what came back. */
  cost(estimate: TokenEstimate): number {
    // The epsilon keeps float noise (100 × 1.1 = 110.00000000000001) from adding a token.
    return Math.ceil(estimate.prompt * this.#promptScale - 1e-9) + estimate.output;
  }

  /** Waits for the token budget and then a request slot. Rejects with the signal's reason. */
  async acquire(options: QuotaAcquireOptions = {}): Promise<void> {
    const { signal, lane, tokens, restart } = options;
    if (this.#tokens && tokens) {
      tokens.charged = this.cost(tokens);
      const stop = signal ? AbortSignal.any([signal, this.#closed.signal]) : this.#closed.signal;
      await this.#tokens.take(tokens.charged, stop);
    }
    await this.scheduler.acquire({ signal, lane, restart });
  }

  /** Feeds back a successful answer: real token usage and any rate-limit headers. */
  onSuccess(
    result: {
      estimate?: TokenEstimate;
      usage?: { input_tokens: number; output_tokens: number };
      rateLimit?: RateLimitInfo;
    },
  ): void {
    const now = this.#clock.now();
    const { estimate, usage } = result;
    if (estimate && usage && estimate.prompt > 0 && usage.input_tokens > 0) {
      // Learn how far chars/4 is from the provider's tokenizer (a slow moving average).
      const ratio = usage.input_tokens / estimate.prompt;
      this.#promptScale = this.#promptScale * 0.9 + Math.min(4, Math.max(0.25, ratio)) * 0.1;
      if (this.#tokens && estimate.charged !== undefined) {
        // Correct what was charged with the real prompt; a declared output budget counts in
        // full at the provider, an assumed one is corrected with the real answer's size.
        const real = usage.input_tokens +
          (estimate.outputFromLine ? estimate.output : usage.output_tokens);
        this.#tokens.adjust(real - estimate.charged);
        estimate.charged = real;
      }
    }
    if (!this.#adaptive) return;
    if (result.rateLimit) this.#onHeaders(result.rateLimit, now);
    this.#successes.push(now);
    while (this.#successes.length > 0 && this.#successes[0] < now - SUCCESS_WINDOW_MS) {
      this.#successes.shift();
    }
    this.#maybeIncrease(now);
  }

  /** Feeds back a failure. A per-minute quota 429 slows everyone down and pauses for its hint. */
  onFailure(info: FailureInfo, estimate?: TokenEstimate): void {
    const now = this.#clock.now();
    if (this.#adaptive && info.rateLimit) this.#onHeaders(info.rateLimit, now);
    if (info.kind !== "rate_limit") return;
    this.#stats.rateLimited++;
    // A rejected request used no tokens at the provider.
    if (estimate?.charged !== undefined && this.#tokens) {
      this.#tokens.adjust(-estimate.charged);
      estimate.charged = 0;
    }
    if (info.retryAfterMs !== undefined && info.retryAfterMs > 0) {
      this.scheduler.pauseUntil(now + info.retryAfterMs);
    }
    if (!this.#adaptive || now < this.#cooldownUntil) return;
    // One slow-down per burst: requests already in flight at the old rate will 429 too.
    const rate = this.scheduler.rate;
    const accepted = this.#successes.filter((t) => t >= now - SUCCESS_WINDOW_MS).length /
      (SUCCESS_WINDOW_MS / 1000);
    const target = accepted > 0 ? accepted * 0.95 : rate * 0.5;
    const next = Math.max(this.#minRate, Math.min(rate * 0.9, Math.max(rate * 0.5, target)));
    this.#lastFailRate = rate;
    this.#slowStart = false;
    this.#cooldownUntil = now + Math.max(1000, info.retryAfterMs ?? 0);
    this.#stats.slowdowns++;
    this.#setRate(next, { kind: "slowdown", cooldownMs: this.#cooldownUntil - now });
  }

  /** Stops the scheduler (and with it every waiter). */
  close(reason?: unknown): void {
    this.#closed.abort(reason);
    this.scheduler.close(reason);
  }

  #setRate(rate: number, change: RateChange): void {
    const r = Math.max(this.#minRate, Math.min(this.#ceiling, rate));
    this.scheduler.setRate(r, change);
    this.#stats.lowestRate = Math.min(this.#stats.lowestRate, r);
  }

  /** Climbs back once a second while the rate is what holds the run back. */
  #maybeIncrease(now: number): void {
    if (now - this.#lastIncreaseAt < 1000 || now < this.#cooldownUntil) return;
    this.#lastIncreaseAt = now;
    const rate = this.scheduler.rate;
    if (rate >= this.#ceiling || this.scheduler.waiting === 0) return;
    if (this.#slowStart) return this.#setRate(rate * 1.5, { kind: "increase" });
    // Additive increase, slower near the rate that last drew a 429.
    const base = Number.isFinite(this.#lastFailRate) ? this.#lastFailRate : rate;
    const step = Math.max(0.05, base * 0.02);
    this.#setRate(rate + (rate >= this.#lastFailRate * 0.95 ? step / 4 : step), {
      kind: "increase",
    });
  }

  /** Acts on `x-ratelimit-*`: adopt the stated limits and pause before the budget runs out. */
  #onHeaders(h: RateLimitInfo, now: number): void {
    if (h.limitRequests !== undefined && h.limitRequests > 0) {
      const perSecond = (h.limitRequests / 60) * 0.98;
      if (perSecond < this.#ceiling) {
        this.#ceiling = perSecond;
        if (this.scheduler.rate > perSecond) this.#setRate(perSecond, { kind: "limit" });
      }
      // "auto" need not search for what the provider states: go straight to it.
      if (this.#slowStart) {
        this.#slowStart = false;
        this.#setRate(this.#ceiling, { kind: "limit" });
      }
    }
    if (h.limitTokens !== undefined && h.limitTokens > 0 && !this.#tpmFromUser) {
      const tpm = h.limitTokens * 0.98;
      if (!this.#tokens) this.#tokens = new TokenGate(tpm, this.#clock);
      else if (tpm < this.#tokens.tpm) this.#tokens.tpm = tpm;
    }
    const low = (remaining: number | undefined, limit: number | undefined) =>
      remaining !== undefined && remaining <= Math.max(1, (limit ?? 0) * 0.01);
    if (low(h.remainingRequests, h.limitRequests) && h.resetRequestsMs) {
      this.scheduler.pauseUntil(now + h.resetRequestsMs);
    }
    if (low(h.remainingTokens, h.limitTokens) && h.resetTokensMs) {
      this.scheduler.pauseUntil(now + h.resetTokensMs);
    }
  }
}
