/**
 * The drift-free interval scheduler: slot i is due at `t0 + i/R` on a monotonic clock, handed
 * to waiters round-robin across lanes. Nothing here waits for responses: that is the point.
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "./clock.ts";
import { Lanes } from "./_lanes.ts";

/** Options for {@linkcode Scheduler}. */
export interface SchedulerOptions {
  /** Slots per second. Fractions allowed: 0.25 is one slot every 4 s. */
  rate: number;
  /** Time source. @default systemClock */
  clock?: Clock;
  /**
   * How long the scheduler may sit with nobody waiting before the slots nobody took are
   * forgiven: the next waiter re-anchors the grid at "now", so an idle pause never turns into a
   * burst. Shorter gaps (a run reading its next line between two slots, or a busy event loop
   * making it late for the next) keep the grid, so late slots are still caught up, within the
   * window rule. At most `rate × maxLagMs / 1000` slots go at once after a short idle gap.
   * @default 100
   */
  maxLagMs?: number;
  /** Closes the scheduler: every waiter rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options for {@linkcode Scheduler.acquire}. */
export interface AcquireOptions {
  /** Abandons this wait; the promise rejects with the signal's reason and the slot is not used. */
  signal?: AbortSignal;
  /** Waiters are served round-robin across lanes (one per caller/run), FIFO within a lane. @default 0 */
  lane?: unknown;
  /**
   * The caller held back on purpose until now (a run waiting for its first answer): if nobody
   * else waits, the grid restarts at this call however short the gap, so the slots that came due
   * meanwhile do not go out as a burst. @default false
   */
  restart?: boolean;
}

function assertRate(rate: number): void {
  if (typeof rate !== "number" || !Number.isFinite(rate) || rate <= 0) {
    throw new RangeError(
      `Cannot schedule as 'rate' must be a finite number above 0: current value is ${rate}`,
    );
  }
}

/**
 * The longest the scheduler hands out due slots without a turn of the event loop (ms of clock
 * time): about one slot at 1,000/s when a caller's work per slot is what holds it back.
 */
export const TURN_MS = 1;

/**
 * Hands out time slots at a fixed rate, whatever the response times of the work done in them.
 *
 * Slot i is due at `t0 + i * 1000 / rate` (no chain of sleeps, so no drift), t0 being the first
 * {@linkcode Scheduler.acquire} (not the creation: the time a caller takes to start is not owed
 * as a burst of slots). When the timer fires late, overdue slots are released at once, but never
 * more than `ceil(rate) + slack` in any window of `ceil(rate) / rate` seconds, where
 * `slack = max(1, floor(rate / 100))`: for an integer rate R, at most R + 1 in any 1 s window
 * below 200/s, at most 1.01 × R from 200/s up, and R per second on average.
 *
 * The slack is what lets a late slot be caught up without costing rate. After a stall of L ms the
 * overdue slots go at once; a second later the window still holds them while the stall's gap
 * leaves it, so a bound of exactly R would hold every slot back for L ms again, and the lateness
 * would add up into drift. With `slack` slots, stalls up to `slack / rate` seconds (timer jitter;
 * 10 ms from 200/s up, a garbage collection or a busy event loop at high rates) are repaid in
 * full: the rate stays R. A stall longer than the window can absorb is forgiven, not repaid: the
 * grid restarts after the catch-up burst, and the run loses what the slack could not carry.
 *
 * A slot is handed out at once when it is due, but not for long without a turn of the event
 * loop: a caller that is behind asks again for a slot that is already due, again and again, in
 * one chain of microtasks (the next line is parsed, the next slot taken, the next request
 * handed to `fetch`), and meanwhile none of those requests leaves the process: the HTTP client
 * writes them, and opens their connections, only when the event loop turns. They would reach
 * the provider together when the chain ends, as a clump of up to a few hundred. So after
 * {@linkcode TURN_MS} of handing out slots without a turn, the next one waits for one
 * ({@linkcode Clock.nextTurn}; a clock without it never waits).
 *
 * @example
 * ```ts
 * import { Scheduler } from "./scheduler.ts";
 * const scheduler = new Scheduler({ rate: 1000 });
 * await scheduler.acquire();
 * await scheduler.acquire(); // about 1 ms later
 * scheduler.close();
 * ```
 */
export class Scheduler {
  #clock: Clock;
  #rate = 0;
  #maxLagMs: number;
  #t0: number;
  #n = 0;
  /** False until the first acquire, which starts the grid. */
  #started = false;
  /** Release times of the last `#k + #slack` slots, a ring. */
  #ring: Float64Array = new Float64Array(2);
  #ringPos = 0;
  #ringFill = 0;
  /** Slots per window: ceil(rate). */
  #k = 1;
  /** Slots the window may hold beyond `#k`: max(1, floor(rate / 100)). */
  #slack = 1;
  #spanMs = 0;
  #pausedUntil = -Infinity;
  #waiters = new Lanes<number>(() => {
    if (this.#waiters.waiting === 0) this.#idleSince = this.#clock.now();
  });
  /** Clock time the last waiter left; meaningful while nobody waits. */
  #idleSince = 0;
  #released = 0;
  #timer: TimerHandle | undefined;
  #timerDue = Infinity;
  /** Clock time of the last event-loop turn seen: a timer of ours, or a turn asked for. */
  #turnAt = -Infinity;
  #turnPending = false;
  /** The grid (re)started and its first slot is not out yet: see {@linkcode #restartGrid}. */
  #anchorPending = false;
  #closed: { reason: unknown } | undefined;

