// Tests of src/quota.ts on hand-driven clocks: the AIMD slow-down on 429s and the climb back,
// "auto" ramping, x-ratelimit-* headers, and the tokens-per-minute gate. Every assertion is on
// rates and release times, never on the wall clock.
import { expect, test } from "bun:test";
import { mulberry32 } from "../src/_prng.ts";
import { type Clock, delay } from "../src/clock.ts";
import type { FailureInfo } from "../src/errors.ts";
import { Quota, TOKEN_BURST_SHARE, TOKEN_PACE } from "../src/quota.ts";
import { TokenGate } from "../src/token_gate.ts";
import { parseRateLimitHeaders } from "../src/rate_limit_headers.ts";
import { Scheduler } from "../src/scheduler.ts";
import type { TokenEstimate } from "../src/tokens.ts";
import { FakeClock, flush, SyncClock } from "./_fake_clock.ts";

/** A per-minute quota 429 that says the quota is spent, as OpenAI words it. */
function rateLimited(extra: Partial<FailureInfo> = {}): FailureInfo {
  return {
    status: 429,
    code: "rate_limit_exceeded",
    message:
      "Rate limit reached for m on requests per min (RPM): Limit 600, Used 600, Requested 1.",
    retryable: true,
    kind: "rate_limit",
    ...extra,
  };
}

/** Queues `n` acquires that stay pending (so the scheduler is saturated); rejections ignored. */
function saturate(quota: Quota, n: number): void {
  for (let i = 0; i < n; i++) quota.acquire().catch(() => {});
}

/** Starts `n` acquires at once and records the clock time each resolves at, in order. */
function acquireMany(
  quota: Quota,
  clock: Clock,
  n: number,
  tokens?: TokenEstimate,
  times: number[] = [],
): number[] {
  for (let i = 0; i < n; i++) {
    quota.acquire({ tokens }).then(() => times.push(clock.now()), () => {});
  }
  return times;
}

/** A rejection reason captured without leaving the promise unhandled. */
function reasonOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => "resolved", (reason) => reason);
}

/**
 * Calls `onSuccess` every `everyMs` from `from` to `to` (inclusive) and returns the rate in
 * force after each call.
 */
function feedSuccesses(
  quota: Quota,
  clock: SyncClock,
  from: number,
  to: number,
  everyMs: number,
): { t: number; rate: number }[] {
  const out: { t: number; rate: number }[] = [];
  for (let t = from; t <= to + 1e-9; t += everyMs) {
    clock.runTo(t);
    quota.onSuccess({});
    out.push({ t: clock.now(), rate: quota.stats.rate });
  }
  return out;
}

/** The points of `samples` where the rate changed from the sample before. */
function changes(samples: { t: number; rate: number }[], before: number) {
  const out: { t: number; from: number; to: number }[] = [];
  let last = before;
  for (const s of samples) {
    if (s.rate !== last) out.push({ t: s.t, from: last, to: s.rate });
    last = s.rate;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Construction

for (const rate of [0, -1, NaN, Infinity]) {
  test(`Quota rejects rate ${rate} with a RangeError naming the value`, () => {
    expect(() => new Quota({ rate, clock: new SyncClock() })).toThrow(RangeError);
    expect(() => new Quota({ rate, clock: new SyncClock() })).toThrow(`current value is ${rate}`);
    expect(() => new Quota({ rate, clock: new SyncClock() })).toThrow("'rate'");
  });
}

for (const tpm of [0, -5, NaN]) {
  test(`Quota rejects tpm ${tpm} with a RangeError naming the value`, () => {
    expect(() => new Quota({ rate: 1, tpm, clock: new SyncClock() })).toThrow(RangeError);
    expect(() => new Quota({ rate: 1, tpm, clock: new SyncClock() })).toThrow(
      `current value is ${tpm}`,
    );
    expect(() => new Quota({ rate: 1, tpm, clock: new SyncClock() })).toThrow("'tpm'");
  });
}

test("Quota with a numeric rate runs its scheduler at that rate", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 4, clock });
  expect(quota.scheduler.rate).toBe(4);
  expect(quota.stats).toMatchObject({
    configuredRate: 4,
    rate: 4,
    lowestRate: 4,
    rateLimited: 0,
    slowdowns: 0,
  });
  expect(quota.stats.tpm).toBeUndefined();
  const times = acquireMany(quota, clock, 5);
  await clock.advance(1000);
  expect(times).toEqual([t0, t0 + 250, t0 + 500, t0 + 750, t0 + 1000]);
  quota.close();
});

test('Quota with rate "auto" starts at 4 req/s, or at autoStartRate', () => {
  const auto = new Quota({ rate: "auto", clock: new SyncClock() });
  expect(auto.scheduler.rate).toBe(4);
  expect(auto.stats.configuredRate).toBe("auto");
  expect(auto.stats.rate).toBe(4);
  const fast = new Quota({ rate: "auto", autoStartRate: 3, clock: new SyncClock() });
  expect(fast.scheduler.rate).toBe(3);
});

test("Quota with a given scheduler uses it and sets it to the configured rate", () => {
  const clock = new SyncClock();
  const scheduler = new Scheduler({ rate: 50, clock });
  const quota = new Quota({ rate: 5, scheduler, clock });
  expect(quota.scheduler).toBe(scheduler);
  expect(scheduler.rate).toBe(5);
});

test("Quota with a tpm reports it in stats", () => {
  expect(new Quota({ rate: 1, tpm: 6000, clock: new SyncClock() }).stats.tpm).toBe(6000);
});

// ---------------------------------------------------------------------------------------------
// 429s: pause for the hint, slow down once per burst

test("Quota.acquire() resolves with send-order tickets 0, 1, 2…", async () => {
  const clock = new FakeClock();
  const quota = new Quota({ rate: 10, clock });
  const tickets: number[] = [];
  for (let i = 0; i < 3; i++) quota.acquire().then((t) => tickets.push(t), () => {});
  await clock.advance(200);
  expect(tickets).toEqual([0, 1, 2]);
  quota.close();
});

test("Quota.onFailure() does not pause dispatch for a 429's hint: only the refused request waits it", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  const tickets: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < 6; i++) {
    quota.acquire().then((t) => {
      tickets.push(t);
      times.push(clock.now());
    }, () => {});
  }
  await clock.advance(50);
  quota.onFailure(rateLimited({ retryAfterMs: 3000 }), undefined, tickets[0]);
  expect(quota.scheduler.pausedUntil).toBe(-Infinity);
  expect(quota.stats.pausedUntil).toBeUndefined();
  // Nothing admitted yet: half the rate, at once.
  expect(quota.stats.rate).toBe(5);
  await clock.advance(1000);
  expect(times.length).toBeGreaterThanOrEqual(5);
  expect(times.every((t) => t < t0 + 3000)).toBe(true);
  quota.close();
});

