/**
 * One provider quota shared by many processes and machines: every {@linkcode RedisScheduler} on
 * the same store and quota name draws its slots from one GCRA schedule kept in Redis.
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "../clock.ts";
import type { RateChange, SlotSource } from "../quota.ts";
import type { AcquireOptions } from "../scheduler.ts";
import { Lanes } from "../_lanes.ts";

/**
 * The one Redis command the scheduler needs, injected so that `src/` stays free of runtime
 * code: the edge (cli.ts, server.ts) wraps a real client such as ioredis. Calls must fail fast
 * while the connection is down (ioredis: `enableOfflineQueue: false`, `maxRetriesPerRequest: 0`)
 * rather than queue: the scheduler retries by itself.
 */
export interface RedisEval {
  /** `EVAL script numkeys ...keys ...args`. */
  eval(script: string, keys: string[], args: (string | number)[]): Promise<unknown>;
  /** `EVALSHA sha1 ...`; when given it is tried first, and EVAL follows a `NOSCRIPT` error. */
  evalsha?(sha1: string, keys: string[], args: (string | number)[]): Promise<unknown>;
}

/** Options for {@linkcode RedisScheduler}. */
export interface RedisSchedulerOptions {
  /** The store. */
  store: RedisEval;
  /**
   * The quota's name: processes with the same store and name share one schedule. Letters,
   * digits and `._:-`, at most 200 characters.
   */
  name: string;
  /** This process's rate, req/s: its ceiling, and the shared rate while no slow-down holds. */
  rate: number;
  /**
   * Highest rate a shared increase may reach (`Infinity` for a rate found by `"auto"`).
   * @default rate
   */
  ceiling?: number;
  /**
   * Most reservations this process holds at once. A killed process wastes at most this many
   * slots of the shared schedule; more absorbs timer lateness and store round trips at high
   * rates.
   * @default max(1, ceil(rate / 50)): 20 ms of slots, at least one
   */
  depth?: number;
  /** Prefix of the keys `<prefix>:{<name>}:tat|rate|pause|cool|raise`. @default "mft" */
  keyPrefix?: string;
  /**
   * Time kept free after this process's first slot: its first request goes out cold (new
   * connection, code compiled on first use) and reaches the provider late, where it would crowd
   * the next slot, perhaps another process's. Costs this much of the shared rate once.
   * @default 50
   */
  coldStartMs?: number;
  /** A store call that has not answered in this long counts as failed. @default 2000 */
  callTimeoutMs?: number;
  /**
   * First wait before retrying a failed store; doubles up to `maxRetryDelayMs`. A retry against a
   * client that is still disconnected fails at once and costs nothing.
   * @default 100
   */
  retryDelayMs?: number;
  /** @default 500 */
  maxRetryDelayMs?: number;
  /** Called once when the store fails (dispatch pauses until it answers again). */
  onStoreLost?: (error: unknown) => void;
  /** Called once when the store answers again, with how long it was gone (ms). */
  onStoreBack?: (downMs: number) => void;
  /** @default systemClock */
  clock?: Clock;
  /** Closes the scheduler: every waiter rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A reservation in hand: release not before `at`, and not after `deadline` (else it is late). */
interface Held {
  at: number;
  deadline: number;
}

/** A script and its SHA-1 (for EVALSHA). */
interface Script {
  source: string;
  sha1: Promise<string>;
}

function script(source: string): Script {
  const sha1 = crypto.subtle.digest("SHA-1", new TextEncoder().encode(source)).then((d) =>
    Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("")
  );
  sha1.catch(() => {});
  return { source, sha1 };
}

// Times on the server are integer microseconds from `TIME` (exact in a double up to 2^53 µs,
// year 2255). Every script reads the clock of the one Redis server, so machines whose clocks
// disagree still share one schedule. KEYS: tat, rate, pause, cool, raise.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
`;

/**
 * GCRA reservation. ARGV: ceiling (0 = none), this caller's rate when no shared rate is set,
 * TTL of the shared rate (ms), extra ms kept free after the slot. The slot is
 * `max(tat, now, pause)`, so idle time is not banked and a pause ends in one slot, not a burst;
 * `tat` then moves one interval (plus the extra) on.
 * Returns {wait ms, rate, pause left ms}.
 */
const RESERVE = script(`${NOW}
local ceiling = tonumber(ARGV[1])
local rate = tonumber(redis.call('GET', KEYS[2]))
if rate then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
else
  rate = tonumber(ARGV[2])
end
if ceiling > 0 and rate > ceiling then rate = ceiling end
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
local pause = tonumber(redis.call('GET', KEYS[3])) or 0
local slot = math.max(tat, now, pause)
local nxt = slot + math.ceil(1000000 / rate) + tonumber(ARGV[4]) * 1000
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX',
  string.format('%.0f', math.ceil((nxt - now) / 1000) + 1000))