  constructor(options: SchedulerOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#maxLagMs = options.maxLagMs ?? 100;
    this.#t0 = this.#clock.now();
    this.#idleSince = this.#t0;
    this.#applyRate(options.rate);
    const { signal } = options;
    if (signal) {
      if (signal.aborted) this.close(signal.reason);
      else signal.addEventListener("abort", () => this.close(signal.reason), { once: true });
    }
  }

  /** Slots per second now in force. */
  get rate(): number {
    return this.#rate;
  }

  /** Waiters not yet given a slot. */
  get waiting(): number {
    return this.#waiters.waiting;
  }

  /** Slots released since creation. */
  get released(): number {
    return this.#released;
  }

  /** Time (clock ms) before which no slot is released, or -Infinity. */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /**
   * Waits for the next free slot and resolves with the clock time it was released at.
   * @throws the signal's reason if `options.signal` aborts first or the scheduler closes.
   */
  acquire(options: AcquireOptions = {}): Promise<number> {
    if (this.#closed) return Promise.reject(this.#closed.reason);
    const { signal, lane = 0, restart = false } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.#started) {
      // The grid starts here: the time between creation and the first request is nobody's.
      this.#started = true;
      this.#restartGrid(this.#clock.now());
    } else if (this.#waiters.waiting === 0) {
      // Idle: slots nobody wanted are not owed to anyone.
      const now = this.#clock.now();
      const gap = now - this.#idleSince;
      if ((restart || gap > this.#maxLagMs) && this.#nextDue() < now) this.#restartGrid(now);
    }
    const slot = this.#waiters.add(lane, signal);
    this.#pump();
    return slot;
  }

  /**
   * Changes the rate from the next slot on, without a burst: the new grid starts where the
   * old one would have put the next slot.
   */
  setRate(rate: number): void {
    assertRate(rate);
    if (rate === this.#rate) return;
    const now = this.#clock.now();
    // Idle time is not owed to anyone (as in acquire); a queue that is behind keeps its lag.
    this.#t0 = Math.max(this.#nextDue(), this.#waiters.waiting === 0 ? now : now - this.#maxLagMs);
    this.#n = 0;
    this.#applyRate(rate);
    this.#rearm();
  }

  /** Releases no slot before clock time `until` (ms). Later calls can only extend the pause. */
  pauseUntil(until: number): void {
    if (until <= this.#pausedUntil) return;
    this.#pausedUntil = until;
    this.#rearm();
  }

  /** Rejects every waiter with `reason` and stops the timer. Idempotent. */
  close(reason: unknown = new DOMException("The scheduler was closed", "AbortError")): void {
    if (this.#closed) return;
    this.#closed = { reason };
    this.#clearTimer();
    this.#waiters.close(reason);
  }

  #applyRate(rate: number): void {
    assertRate(rate);
    const old = this.#ringFill ? this.#ordered() : [];
    this.#rate = rate;
    this.#k = Math.max(1, Math.ceil(rate));
    this.#slack = Math.max(1, Math.floor(rate / 100));
    this.#spanMs = (this.#k * 1000) / rate;
    this.#ring = new Float64Array(this.#k + this.#slack);
    this.#ringPos = 0;
    this.#ringFill = 0;
    for (const t of old.slice(-(this.#k + this.#slack))) this.#record(t);
  }

  #ordered(): number[] {
    const out: number[] = [];
    const cap = this.#k + this.#slack;
    const start = (this.#ringPos - this.#ringFill + cap) % cap;
    for (let i = 0; i < this.#ringFill; i++) out.push(this.#ring[(start + i) % cap]);
    return out;
  }

  #record(t: number): void {
    this.#ring[this.#ringPos] = t;
    const cap = this.#k + this.#slack;
    this.#ringPos = (this.#ringPos + 1) % cap;
    if (this.#ringFill < cap) this.#ringFill++;
  }

  /**
   * Starts the grid again at `now`, and again when its first slot is actually handed out (after
   * a turn of the event loop, say): the slots after it are spaced from the one that went, not
   * from the call, so a late first slot does not open a first second that holds R + 2.
   */
  #restartGrid(now: number): void {
    this.#t0 = now;
    this.#n = 0;
    this.#anchorPending = true;
  }

  #nextDue(): number {
    return this.#t0 + (this.#n * 1000) / this.#rate;
  }

  /** Earliest time the next slot may go: on the grid, inside the window rule, after any pause. */
  #nextAllowed(): number {
    let due = this.#nextDue();
    if (this.#pausedUntil > due) {
      // Slots skipped during a pause are not owed either: restart the grid where it ends.
      this.#t0 = this.#pausedUntil;
      this.#n = 0;
      due = this.#t0;
    }
    if (this.#ringFill === this.#k + this.#slack) {
      // The release k+slack back bounds how soon the window allows another: never more than
      // k+slack in any window. Bounding by the k-th back would make it k, but then every bit of
      // lateness would push the grid back for good (drift); the slack absorbs it (class doc).
      const interval = 1000 / this.#rate;
      const bound = this.#ring[this.#ringPos] + this.#spanMs;
      if (bound > due + interval) {
        // A stall used up the window: catch-up ends here and the grid restarts at the bound,
        // rather than owing slots it could only pay back as a burst every window.
        this.#t0 = bound;
        this.#n = 0;
      }
      due = Math.max(due, bound);
    }
    return due;
  }

  #pump(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    while (this.#waiters.waiting > 0) {
      const due = this.#nextAllowed();
      if (due > now) {
        this.#armAt(due, now);
        return;
      }
      if (now - this.#turnAt > TURN_MS && this.#clock.nextTurn) {
        // Behind, and no turn for a while: let what was handed out go first (class doc).
        this.#awaitTurn();
        return;
      }
      if (!this.#waiters.resolveNext(now)) break;
      if (this.#anchorPending) {
        this.#anchorPending = false;
        this.#t0 = now;
        this.#n = 0;
      }
      if (this.#waiters.waiting === 0) this.#idleSince = now;
      this.#n++;
      this.#released++;
      this.#record(now);
    }
    this.#clearTimer();
  }

  #armAt(due: number, now: number): void {
    if (this.#timer !== undefined && this.#timerDue <= due) return;
    this.#clearTimer();
    this.#timerDue = due;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#turnAt = this.#clock.now();
      this.#pump();
    }, due - now);
  }

  #awaitTurn(): void {
    this.#clearTimer();
    if (this.#turnPending) return;
    this.#turnPending = true;
    this.#clock.nextTurn!(() => {
      this.#turnPending = false;
      this.#turnAt = this.#clock.now();
      this.#pump();
    });
  }

  #rearm(): void {
    this.#clearTimer();
    if (this.#waiters.waiting > 0) this.#pump();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Infinity;
  }
}
