/**
 * The gate a run opens once its first answer shows the configuration works. A misconfigured run
 * (an unknown model, a parameter the model does not take) would otherwise send every line and
 * collect a million identical refusals.
 * @module
 */
import type { FailureInfo } from "./errors.ts";

/** Non-retryable failures alike, with no success before them, that count as a configuration error. */
export const SAME_FAILURES_TO_STOP = 3;

/**
 * Watches the first answers of a run. Until it is {@linkcode FirstAnswers.open}, the run sends one
 * request at a time. It opens on the first answer the provider accepted (with or without text), a
 * quota 429 or a retryable failure (the provider is reachable and the configuration is not the
 * cause), or two different item failures (the lines differ, not the configuration).
 *
 * It asks the run to stop ({@linkcode FirstAnswers.failure} returns the reason) when, before any
 * success, the provider answers a `config` failure (unknown model, unsupported parameter), or the
 * first {@linkcode SAME_FAILURES_TO_STOP} item failures (non-retryable) all have the same status
 * and code. After a success, or once two different item failures were seen, such failures are
 * the lines' own.
 *
 * @example
 * ```ts
 * const first = new FirstAnswers();
 * first.failure({ status: 404, code: "model_not_found", message: "…", retryable: false, kind: "config" });
 * // → the failure, as a reason to stop
 * ```
 */
export class FirstAnswers {
  #confirmed = false;
  #open = false;
  #signature: string | undefined;
  #same = 0;
  #mixed = false;
  readonly #limit: number;

  constructor(limit = SAME_FAILURES_TO_STOP) {
    this.#limit = limit;
  }

  /** True once the run may send at its full rate. */
  get open(): boolean {
    return this.#open;
  }

  /** True once an answer succeeded: the configuration works. */
  get confirmed(): boolean {
    return this.#confirmed;
  }

  /** Records an answer the provider accepted (200, with or without text). */
  success(): void {
    this.#confirmed = true;
    this.#open = true;
  }

  /**
   * Records a failed attempt. Returns the failure to stop the run on, as kind `config`, or
   * undefined to go on.
   */
  failure(info: FailureInfo): FailureInfo | undefined {
    if (this.#confirmed) return undefined;
    if (info.status >= 200 && info.status < 300) {
      this.success(); // an answer without text: the provider took the request
      return undefined;
    }
    if (info.kind === "config") return info;
    if (info.kind !== undefined || info.retryable) {
      // A quota 429 or a transient failure says nothing against the configuration; billing,
      // auth and daily stops end the run on their own.
      this.#open = true;
      return undefined;
    }
    const signature = `${info.status} ${info.code}`;
    if (signature !== this.#signature) {
      if (this.#signature !== undefined) this.#mixed = this.#open = true;
      this.#signature = signature;
      this.#same = 0;
    }
    this.#same++;
    if (this.#mixed || this.#same < this.#limit) return undefined;
    return {
      ...info,
      kind: "config",
      message: `the first ${this.#limit} answers all failed the same way, so the run's ` +
        `configuration is the likely cause: ${info.message}`,
    };
  }
}
