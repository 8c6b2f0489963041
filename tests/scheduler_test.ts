// Tests of src/scheduler.ts on a hand-driven clock: every assertion is on the release times the
// scheduler hands out, never on the wall clock.
import { expect, test } from "bun:test";
import { type AcquireOptions, Scheduler, TURN_MS } from "../src/scheduler.ts";
import { FakeClock, flush, SyncClock } from "./_fake_clock.ts";

/** Queues `n` waiters and records each release time, in release order. */
function acquireMany(
  scheduler: Scheduler,
  n: number,
  options: AcquireOptions = {},
): number[] {
  const times: number[] = [];
  for (let i = 0; i < n; i++) scheduler.acquire(options).then((t) => times.push(t));
  return times;
}

/** Most releases inside any half-open window [t, t + width). */
function maxInWindow(times: number[], width: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (j < i) j = i;
    while (j < sorted.length && sorted[j] < sorted[i] + width) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

/** Differences between consecutive times. */
function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]);
}

/** The class doc's slack: max(1, floor(R / 100)), so 1 below 200/s and 1 % of R above. */
function slackOf(rate: number): number {
  return Math.max(1, Math.floor(rate / 100));
}

/**
 * Asserts the window rule of the class doc: at most ceil(R) + slack releases in any window of
 * ceil(R)/R s (for an integer R, any 1 s window), the slack absorbing timer jitter and stalls.
 */
function expectWindowRule(times: number[], rate: number): void {
  const k = Math.ceil(rate);
  expect(maxInWindow(times, 1000)).toBeLessThanOrEqual(k + slackOf(rate));
  expect(maxInWindow(times, (k * 1000) / rate)).toBeLessThanOrEqual(k + slackOf(rate));
}

/** A rejection reason captured without leaving the promise unhandled. */
function reasonOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => "resolved", (reason) => reason);
}

for (const rate of [10, 60, 0.25, 2.5]) {
  test(`Scheduler releases slot i at exactly t0 + i*1000/R at rate ${rate}`, async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const scheduler = new Scheduler({ rate, clock });
    const times = acquireMany(scheduler, 25);
    await clock.advance((24 * 1000) / rate);
    expect(times).toHaveLength(25);
    times.forEach((t, i) => expect(t).toBe(t0 + (i * 1000) / rate));
    expect(clock.pending).toBe(0);
  });
}

test("Scheduler at rate 0.25 releases nothing between slots 4000 ms apart", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate: 0.25, clock });
  const times = acquireMany(scheduler, 3);
  await clock.advance(3999);
  expect(times).toEqual([t0]);
  await clock.advance(1);
  expect(times).toEqual([t0, t0 + 4000]);
});

test("Scheduler does not drift over 10,000 slots: slot 10,000 is at t0 + 10000/R", async () => {
  const rate = 7; // 1000/7 ms is not a whole number, so any accumulated rounding would show
  const clock = new SyncClock(0);
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate, clock });
  const times = acquireMany(scheduler, 10_001);
  clock.run((10_000 * 1000) / rate + 1);
  await flush();
  expect(times).toHaveLength(10_001);
  expect(times[10_000]).toBe(t0 + (10_000 * 1000) / rate);
  expect(times[5_000]).toBe(t0 + (5_000 * 1000) / rate);
  expect(scheduler.released).toBe(10_001);
});

test("Scheduler keeps the grid when every timer fires late: no drift over 10,000 slots", async () => {
  const rate = 10;
  const clock = new SyncClock(0.7);
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate, clock });
  const times = acquireMany(scheduler, 10_001);
  clock.run(10_000 * 100 + 10);
  await flush();
  expect(times).toHaveLength(10_001);
  // Each release is at most one timer's lateness behind its slot; a chain of sleeps would be
  // 10,000 × 0.7 ms = 7 s behind by now.
  expect(times[10_000] - (t0 + 10_000 * 100)).toBeCloseTo(0.7, 6);
  for (const gap of gaps(times.slice(1))) expect(gap).toBeCloseTo(100, 6);
});

