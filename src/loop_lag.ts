/**
 * How late the event loop runs timers. A process that cannot keep up with its rate shows it here
 * first: its timers fire late, and the requests of the late slots leave together, in clumps.
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "./clock.ts";

/** Options for {@linkcode LoopLag}. */
export interface LoopLagOptions {
  /** Time source. @default systemClock */
  clock?: Clock;
  /** Time between samples, ms. @default 20 */
  intervalMs?: number;
  /** Called after each sample is counted, with its lateness in ms. */
  onSample?: (lateMs: number) => void;
}

/** Lateness of the samples since the start or the last {@linkcode LoopLag.reset}. */
export interface LoopLagStats {
  samples: number;
  /** Mean lateness of a timer, ms. */
  meanMs: number;
  /** Worst lateness, ms. */
  maxMs: number;
  /** Clock time covered by the samples, ms. */
  spanMs: number;
}

/**
 * Samples timer lateness: a timer set for `intervalMs` that fires `d` ms after it was set was
 * `d - intervalMs` late.
 *
 * @example
 * ```ts
 * import { LoopLag } from "./loop_lag.ts";
 * const lag = new LoopLag();
 * lag.start();
 * setTimeout(() => {
 *   console.log(lag.stats.meanMs); // close to 0 on an idle process
 *   lag.stop();
 * }, 200);
 * ```
 */
export class LoopLag {
  #clock: Clock;
  #intervalMs: number;
  #onSample: ((lateMs: number) => void) | undefined;
  #timer: TimerHandle | undefined;
  #samples = 0;
  #sum = 0;
  #max = 0;
  #since = 0;

  constructor(options: LoopLagOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#intervalMs = options.intervalMs ?? 20;
    this.#onSample = options.onSample;
    if (!(this.#intervalMs > 0) || !Number.isFinite(this.#intervalMs)) {
      throw new RangeError(
        `Cannot sample as 'intervalMs' must be a finite number above 0: current value is ${this.#intervalMs}`,
      );
    }
  }

  /** Starts sampling (again). */
  start(): void {
    this.stop();
    this.reset();
    this.#arm();
  }

  /** Stops sampling; no timer is left. */
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Forgets the samples so far. */
  reset(): void {
    this.#samples = 0;
    this.#sum = 0;
    this.#max = 0;
    this.#since = this.#clock.now();
  }

  /** The samples since the start or the last reset. */
  get stats(): LoopLagStats {
    return {
      samples: this.#samples,
      meanMs: this.#samples ? this.#sum / this.#samples : 0,
      maxMs: this.#max,
      spanMs: this.#clock.now() - this.#since,
    };
  }

  #arm(): void {
    const set = this.#clock.now();
    this.#timer = this.#clock.setTimeout(() => {
      const late = Math.max(0, this.#clock.now() - set - this.#intervalMs);
      this.#samples++;
      this.#sum += late;
      this.#max = Math.max(this.#max, late);
      this.#arm();
      this.#onSample?.(late);
    }, this.#intervalMs);
    // A sampler alone must not keep a process alive (Node and Deno timers have unref).
    (this.#timer as { unref?: () => void } | undefined)?.unref?.();
  }
}
