/**
 * The waiters of a slot source (`Scheduler`, `RedisScheduler`): FIFO within a lane,
 * served round-robin across lanes, each one abandonable through its own signal.
 * @module
 */

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  settled: boolean;
}

/** A FIFO with O(1) shift, so long queues of waiters stay cheap. */
class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(item: T): void {
    this.#items.push(item);
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/**
 * Waiters for values of type `T`, one FIFO queue per lane, handed out round-robin across lanes.
 * A waiter whose signal aborts rejects with the signal's reason at once and is skipped later.
 */
export class Lanes<T> {
  #lanes = new Map<unknown, Queue<Waiter<T>>>();
  #order: unknown[] = [];
  #rr = 0;
  #waiting = 0;
  #onAbort: (() => void) | undefined;

  /** @param onAbort called after a waiter left because its signal aborted ({@linkcode waiting} is already down). */
  constructor(onAbort?: () => void) {
    this.#onAbort = onAbort;
  }

  /** Waiters not yet given a value (nor aborted, nor rejected by {@linkcode close}). */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Queues a waiter at the back of `lane`; the promise settles through {@linkcode resolveNext},
   * {@linkcode close} or `signal`. The caller has checked that `signal` is not aborted yet.
   */
  add(lane: unknown, signal: AbortSignal | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject, signal, settled: false };
      if (signal) {
        waiter.onAbort = () => {
          if (waiter.settled) return;
          waiter.settled = true;
          this.#waiting--;
          this.#onAbort?.();
          reject(signal.reason);
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      let queue = this.#lanes.get(lane);
      if (!queue) {
        queue = new Queue();
        this.#lanes.set(lane, queue);
        this.#order.push(lane);
      }
      queue.push(waiter);
      this.#waiting++;
    });
  }

  /** Resolves the next live waiter, round-robin across lanes, with `value`; false if none. */
  resolveNext(value: T): boolean {
    const w = this.#next();
    if (!w) return false;
    this.#settle(w);
    this.#waiting--;
    w.resolve(value);
    return true;
  }

  /** Rejects every waiter with `reason` and forgets them all. */
  close(reason: unknown): void {
    for (const queue of this.#lanes.values()) {
      for (let w = queue.shift(); w; w = queue.shift()) this.#settle(w)?.reject(reason);
    }
    this.#lanes.clear();
    this.#order = [];
    this.#waiting = 0;
  }

  #settle(w: Waiter<T>): Waiter<T> | undefined {
    if (w.settled) return undefined;
    w.settled = true;
    if (w.onAbort) w.signal!.removeEventListener("abort", w.onAbort);
    return w;
  }

  /** Next live waiter, round-robin across lanes, FIFO within a lane. */
  #next(): Waiter<T> | undefined {
    while (this.#order.length > 0) {
      if (this.#rr >= this.#order.length) this.#rr = 0;
      const lane = this.#order[this.#rr];
      const queue = this.#lanes.get(lane)!;
      let w = queue.shift();
      while (w && w.settled) w = queue.shift();
      if (queue.length === 0) {
        this.#order.splice(this.#rr, 1);
        this.#lanes.delete(lane);
      } else {
        this.#rr++;
      }
      if (w) return w;
    }
    return undefined;
  }
}
