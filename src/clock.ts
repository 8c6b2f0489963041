/**
 * The time source the core runs on. Injectable so that tests drive the schedule by hand
 * instead of waiting for the wall clock.
 * @module
 */

/** A handle returned by {@linkcode Clock.setTimeout}. */
export type TimerHandle = unknown;

/** Monotonic time and timers. `now()` is in milliseconds and must never go backwards. */
export interface Clock {
  /** Milliseconds from an arbitrary origin, monotonic. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer from {@linkcode Clock.setTimeout}; unknown handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
  /**
   * Calls `fn` after one turn of the event loop, so that I/O waiting behind the running code
   * (a request handed to `fetch`, a connection being opened) goes out first: a macrotask, much
   * sooner than `setTimeout(fn, 0)` (which waits 1-2 ms). A clock without it never yields.
   */
  nextTurn?(fn: () => void): void;
}

/** Callbacks waiting for the next turn of the shared channel. */
let turnWaiters: (() => void)[] = [];
let turnChannel: MessageChannel | undefined;

/**
 * One turn of the event loop through a `MessageChannel` (a web global on every runtime we run
 * on). The channel is closed as soon as nobody waits: an open port keeps Deno's process alive.
 */
function nextTurn(fn: () => void): void {
  turnWaiters.push(fn);
  if (turnWaiters.length > 1) return; // the message is already on its way
  if (turnChannel === undefined) {
    const channel = new MessageChannel();
    turnChannel = channel;
    channel.port1.onmessage = () => {
      const waiters = turnWaiters;
      turnWaiters = [];
      for (const waiter of waiters) waiter();
      // The waiters' own continuations run first; they may ask for the next turn already.
      queueMicrotask(() => {
        if (turnWaiters.length === 0 && turnChannel === channel) {
          channel.port1.close();
          channel.port2.close();
          turnChannel = undefined;
        }
      });
    };
  }
  turnChannel.port2.postMessage(null);
}

/** The real clock: `performance.now()`, the global timers and a `MessageChannel` for turns. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  nextTurn,
};

/**
 * Waits `ms` milliseconds on `clock`; rejects with `signal.reason` if the signal aborts first.
 *
 * @example
 * ```ts
 * import { delay, systemClock } from "./clock.ts";
 * await delay(1, { clock: systemClock });
 * ```
 */
export function delay(
  ms: number,
  options: { clock?: Clock; signal?: AbortSignal } = {},
): Promise<void> {
  const { clock = systemClock, signal } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
