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
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = end;
    await flush();
  }
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
}
