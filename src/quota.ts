/**
 * The quota a run (or a whole server) draws from: request slots from the {@linkcode Scheduler},
 * a tokens-per-minute gate, and the feedback loop that slows everyone down on a provider's 429
 * and climbs back (AIMD), or finds the rate by itself (`rate: "auto"`).
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";
import { RateController } from "./_rate_controller.ts";
import type { FailureInfo } from "./errors.ts";
import type { RateLimitInfo } from "./rate_limit_headers.ts";
import { type AcquireOptions, Scheduler } from "./scheduler.ts";
import { type TokenBudget, TokenCalibration, TokenGate } from "./token_gate.ts";
import { parseTokenLimit } from "./token_limit.ts";
import type { TokenEstimate } from "./tokens.ts";

export { TOKEN_BURST_SHARE, TOKEN_PACE } from "./token_gate.ts";

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
  /** First rate of `"auto"`, req/s. @default 4 */
  autoStartRate?: number;
  /** Lowest rate a slow-down may reach, req/s. @default min(0.1, rate) */
  minRate?: number;
  /** Use this slot source (for example a shared one) instead of making a scheduler. */
  scheduler?: SlotSource;
  /**
   * Use this token budget (for example `RedisTokenGate`, one budget for many processes) instead
   * of making a {@linkcode TokenGate} from `tpm`.
   */
  tokenGate?: TokenBudget;
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
  #minRate: number;
  #tokens: TokenBudget | undefined;
  #tpmFromUser: boolean;
  #control: RateController;
  #calibration = new TokenCalibration();
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
    const start = rate === "auto" ? options.autoStartRate ?? 4 : rate;
    if (
      options.minRate !== undefined && !(Number.isFinite(options.minRate) && options.minRate > 0)
    ) {
      throw new RangeError(
        `Cannot limit as 'minRate' must be a number above 0: current value is ${options.minRate}`,
      );
    }
    // A floor above the starting rate would turn a slow-down into a speed-up.
    this.#minRate = Math.min(options.minRate ?? 0.1, start);
    this.#control = new RateController({
      ceiling: rate === "auto" ? Infinity : rate,
      minRate: this.#minRate,
      slowStart: rate === "auto",
      now: clock.now(),
    });
    this.scheduler = options.scheduler ?? new Scheduler({ rate: start, clock });
    if (options.scheduler && rate !== "auto") this.scheduler.setRate(start);
    this.#tpmFromUser = options.tpm !== undefined || options.tokenGate !== undefined;
    this.#tokens = options.tokenGate ??
      (options.tpm === undefined ? undefined : new TokenGate(options.tpm, clock));
    this.#stats = {
      configuredRate: rate,
      rate: this.scheduler.rate,
      lowestRate: this.scheduler.rate,
      rateLimited: 0,
      slowdowns: 0,
      tpm: this.#tokens?.tpm,
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
    return this.#calibration.cost(estimate);
  }

  /**
   * Waits for the token budget and then a request slot. Resolves with the request's send-order
   * ticket: give it back with {@linkcode Quota.onSuccess} / {@linkcode Quota.onFailure}, so that
   * answers to requests sent before a slow-down took effect do not slow down again. Rejects with
   * the signal's reason.
   */
  async acquire(options: QuotaAcquireOptions = {}): Promise<number> {
    const { signal, lane, tokens, restart } = options;
    if (this.#tokens && tokens) {
      tokens.charged = this.cost(tokens);
      const stop = signal ? AbortSignal.any([signal, this.#closed.signal]) : this.#closed.signal;
      await this.#tokens.take(tokens.charged, stop);
    }
    await this.scheduler.acquire({ signal, lane, restart });
    return this.#control.sent(this.#clock.now());
  }

  /** Feeds back a successful answer: real token usage and any rate-limit headers. */
  onSuccess(
    result: {
      estimate?: TokenEstimate;
      usage?: { input_tokens: number; output_tokens: number };
      rateLimit?: RateLimitInfo;
      /** The ticket {@linkcode Quota.acquire} gave the request. */
      ticket?: number;
    },
  ): void {
    const now = this.#clock.now();
    const { estimate, usage } = result;
    // A quota that counts its own estimate of the request (OpenAI) keeps what it charged,
    // whatever the answer's usage says; "Requested N" of a token 429 calibrates it instead.
    const counted = estimate?.counts !== "request";
    if (estimate && usage && counted && estimate.prompt > 0 && usage.input_tokens > 0) {
      // Learn how far chars/4 is from the provider's tokenizer (a slow moving average).
      this.#calibration.fromUsage(estimate, usage.input_tokens);
      if (this.#tokens && estimate.charged !== undefined) {
        // Correct what was charged with the real prompt; a declared output budget counts in
        // full at the provider, an assumed one is corrected with the real answer's size.
        const real = usage.input_tokens +
          (estimate.outputFromLine ? estimate.output : usage.output_tokens);
        this.#tokens.adjust(real - estimate.charged);
        estimate.charged = real;
      }
    }
    if (result.rateLimit?.remainingTokens !== undefined) {
      this.#tokens?.sync(result.rateLimit.remainingTokens);
    }
    if (!this.#adaptive) return;
    if (result.rateLimit) this.#onHeaders(result.rateLimit, now);
    this.#control.admitted(now, result.ticket, true);
    this.#maybeIncrease(now);
  }

  /**
   * Feeds back a failure, with the ticket {@linkcode Quota.acquire} gave the request. Only a
   * quota signal slows everyone down (see `RateController`): a 429 that says the quota is spent,
   * or a run of them; a stray 429, a 500 or a 503 does not. Nobody else waits for a 429's hint
   * unless the quota stays spent after the slow-down (a fixed window): then everyone does.
   */
  onFailure(info: FailureInfo, estimate?: TokenEstimate, ticket?: number): void {
    const now = this.#clock.now();
    if (this.#adaptive && info.rateLimit) this.#onHeaders(info.rateLimit, now);
    if (info.kind !== "rate_limit") {
      // The provider answered: the request was admitted, whatever its fate.
      if (info.status !== 429 && info.status > 0) this.#control.admitted(now, ticket, false);
      return;
    }
    this.#stats.rateLimited++;
    // A rejected request used no tokens at the provider.
    if (estimate?.charged !== undefined && this.#tokens) {
      this.#tokens.adjust(-estimate.charged);
      estimate.charged = 0;
    }
    this.#onTokenLimit(info, estimate);
    if (!this.#adaptive) {
      // A fixed rate: honour the provider's hint for everyone, as asked.
      if (info.retryAfterMs !== undefined && info.retryAfterMs > 0) {
        this.scheduler.pauseUntil(now + info.retryAfterMs);
      }
      return;
    }
    const decision = this.#control.rateLimited(now, this.scheduler.rate, info, ticket);
    if (decision.pauseUntil !== undefined) this.scheduler.pauseUntil(decision.pauseUntil);
    if (decision.slowdown) {
      this.#stats.slowdowns++;
      this.#setRate(decision.slowdown.rate, {
        kind: "slowdown",
        cooldownMs: decision.slowdown.cooldownMs,
      });
    }
  }

  /** A token 429: calibrate the estimate by what was charged, and the budget by what is left. */
  #onTokenLimit(info: FailureInfo, estimate?: TokenEstimate): void {
    const hit = parseTokenLimit(info);
    if (!hit) return;
    // Gemini states its input-token quota per minute: the gate, when none was given.
    if (hit.inputOnly && hit.limit !== undefined && hit.limit > 0 && !this.#tpmFromUser) {
      const tpm = hit.limit * 0.98;
      if (!this.#tokens) this.#tokens = new TokenGate(tpm, this.#clock);
      else if (tpm < this.#tokens.tpm) this.#tokens.tpm = tpm;
    }
    if (estimate && hit.requested !== undefined) {
      this.#calibration.fromCharge(estimate, hit.requested);
    }
    const remaining = info.rateLimit?.remainingTokens ??
      (hit.limit !== undefined && hit.used !== undefined ? hit.limit - hit.used : undefined);
    if (remaining !== undefined) this.#tokens?.sync(remaining);
  }

  /** Stops the scheduler (and with it every waiter). */
  close(reason?: unknown): void {
    this.#closed.abort(reason);
    this.scheduler.close(reason);
  }

  #setRate(rate: number, change: RateChange): void {
    const r = Math.max(this.#minRate, Math.min(this.#control.ceiling, rate));
    this.scheduler.setRate(r, change);
    this.#stats.lowestRate = Math.min(this.#stats.lowestRate, r);
  }

  /** Climbs back while the rate is what holds the run back (see `RateController`). */
  #maybeIncrease(now: number): void {
    const rate = this.scheduler.rate;
    const next = this.#control.increase(now, rate, this.scheduler.waiting > 0);
    if (next !== undefined && next > rate) this.#setRate(next, { kind: "increase" });
  }

  /** Acts on `x-ratelimit-*`: adopt the stated limits and pause before the budget runs out. */
  #onHeaders(h: RateLimitInfo, now: number): void {
    if (h.limitRequests !== undefined && h.limitRequests > 0) {
      const perSecond = (h.limitRequests / 60) * 0.98;
      if (perSecond < this.#control.ceiling) {
        this.#control.ceiling = perSecond;
        if (this.scheduler.rate > perSecond) this.#setRate(perSecond, { kind: "limit" });
      }
      // "auto" need not search for what the provider states: go straight to it.
      if (this.#control.slowStart) {
        this.#control.slowStart = false;
        this.#setRate(this.#control.ceiling, { kind: "limit" });
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