for (const rate of [100, 500]) {
  test(`Scheduler with jittery timers keeps R + slack per 1 s window and R on average at ${rate}`, async () => {
    let seed = 42;
    // Timers fire 0 to 3 ms late at random (seeded), as real timers do under load.
    const jitter = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 3;
    const clock = new SyncClock(jitter);
    const t0 = clock.now();
    const scheduler = new Scheduler({ rate, clock });
    const n = 10_000;
    const times = acquireMany(scheduler, n);
    clock.run((n * 1000) / rate + 5_000);
    await flush();
    expect(times).toHaveLength(n);
    expect(maxInWindow(times, 1000)).toBeLessThanOrEqual(rate + slackOf(rate));
    // Jitter (up to 3 ms) below the slack (one 10 ms slot at 100/s, five 2 ms slots at 500/s)
    // is absorbed: no drift at all, each release at most one timer's lateness behind its slot.
    const behind = times[n - 1] - (t0 + ((n - 1) * 1000) / rate);
    expect(behind).toBeLessThanOrEqual(3);
  });
}

/** A late function for {@linkcode SyncClock}: every `every`-th timer fires `stallMs` late. */
function stallEvery(every: number, stallMs: number): () => number {
  let armed = 0;
  return () => (++armed % every === 0 ? stallMs : 0);
}

test("Scheduler at 1,000/s repays stalls within the slack in full: no rate lost", async () => {
  const rate = 1000; // slack 10 slots = 10 ms
  const clock = new SyncClock(stallEvery(40, 8)); // an 8 ms stall about every 50 ms
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate, clock });
  const n = 10_001;
  const times = acquireMany(scheduler, n);
  clock.run(12_000);
  await flush();
  expect(times).toHaveLength(n);
  // With a slack of one slot, each stall's catch-up would block the window a second later and
  // the grid would restart behind: about 8 ms lost per stall, seconds over this run.
  expect(times[n - 1] - (t0 + ((n - 1) * 1000) / rate)).toBeLessThanOrEqual(8);
  expectWindowRule(times, rate);
  expect(maxInWindow(times, 1000)).toBeGreaterThan(rate + 1); // the slack was used
});

test("Scheduler at 1,000/s loses at most what a stall exceeds the slack by", async () => {
  const rate = 1000;
  const stallMs = 30;
  const clock = new SyncClock(stallEvery(500, stallMs)); // a 30 ms stall about every 0.5 s
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate, clock });
  const n = 10_001;
  const times = acquireMany(scheduler, n);
  clock.run(15_000);
  await flush();
  expect(times).toHaveLength(n);
  expectWindowRule(times, rate);
  // The stalls happened: some slots went out together, on the catch-up.
  expect(times.some((t, i) => i > 0 && t === times[i - 1])).toBe(true);
  // Each stall costs at most its length less the 10 ms the slack repays, plus a slot.
  const behind = times[n - 1] - (t0 + ((n - 1) * 1000) / rate);
  const stallCount = Math.floor((n - 1) / 500);
  expect(behind).toBeLessThanOrEqual(stallCount * (stallMs - 10 + 1) + stallMs);
});

for (const [rate, burst] of [[10, 11], [199, 200], [200, 202], [1000, 1010], [2000, 2020]]) {
  test(`Scheduler at ${rate}/s releases at most ${burst} at once after a long stall (slack)`, async () => {
    const clock = new FakeClock();
    const scheduler = new Scheduler({ rate, clock });
    const times = acquireMany(scheduler, 3 * rate);
    await clock.advance(100);
    const before = times.length;
    await clock.advance(3000, { late: true });
    expect(times.length - before).toBe(burst);
  });
}