test("Quota pauses everyone until the hint when consecutive sends stay refused after a slow-down", async () => {
  const clock = new FakeClock();
  const quota = new Quota({ rate: 10, clock });
  const tickets: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    quota.acquire().then((t) => {
      tickets.push(t);
      times.push(clock.now());
    }, () => {});
  }
  await clock.advance(10);
  quota.onFailure(rateLimited({ retryAfterMs: 2000 }), undefined, tickets[0]);
  expect(quota.stats.rate).toBe(5);
  expect(quota.stats.slowdowns).toBe(1);
  // The next two sends, made at the new rate, are refused one after the other.
  while (tickets.length < 3) await clock.advance(10);
  quota.onFailure(rateLimited({ retryAfterMs: 1500 }), undefined, tickets[1]);
  expect(quota.scheduler.pausedUntil).toBe(-Infinity);
  quota.onFailure(rateLimited({ retryAfterMs: 1500 }), undefined, tickets[2]);
  const until = clock.now() + 1500;
  expect(quota.scheduler.pausedUntil).toBe(until);
  expect(quota.stats.pausedUntil).toBe(until);
  const sent = times.length;
  await clock.advance(1499);
  expect(times.length).toBe(sent); // nothing released during the pause
  await clock.advance(1);
  expect(times.length).toBe(sent + 1);
  expect(times[sent]).toBe(until);
  expect(quota.stats.slowdowns).toBe(1); // the pause is no further slow-down
  quota.close();
});

test("Quota keeps its rate on one stray 429 (no quota named) and slows on a run of them", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  const strayInfo = rateLimited({ message: "Too many requests" });
  // 20 answers admitted over the last second, so the 429s stay a small share of them.
  for (let i = 1; i <= 20; i++) {
    clock.runTo(t0 + i * 50);
    quota.onSuccess({});
  }
  quota.onFailure(strayInfo, undefined, 0);
  expect(quota.stats.rate).toBe(10);
  expect(quota.stats.rateLimited).toBe(1);
  quota.onSuccess({ ticket: 1 });
  quota.onFailure(strayInfo, undefined, 2);
  quota.onFailure(strayInfo, undefined, 3);
  expect(quota.stats.rate).toBe(10);
  quota.onFailure(strayInfo, undefined, 4); // the third in a row
  // 20 admitted a second, more than the rate: its edge, 97 % of the rate.
  expect(quota.stats.rate).toBeCloseTo(9.7, 9);
  expect(quota.stats.slowdowns).toBe(1);
});

test("Quota ignores 429s for requests sent before its slow-down took effect", async () => {
  const clock = new FakeClock();
  const quota = new Quota({ rate: 10, clock });
  const tickets: number[] = [];
  for (let i = 0; i < 30; i++) quota.acquire().then((t) => tickets.push(t), () => {});
  await clock.advance(450); // tickets 0..4 sent
  quota.onFailure(rateLimited(), undefined, 2);
  // 4 sends admitted in the last second: 3.8, clamped to half of 10.
  const slowed = quota.stats.rate;
  expect(slowed).toBe(5);
  await clock.advance(3000);
  quota.onFailure(rateLimited(), undefined, 3);
  quota.onFailure(rateLimited(), undefined, 4);
  expect(quota.stats.rate).toBe(slowed);
  expect(quota.stats.slowdowns).toBe(1);
  expect(quota.stats.rateLimited).toBe(3);
  quota.onFailure(rateLimited(), undefined, tickets[tickets.length - 1]);
  expect(quota.stats.slowdowns).toBe(2);
  quota.close();
});

test("Quota.onFailure() does not pause when a 429 carries no hint", () => {
  const clock = new SyncClock();
  const quota = new Quota({ rate: 10, clock });
  quota.onFailure(rateLimited());
  quota.onFailure(rateLimited({ retryAfterMs: 0 }));
  expect(quota.scheduler.pausedUntil).toBe(-Infinity);
  expect(quota.stats.pausedUntil).toBeUndefined();
});

/** A quota at `rate` that has seen `perSecond` successes a second for the last 2 s. */
function quotaAfterSuccesses(rate: number, perSecond: number) {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate, clock });
  const n = perSecond * 2;
  for (let i = 1; i <= n; i++) {
    clock.runTo(t0 + (i * 2000) / n);
    quota.onSuccess({});
  }
  clock.runTo(t0 + 2000);
  expect(quota.stats.rate).toBe(rate); // idle: no climb, no change
  return { clock, t0, quota };
}

test("Quota slows to about the accepted rate on a 429: 20/s accepted at rate 40 gives 20", () => {
  const { quota } = quotaAfterSuccesses(40, 20);
  quota.onFailure(rateLimited());
  // clamp(accepted × 0.95 = 19, rate × 0.5 = 20, rate × 0.9 = 36)
  expect(quota.stats.rate).toBeCloseTo(20, 9);
  expect(quota.scheduler.rate).toBeCloseTo(20, 9);
  expect(quota.stats.slowdowns).toBe(1);
  expect(quota.stats.rateLimited).toBe(1);
  expect(quota.stats.lowestRate).toBeCloseTo(20, 9);
});

for (
  const [perSecond, expected, why] of [
    [30, 28.5, "95% of the accepted rate"],
    [35, 33.25, "95% of the accepted rate, below 90% of the rate"],
    [39, 38.8, "the quota's edge: 97% of the rate"],
    [50, 38.8, "the quota's edge: 97% of the rate"],
    [5, 20, "at least half the rate"],
    [0, 20, "half the rate when nothing was accepted"],
  ] as const
) {
  test(`Quota slows from 40 to ${expected} on a 429 after ${perSecond}/s accepted (${why})`, () => {
    const { quota } = quotaAfterSuccesses(40, perSecond);
    quota.onFailure(rateLimited());
    expect(quota.stats.rate).toBeCloseTo(expected, 9);
  });
}

test("Quota slows down once per burst: a 429 within the 1 s cooldown does not lower it again", () => {
  const { clock, t0, quota } = quotaAfterSuccesses(40, 20);
  quota.onFailure(rateLimited());
  expect(quota.stats.rate).toBeCloseTo(20, 9);
  clock.runTo(t0 + 2500);
  quota.onFailure(rateLimited());
  clock.runTo(t0 + 2999);
  quota.onFailure(rateLimited());
  expect(quota.stats.rate).toBeCloseTo(20, 9);
  expect(quota.stats.slowdowns).toBe(1);
  expect(quota.stats.rateLimited).toBe(3);
  clock.runTo(t0 + 3000);
  quota.onFailure(rateLimited());
  // Nothing admitted in the last second: half of 20.
  expect(quota.stats.rate).toBeCloseTo(10, 9);
  expect(quota.stats.slowdowns).toBe(2);
  expect(quota.stats.rateLimited).toBe(4);
  expect(quota.stats.lowestRate).toBeCloseTo(10, 9);
});

