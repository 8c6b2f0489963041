/**
 * A hand-driven {@linkcode Clock} for tests: time moves only when the test says so, and timers
 * fire in due order. `advance(ms, { late: true })` moves time without firing anything, the way a
 * blocked event loop does, so catch-up can be tested.
 * @module
 */
import type { Clock } from "../src/clock.ts";

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  #now: number;
  #timers: Timer[] = [];
  #nextId = 1;

  constructor(start = 1000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward by `ms`, firing each timer at its due time (and letting promise
   * callbacks run between timers). With `late`, time jumps first and due timers fire after.
   */
  async advance(ms: number, options: { late?: boolean } = {}): Promise<void> {
    const end = this.#now + ms;
    if (options.late) this.#now = end;
    while (true) {
      await flush();
      const next = takeDue(this.#timers, end);
      if (!next) break;
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = end;
    await flush();
  }
}

/** Removes and returns the earliest timer due by `end` (ties in creation order), if any. */
function takeDue(timers: Timer[], end: number): Timer | undefined {
  timers.sort((a, b) => a.at - b.at || a.id - b.id);
  return timers[0] && timers[0].at <= end ? timers.shift() : undefined;
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A clock whose timers fire synchronously, in due order, when the test moves time with
 * {@linkcode SyncClock.runTo} or {@linkcode SyncClock.run}: no flush between timers (FakeClock's
 * costs about 1 ms of real time each under Bun), so ten thousand slots take milliseconds. The
 * scheduler resolves waiters synchronously in a timer's callback, so no flush is needed between
 * timers. `lateMs` makes every timer fire that much after it is due, as real timers do.
 */
export class SyncClock implements Clock {
  #now = 1000;
  #timers: Timer[] = [];
  #nextId = 1;
  readonly #lateMs: number | (() => number);

  constructor(lateMs: number | (() => number) = 0) {
    this.#lateMs = lateMs;
  }
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#nextId++;
    const late = typeof this.#lateMs === "number" ? this.#lateMs : this.#lateMs();
    this.#timers.push({ id, at: this.#now + Math.max(0, ms) + late, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }
  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.length;
  }
  /** When the next timer is due, or Infinity when none is armed. */
  get nextAt(): number {
    return this.#timers.reduce((at, t) => Math.min(at, t.at), Infinity);
  }
  /** Moves time by `ms` without firing anything: the caller's own work, a blocked event loop. */
  work(ms: number): void {
    this.#now += ms;
  }
  /** Fires every timer due up to `end`, in order, and leaves the time at `end` (or later). */
  runTo(end: number): void {
    while (true) {
      const next = takeDue(this.#timers, end);
      if (!next) break;
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = Math.max(this.#now, end);
  }
  /** {@linkcode SyncClock.runTo} `ms` from now. */
  run(ms: number): void {
    this.runTo(this.#now + ms);
  }
}