test("Scheduler forgives a short idle gap: a waiter after 300 ms idle gets no burst", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 200, clock });
  acquireMany(scheduler, 1);
  await clock.advance(300);
  const now = clock.now();
  const times = acquireMany(scheduler, 40);
  await clock.advance(300);
  expect(times).toHaveLength(40);
  times.forEach((t, i) => expect(t).toBe(now + i * 5));
});

test("Scheduler starts its grid at the first acquire, not at creation: no start-up burst", async () => {
  const rate = 1000;
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate, clock });
  // The caller takes 80 ms (under maxLagMs) to start: 80 slots of the creation grid are past.
  await clock.advance(80);
  const start = clock.now();
  const times = acquireMany(scheduler, 20);
  await flush();
  expect(times).toEqual([start]);
  await clock.advance(30);
  expect(times).toHaveLength(20);
  times.forEach((t, i) => expect(t).toBe(start + i));
});

test("Scheduler.acquire({ restart }) after a short deliberate gap restarts the grid: no burst", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 1000, clock });
  acquireMany(scheduler, 1); // a run's first request, sent alone
  await clock.advance(40); // its answer comes in 40 ms (under maxLagMs): the gate opens
  const now = clock.now();
  const times = acquireMany(scheduler, 1, { restart: true });
  const rest = acquireMany(scheduler, 9);
  await flush();
  expect(times).toEqual([now]);
  await clock.advance(20);
  expect([...times, ...rest]).toEqual(Array.from({ length: 10 }, (_, i) => now + i));
});

test("Scheduler.acquire() without restart catches up a short idle gap (the contrast)", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 1000, clock });
  acquireMany(scheduler, 1);
  await clock.advance(40);
  const now = clock.now();
  const times = acquireMany(scheduler, 10);
  await flush();
  // Slots +1 … +40 are overdue: the waiters take them at once, within the window rule.
  expect(times).toEqual(Array(10).fill(now));
});

test("Scheduler.acquire({ restart }) leaves the grid alone while others wait", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate: 10, clock });
  const a = acquireMany(scheduler, 3, { lane: "a" });
  await clock.advance(50);
  const b = acquireMany(scheduler, 1, { lane: "b", restart: true });
  await clock.advance(400);
  expect(a).toEqual([t0, t0 + 100, t0 + 300]);
  expect(b).toEqual([t0 + 200]);
});

test("Scheduler catches up overdue slots after a late timer, within the 1 s window", async () => {
  const rate = 10;
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate, clock });
  const times = acquireMany(scheduler, 60);
  await clock.advance(300);
  expect(times).toEqual([t0, t0 + 100, t0 + 200, t0 + 300]);
  // The event loop stalls for a second: slots due at +400 … +1300 are all overdue.
  await clock.advance(1000, { late: true });
  expect(scheduler.released).toBe(14);
  expect(times.slice(4)).toEqual(Array(10).fill(t0 + 1300));
  await clock.advance(4000);
  expectWindowRule(times, rate);
  // The slot of slack goes on the grid (+1400); then the window is full until +2300, where the
  // grid restarts and the spacing is back to 1000/R.
  expect(times[14]).toBe(t0 + 1400);
  const after = times.slice(15);
  expect(after.length).toBeGreaterThan(30);
  expect(after[0]).toBe(t0 + 2300);
  for (const gap of gaps(after)) expect(gap).toBeCloseTo(100, 9);
});

test("Scheduler forgives a long stall instead of repaying it as repeated bursts", async () => {
  const rate = 10;
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate, clock });
  const times = acquireMany(scheduler, 100);
  await clock.advance(900);
  await clock.advance(5000, { late: true });
  // At most ceil(R) + 1 go at once, whatever the debt.
  expect(times.filter((t) => t === t0 + 5900)).toHaveLength(11);
  await clock.advance(5000);
  expectWindowRule(times, rate);
  const after = times.filter((t) => t > t0 + 5900);
  expect(after.length).toBeGreaterThan(40);
  for (const gap of gaps(after)) expect(gap).toBeCloseTo(100, 9);
});