test("Quota's slow-down cooldown is 1 s however long the hint (a long hint only delays its item)", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 40, clock });
  quota.onFailure(rateLimited({ retryAfterMs: 3000 }));
  expect(quota.stats.rate).toBe(20);
  clock.runTo(t0 + 999);
  quota.onFailure(rateLimited());
  expect(quota.stats.rate).toBe(20);
  clock.runTo(t0 + 1000);
  quota.onFailure(rateLimited());
  expect(quota.stats.rate).toBe(10);
  expect(quota.stats.slowdowns).toBe(2);
  expect(quota.stats.rateLimited).toBe(3);
});

test("Quota never slows below minRate", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 8, minRate: 3, clock });
  const rates: number[] = [];
  for (let i = 0; i < 4; i++) {
    clock.runTo(t0 + i * 1000);
    quota.onFailure(rateLimited());
    rates.push(quota.stats.rate);
  }
  expect(rates).toEqual([4, 3, 3, 3]);
  expect(quota.stats.lowestRate).toBe(3);
  expect(quota.stats.rateLimited).toBe(4);
});

test("Quota never slows below 0.1 req/s by default", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 1, clock });
  const rates: number[] = [];
  for (let i = 0; i < 6; i++) {
    clock.runTo(t0 + i * 1000);
    quota.onFailure(rateLimited());
    rates.push(quota.stats.rate);
  }
  expect(rates).toEqual([0.5, 0.25, 0.125, 0.1, 0.1, 0.1]);
  expect(quota.stats.lowestRate).toBe(0.1);
  expect(quota.stats.slowdowns).toBe(6);
});

test("Quota tracks the lowest rate, not the current one, in lowestRate", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  saturate(quota, 200);
  quota.onFailure(rateLimited());
  expect(quota.stats.lowestRate).toBe(5);
  feedSuccesses(quota, clock, t0 + 1000, t0 + 3000, 1000);
  expect(quota.stats.rate).toBeGreaterThan(5);
  expect(quota.stats.lowestRate).toBe(5);
  quota.close();
});

const notRateLimits: [string, FailureInfo][] = [
  ["a 500 without a kind", { status: 500, code: "server_error", message: "x", retryable: true }],
  ["a 503 with a hint", {
    status: 503,
    code: "overloaded",
    message: "x",
    retryable: true,
    retryAfterMs: 5000,
  }],
  ["a timeout", { status: 0, code: "timeout", message: "x", retryable: true }],
  ["billing", {
    status: 429,
    code: "insufficient_quota",
    message: "x",
    retryable: false,
    kind: "billing",
  }],
  ["auth", { status: 401, code: "invalid_api_key", message: "x", retryable: false, kind: "auth" }],
  ["daily_quota", {
    status: 429,
    code: "RESOURCE_EXHAUSTED",
    message: "x",
    retryable: false,
    kind: "daily_quota",
    retryAfterMs: 60_000,
  }],
];

for (const [name, info] of notRateLimits) {
  test(`Quota keeps its rate when a request fails with ${name}`, () => {
    const clock = new SyncClock();
    const t0 = clock.now();
    const quota = new Quota({ rate: 10, clock });
    for (let i = 0; i < 5; i++) {
      clock.runTo(t0 + i * 1500);
      quota.onFailure(info);
    }
    expect(quota.stats.rate).toBe(10);
    expect(quota.scheduler.rate).toBe(10);
    expect(quota.stats.lowestRate).toBe(10);
    expect(quota.stats.rateLimited).toBe(0);
    expect(quota.stats.slowdowns).toBe(0);
  });
}

test("Quota with adaptive: false keeps its rate on 429s but still honours the hint", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, adaptive: false, clock });
  quota.onFailure(rateLimited({ retryAfterMs: 2000 }));
  clock.runTo(t0 + 5000);
  quota.onFailure(rateLimited());
  expect(quota.stats.rate).toBe(10);
  expect(quota.stats.slowdowns).toBe(0);
  expect(quota.scheduler.pausedUntil).toBe(t0 + 2000);
});

// ---------------------------------------------------------------------------------------------
// Climbing back

/** Rate 10 with the scheduler saturated, 10 successes/s for 2 s, then a 429 at t0 + 2000. */
function slowedWhileSaturated() {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  saturate(quota, 1000);
  const before = feedSuccesses(quota, clock, t0 + 100, t0 + 2000, 100);
  expect(before.every((s) => s.rate === 10)).toBe(true); // at the ceiling already
  quota.onFailure(rateLimited());
  // 10/s admitted, all of the rate: its edge, 97 % of it; the quota estimate is 10.
  expect(quota.stats.rate).toBeCloseTo(9.7, 9);
  return { clock, t0, quota };
}

test("Quota climbs back 0.5 % of the quota estimate a second near it, while waiters are queued", () => {
  const { clock, t0, quota } = slowedWhileSaturated();
  const samples = feedSuccesses(quota, clock, t0 + 2100, t0 + 6000, 100);
  expect(quota.scheduler.waiting).toBeGreaterThan(0);
  const steps = changes(samples, 9.7);
  // Nothing during the 1 s cooldown; then one step of 0.05 a second.
  expect(steps.map((s) => s.t)).toEqual([t0 + 3000, t0 + 4000, t0 + 5000, t0 + 6000]);
  const expected = [9.75, 9.8, 9.85, 9.9];
  steps.forEach((s, i) => expect(s.to).toBeCloseTo(expected[i], 9));
  quota.close();
});

test("Quota climbs back no faster than one step per second however many successes arrive", () => {
  const { clock, t0, quota } = slowedWhileSaturated();
  const samples = feedSuccesses(quota, clock, t0 + 2010, t0 + 8000, 10);
  const steps = changes(samples, 9.7);
  expect(steps.length).toBe(6); // t0 + 3000 … t0 + 8000
  for (let i = 1; i < steps.length; i++) {
    expect(steps[i].t - steps[i - 1].t).toBeGreaterThanOrEqual(1000);
  }
  for (const s of steps) expect(s.to).toBeGreaterThan(s.from);
  quota.close();
});

