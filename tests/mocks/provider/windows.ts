/**
 * The mock provider's counting windows: arrival statistics, the request quota's sliding and
 * fixed windows, and the token quota's window.
 * @module
 */

/** One provider request as the mock saw it. */
export interface Arrival {
  /** Arrival time in ms since the mock was created (`performance.now()` based). */
  t: number;
  /** Request path without the query, e.g. `/v1/chat/completions`. */
  path: string;
  /** The `x-mft-id` request header, or null when absent. */
  id: string | null;
  /**
   * Status the mock answered (or will answer, once the latency has passed); 0 for a planned
   * connection reset; -1 for the few microseconds while the body is still being read.
   */
  status: number;
}

/** Arrival statistics of a mock. */
export interface MockStats {
  /** Number of provider requests since start or the last reset. */
  count: number;
  /** Most arrivals in any sliding window `[t, t + 1000)` ms. */
  maxPerWindow: number;
  /** Time of the first arrival (ms since start), 0 when none. */
  firstMs: number;
  /** Time of the last arrival (ms since start), 0 when none. */
  lastMs: number;
  /**
   * Mean arrival rate in requests/s: `(count - 1) / ((lastMs - firstMs) / 1000)`; 0 with fewer
   * than two arrivals or when they all share one timestamp (keeps the JSON finite).
   */
  rate: number;
  /** Requests answered (or to be answered) 2xx: the ones every quota counts. */
  accepted: number;
  /**
   * Mean rate of the accepted requests in requests/s, between the first and the last accepted
   * arrival, computed like `rate`.
   */
  acceptedRate: number;
  /** Requests answered 429, for any cause: quotas, directives or `failureRate`. */
  rejected429: number;
}

/**
 * Most values of sorted `times` that fit in one window `[t, t + windowMs)`.
 *
 * Two points exactly `windowMs` apart fall in separate windows.
 *
 * @param times Non-decreasing times in ms.
 * @param windowMs Window length in ms.
 * @returns The maximum count, 0 for an empty array.
 * @throws {RangeError} When `windowMs` is not a positive finite number.
 *
 * @example
 * ```ts
 * maxPerWindow([0, 500, 999, 1000]); // 3
 * ```
 */