test("Scheduler at rate 2.5 keeps at most 4 releases in any 1 s window through a stall", async () => {
  const rate = 2.5;
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate, clock });
  const times = acquireMany(scheduler, 40);
  await clock.advance(1000);
  await clock.advance(3100, { late: true });
  await clock.advance(700);
  await clock.advance(2000, { late: true });
  await clock.advance(10_000);
  expect(times.length).toBeGreaterThan(10);
  expectWindowRule(times, rate);
  // The doc's own window for a fractional rate: ceil(R) + 1 per ceil(R)/R s = 4 per 1.2 s.
  expect(maxInWindow(times, 1200)).toBeLessThanOrEqual(4);
});

test("Scheduler at rate 60 keeps at most 61 releases in any 1 s window through stalls", async () => {
  const rate = 60;
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate, clock });
  const times = acquireMany(scheduler, 400);
  await clock.advance(500);
  await clock.advance(1700, { late: true });
  await clock.advance(333);
  await clock.advance(450, { late: true });
  await clock.advance(3000);
  expect(times.length).toBeGreaterThan(200);
  expectWindowRule(times, rate);
});

test("Scheduler does not burst after an idle gap longer than maxLagMs", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 10, clock, maxLagMs: 1000 });
  const first = acquireMany(scheduler, 1);
  await clock.advance(5000);
  expect(first).toHaveLength(1);
  expect(clock.pending).toBe(0);
  const now = clock.now();
  const times = acquireMany(scheduler, 20);
  await clock.advance(3000);
  expect(times).toHaveLength(20);
  times.forEach((t, i) => expect(t).toBe(now + i * 100));
});

test("Scheduler serves lanes round-robin: a later lane is not stuck behind a long one", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 10, clock });
  const order: string[] = [];
  for (let i = 0; i < 100; i++) scheduler.acquire({ lane: "A" }).then(() => order.push(`A${i}`));
  for (let i = 0; i < 3; i++) scheduler.acquire({ lane: "B" }).then(() => order.push(`B${i}`));
  await clock.advance(10_300);
  expect(order).toHaveLength(103);
  // Slot 0 went to A before B arrived; then the lanes alternate.
  expect(order.slice(0, 8)).toEqual(["A0", "A1", "B0", "A2", "B1", "A3", "B2", "A4"]);
  expect(order.slice(8)).toEqual(Array.from({ length: 95 }, (_, i) => `A${i + 5}`));
});

test("Scheduler serves waiters of one lane in FIFO order", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate: 20, clock });
  const order: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    scheduler.acquire({ lane: "x" }).then((t) => {
      order.push(i);
      times.push(t);
    });
  }
  await clock.advance(1000);
  expect(order).toEqual([...Array(12).keys()]);
  times.forEach((t, i) => expect(t).toBe(t0 + i * 50));
});

test("Scheduler.acquire() with an already-aborted signal rejects with the reason", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 10, clock });
  const reason = new Error("gone");
  const promise = scheduler.acquire({ signal: AbortSignal.abort(reason) });
  expect(await reasonOf(promise)).toBe(reason);
  expect(scheduler.waiting).toBe(0);
  expect(scheduler.released).toBe(0);
  // The slot it did not take goes to the next waiter.
  const times = acquireMany(scheduler, 1);
  await flush();
  expect(times).toEqual([clock.now()]);
});

test("Scheduler.acquire() aborted mid-wait rejects with the reason and frees its slot", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate: 10, clock });
  const a = acquireMany(scheduler, 1);
  const controller = new AbortController();
  const b = reasonOf(scheduler.acquire({ signal: controller.signal }));
  const c = acquireMany(scheduler, 1);
  const d = acquireMany(scheduler, 1);
  await clock.advance(50);
  expect(scheduler.waiting).toBe(3);
  const reason = new Error("cancelled");
  controller.abort(reason);
  expect(await b).toBe(reason);
  expect(scheduler.waiting).toBe(2);
  await clock.advance(150);
  expect(a).toEqual([t0]);
  expect(c).toEqual([t0 + 100]); // the slot b would have had
  expect(d).toEqual([t0 + 200]); // and no slot was spent on b
  expect(scheduler.released).toBe(3);
  expect(clock.pending).toBe(0);
});