test("Quota climbs back to the configured rate and never above it", () => {
  const { clock, t0, quota } = slowedWhileSaturated();
  const samples = feedSuccesses(quota, clock, t0 + 2500, t0 + 30_000, 500);
  expect(quota.scheduler.waiting).toBeGreaterThan(0);
  for (const s of samples) expect(s.rate).toBeLessThanOrEqual(10);
  expect(quota.stats.rate).toBe(10);
  // 9.7 → 10 in 6 steps of 0.05: 10 is reached at t0 + 8 s, not before.
  expect(samples.find((s) => s.rate > 10 - 1e-9)?.t).toBe(t0 + 8000);
  quota.close();
});

test("Quota does not climb back while the scheduler is idle", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  quota.onFailure(rateLimited());
  expect(quota.stats.rate).toBe(5);
  const samples = feedSuccesses(quota, clock, t0 + 100, t0 + 10_000, 100);
  expect(quota.scheduler.waiting).toBe(0);
  expect(samples.every((s) => s.rate === 5)).toBe(true);
});

test("Quota climbs back fast (5 % of twice the rate a second) when it has no estimate to respect", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  saturate(quota, 500);
  quota.onFailure(rateLimited()); // nothing admitted yet: 10 → 5, no estimate above that
  const samples = feedSuccesses(quota, clock, t0 + 1000, t0 + 3000, 1000);
  // 5 % of min(ceiling 10, 2 × rate) a second.
  [5.5, 6, 6.5].forEach((r, i) => expect(samples[i].rate).toBeCloseTo(r, 9));
  quota.close();
});

// ---------------------------------------------------------------------------------------------
// "auto"

test('Quota with rate "auto" doubles every 250 ms while saturated, then climbs additively after a 429', () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: "auto", autoStartRate: 2, clock });
  saturate(quota, 1000);
  const ramp = feedSuccesses(quota, clock, t0 + 125, t0 + 1000, 125);
  const up = changes(ramp, 2);
  expect(up.map((s) => s.t)).toEqual([t0 + 250, t0 + 500, t0 + 750, t0 + 1000]);
  [4, 8, 16, 32].forEach((r, i) => expect(up[i].to).toBeCloseTo(r, 9));
  expect(quota.stats.slowdowns).toBe(0);
  expect(quota.stats.lowestRate).toBe(2);

  clock.runTo(t0 + 1100);
  quota.onFailure(rateLimited());
  // The ramp's end: settle at once at the 8 admitted in the last second × 0.95, however far
  // below the rate (a later slow-down never goes below half the rate in one step).
  expect(quota.stats.rate).toBeCloseTo(7.6, 9);

  const slowed = quota.stats.rate;
  const after = feedSuccesses(quota, clock, t0 + 1250, t0 + 4000, 250);
  const climb = changes(after, slowed);
  // Additive from here, once a second after the cooldown: never doubling again.
  expect(climb.map((s) => s.t)).toEqual([t0 + 2250, t0 + 3250]);
  for (const s of climb) expect(s.to).toBeLessThan(s.from * 1.15);
  quota.close();
});

test('Quota with rate "auto" does not ramp while the scheduler is idle', () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: "auto", clock });
  const samples = feedSuccesses(quota, clock, t0 + 500, t0 + 5000, 500);
  expect(samples.every((s) => s.rate === 4)).toBe(true);
});

// ---------------------------------------------------------------------------------------------
// x-ratelimit-* headers

test("Quota caps the rate at 98% of x-ratelimit-limit-requests per second", () => {
  const clock = new SyncClock();
  const quota = new Quota({ rate: 40, clock });
  const rateLimit = parseRateLimitHeaders(new Headers({ "x-ratelimit-limit-requests": "600" }));
  quota.onSuccess({ rateLimit });
  expect(quota.stats.rate).toBeCloseTo((600 / 60) * 0.98, 9);
  expect(quota.scheduler.rate).toBeCloseTo(9.8, 9);
});

test("Quota keeps its rate when x-ratelimit-limit-requests allows more", () => {
  const quota = new Quota({ rate: 40, clock: new SyncClock() });
  quota.onSuccess({ rateLimit: { limitRequests: 6000 } }); // 98/s
  expect(quota.stats.rate).toBe(40);
});

test("Quota never climbs above the header's request limit after a slow-down", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 40, clock });
  saturate(quota, 2000);
  const rateLimit = { limitRequests: 600 };
  quota.onSuccess({ rateLimit });
  quota.onFailure(rateLimited());
  expect(quota.stats.rate).toBeCloseTo(4.9, 9);
  let highest = 0;
  for (let t = t0 + 1000; t <= t0 + 60_000; t += 500) {
    clock.runTo(t);
    quota.onSuccess({ rateLimit });
    highest = Math.max(highest, quota.stats.rate);
  }
  expect(highest).toBeLessThanOrEqual(9.8 + 1e-9);
  expect(quota.stats.rate).toBeCloseTo(9.8, 9);
  quota.close();
});

test("Quota never climbs above the configured rate when the header's limit is higher", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 40, clock });
  saturate(quota, 3000);
  const rateLimit = { limitRequests: 6000 }; // 98/s
  quota.onFailure(rateLimited());
  expect(quota.stats.rate).toBe(20);
  let highest = 0;
  for (let t = t0 + 1000; t <= t0 + 60_000; t += 500) {
    clock.runTo(t);
    quota.onSuccess({ rateLimit });
    highest = Math.max(highest, quota.stats.rate);
  }
  expect(highest).toBeLessThanOrEqual(40);
  expect(quota.stats.rate).toBeCloseTo(40, 9);
  quota.close();
});

test("Quota pauses until the reset when x-ratelimit-remaining-requests is at 1% of the limit", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  const times = acquireMany(quota, clock, 1);
  await clock.advance(100);
  quota.onSuccess({
    rateLimit: parseRateLimitHeaders(
      new Headers({
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "6",
        "x-ratelimit-reset-requests": "2s",
      }),
    ),
  });
  expect(quota.scheduler.pausedUntil).toBe(t0 + 2100);
  expect(quota.stats.pausedUntil).toBe(t0 + 2100);
  acquireMany(quota, clock, 2, undefined, times);
  await clock.advance(1999);
  expect(times).toEqual([t0]);
  await clock.advance(1);
  expect(times).toEqual([t0, t0 + 2100]);
  quota.close();
});

test("Quota does not pause while x-ratelimit-remaining-requests is above 1% of the limit", () => {
  const quota = new Quota({ rate: 10, clock: new SyncClock() });
  quota.onSuccess({
    rateLimit: { limitRequests: 600, remainingRequests: 7, resetRequestsMs: 2000 },
  });
  expect(quota.scheduler.pausedUntil).toBe(-Infinity);
  expect(quota.stats.pausedUntil).toBeUndefined();
});