return { string.format('%.3f', (slot - now) / 1000), tostring(rate),
  string.format('%.3f', math.max(0, pause - now) / 1000) }
`);

/**
 * Shared AIMD. ARGV: op (down | up | limit), proposed rate, ceiling (0 = none), caller's rate
 * when none is set, cooldown ms (down), TTL of the shared rate (ms), ms between increases.
 * "down" lowers only when no cooldown holds and starts one, so processes that see the same burst
 * of 429s slow down once; "up" raises at most once per interval for everyone and never during a
 * cooldown, capped at the ceiling (reaching it clears the shared rate); "limit" (a rate the
 * provider stated) applies at once, up or down.
 * Returns {changed 0|1, rate}.
 */
const ADJUST = script(`${NOW}
local op = ARGV[1]
local proposed = tonumber(ARGV[2])
local ceiling = tonumber(ARGV[3])
local rate = tonumber(redis.call('GET', KEYS[2])) or tonumber(ARGV[4])
if ceiling > 0 and rate > ceiling then rate = ceiling end
local changed = 0
if op == 'down' then
  if proposed < rate and redis.call('EXISTS', KEYS[4]) == 0 then
    rate = proposed
    changed = 1
    redis.call('SET', KEYS[4], '1', 'PX', ARGV[5])
  end
elseif op == 'limit' then
  if ceiling > 0 and proposed > ceiling then proposed = ceiling end
  if proposed ~= rate then
    rate = proposed
    changed = 1
  end
elseif op == 'up' then
  if ceiling > 0 and proposed > ceiling then proposed = ceiling end
  if proposed > rate and redis.call('EXISTS', KEYS[4]) == 0
    and redis.call('EXISTS', KEYS[5]) == 0 then
    rate = proposed
    changed = 1
    redis.call('SET', KEYS[5], '1', 'PX', ARGV[7])
  end
end
if changed == 1 then
  if op == 'up' and ceiling > 0 and rate >= ceiling then
    redis.call('DEL', KEYS[2])
  else
    redis.call('SET', KEYS[2], tostring(rate), 'PX', ARGV[6])
  end
end
return { changed, tostring(rate) }
`);

/** Shared pause (Retry-After). ARGV: ms from now. Extends only. Returns pause left, ms. */
const PAUSE = script(`${NOW}
local ms = tonumber(ARGV[1])
local untilv = now + ms * 1000
local cur = tonumber(redis.call('GET', KEYS[3])) or 0
if untilv > cur then
  redis.call('SET', KEYS[3], string.format('%.0f', untilv), 'PX', string.format('%.0f', math.ceil(ms) + 1000))
  cur = untilv