test("Scheduler.acquire() aborted twice is harmless", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 10, clock });
  acquireMany(scheduler, 1);
  const controller = new AbortController();
  const first = new Error("first");
  const b = reasonOf(scheduler.acquire({ signal: controller.signal }));
  const c = acquireMany(scheduler, 1);
  controller.abort(first);
  controller.abort(new Error("second"));
  controller.signal.dispatchEvent(new Event("abort"));
  expect(await b).toBe(first);
  expect(scheduler.waiting).toBe(1);
  await clock.advance(100);
  expect(c).toHaveLength(1);
  expect(scheduler.waiting).toBe(0);
  expect(scheduler.released).toBe(2);
  // The same signal, reused, rejects at once with its first reason.
  expect(await reasonOf(scheduler.acquire({ signal: controller.signal }))).toBe(first);
});

test("Scheduler.acquire() aborting a waiter that already has its slot changes nothing", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 10, clock });
  const controller = new AbortController();
  const t = await scheduler.acquire({ signal: controller.signal });
  controller.abort(new Error("late"));
  expect(t).toBe(clock.now());
  expect(scheduler.waiting).toBe(0);
  expect(scheduler.released).toBe(1);
});

test("Scheduler.close() rejects every waiter and leaves no timer pending", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 1, clock });
  await scheduler.acquire();
  const reason = new Error("closed by test");
  const waits = [
    reasonOf(scheduler.acquire()),
    reasonOf(scheduler.acquire({ lane: "b" })),
    reasonOf(scheduler.acquire({ signal: new AbortController().signal })),
  ];
  expect(clock.pending).toBe(1);
  scheduler.close(reason);
  expect(await Promise.all(waits)).toEqual([reason, reason, reason]);
  expect(clock.pending).toBe(0);
  expect(scheduler.waiting).toBe(0);
  expect(await reasonOf(scheduler.acquire())).toBe(reason);
  scheduler.close(new Error("again")); // idempotent
  expect(await reasonOf(scheduler.acquire())).toBe(reason);
  await clock.advance(10_000);
  expect(scheduler.released).toBe(1);
});

test("Scheduler.close() without a reason rejects with an AbortError", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 1, clock });
  acquireMany(scheduler, 1);
  const wait = reasonOf(scheduler.acquire());
  scheduler.close();
  const reason = await wait;
  expect(reason).toBeInstanceOf(DOMException);
  expect((reason as DOMException).name).toBe("AbortError");
});

test("Scheduler signal option closes the scheduler", async () => {
  const clock = new FakeClock();
  const controller = new AbortController();
  const scheduler = new Scheduler({ rate: 5, clock, signal: controller.signal });
  acquireMany(scheduler, 1);
  const waits = [reasonOf(scheduler.acquire()), reasonOf(scheduler.acquire())];
  expect(clock.pending).toBe(1);
  const reason = new Error("shutdown");
  controller.abort(reason);
  expect(await Promise.all(waits)).toEqual([reason, reason]);
  expect(clock.pending).toBe(0);
  expect(await reasonOf(scheduler.acquire())).toBe(reason);
});

test("Scheduler signal option already aborted closes the scheduler at once", async () => {
  const reason = new Error("never started");
  const scheduler = new Scheduler({
    rate: 5,
    clock: new FakeClock(),
    signal: AbortSignal.abort(reason),
  });
  expect(await reasonOf(scheduler.acquire())).toBe(reason);
});