test("Quota pauses on remaining 0 or 1 when the response names no limit", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  quota.onSuccess({ rateLimit: { remainingRequests: 1, resetRequestsMs: 800 } });
  expect(quota.scheduler.pausedUntil).toBe(t0 + 800);
  const other = new Quota({ rate: 10, clock });
  other.onSuccess({ rateLimit: { remainingRequests: 2, resetRequestsMs: 800 } });
  expect(other.scheduler.pausedUntil).toBe(-Infinity);
});

test("Quota pauses until the token reset when x-ratelimit-remaining-tokens runs low", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 10, clock });
  const headers = (remaining: number) =>
    parseRateLimitHeaders(
      new Headers({
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": String(remaining),
        "x-ratelimit-reset-tokens": "1.5s",
      }),
    );
  quota.onSuccess({ rateLimit: headers(101) });
  expect(quota.scheduler.pausedUntil).toBe(-Infinity);
  quota.onSuccess({ rateLimit: headers(100) });
  expect(quota.scheduler.pausedUntil).toBe(t0 + 1500);
});

test("Quota reads rate-limit headers that come with a failure", () => {
  const clock = new SyncClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 40, clock });
  quota.onFailure({
    status: 500,
    code: "server_error",
    message: "x",
    retryable: true,
    rateLimit: { limitRequests: 600, remainingRequests: 0, resetRequestsMs: 700 },
  });
  expect(quota.stats.rate).toBeCloseTo(9.8, 9);
  expect(quota.scheduler.pausedUntil).toBe(t0 + 700);
});

test("Quota with adaptive: false does not change its rate on x-ratelimit-limit-requests", () => {
  // QuotaOptions.adaptive: "Adjust the rate on 429s and rate-limit headers".
  const quota = new Quota({ rate: 40, adaptive: false, clock: new SyncClock() });
  quota.onSuccess({ rateLimit: { limitRequests: 600 } });
  expect(quota.stats.rate).toBe(40);
});

const prompt100: TokenEstimate = { prompt: 100, output: 0, outputFromLine: true };

/**
 * Milliseconds of budget one token takes at `tpm`: the bucket refills at TOKEN_PACE × tpm
 * tokens a minute.
 */
function msPerToken(tpm: number): number {
  return 60_000 / (tpm * TOKEN_PACE);
}

/** Tokens a full bucket holds at `tpm`: TOKEN_BURST_SHARE × tpm. */
function bucketTokens(tpm: number): number {
  return TOKEN_BURST_SHARE * tpm;
}

/**
 * Expects release times equal to `expected` up to float noise (well under a microsecond): the
 * gate's times are fractions of a millisecond, computed in another order than the test's.
 */
function expectTimes(times: number[], expected: number[]): void {
  expect(times).toHaveLength(expected.length);
  times.forEach((t, i) => expect(t).toBeCloseTo(expected[i], 6));
}

test("Quota adopts x-ratelimit-limit-tokens as a token gate when no tpm was given", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 1000, clock });
  // No gate yet: token estimates do not hold anything back.
  const before = acquireMany(quota, clock, 3, prompt100);
  await clock.advance(10);
  expect(before).toEqual([t0, t0 + 1, t0 + 2]);

  quota.onSuccess({
    rateLimit: parseRateLimitHeaders(new Headers({ "x-ratelimit-limit-tokens": "72000" })),
  });
  expect(quota.stats.tpm).toBeCloseTo(70560, 9);
  // A bucket of 250 ms of 70560/min (294 tokens: three 98-token requests) refilled at 95 %,
  // so each 98-token request past the bucket takes 98 × msPerToken.
  const tpm = 72000 * 0.98;
  const m = msPerToken(tpm);
  const fit = Math.floor(bucketTokens(tpm) / 98);
  const t1 = clock.now();
  const due = (k: number) => t1 + ((k + 1) * 98 - bucketTokens(tpm)) * m;
  const estimate: TokenEstimate = { prompt: 98, output: 0, outputFromLine: true };
  const after = acquireMany(quota, clock, fit + 2, estimate);
  await clock.advance(due(fit) - t1 - 0.001);
  // The bucket's worth goes at once (the scheduler's slots from t0 + 3 on are overdue and
  // caught up); the next must wait for 98 tokens of refill.
  expect(after).toEqual(Array.from({ length: fit }, () => t1));
  await clock.advance(due(fit + 1) - clock.now() + 0.001);
  expectTimes(after.slice(fit), [due(fit), due(fit + 1)]);
  quota.close();
});

test("Quota lowers a header-adopted token gate when a lower limit arrives", () => {
  const quota = new Quota({ rate: 1, clock: new SyncClock() });
  quota.onSuccess({ rateLimit: { limitTokens: 10_000 } });
  expect(quota.stats.tpm).toBeCloseTo(9800, 9);
  quota.onSuccess({ rateLimit: { limitTokens: 20_000 } });
  expect(quota.stats.tpm).toBeCloseTo(9800, 9);
  quota.onSuccess({ rateLimit: { limitTokens: 5000 } });
  expect(quota.stats.tpm).toBeCloseTo(4900, 9);
});

test("Quota keeps a user-given tpm when x-ratelimit-limit-tokens is higher", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  quota.onSuccess({ rateLimit: { limitTokens: 600_000 } });
  expect(quota.stats.tpm).toBe(72000);
  // A bucket of 300 tokens at 72000/min: the fourth 100-token request waits for 100 tokens of
  // refill (at 600_000 × 0.98 it would have gone at the next slot, t0 + 3).
  const fit = Math.floor(bucketTokens(72000) / 100);
  const times = acquireMany(quota, clock, fit + 1, prompt100);
  await clock.advance(1500);
  expectTimes(times, [
    ...Array.from({ length: fit }, (_, i) => t0 + i),
    t0 + ((fit + 1) * 100 - bucketTokens(72000)) * msPerToken(72000),
  ]);
  quota.close();
});

// ---------------------------------------------------------------------------------------------
// Token gate: a bucket of TOKEN_BURST_SHARE × tpm (250 ms of it) refilled at TOKEN_PACE × tpm.
// At tpm 72000: 300 tokens (three 100-token requests), refilled at 68400 tokens a minute.

/** The gate at tpm 72000: ms a token, bucket size, and how many 100-token requests fill it. */
const gate72k = {
  m: msPerToken(72000),
  cap: bucketTokens(72000),
  fit: Math.floor(bucketTokens(72000) / 100),
  /**
   * When the k-th (from 0) of back-to-back 100-token requests made at `t` into a full bucket
   * has room, for k at or past `fit`.
   */
  due(t: number, k: number): number {
    return t + ((k + 1) * 100 - this.cap) * this.m;
  },
};

