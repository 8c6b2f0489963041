/**
 * What a run tells an observer as it goes (`RunOptions.observer`): one event per request sent,
 * per answer, per quota push and per item that failed. Times are the run's clock, in ms.
 * @module
 */
import type { FailureKind } from "./errors.ts";

/** One thing that happened in a run. */
export type RunEvent =
  /** A request left (first attempt or retry). */
  | { type: "sent"; at: number }
  /** An answer with text came back: the item is done. */
  | {
    type: "answered";
    at: number;
    latencyMs: number;
    tokensIn: number;
    tokensOut: number;
    attempts: number;
  }
  /**
   * The provider pushed back on the quota (a 429): the request waits and is sent again.
   * `retryAfterMs` is the pause it asked for, when it said; `rate` the rate in force after it.
   */
  | { type: "rate_limited"; at: number; latencyMs: number; retryAfterMs?: number; rate: number }
  /** An attempt failed and the item will be tried again after a backoff. */
  | { type: "retry"; at: number; latencyMs: number; code: string }
  /**
   * An item failed for good (it is in the errors file). `kind` is the provider's failure kind
   * when it has one, `code` the error code (`blocked`, `cut_off`, `server_error`, …).
   */
  | {
    type: "failed";
    at: number;
    latencyMs: number;
    kind?: FailureKind;
    code: string;
    status: number;
    attempts: number;
  }
  /** The provider stopped the run (billing, auth, daily quota, refused configuration). */
  | { type: "fatal"; at: number; kind: FailureKind; code: string }
  /** The rate in force changed (a slow-down on 429s, or the climb back). */
  | { type: "rate"; at: number; rate: number };

/** Receives a run's events, synchronously; it must not throw or take long. */
export type RunObserver = (event: RunEvent) => void;