test("Scheduler.setRate() raises the rate from the next slot on, without a burst", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate: 2, clock });
  const times = acquireMany(scheduler, 12);
  await clock.advance(250);
  scheduler.setRate(10);
  expect(scheduler.rate).toBe(10);
  await clock.advance(2000);
  // The new grid starts where the old one had its next slot (+500), then 100 ms apart.
  expect(times).toEqual(Array.from({ length: 12 }, (_, i) => i === 0 ? t0 : t0 + 400 + i * 100));
});

test("Scheduler.setRate() lowers the rate mid-run without a burst", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate: 10, clock });
  const times = acquireMany(scheduler, 20);
  await clock.advance(950);
  expect(times).toHaveLength(10);
  scheduler.setRate(2);
  await clock.advance(6000);
  const after = times.slice(10);
  expect(after.length).toBeGreaterThan(5);
  expect(after[0]).toBeGreaterThanOrEqual(t0 + 1000);
  for (const gap of gaps(after)) expect(gap).toBe(500);
  // No 1 s window after the change holds more than the new rate, and across the change no more
  // than the new rate plus the slot of slack.
  expect(maxInWindow(after, 1000)).toBeLessThanOrEqual(2);
  expect(maxInWindow(times.slice(9), 1000)).toBeLessThanOrEqual(3);
});

test("Scheduler.setRate() while idle does not turn the idle time into a burst", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 5, clock });
  acquireMany(scheduler, 1);
  await clock.advance(10_000);
  scheduler.setRate(10);
  const now = clock.now();
  const times = acquireMany(scheduler, 15);
  await clock.advance(2000);
  // As after any idle gap longer than maxLagMs: one slot now, then 100 ms apart.
  expect(times).toEqual(Array.from({ length: 15 }, (_, i) => now + i * 100));
});

test("Scheduler.pauseUntil() holds releases until then and does not burst after", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate: 10, clock });
  const times = acquireMany(scheduler, 20);
  await clock.advance(150);
  expect(times).toEqual([t0, t0 + 100]);
  scheduler.pauseUntil(t0 + 3000);
  expect(scheduler.pausedUntil).toBe(t0 + 3000);
  await clock.advance(2849);
  expect(times).toHaveLength(2);
  await clock.advance(1);
  expect(times).toHaveLength(3);
  await clock.advance(2000);
  expect(times.slice(2)).toEqual(Array.from({ length: 18 }, (_, i) => t0 + 3000 + i * 100));
});

test("Scheduler.pauseUntil() can only extend a pause", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const scheduler = new Scheduler({ rate: 10, clock });
  const times = acquireMany(scheduler, 3);
  scheduler.pauseUntil(t0 + 2000);
  scheduler.pauseUntil(t0 + 500);
  expect(scheduler.pausedUntil).toBe(t0 + 2000);
  await clock.advance(3000);
  expect(times).toEqual([t0, t0 + 2000, t0 + 2100]);
});

for (const rate of [0, -1, NaN, Infinity]) {
  test(`Scheduler rejects rate ${rate} with a RangeError naming the value`, () => {
    expect(() => new Scheduler({ rate, clock: new FakeClock() })).toThrow(RangeError);
    expect(() => new Scheduler({ rate, clock: new FakeClock() })).toThrow(
      `current value is ${rate}`,
    );
    const scheduler = new Scheduler({ rate: 1, clock: new FakeClock() });
    expect(() => scheduler.setRate(rate)).toThrow(RangeError);
    expect(() => scheduler.setRate(rate)).toThrow(`current value is ${rate}`);
    expect(scheduler.rate).toBe(1);
  });
}

test("Scheduler counts released slots and waiting waiters", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 10, clock });
  expect(scheduler.released).toBe(0);
  expect(scheduler.waiting).toBe(0);
  acquireMany(scheduler, 5);
  expect(scheduler.released).toBe(1);
  expect(scheduler.waiting).toBe(4);
  await clock.advance(200);
  expect(scheduler.released).toBe(3);
  expect(scheduler.waiting).toBe(2);
  await clock.advance(1000);
  expect(scheduler.released).toBe(5);
  expect(scheduler.waiting).toBe(0);
  expect(clock.pending).toBe(0);
});