test("Quota paces token acquires at TOKEN_PACE × tpm once the bucket is used up", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { fit } = gate72k;
  const due = (k: number) => gate72k.due(t0, k);
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const times = acquireMany(quota, clock, fit + 2, prompt100);
  await clock.advance(due(fit) - t0 - 0.001);
  // The bucket's worth goes at once, at the scheduler's slots (1 ms apart); the next must wait
  // for 100 tokens of refill (100 × msPerToken ≈ 88 ms), and so on.
  expect(times).toEqual(Array.from({ length: fit }, (_, i) => t0 + i));
  await clock.advance(due(fit + 1) - clock.now() + 0.001);
  expectTimes(times.slice(fit), [due(fit), due(fit + 1)]);
  quota.close();
});

test("Quota lets acquires without a token estimate pass the token gate", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { fit } = gate72k;
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const gated = acquireMany(quota, clock, fit + 1, prompt100); // the last waits for the budget
  await clock.advance(5);
  expect(gated).toHaveLength(fit);
  const times = acquireMany(quota, clock, 2, undefined);
  await clock.advance(5);
  // Scheduler slots fit and fit + 1 (t0 + 3, t0 + 4) are already due: no wait for the budget.
  expect(times).toEqual([t0 + 5, t0 + 5]);
  expect(gated).toHaveLength(fit);
  quota.close();
});

test("Quota.onFailure() refunds the tokens of a rate-limited request", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { fit } = gate72k;
  const due = (k: number) => gate72k.due(t0, k);
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  acquireMany(quota, clock, fit, prompt100); // the bucket used up: the next would go at due(fit)
  await clock.advance(10);
  quota.onFailure(rateLimited(), prompt100);
  expect(prompt100.charged).toBe(0);
  const times = acquireMany(quota, clock, 2, prompt100);
  await clock.advance(due(fit) - clock.now() + 500);
  // Refunded: the next goes now instead of at due(fit), and the one after at due(fit).
  expectTimes(times, [t0 + 10, due(fit)]);
  quota.close();
});

test("Quota.onFailure() without an estimate refunds nothing", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { fit } = gate72k;
  const due = (k: number) => gate72k.due(t0, k);
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  acquireMany(quota, clock, fit, prompt100);
  await clock.advance(10);
  quota.onFailure(rateLimited());
  const times = acquireMany(quota, clock, 1, prompt100);
  await clock.advance(due(fit) - clock.now() + 500);
  expectTimes(times, [due(fit)]);
  quota.close();
});

test("Quota.onSuccess() delays the next acquire when the real output is larger than charged", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { m, cap } = gate72k;
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const estimate: TokenEstimate = { prompt: 100, output: 150, outputFromLine: false };
  expect(quota.cost(estimate)).toBeLessThanOrEqual(cap); // 250 tokens: fits in the bucket
  acquireMany(quota, clock, 1, estimate);
  await clock.advance(10);
  expect(estimate.charged).toBe(250);
  // Prompt as estimated (scale stays 1), 200 more output tokens than assumed: 450 charged.
  quota.onSuccess({ estimate, usage: { input_tokens: 100, output_tokens: 350 } });
  expect(estimate.charged).toBe(450);
  const times = acquireMany(quota, clock, 1, estimate);
  await clock.advance(5000);
  // The next 250 has room once 450 + 250 − cap tokens are refilled: not 250 + 250 − cap as
  // without the correction.
  expectTimes(times, [t0 + (450 + 250 - cap) * m]);
  quota.close();
});

test("Quota.onSuccess() brings the next acquire forward when the real output is smaller", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { m, cap } = gate72k;
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const estimate: TokenEstimate = { prompt: 100, output: 150, outputFromLine: false };
  acquireMany(quota, clock, 1, estimate); // 250 tokens
  await clock.advance(10);
  quota.onSuccess({ estimate, usage: { input_tokens: 100, output_tokens: 50 } });
  expect(estimate.charged).toBe(150);
  const times = acquireMany(quota, clock, 1, estimate);
  await clock.advance(3000);
  // 100 tokens refunded: room once 150 + 250 − cap are refilled, not 250 + 250 − cap.
  expectTimes(times, [t0 + (150 + 250 - cap) * m]);
  quota.close();
});

test("Quota.onSuccess() counts a declared output budget in full whatever the answer's size", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { m, cap } = gate72k;
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const estimate: TokenEstimate = { prompt: 100, output: 150, outputFromLine: true };
  acquireMany(quota, clock, 1, estimate); // 250 tokens
  await clock.advance(10);
  quota.onSuccess({ estimate, usage: { input_tokens: 100, output_tokens: 3 } });
  expect(estimate.charged).toBe(250); // not 103
  const times = acquireMany(quota, clock, 1, estimate);
  await clock.advance(3000);
  // Room once 250 + 250 − cap are refilled (with the answer's 3 tokens: 103 + 250 − cap).
  expectTimes(times, [t0 + (250 + 250 - cap) * m]);
  quota.close();
});

test("Quota.onSuccess() corrects a prompt by what acquire() charged, not by the new calibration", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { m, cap } = gate72k;
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  acquireMany(quota, clock, 1, prompt100); // charged 100 tokens
  await clock.advance(10);
  // The provider counted 300 prompt tokens: 200 more than charged (the calibration now costs
  // this estimate 120, and correcting from 120 would add only 180).
  quota.onSuccess({ estimate: prompt100, usage: { input_tokens: 300, output_tokens: 5 } });
  expect(prompt100.charged).toBe(300);
  expect(quota.cost(prompt100)).toBe(120);
  const times = acquireMany(quota, clock, 1, prompt100);
  await clock.advance(3000);
  // 300 charged so far, 120 for this one: room once 300 + 120 − cap are refilled.
  expectTimes(times, [t0 + (300 + 120 - cap) * m]);
  quota.close();
});

test("Quota admits a request larger than the bucket once the bucket is full", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const { m, cap } = gate72k;
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const big: TokenEstimate = { prompt: 0, output: 1000, outputFromLine: true };
  expect(quota.cost(big)).toBeGreaterThan(cap); // the bucket can never hold it
  // Into a full bucket: at once.
  const times = acquireMany(quota, clock, 1, big);
  await clock.advance(10);
  expect(times).toEqual([t0]);
  // Another: it overdrew the bucket by 1000 − cap, so it goes when all 1000 are refilled.
  acquireMany(quota, clock, 1, big, times);
  await clock.advance(t0 + 1000 * m - clock.now() - 0.001);
  expect(times).toEqual([t0]);
  await clock.advance(0.002);
  expectTimes(times, [t0, t0 + 1000 * m]);
  // A small one after it waits until the bucket has room for it again.
  acquireMany(quota, clock, 1, prompt100, times);
  await clock.advance(15_000);
  expectTimes(times, [t0, t0 + 1000 * m, t0 + (2000 + 100 - cap) * m]);
  quota.close();
});