export function maxPerWindow(times: readonly number[], windowMs = 1000): number {
  if (!(windowMs > 0) || !Number.isFinite(windowMs)) {
    throw new RangeError(
      `Cannot count arrivals as 'windowMs' must be a positive finite number: current value is ${windowMs}`,
    );
  }
  let best = 0;
  let i = 0;
  for (let j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= windowMs) i++;
    if (j - i + 1 > best) best = j - i + 1;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// State

/**
 * Incremental sliding-window counter, so stats stay O(1) per request and work even with
 * `recordArrivals: false` (benchmarks send hundreds of thousands of requests).
 */
export class ArrivalWindow {
  #times: number[] = [];
  #head = 0;
  count = 0;
  first = 0;
  last = 0;
  max = 0;
  accepted = 0;
  acceptedFirst = 0;
  acceptedLast = 0;
  rejected429 = 0;

  add(t: number): void {
    if (this.count === 0) this.first = t;
    this.count++;
    this.last = t;
    this.#times.push(t);
    while (t - this.#times[this.#head] >= 1000) this.#head++;
    const inWindow = this.#times.length - this.#head;
    if (inWindow > this.max) this.max = inWindow;
    // Drop the consumed prefix now and then instead of shifting on every request.
    if (this.#head > 4096 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Counts the answer to the arrival at `t`, once its status is known. */
  answered(status: number, t: number): void {
    if (status === 429) this.rejected429++;
    if (status < 200 || status > 299) return;
    // Answers are decided after the body is read, so accepted arrivals may come out of order.
    if (this.accepted === 0 || t < this.acceptedFirst) this.acceptedFirst = t;
    if (this.accepted === 0 || t > this.acceptedLast) this.acceptedLast = t;
    this.accepted++;
  }

  stats(): MockStats {
    return {
      count: this.count,
      maxPerWindow: this.max,
      firstMs: this.first,
      lastMs: this.last,
      rate: meanRate(this.count, this.last - this.first),
      accepted: this.accepted,
      acceptedRate: meanRate(this.accepted, this.acceptedLast - this.acceptedFirst),
      rejected429: this.rejected429,
    };
  }
}

export function meanRate(count: number, spanMs: number): number {
  return count > 1 && spanMs > 0 ? (count - 1) / (spanMs / 1000) : 0;
}

/** A request's place in a {@link RequestWindow}; `live` until it leaves or is released. */
export interface Slot {
  t: number;
  live: boolean;
}

/**
 * The request quota's window: times of accepted requests, and of requests that will be
 * accepted unless their body or plan says otherwise (released then).
 *
 * Slots are taken in the arrival's own tick, so they are in time order and the accepted
 * arrivals never exceed the quota in any `[t, t + windowMs)` window ({@link maxPerWindow}).
 */
export class RequestWindow {
  #slots: Slot[] = [];
  #head = 0;
  /** Live slots in the window (as of the last prune). */
  count = 0;

  constructor(readonly windowMs: number) {}

  /** Drops the slots that left the window by `now`, and released ones at the head. */
  prune(now: number): void {
    const slots = this.#slots;
    while (this.#head < slots.length) {
      const slot = slots[this.#head];
      if (slot.live && now - slot.t < this.windowMs) break;
      if (slot.live) {
        slot.live = false;
        this.count--;
      }
      this.#head++;
    }
    if (this.#head > 4096 && this.#head * 2 > slots.length) {
      this.#slots = slots.slice(this.#head);
      this.#head = 0;
    }
  }

  take(t: number): Slot {
    const slot = { t, live: true };
    this.#slots.push(slot);
    this.count++;
    return slot;
  }

  release(slot: Slot): void {
    if (!slot.live) return;
    slot.live = false;
    this.count--;
  }

  /** Ms until the oldest slot leaves the window, 0 when empty; call after prune(now). */
  untilOldestLeaves(now: number): number {
    const oldest = this.#slots[this.#head];
    return oldest ? oldest.t + this.windowMs - now : 0;
  }
}

// --- issue 17: fixed windows ------------------------------------------------------------------

/**
 * A fixed-window request quota: windows `[k·windowMs, (k+1)·windowMs)` from the mock's start.
 * Same interface as {@link RequestWindow}; `untilOldestLeaves` is the time to the window's end.
 */
export class FixedWindow {
  #start = 0;
  count = 0;

  constructor(readonly windowMs: number) {}

  prune(now: number): void {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    if (start !== this.#start) {
      this.#start = start;
      this.count = 0;
    }
  }

  take(t: number): Slot {
    this.count++;
    return { t, live: true };
  }

  release(slot: Slot): void {
    if (!slot.live) return;
    slot.live = false;
    if (slot.t >= this.#start) this.count--;
  }

  untilOldestLeaves(now: number): number {
    return this.#start + this.windowMs - now;
  }
}

// --- end issue 17 ------------------------------------------------------------------------------

/** The token quota's window: accepted requests' costs by acceptance time. */
export class TokenWindow {
  #entries: { t: number; tokens: number }[] = [];
  #head = 0;
  /** Tokens in the window (as of the last prune). */
  sum = 0;

  constructor(readonly windowMs: number) {}

  prune(now: number): void {
    const entries = this.#entries;
    while (this.#head < entries.length && now - entries[this.#head].t >= this.windowMs) {
      this.sum -= entries[this.#head].tokens;
      this.#head++;
    }
    if (this.#head > 4096 && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
  }

  add(t: number, tokens: number): void {
    this.#entries.push({ t, tokens });
    this.sum += tokens;
  }

  /**
   * Ms until `cost` more tokens fit under `limit`: 0 when they fit now, Infinity when they
   * never will. Call after prune(now).
   */
  waitFor(now: number, cost: number, limit: number): number {
    if (cost > limit) return Infinity;
    let excess = this.sum + cost - limit;
    if (excess <= 0) return 0;
    const entries = this.#entries;
    for (let i = this.#head; i < entries.length; i++) {
      excess -= entries[i].tokens;
      if (excess <= 0) return entries[i].t + this.windowMs - now;
    }
    return Infinity; // unreachable: the whole window holds `sum` tokens
  }

  /** Ms until the oldest entry leaves the window, 0 when empty; call after prune(now). */
  untilOldestLeaves(now: number): number {
    const oldest = this.#entries[this.#head];
    return oldest ? oldest.t + this.windowMs - now : 0;
  }
}
