/**
 * The tokens-per-minute gate: how many tokens may go out when, spread smoothly over the minute
 * (providers count tokens over sliding windows, some much shorter than a minute), and the
 * per-model calibration of the estimates it is charged with.
 * @module
 */
import { type Clock, delay } from "./clock.ts";
import type { TokenEstimate } from "./tokens.ts";

/**
 * The share of `tpm` the gate paces at. Charges are estimates and arrive at the provider a few
 * ms apart from where they were charged, so the gate keeps 5 % of the budget as a margin.
 */
export const TOKEN_PACE = 0.95;

/**
 * The share of `tpm` kept as burst capacity: 250 ms worth of the minute's budget. A bucket of
 * capacity C refilled at r admits at most C + r·W in any window W; with C = tpm/240 and
 * r = 0.95·tpm/min that stays within the budget for every window from 5 s to a minute (OpenAI
 * counts over shorter windows than the minute it states), so the tokens never come in bursts.
 * A request larger than the bucket goes alone once the bucket is full.
 */
export const TOKEN_BURST_SHARE = 0.25 / 60;

/**
 * Where the token budget lives: the in-process {@linkcode TokenGate}, or one shared by many
 * processes such as `RedisTokenGate`.
 */
export interface TokenBudget {
  /** Tokens per minute in force. */
  tpm: number;
  /** Waits until `tokens` fit, then charges them. Rejects with the signal's reason. */
  take(tokens: number, signal?: AbortSignal): Promise<void>;
  /** Corrects an earlier charge by `tokens` (negative refunds). */
  adjust(tokens: number): void;
  /**
   * The provider said only `remaining` tokens are left now (`x-ratelimit-remaining-tokens`, or
   * the limit minus the usage of a token 429): admit no more than that before the budget refills.
   */
  sync(remaining: number): void;
}

/** GCRA over tokens: a bucket of `TOKEN_BURST_SHARE × tpm` refilled at `TOKEN_PACE × tpm`. */
export class TokenGate implements TokenBudget {
  /** Tokens per minute; lowering it takes effect with the next charge. */
  tpm: number;
  #tat = -Infinity;
  #clock: Clock;
  /** The waiter being served; later ones queue behind it. */
  #queue: Promise<void> = Promise.resolve();

  /**
   * @param tpm Tokens per minute, above 0.
   * @param clock The clock to pace with.
   * @throws {RangeError} when `tpm` is not a number above 0.
   * @example
   * ```ts
   * import { TokenGate } from "./token_gate.ts";
   * import { systemClock } from "./clock.ts";
   * const gate = new TokenGate(180_000, systemClock);
   * await gate.take(500);
   * ```
   */
  constructor(tpm: number, clock: Clock) {
    if (!(Number.isFinite(tpm) && tpm > 0)) {
      throw new RangeError(`Cannot gate tokens as 'tpm' must be above 0: current value is ${tpm}`);
    }
    this.tpm = tpm;
    this.#clock = clock;
  }

  get #msPerToken(): number {
    return 60_000 / (this.tpm * TOKEN_PACE);
  }

  get #capacityMs(): number {
    return this.tpm * TOKEN_BURST_SHARE * this.#msPerToken;
  }

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
    while (true) {
      signal?.throwIfAborted();
      const now = this.#clock.now();
      const start = Math.max(this.#tat, now);
      // Room for the whole request; one larger than the bucket goes once the bucket is full.
      const wait = Math.min(start + tokens * this.#msPerToken - this.#capacityMs, start) - now;
      if (wait <= 0) {
        this.#tat = start + tokens * this.#msPerToken;
        return;
      }
      await delay(wait, { clock: this.#clock, signal });
    }
  }

  adjust(tokens: number): void {
    if (Number.isFinite(this.#tat)) this.#tat += tokens * this.#msPerToken;
  }

  sync(remaining: number): void {
    if (!Number.isFinite(remaining)) return;
    const floor = this.#clock.now() + this.#capacityMs - Math.max(0, remaining) * this.#msPerToken;
    if (floor > this.#tat) this.#tat = floor;
  }
}

/**
 * Per-model calibration of token estimates against what the provider counts: its own charge
 * (the "Requested N" of a token 429) or, for quotas that count real tokens, the usage of
 * answers. Estimates without a model share one scale.
 */
export class TokenCalibration {
  #scales = new Map<string, number>();

  /** The prompt scale in force for `model`: 1 until something was learnt. */
  scale(model: string | undefined): number {
    return this.#scales.get(model ?? "") ?? 1;
  }

  /** Expected tokens of a request: its prompt estimate times the model's scale, plus output. */
  cost(estimate: TokenEstimate): number {
    // The epsilon keeps float noise (100 × 1.1 = 110.00000000000001) from adding a token.
    return Math.ceil(estimate.prompt * this.scale(estimate.model) - 1e-9) + estimate.output;
  }

  /**
   * Learns from the tokens the provider charged a request (OpenAI's "Requested N"). An
   * estimate found short is raised at once (a short one draws 429s); one found long is lowered
   * slowly.
   */
  fromCharge(estimate: TokenEstimate, charged: number): void {
    if (estimate.prompt <= 0) return;
    const ratio = clamp((charged - estimate.output) / estimate.prompt);
    const key = estimate.model ?? "";
    const scale = this.scale(estimate.model);
    this.#scales.set(key, ratio > scale ? ratio : scale * 0.8 + ratio * 0.2);
  }

  /** Learns from an answer's real input tokens (a slow moving average). */
  fromUsage(estimate: TokenEstimate, inputTokens: number): void {
    if (estimate.prompt <= 0 || inputTokens <= 0) return;
    const ratio = clamp(inputTokens / estimate.prompt);
    this.#scales.set(estimate.model ?? "", this.scale(estimate.model) * 0.9 + ratio * 0.1);
  }
}

const clamp = (ratio: number) => Math.min(4, Math.max(0.25, ratio));