test("Quota admits a request larger than the bucket while smaller ones keep arriving", async () => {
  // A run's other workers keep sending 100-token requests back to back; the large one must
  // still get its turn (a gate that serves whoever fits first never lets the bucket fill up).
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const small: TokenEstimate = { prompt: 100, output: 0, outputFromLine: true };
  const big: TokenEstimate = { prompt: 0, output: 1000, outputFromLine: true };
  let open = true;
  const worker = async () => {
    while (open) await quota.acquire({ tokens: { ...small } }).catch(() => (open = false));
  };
  const workers = [worker(), worker()];
  await clock.advance(10);
  const bigAt = acquireMany(quota, clock, 1, big);
  // A full minute's budget (at most 72000 tokens) is far more than it needs to be served.
  await clock.advance(60_000);
  expect(bigAt).toHaveLength(1);
  expect(bigAt[0] - t0).toBeLessThan(60_000);
  open = false;
  quota.close();
  await Promise.all(workers);
});

/**
 * Runs `work` to completion on a {@linkcode SyncClock}: lets promise callbacks settle, then
 * moves time to the next timer, so every callback runs at the time its timer was due.
 */
async function runOnSyncClock<T>(clock: SyncClock, work: Promise<T>): Promise<T> {
  let done = false;
  const result = work.finally(() => (done = true));
  while (true) {
    for (let i = 0; i < 100; i++) await Promise.resolve();
    if (done) return await result;
    const next = clock.nextAt;
    if (next === Infinity) throw new Error("stuck: work pending and no timer armed");
    clock.runTo(next);
  }
}

test("Quota's token gate never admits more than tpm tokens in any sliding minute", async () => {
  const clock = new SyncClock();
  const tpm = 30_000;
  const quota = new Quota({ rate: 1000, tpm, clock });
  const random = mulberry32(0x5eed);
  const admitted: { t: number; cost: number }[] = [];
  let idleMs = 0;
  const work = async () => {
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < 2000; i++) {
      if (random() < 0.005) {
        // Now and then every caller goes quiet, and the bucket fills up again.
        await Promise.all(inFlight);
        const gap = 1000 + random() * 90_000;
        await delay(gap, { clock });
        idleMs += gap;
      }
      // 1 to 8 callers waiting at a time, each for a request of 10 to 1500 tokens.
      const limit = 1 + Math.floor(random() * 8);
      while (inFlight.size >= limit) await Promise.race(inFlight);
      const cost = 10 + Math.floor(random() * 1491);
      const tokens: TokenEstimate = { prompt: 0, output: cost, outputFromLine: true };
      const done: Promise<void> = quota.acquire({ tokens }).then(() => {
        expect(tokens.charged).toBe(cost);
        admitted.push({ t: clock.now(), cost });
        inFlight.delete(done);
      });
      inFlight.add(done);
    }
    await Promise.all(inFlight);
  };
  await runOnSyncClock(clock, work());
  quota.close();

  expect(admitted).toHaveLength(2000);
  // Two pointers over admission times: the tokens admitted in every window [t − 60 s, t].
  let lo = 0;
  let inWindow = 0;
  let busiest = 0;
  for (let hi = 0; hi < admitted.length; hi++) {
    if (hi > 0) expect(admitted[hi].t).toBeGreaterThanOrEqual(admitted[hi - 1].t);
    inWindow += admitted[hi].cost;
    while (admitted[hi].t - admitted[lo].t > 60_000) inWindow -= admitted[lo++].cost;
    busiest = Math.max(busiest, inWindow);
  }
  expect(busiest).toBeLessThanOrEqual(tpm);
  // While callers were waiting, the gate admitted at least 90 % of tpm.
  const total = admitted.reduce((n, a) => n + a.cost, 0);
  const busyMs = admitted[admitted.length - 1].t - admitted[0].t - idleMs;
  expect(idleMs).toBeGreaterThan(0);
  expect((total / busyMs) * 60_000).toBeGreaterThanOrEqual(0.9 * tpm);
});

test("Quota.cost() moves toward the provider's real prompt count (moving average)", () => {
  const quota = new Quota({ rate: 1, clock: new SyncClock() });
  const estimate: TokenEstimate = { prompt: 100, output: 50, outputFromLine: false };
  expect(quota.cost(estimate)).toBe(150);
  const costs: number[] = [];
  for (let i = 0; i < 30; i++) {
    quota.onSuccess({ estimate, usage: { input_tokens: 200, output_tokens: 10 } });
    costs.push(quota.cost(estimate));
  }
  // One answer moves the scale a tenth of the way (1 → 1.1), not all the way to 2.
  expect(costs[0]).toBeGreaterThanOrEqual(160);
  expect(costs[0]).toBeLessThanOrEqual(161);
  for (let i = 1; i < costs.length; i++) expect(costs[i]).toBeGreaterThanOrEqual(costs[i - 1]);
  // After 30: 2 - 0.9^30 ≈ 1.958.
  expect(costs[29]).toBeGreaterThanOrEqual(245);
  expect(costs[29]).toBeLessThanOrEqual(250);
  // A later estimate for another item is scaled the same way; the output is not.
  expect(quota.cost({ prompt: 10, output: 0, outputFromLine: true })).toBe(20);
});

test("Quota.cost() calibration clamps a wild ratio to 4×", () => {
  const quota = new Quota({ rate: 1, clock: new SyncClock() });
  const estimate: TokenEstimate = { prompt: 100, output: 0, outputFromLine: true };
  quota.onSuccess({ estimate, usage: { input_tokens: 10_000, output_tokens: 0 } });
  expect(quota.cost(estimate)).toBeGreaterThanOrEqual(130); // 0.9 + 4 × 0.1 = 1.3
  expect(quota.cost(estimate)).toBeLessThanOrEqual(131);
});

test("Quota.cost() ignores answers without usage or with an empty prompt", () => {
  const quota = new Quota({ rate: 1, clock: new SyncClock() });
  const estimate: TokenEstimate = { prompt: 100, output: 0, outputFromLine: true };
  quota.onSuccess({ estimate });
  quota.onSuccess({ estimate, usage: { input_tokens: 0, output_tokens: 5 } });
  quota.onSuccess({
    estimate: { prompt: 0, output: 0, outputFromLine: true },
    usage: { input_tokens: 50, output_tokens: 5 },
  });
  expect(quota.cost(estimate)).toBe(100);
});