end
return string.format('%.3f', math.max(0, cur - now) / 1000)
`);

/** A shared rate left by a slow-down is forgotten after this long without reservations. */
const RATE_TTL_MS = 600_000;
/** Shared increases are at most this often, for all processes together. */
const RAISE_INTERVAL_MS = 1000;

function assertRate(name: string, rate: number, allowInfinity = false): void {
  if (
    typeof rate !== "number" || Number.isNaN(rate) || rate <= 0 ||
    (!allowInfinity && !Number.isFinite(rate))
  ) {
    throw new RangeError(
      `Cannot schedule as '${name}' must be a ${
        allowInfinity ? "" : "finite "
      }number above 0: current value is ${rate}`,
    );
  }
}

/** Thrown (and given to `onStoreLost`) when a store call takes longer than `callTimeoutMs`. */
export class StoreTimeoutError extends Error {
  override name = "StoreTimeoutError";
}

/**
 * A {@linkcode SlotSource} whose schedule lives in Redis, shared by every process that uses the
 * same store and name: one job alone gets the full rate, two get half each, and when one ends the
 * other speeds up, with no one re-dividing anything.
 *
 * Each reservation is one atomic Lua call (GCRA on the Redis server's clock). Locally, one pump
 * keeps at most `depth` reservations in hand while there is demand, sleeps until each one's time
 * and hands it to the next waiter, round-robin across lanes. A reservation this process cannot
 * release within 3/4 of an interval of its time (blocked event loop, starved CPU) is dropped
 * rather than sent late, where it would crowd another process's next slot; for the same reason a
 * process's first slot keeps `coldStartMs` free after it (its first request goes out cold).
 * Slow-downs (429s)
 * and pauses (Retry-After) go through the store, so one process's 429 slows them all; a process
 * may still release the at most `depth` reservations it held when another's pause arrived.
 *
 * If the store fails, no slot is released without a reservation: waiters wait, the pump retries
 * with backoff (100 ms doubling to 0.5 s), and because the schedule restarts from the server's
 * clock when it answers again, there is no burst. A late reply is discarded.
 *
 * @example
 * ```ts ignore
 * import Redis from "ioredis";
 * import { RedisScheduler } from "./scheduler.ts";
 * const redis = new Redis("redis://127.0.0.1:6379/0", { enableOfflineQueue: false });
 * const scheduler = new RedisScheduler({
 *   name: "my-quota",
 *   rate: 20,
 *   store: { eval: (s, keys, args) => redis.eval(s, keys.length, ...keys, ...args) },
 * });
 * await scheduler.acquire(); // a slot of the schedule every process on "my-quota" shares
 * scheduler.close();
 * ```
 */
export class RedisScheduler implements SlotSource {
  #store: RedisEval;
  #keys: string[];
  #clock: Clock;
  #rate: number;
  #initial: number;
  #ceiling: number;
  #fixedDepth: number | undefined;
  #callTimeoutMs: number;
  #coldStartMs: number;
  #retryMin: number;
  #retryMax: number;
  #retryDelay: number;
  #onLost?: (error: unknown) => void;
  #onBack?: (downMs: number) => void;
  #waiters = new Lanes<number>();
  #released = 0;
  #reservations = 0;
  #wasted = 0;
  #late = 0;
  /** Shortest round trip to the store seen so far (ms): the network's part of a reply's delay. */
  #rttMin = Infinity;
  /** Local release times of the reservations in hand, ascending. */
  #held: Held[] = [];
  /** Whether the last slot found a waiter: demand is expected to continue. */
  #hot = false;
  #reserving = false;
  #pausedUntil = -Infinity;
  #downSince: number | undefined;
  #timer: TimerHandle | undefined;
  #timerDue = Infinity;
  #retryTimer: TimerHandle | undefined;
  #closed: { reason: unknown } | undefined;

  /** @throws {RangeError} on a bad rate, ceiling, depth or name. */
  constructor(options: RedisSchedulerOptions) {
    assertRate("rate", options.rate);
    const ceiling = options.ceiling ?? options.rate;
    assertRate("ceiling", ceiling, true);
    if (
      options.depth !== undefined && !(Number.isInteger(options.depth) && options.depth >= 1)
    ) {
      throw new RangeError(
        `Cannot schedule as 'depth' must be a positive integer: current value is ${options.depth}`,
      );
    }
    const { name } = options;
    if (typeof name !== "string" || !/^[\w.:-]{1,200}$/.test(name)) {
      throw new RangeError(
        `Cannot schedule as 'name' must be 1 to 200 letters, digits or ._:- : current value is ${
          JSON.stringify(name)
        }`,
      );
    }
    const prefix = `${options.keyPrefix ?? "mft"}:{${name}}`;
    // One hash tag per quota: a Redis Cluster keeps all its keys on one node, as scripts need.
    this.#keys = ["tat", "rate", "pause", "cool", "raise"].map((k) => `${prefix}:${k}`);
    this.#store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.#initial = options.rate;
    this.#ceiling = ceiling;
    this.#rate = Math.min(options.rate, ceiling);
    this.#fixedDepth = options.depth;
    this.#callTimeoutMs = options.callTimeoutMs ?? 2000;
    this.#coldStartMs = Math.max(0, options.coldStartMs ?? 50);
    this.#retryMin = options.retryDelayMs ?? 100;
    this.#retryMax = options.maxRetryDelayMs ?? 500;
    this.#retryDelay = this.#retryMin;
    this.#onLost = options.onStoreLost;
    this.#onBack = options.onStoreBack;
    const { signal } = options;
    if (signal) {
      if (signal.aborted) this.close(signal.reason);
      else signal.addEventListener("abort", () => this.close(signal.reason), { once: true });
    }
  }

  /** Slots per second in force, as of the store's last answer. */
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

  /** Reservations made in the store since creation (released, held or wasted). */
  get reservations(): number {
    return this.#reservations;
  }

  /** Reservations dropped unused: no waiter when they came due, or voided by a pause. */
  get wasted(): number {
    return this.#wasted;
  }

  /**
   * Reservations dropped because this process could not release them on time (a blocked event
   * loop, a starved CPU): sent late, they would crowd the next slot, taken by another process.
   * Counted in {@linkcode wasted} too.
   */
  get late(): number {
    return this.#late;
  }

  /** Clock time (ms) before which no slot is released, or -Infinity. */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** True while the store is failing (dispatch is paused). */
  get storeDown(): boolean {
    return this.#downSince !== undefined;
  }

  /**
   * Waits for the next slot of the shared schedule and resolves with the clock time it was
   * released at.
   * @throws the signal's reason if `options.signal` aborts first or the scheduler closes.
   */
  acquire(options: AcquireOptions = {}): Promise<number> {
    if (this.#closed) return Promise.reject(this.#closed.reason);
    const { signal, lane = 0 } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const slot = this.#waiters.add(lane, signal);
    // A slot already in hand and due goes at once; otherwise make sure one is on its way.
    this.#release();
    this.#fill();
    return slot;
  }

  /**
   * Asks the store to change the shared rate (see {@linkcode RateChange}); the store decides,
   * and {@linkcode rate} follows its answer. Without `change`, sets this process's configured
   * rate: its ceiling and the shared rate while no slow-down holds (what `Quota` does first).
   */
  setRate(rate: number, change?: RateChange): void {
    assertRate("rate", rate);
    if (this.#closed) return;
    if (change === undefined) {
      this.#initial = rate;
      this.#ceiling = rate;
      this.#rate = Math.min(this.#rate, rate);
      return;
    }
    if (change.kind === "limit") this.#ceiling = Math.min(this.#ceiling, rate);
    const op = change.kind === "slowdown" ? "down" : change.kind === "increase" ? "up" : "limit";
    const cooldownMs = change.kind === "slowdown" ? Math.max(1, Math.ceil(change.cooldownMs)) : 1;
    this.#call(ADJUST, [
      op,
      rate,
      this.#ceilingArg(),
      this.#initial,
      cooldownMs,
      RATE_TTL_MS,
      RAISE_INTERVAL_MS,
    ]).then((reply) => {
      const [, shared] = reply as [number, string];
      const r = Number(shared);
      if (!this.#closed && r > 0) this.#rate = Math.min(r, this.#ceiling);
    }, () => {
      // The store is gone: the reservations report it, and a slow-down matters less while
      // nothing is dispatched. The next 429 after it returns asks again.
    });
  }

  /**
   * Releases no slot before clock time `until` (ms), for every process on this quota: the
   * pause is written to the store. Reservations in hand that fall inside it are dropped.
   */
  pauseUntil(until: number): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    const ms = until - now;
    if (!(ms > 0)) return;
    if (until > this.#pausedUntil) {
      this.#pausedUntil = until;
      const kept = this.#held.filter((h) => h.at >= until);
      this.#wasted += this.#held.length - kept.length;
      this.#held = kept;
    }
    this.#call(PAUSE, [Math.ceil(ms)]).then((reply) => {
      const left = Number(reply);
      if (left > 0) this.#pausedUntil = Math.max(this.#pausedUntil, this.#clock.now() + left);
    }, () => {});
  }

  /**
   * Rejects every waiter with `reason` and stops the timers. The store is not closed: it belongs
   * to the caller. Idempotent.
   */
  close(reason: unknown = new DOMException("The scheduler was closed", "AbortError")): void {
    if (this.#closed) return;
    this.#closed = { reason };
    this.#clearTimer();
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#waiters.close(reason);
    this.#held = [];
  }

  #ceilingArg(): number {
    return Number.isFinite(this.#ceiling) ? this.#ceiling : 0;
  }

  #depth(): number {
    return this.#fixedDepth ?? Math.max(1, Math.ceil(this.#rate / 50));
  }

  /** Runs a script: EVALSHA first when the store has it, EVAL after NOSCRIPT; with a timeout. */
  async #call(s: Script, args: (string | number)[]): Promise<unknown> {
    const run = async () => {
      if (this.#store.evalsha) {
        try {
          return await this.#store.evalsha(await s.sha1, this.#keys, args);
        } catch (error) {
          if (!String((error as Error)?.message ?? error).includes("NOSCRIPT")) throw error;
        }
      }
      return await this.#store.eval(s.source, this.#keys, args);
    };
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(
        () =>
          reject(
            new StoreTimeoutError(`the quota store did not answer in ${this.#callTimeoutMs} ms`),
          ),
        this.#callTimeoutMs,
      );
    });
    try {
      return await Promise.race([run(), timeout]);
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  /** Starts a reservation if demand wants more slots in hand and none is on its way. */
  #fill(): void {
    if (this.#closed || this.#reserving || this.#retryTimer !== undefined) return;
    const want = this.#waiters.waiting > 0 || this.#hot ? this.#depth() : 0;
    if (this.#held.length >= want) return;
    this.#reserving = true;
    this.#reserve();
  }

  async #reserve(): Promise<void> {
    let reply: unknown;
    const sent = this.#clock.now();
    try {
      // A process's first request goes out cold (connection, compilation) and reaches the
      // provider late, crowding the slot after it: its reservation keeps `coldStartMs` free.
      const extra = this.#reservations === 0 ? this.#coldStartMs : 0;
      reply = await this.#call(RESERVE, [this.#ceilingArg(), this.#initial, RATE_TTL_MS, extra]);
    } catch (error) {
      this.#reserving = false;
      if (this.#closed) return;
      // No reservation, no slot: waiters wait while the store is away. A call that timed out
      // may still have reserved on the server; that slot is lost, never doubled.
      if (this.#downSince === undefined) {
        this.#downSince = this.#clock.now();
        this.#onLost?.(error);
      }
      const wait = this.#retryDelay;
      this.#retryDelay = Math.min(this.#retryMax, this.#retryDelay * 2);
      this.#retryTimer = this.#clock.setTimeout(() => {
        this.#retryTimer = undefined;
        this.#fill();
      }, wait);
      return;
    }
    this.#reserving = false;
    if (this.#closed) return;
    // Measured from the answer's arrival, so the local time is never earlier than the server's.
    const received = this.#clock.now();
    const [wait, rate, pause] = (reply as [string, string, string]).map(Number);
    this.#reservations++;
    if (this.#downSince !== undefined) {
      const downMs = received - this.#downSince;
      this.#downSince = undefined;
      this.#onBack?.(downMs);
    }
    this.#retryDelay = this.#retryMin;
    if (rate > 0) this.#rate = Math.min(rate, this.#ceiling);
    if (pause > 0) this.#pausedUntil = Math.max(this.#pausedUntil, received + pause);
    // The slot is `wait` after the server ran the script, somewhere between sending and
    // receiving: releasing at `received + wait` is never early. Nor may it be later than 3/4 of
    // an interval (at least 5 ms) after the slot's expected time (`sent` + the network's part of
    // a round trip + `wait`): every release then stays within less than one interval of its
    // slot, so no 1 s window holds more than R + 1 releases, whichever processes they come from
    // (the last quarter is left for the request's own way to the provider). A late timer, or a
    // reply held up by a stalled event loop, makes the slot late: it is dropped, not sent.
    const rtt = received - sent;
    if (rtt < this.#rttMin) this.#rttMin = rtt;
    const lateMs = Math.max(750 / (rate > 0 ? rate : this.#rate), 5);
    const at = received + Math.max(0, wait);
    const deadline = sent + this.#rttMin + Math.max(0, wait) + lateMs;
    let i = this.#held.length;
    while (i > 0 && this.#held[i - 1].at > at) i--;
    this.#held.splice(i, 0, { at, deadline });
    this.#release();
    this.#fill();
  }

  /** Hands every due reservation to the next waiter; arms the timer for the next one. */
  #release(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    while (this.#held.length > 0 && this.#held[0].at <= now) {
      const { at, deadline } = this.#held.shift()!;
      if (at < this.#pausedUntil) {
        this.#wasted++; // reserved before a pause reached the store: void
        continue;
      }
      if (now > deadline) {
        this.#wasted++;
        this.#late++;
        continue;
      }
      if (!this.#waiters.resolveNext(now)) {
        // Nobody wants it (the waiter aborted, or demand ended): wasted, not kept, since a slot
        // released later than its time would crowd the next ones.
        this.#wasted++;
        this.#hot = false;
        continue;
      }
      this.#released++;
      this.#hot = true;
    }
    this.#arm(now);
    this.#fill();
  }

  #arm(now: number): void {
    const due = this.#held.length > 0 ? this.#held[0].at : Infinity;
    if (due === this.#timerDue) return;
    this.#clearTimer();
    if (due === Infinity) return;
    this.#timerDue = due;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#release();
    }, due - now);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Infinity;
  }
}