/**
 * A clock for a caller that is behind: time moves only by `work(ms)` (the caller's own CPU per
 * slot), and turns of the event loop asked for with `nextTurn` wait until the test runs them
 * (`turn()`), the way a busy event loop holds them.
 */
class BusyClock extends SyncClock {
  turns: (() => void)[] = [];
  nextTurn(fn: () => void): void {
    this.turns.push(fn);
  }
  /** Runs the turns asked for so far, then any timer due by now. */
  turn(): void {
    const turns = this.turns;
    this.turns = [];
    for (const fn of turns) fn();
    this.runTo(this.now());
  }
}

/** Microtasks only: what runs before the event loop turns. */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

test("Scheduler hands out due slots for at most TURN_MS of a behind caller's work without a turn", async () => {
  const clock = new BusyClock();
  const scheduler = new Scheduler({ rate: 1000, clock });
  const released: number[] = [];
  let stop = false;
  // A run's dispatch loop: take a slot, spend 0.4 ms on the request, take the next.
  const loop = (async () => {
    while (!stop) {
      released.push(await scheduler.acquire());
      clock.work(0.4);
    }
  })();
  clock.turn(); // the first slot waits for a turn too: nothing was handed out since one
  await microtasks();
  clock.work(200); // a stall: 200 slots are due at once
  clock.turn();
  await microtasks();
  // Between two turns the caller got slots for about TURN_MS only, not the 50 that are due.
  const between: number[] = [];
  for (let i = 0; i < 40; i++) {
    const before = released.length;
    expect(clock.turns).toHaveLength(1); // it waits for the event loop, not for a timer
    clock.turn();
    await microtasks();
    between.push(released.length - before);
  }
  for (const n of between) {
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(Math.ceil(TURN_MS / 0.4) + 1);
  }
  // Still on the grid: every slot goes at or after its due time, none is lost.
  released.forEach((t, i) => expect(t).toBeGreaterThanOrEqual(released[0] + i));
  stop = true;
  scheduler.close();
  await loop.catch(() => {});
});

test("Scheduler with a clock that has no nextTurn hands out every due slot at once (FakeClock)", async () => {
  const clock = new FakeClock();
  const scheduler = new Scheduler({ rate: 1000, clock });
  acquireMany(scheduler, 1);
  await clock.advance(20, { late: true }); // a stall of 20 ms
  const times = acquireMany(scheduler, 10);
  await flush();
  expect(times).toHaveLength(10);
});

test("Scheduler spaces a restarted grid from its first slot's release, when a turn delays it", async () => {
  const clock = new BusyClock();
  const scheduler = new Scheduler({ rate: 1000, clock });
  const times: number[] = [];
  scheduler.acquire().then((t) => times.push(t));
  clock.turn();
  await microtasks();
  clock.work(40); // the first answer is on its way: the gate holds the run
  clock.turn();
  const start = clock.now();
  for (let i = 0; i < 5; i++) scheduler.acquire({ restart: true }).then((t) => times.push(t));
  await microtasks();
  expect(times).toHaveLength(1); // the restarted grid's first slot waits for a turn
  clock.work(3); // which the event loop, busy with the first answer, gives 3 ms later
  clock.turn();
  await microtasks();
  expect(times).toEqual([1000, start + 3]);
  // The next slots follow 1 ms apart from there: not slots 1-3 at once to make up the 3 ms.
  for (let ms = 1; ms <= 4; ms++) {
    clock.work(1);
    clock.turn();
    await microtasks();
    expect(times.at(-1)).toBe(start + 3 + ms);
  }
  expect(times).toHaveLength(6);
  scheduler.close();
});