// ---------------------------------------------------------------------------------------------
// close()

test("Quota.close() rejects pending acquires with the reason", async () => {
  const clock = new FakeClock();
  const quota = new Quota({ rate: 1, clock });
  await quota.acquire();
  const waits = [reasonOf(quota.acquire()), reasonOf(quota.acquire({ lane: "b" }))];
  const reason = new Error("shutting down");
  quota.close(reason);
  expect(await Promise.all(waits)).toEqual([reason, reason]);
  expect(await reasonOf(quota.acquire())).toBe(reason);
  expect(clock.pending).toBe(0);
});

test("Quota.close() rejects an acquire still waiting for the token budget", async () => {
  const clock = new FakeClock();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  acquireMany(quota, clock, gate72k.fit, prompt100); // the bucket used up
  await clock.advance(10);
  const wait = reasonOf(quota.acquire({ tokens: prompt100 })); // waits for 100 tokens of refill
  await flush();
  const reason = new Error("shutting down");
  quota.close(reason);
  // Without moving the clock: a closed quota must not keep a caller (or a timer) waiting.
  const settled = await Promise.race([wait, flush().then(() => "still pending")]);
  expect(settled).toBe(reason);
  expect(clock.pending).toBe(0);
});

// ---------------------------------------------------------------------------------------------
// Token quotas as providers count them (issue 15).

const OPENAI_TOKEN_429 = (requested: number, used = 71_000) =>
  rateLimited({
    message: `Rate limit reached for m in organization org-x on tokens per min (TPM): Limit ` +
      `72000, Used ${used}, Requested ${requested}. Please try again in 1.8s.`,
  });

test("Quota calibrates a model's estimate by the Requested N of a token 429", async () => {
  const clock = new FakeClock();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const estimate: TokenEstimate = {
    prompt: 100,
    output: 50,
    outputFromLine: true,
    model: "m",
    counts: "request",
  };
  await quota.acquire({ tokens: estimate });
  expect(estimate.charged).toBe(150);
  quota.onFailure(OPENAI_TOKEN_429(200), estimate);
  // The provider charged 200: the prompt counts 1.5 times the estimate, for this model only.
  expect(quota.cost(estimate)).toBe(200);
  expect(quota.cost({ ...estimate, model: "other" })).toBe(150);
  quota.close();
});

test("Quota holds the token budget to Limit − Used of a token 429", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const estimate: TokenEstimate = { prompt: 100, output: 0, outputFromLine: true };
  // 71,950 of 72,000 used: 50 left, so the next 100 tokens wait for 50 of refill.
  quota.onFailure(OPENAI_TOKEN_429(100, 71_950), { ...estimate });
  const times = acquireMany(quota, clock, 1, estimate);
  await clock.advance(2000);
  expectTimes(times, [t0 + 50 * msPerToken(72000)]);
  quota.close();
});

test("Quota syncs the token budget with x-ratelimit-remaining-tokens", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  quota.onSuccess({ rateLimit: { remainingTokens: 20 } });
  const times = acquireMany(quota, clock, 1, prompt100);
  await clock.advance(2000);
  expectTimes(times, [t0 + 80 * msPerToken(72000)]);
  quota.close();
});

test('Quota keeps a "request" charge whatever the usage says (the provider charged its estimate)', async () => {
  const clock = new FakeClock();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const estimate: TokenEstimate = {
    prompt: 100,
    output: 50,
    outputFromLine: true,
    counts: "request",
  };
  await quota.acquire({ tokens: estimate });
  quota.onSuccess({ estimate, usage: { input_tokens: 40, output_tokens: 3 } });
  expect(estimate.charged).toBe(150);
  expect(quota.cost(estimate)).toBe(150);
  quota.close();
});

test('Quota corrects an "input" charge to the real input tokens and learns their scale', async () => {
  const clock = new FakeClock();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const estimate: TokenEstimate = {
    prompt: 100,
    output: 0,
    outputFromLine: true,
    model: "g",
    counts: "input",
  };
  await quota.acquire({ tokens: estimate });
  quota.onSuccess({ estimate, usage: { input_tokens: 80, output_tokens: 300 } });
  expect(estimate.charged).toBe(80); // the output does not count against an input-token quota
  expect(quota.cost(estimate)).toBe(98); // scale 0.9 + 0.08
  quota.close();
});

test("Quotas given one token budget share it", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const gate = new TokenGate(72000, clock);
  const a = new Quota({ rate: 1000, tokenGate: gate, clock });
  const b = new Quota({ rate: 1000, tokenGate: gate, clock });
  expect(b.stats.tpm).toBe(72000);
  // a takes the whole bucket (300 tokens); b's 100 then waits for 100 tokens of refill.
  acquireMany(a, clock, 3, prompt100);
  const times = acquireMany(b, clock, 1, prompt100);
  await clock.advance(1000);
  expectTimes(times, [t0 + 100 * msPerToken(72000)]);
  a.close();
  b.close();
});

test("Quota adopts Gemini's input-token quota from its 429 when no tpm was given", () => {
  const quota = new Quota({ rate: 10, clock: new SyncClock() });
  expect(quota.stats.tpm).toBeUndefined();
  quota.onFailure(rateLimited({
    message: "You exceeded your current quota…\n* Quota exceeded for metric: " +
      "generativelanguage.googleapis.com/generate_content_input_token_count, limit: 250000, " +
      "model: gemini-2.5-flash\nPlease retry in 2s.",
    quotaId: "GenerateContentInputTokensPerModelPerMinute",
  }));
  expect(quota.stats.tpm).toBeCloseTo(245_000, 6);
  // A user-given tpm stays.
  const mine = new Quota({ rate: 10, tpm: 1000, clock: new SyncClock() });
  mine.onFailure(rateLimited({
    message: "limit: 250000",
    quotaId: "GenerateContentInputTokensPerModelPerMinute",
  }));
  expect(mine.stats.tpm).toBe(1000);
});

test("Quota refunds a token 429's charge before holding the budget to Limit − Used", async () => {
  const clock = new FakeClock();
  const t0 = clock.now();
  const quota = new Quota({ rate: 1000, tpm: 72000, clock });
  const estimate: TokenEstimate = { prompt: 300, output: 0, outputFromLine: true };
  await quota.acquire({ tokens: estimate }); // the whole bucket
  // Nothing left at the provider: the refund must not open the budget again.
  quota.onFailure(OPENAI_TOKEN_429(300, 72_000), estimate);
  const times = acquireMany(quota, clock, 1, prompt100);
  await clock.advance(2000);
  expectTimes(times, [t0 + 100 * msPerToken(72000)]);
  quota.close();
});
