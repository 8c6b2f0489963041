// Tests of src/_rate_controller.ts: which 429s are quota signals, the slow-down target, the
// pause of a spent window and the climb back. Time is the argument each call gets (an injected
// clock reading), never the wall clock.
import { expect, test } from "bun:test";
import type { FailureInfo } from "../src/errors.ts";
import { RateController, saysQuotaSpent } from "../src/_rate_controller.ts";

const T0 = 1000;

/** A 429 that says the quota is spent (OpenAI's wording). */
function spent(extra: Partial<FailureInfo> = {}): FailureInfo {
  return {
    status: 429,
    code: "rate_limit_exceeded",
    message: "Rate limit reached for m on requests per min (RPM): Limit 20, Used 20, Requested 1.",
    retryable: true,
    kind: "rate_limit",
    ...extra,
  };
}

/** A 429 that says nothing about a quota (a stray one, or a quota 429 without detail). */
function stray(extra: Partial<FailureInfo> = {}): FailureInfo {
  return {
    status: 429,
    code: "rate_limit_exceeded",
    message: "Too many requests, try again later.",
    retryable: true,
    kind: "rate_limit",
    ...extra,
  };
}

function controller(options: { ceiling?: number; minRate?: number; slowStart?: boolean } = {}) {
  return new RateController({
    ceiling: options.ceiling ?? 40,
    minRate: options.minRate ?? 0.1,
    slowStart: options.slowStart ?? false,
    now: T0,
  });
}

/** Sends at `perSecond` from `from` for `ms`, every answer admitted (successes), returns tickets. */
function sendAdmitted(c: RateController, from: number, ms: number, perSecond: number): number[] {
  const tickets: number[] = [];
  const n = Math.round((ms * perSecond) / 1000);
  for (let i = 1; i <= n; i++) {
    const t = from + (i * 1000) / perSecond;
    const ticket = c.sent(t);
    tickets.push(ticket);
    c.admitted(t, ticket, true);
  }
  return tickets;
}

test("saysQuotaSpent() reads a QuotaFailure, OpenAI's 'Limit L, Used U' and remaining 0", () => {
  expect(saysQuotaSpent(spent())).toBe(true);
  expect(saysQuotaSpent(stray({ quotaId: "GenerateRequestsPerMinutePerProjectPerModel" }))).toBe(
    true,
  );
  expect(saysQuotaSpent(stray({ rateLimit: { remainingRequests: 0 } }))).toBe(true);
  expect(saysQuotaSpent(stray({ rateLimit: { remainingRequests: 3 } }))).toBe(false);
  expect(saysQuotaSpent(stray())).toBe(false);
});

test("RateController: a stray 429 is no quota signal; a third in a row without a success between is", () => {
  const c = controller();
  sendAdmitted(c, T0, 1000, 30);
  const a = c.sent(T0 + 1000);
  const d1 = c.rateLimited(T0 + 1010, 40, stray(), a);
  expect(d1).toEqual({ quotaSignal: false });
  const b = c.sent(T0 + 1030);
  c.admitted(T0 + 1040, b, true); // a success between: the run starts over
  for (const t of [T0 + 1050, T0 + 1065]) {
    expect(c.rateLimited(t, 40, stray(), c.sent(t)).quotaSignal).toBe(false);
  }
  const d3 = c.rateLimited(T0 + 1080, 40, stray(), c.sent(T0 + 1080)); // the third in a row
  expect(d3.quotaSignal).toBe(true);
  expect(d3.slowdown).toBeDefined();
  expect(d3.pauseUntil).toBeUndefined();
});

test("RateController: a 429 that says the quota is spent slows down at once, without a pause", () => {
  const c = controller();
  sendAdmitted(c, T0, 2000, 20);
  const d = c.rateLimited(T0 + 2000, 30, spent({ retryAfterMs: 2000 }), c.sent(T0 + 2000));
  // 20 admitted in the last second × 0.95 (a step of more than half is never taken at once).
  expect(d.slowdown?.rate).toBeCloseTo(19, 9);
  expect(d.pauseUntil).toBeUndefined();
});

test("RateController measures the slow-down from admitted answers, other failures included", () => {
  const c = controller();
  // 30 answers a second, two thirds of them 500s: all admitted by the provider.
  for (let i = 1; i <= 60; i++) {
    const t = T0 + (i * 1000) / 30;
    c.admitted(t, c.sent(t), i % 3 === 0);
  }
  const d = c.rateLimited(T0 + 2000, 40, spent(), c.sent(T0 + 2000));
  expect(d.slowdown?.rate).toBeCloseTo(28.5, 9);
});

for (
  const [perSecond, expected, why] of [
    [30, 28.5, "95% of the admitted rate"],
    [35, 33.25, "95% of the admitted rate, below 90% of the rate"],
    [36, 38.8, "the quota's edge: 90% of the rate admitted, 97% of the rate"],
    [50, 38.8, "the quota's edge: all of the rate admitted, 97% of the rate"],
    [5, 20, "at least half the rate"],
    [0, 20, "half the rate when nothing was admitted"],
  ] as const
) {
  test(`RateController slows from 40 to ${expected} after ${perSecond}/s admitted (${why})`, () => {
    const c = controller();
    if (perSecond > 0) sendAdmitted(c, T0, 2000, perSecond);
    const d = c.rateLimited(T0 + 2000, 40, spent(), c.sent(T0 + 2000));
    expect(d.slowdown?.rate).toBeCloseTo(expected, 9);
  });
}

test("RateController never slows below minRate", () => {
  const c = controller({ ceiling: 8, minRate: 6 });
  const d = c.rateLimited(T0 + 2000, 8, spent(), c.sent(T0 + 2000));
  expect(d.slowdown?.rate).toBe(6);
});

test("RateController takes 429s that say nothing as a signal when they are a quarter of the answers", () => {
  const c = controller();
  // 9 a second admitted, answers interleaved with stray 429s: 1 in 10, then 1 in 3.
  for (let i = 1; i <= 18; i++) {
    const t = T0 + i * 100;
    c.admitted(t, c.sent(t), true);
    if (i % 9 === 0) {
      expect(c.rateLimited(t + 1, 40, stray(), c.sent(t + 1)).quotaSignal).toBe(false);
    }
  }
  const t = T0 + 2000;
  c.admitted(t, c.sent(t), true);
  expect(c.rateLimited(t + 10, 40, stray(), c.sent(t + 10)).quotaSignal).toBe(false);
  c.admitted(t + 20, c.sent(t + 20), true);
  for (const dt of [30, 40, 50]) {
    const d = c.rateLimited(t + dt, 40, stray(), c.sent(t + dt));
    // At +40: 4 of the last second's 15 answers are 429s, none of them in a run.
    if (d.quotaSignal) return expect(dt).toBe(40);
    c.admitted(t + dt + 1, c.sent(t + dt + 1), true);
  }
  throw new Error("never a quota signal");
});

test("RateController ignores 429s for requests sent before its slow-down took effect", () => {
  const c = controller();
  const before = sendAdmitted(c, T0, 1000, 40);
  const d1 = c.rateLimited(T0 + 1000, 40, spent(), before[30]);
  expect(d1.slowdown?.rate).toBeCloseTo(38.8, 9);
  // Long after the cooldown, 429s for requests sent at the old rate still say nothing new.
  for (const ticket of before.slice(31)) {
    expect(c.rateLimited(T0 + 5000, 38.8, spent({ retryAfterMs: 1000 }), ticket)).toEqual({
      quotaSignal: false,
    });
  }
  const d2 = c.rateLimited(T0 + 5000, 38.8, spent(), c.sent(T0 + 5000));
  expect(d2.quotaSignal).toBe(true);
  expect(d2.slowdown).toBeDefined();
});

test("RateController slows down once per second: a signal within the cooldown changes nothing", () => {
  const c = controller();
  sendAdmitted(c, T0, 1000, 30);
  expect(c.rateLimited(T0 + 1000, 40, spent(), c.sent(T0 + 1000)).slowdown).toBeDefined();
  c.sent(T0 + 1100); // not refused: breaks the streak of consecutive refusals
  const d = c.rateLimited(T0 + 1999, 28.5, spent({ retryAfterMs: 500 }), c.sent(T0 + 1999));
  expect(d).toEqual({ quotaSignal: true });
  c.sent(T0 + 2000);
  expect(c.rateLimited(T0 + 2001, 28.5, spent(), c.sent(T0 + 2001)).slowdown).toBeDefined();
});

test("RateController pauses everyone until the hint when consecutive sends stay refused after a slow-down", () => {
  const c = controller({ ceiling: 30 });
  sendAdmitted(c, T0, 1000, 30);
  expect(c.rateLimited(T0 + 1000, 30, spent({ retryAfterMs: 900 }), c.sent(T0 + 1000)).slowdown)
    .toBeDefined();
  const first = c.rateLimited(T0 + 1035, 28.5, spent({ retryAfterMs: 865 }), c.sent(T0 + 1035));
  expect(first.pauseUntil).toBeUndefined(); // one refusal after the slow-down: not yet
  const second = c.rateLimited(T0 + 1070, 28.5, spent({ retryAfterMs: 830 }), c.sent(T0 + 1070));
  expect(second.quotaSignal).toBe(true);
  expect(second.pauseUntil).toBe(T0 + 1900);
  expect(second.slowdown).toBeUndefined(); // the first window: nothing learned yet
});

test("RateController does not pause when the refused sends after a slow-down are not consecutive", () => {
  const c = controller({ ceiling: 30 });
  sendAdmitted(c, T0, 1000, 30);
  c.rateLimited(T0 + 1000, 30, spent({ retryAfterMs: 900 }), c.sent(T0 + 1000));
  for (let i = 0; i < 5; i++) {
    const t = T0 + 1100 + i * 100;
    c.sent(t); // admitted in between
    expect(c.rateLimited(t + 50, 28.5, spent({ retryAfterMs: 2000 }), c.sent(t + 50)).pauseUntil)
      .toBeUndefined();
  }
});

test("RateController paces at 97 % of what one fixed window admitted, from the second window on", () => {
  const c = controller({ ceiling: 30 });
  // Window 1 ends at T0 + 2000: spent at T0 + 1000 after 30 sends.
  sendAdmitted(c, T0, 1000, 30);
  c.rateLimited(T0 + 1000, 30, spent({ retryAfterMs: 1000 }), c.sent(T0 + 1000));
  c.rateLimited(T0 + 1035, 28.5, spent({ retryAfterMs: 965 }), c.sent(T0 + 1035));
  const p1 = c.rateLimited(T0 + 1070, 28.5, spent({ retryAfterMs: 930 }), c.sent(T0 + 1070));
  expect(p1.pauseUntil).toBe(T0 + 2000);
  // Window 2 (T0 + 2000 … T0 + 4000): 30 admitted sends, then refusals.
  sendAdmitted(c, T0 + 2000, 1053, 28.5);
  const r1 = c.rateLimited(T0 + 3100, 28.5, spent({ retryAfterMs: 900 }), c.sent(T0 + 3100));
  expect(r1.slowdown).toBeDefined(); // as in any window: slow down first
  const r2 = c.rateLimited(T0 + 3135, 28.5, spent({ retryAfterMs: 865 }), c.sent(T0 + 3135));
  expect(r2.pauseUntil).toBeUndefined();
  const decision = c.rateLimited(T0 + 3170, 27, spent({ retryAfterMs: 830 }), c.sent(T0 + 3170));
  expect(decision.pauseUntil).toBe(T0 + 4000);
  // 30 admitted in a 2 s window: 15/s × 0.97.
  expect(decision.slowdown?.rate).toBeCloseTo(14.55, 9);
  // The pace holds: no climb above it while saturated.
  for (let t = T0 + 4000; t <= T0 + 20_000; t += 1000) {
    expect(c.increase(t, 14.55, true)).toBeUndefined();
  }
});

test("RateController climbs back 0.5 % of the estimate a second near it, once a second, while saturated", () => {
  const c = controller({ ceiling: 40 });
  sendAdmitted(c, T0, 2000, 20);
  const d = c.rateLimited(T0 + 2000, 30, spent(), c.sent(T0 + 2000));
  let rate = d.slowdown!.rate; // 19: the estimate is 20
  expect(c.increase(T0 + 2999, rate, true)).toBeUndefined(); // cooldown
  const steps: [number, number][] = [];
  for (let t = T0 + 3000; t <= T0 + 9000; t += 250) {
    const next = c.increase(t, rate, true);
    if (next !== undefined) {
      steps.push([t - T0, next]);
      rate = next;
    }
  }
  // 19 is 95 % of the estimate: 0.1 a second, up to it and past it while it is fresh (30 s).
  expect(steps.map(([t]) => t)).toEqual([3000, 4000, 5000, 6000, 7000, 8000, 9000]);
  [19.1, 19.2, 19.3, 19.4, 19.5, 19.6, 19.7].forEach((r, i) =>
    expect(steps[i][1]).toBeCloseTo(r, 9)
  );
});

test("RateController climbs 5 % of the estimate a second while far below it", () => {
  const c = controller({ ceiling: 40 });
  sendAdmitted(c, T0, 2000, 30);
  // Rate 40, 30 admitted: slows to 28.5, estimate 30. A later false alarm took it lower.
  c.rateLimited(T0 + 2000, 40, spent(), c.sent(T0 + 2000));
  expect(c.increase(T0 + 3000, 20, true)).toBeCloseTo(21.5, 9);
  expect(c.increase(T0 + 3500, 21.5, true)).toBeUndefined(); // once a second
  expect(c.increase(T0 + 4000, 21.5, true)).toBeCloseTo(23, 9);
});

test("RateController does not climb while nobody waits, nor above the ceiling", () => {
  const c = controller({ ceiling: 10 });
  c.rateLimited(T0, 10, spent(), c.sent(T0));
  for (let t = T0 + 1000; t < T0 + 20_000; t += 1000) {
    expect(c.increase(t, 5, false)).toBeUndefined();
  }
  let rate = 5;
  for (let t = T0 + 20_000; t < T0 + 40_000; t += 1000) rate = c.increase(t, rate, true) ?? rate;
  expect(rate).toBe(10);
});

test('RateController doubles "auto" every 250 ms while saturated, until the first quota signal', () => {
  const c = controller({ ceiling: Infinity, slowStart: true });
  let rate = 1;
  const seen: number[] = [];
  for (let t = T0 + 125; t <= T0 + 1000; t += 125) {
    const next = c.increase(t, rate, true);
    if (next !== undefined) seen.push(rate = next);
  }
  expect(seen).toEqual([2, 4, 8, 16]);
  // A stray 429 does not end the ramp; a quota signal does.
  expect(c.increase(T0 + 1100, rate, false)).toBeUndefined(); // nobody waiting: no doubling
  c.rateLimited(T0 + 2100, rate, stray(), c.sent(T0 + 2100));
  expect(c.slowStart).toBe(true);
  c.rateLimited(T0 + 2110, rate, spent(), c.sent(T0 + 2110));
  expect(c.slowStart).toBe(false);
});

test("RateController climbs fast again once the quota estimate is 30 s old", () => {
  const c = controller({ ceiling: 40 });
  sendAdmitted(c, T0, 2000, 20);
  c.rateLimited(T0 + 2000, 30, spent(), c.sent(T0 + 2000)); // estimate 20
  expect(c.increase(T0 + 31_999, 20, true)).toBeCloseTo(20.1, 9); // fresh: 0.5 % of 20
  // Stale: 5 % of min(ceiling, 2 × rate) a second.
  expect(c.increase(T0 + 32_999, 20.1, true)).toBeCloseTo(22.1, 9);
});

test("RateController does not climb while 429s are 3 % or more of the last second's answers", () => {
  const c = controller({ ceiling: 40 });
  sendAdmitted(c, T0, 1000, 30);
  c.rateLimited(T0 + 1000, 40, stray(), c.sent(T0 + 1000)); // 1 of 31 answers
  expect(c.increase(T0 + 1500, 30, true)).toBeUndefined();
  // A second later the 429 has left the window: the climb resumes.
  sendAdmitted(c, T0 + 1000, 1000, 30);
  expect(c.increase(T0 + 2600, 30, true)).toBeDefined();
});

test("RateController counts sends not refused, not only answers already back", () => {
  const c = controller({ ceiling: 40 });
  // 40 sends in the last second; only the first 10 answered yet (2 s answers).
  for (let i = 1; i <= 40; i++) {
    const t = T0 + i * 25;
    const ticket = c.sent(t);
    if (i <= 10) c.admitted(t + 1, ticket, true);
  }
  const d = c.rateLimited(T0 + 1000, 40, spent(), 39);
  // 39 sends admitted (all but the refused one) in the last second: the quota's edge, 97 % of
  // the rate; the answers alone would say 10/s, and the slow-down would halve the rate to 20.
  expect(d.slowdown?.rate).toBeCloseTo(38.8, 9);
});

test("RateController at the quota's edge backs off 3 % and takes the rate that drew the 429 as the quota", () => {
  const c = controller({ ceiling: 40 });
  sendAdmitted(c, T0, 2000, 20);
  // 20 sent and admitted a second, the rate 20: the first 429 is the edge, not a rate far above.
  const d = c.rateLimited(T0 + 2000, 20, spent(), c.sent(T0 + 2000));
  expect(d.slowdown?.rate).toBeCloseTo(19.4, 9);
  // Climbing back near that estimate: 0.5 % of 20 a second.
  expect(c.increase(T0 + 3000, 19.4, true)).toBeCloseTo(19.5, 9);
  // Far above the quota (half of the rate admitted), the cut is 95 % of what was admitted.
  const far = controller({ ceiling: 40 });
  sendAdmitted(far, T0, 2000, 20);
  expect(far.rateLimited(T0 + 2000, 30, spent(), far.sent(T0 + 2000)).slowdown?.rate)
    .toBeCloseTo(19, 9);
});

test("RateController takes 429s that name nothing as a signal at 5 % of the answers once a quota signal was seen", () => {
  /** 20 a second admitted for a second from `from` at rate 19 (below the estimate), with a 429
   * naming nothing at +300 and +800. */
  const second = (c: RateController, from: number) => {
    const out: boolean[] = [];
    for (let i = 1; i <= 20; i++) {
      const t = from + i * 50;
      c.admitted(t, c.sent(t), true);
      if (i === 6 || i === 16) {
        out.push(c.rateLimited(t + 1, 19, stray(), c.sent(t + 1)).quotaSignal);
      }
    }
    return out;
  };
  // Before any quota signal: 2 in 22 answers are sporadic 429s, no signal.
  const fresh = controller({ ceiling: 40 });
  expect(second(fresh, T0)).toEqual([false, false]);
  expect(second(fresh, T0 + 1000)).toEqual([false, false]);
  // After one (a run of three 429s with no success between), the same share is a signal.
  const seen = controller({ ceiling: 40 });
  sendAdmitted(seen, T0 - 2000, 1000, 20);
  for (const dt of [0, 10, 20]) {
    seen.rateLimited(T0 - 1000 + dt, 40, stray(), seen.sent(T0 - 1000 + dt));
  }
  expect(second(seen, T0 + 1000)).toEqual([false, true]);
});

test("RateController pauses everyone for an exact hint (250 ms or less) on a 429 that says the quota is spent", () => {
  const c = controller({ ceiling: 40 });
  sendAdmitted(c, T0, 1000, 15);
  // A sliding window's next slot frees in 60 ms: everyone waits for it, and the rate slows down.
  const d = c.rateLimited(T0 + 1000, 40, spent({ retryAfterMs: 60 }), c.sent(T0 + 1000));
  expect(d.pauseUntil).toBe(T0 + 1060);
  expect(d.slowdown).toBeDefined();
  // Within the cooldown: no other slow-down, but the pause still.
  c.sent(T0 + 1100);
  expect(c.rateLimited(T0 + 1200, 28, spent({ retryAfterMs: 40 }), c.sent(T0 + 1200))).toEqual({
    quotaSignal: true,
    pauseUntil: T0 + 1240,
  });
  // A coarse hint (1 s), or a 429 that does not say the quota is spent: only the refused waits.
  c.sent(T0 + 1300);
  expect(c.rateLimited(T0 + 1400, 28, spent({ retryAfterMs: 1000 }), c.sent(T0 + 1400)).pauseUntil)
    .toBeUndefined();
  c.sent(T0 + 1500);
  expect(c.rateLimited(T0 + 1600, 28, stray({ retryAfterMs: 60 }), c.sent(T0 + 1600)).pauseUntil)
    .toBeUndefined();
});

test('RateController settles "auto" at 95 % of the admitted rate on the ramp\'s first quota signal, below half if need be', () => {
  const c = controller({ ceiling: Infinity, slowStart: true });
  sendAdmitted(c, T0, 2000, 25);
  // The ramp reached 64 before the first signal: 25 admitted a second.
  const d = c.rateLimited(T0 + 2000, 64, spent(), c.sent(T0 + 2000));
  expect(d.slowdown?.rate).toBeCloseTo(23.75, 9);
  expect(c.slowStart).toBe(false);
  // Out of the ramp, a slow-down never takes more than half in one step.
  c.sent(T0 + 2100);
  sendAdmitted(c, T0 + 3100, 1000, 5);
  expect(c.rateLimited(T0 + 4200, 23.75, spent(), c.sent(T0 + 4200)).slowdown?.rate)
    .toBeCloseTo(11.875, 9);
});

test("RateController takes a 429 that names nothing as a signal once the rate is back at a fresh estimate", () => {
  const c = controller({ ceiling: 40 });
  sendAdmitted(c, T0, 2000, 20);
  c.rateLimited(T0 + 2000, 20, spent(), c.sent(T0 + 2000)); // the edge: 19.4, estimate 20
  sendAdmitted(c, T0 + 3000, 1000, 20);
  // Two probe steps (0.5 % of 20) or more below the estimate, a lone 429 naming nothing is a
  // stray one.
  expect(c.rateLimited(T0 + 4000, 19.8, stray(), c.sent(T0 + 4000)).quotaSignal).toBe(false);
  c.admitted(T0 + 4010, c.sent(T0 + 4010), true);
  // At the estimate it is the quota's edge again: a 3 % cut.
  const d = c.rateLimited(T0 + 4100, 20, stray(), c.sent(T0 + 4100));
  expect(d.quotaSignal).toBe(true);
  expect(d.slowdown?.rate).toBeCloseTo(19.4, 9);
  // Once the estimate is 30 s old, the same 429 is a stray one again.
  sendAdmitted(c, T0 + 34_200, 1000, 20);
  expect(c.rateLimited(T0 + 35_300, 20, stray(), c.sent(T0 + 35_300)).quotaSignal).toBe(false);
});

test("RateController takes a 429 that names nothing one probe step below the estimate as the quota's edge", () => {
  const c = controller({ ceiling: 40 });
  sendAdmitted(c, T0, 2000, 20);
  // The edge crossed at 20.1: cut to 97 %, and 20.1 is the estimate.
  const d = c.rateLimited(T0 + 2000, 20.1, spent(), c.sent(T0 + 2000));
  expect(d.slowdown?.rate).toBeCloseTo(19.497, 9);
  sendAdmitted(c, T0 + 2000, 2000, 20);
  // Two probe steps below it (19.9): a single 429 naming nothing is a stray one.
  expect(c.rateLimited(T0 + 4000, 19.9, stray(), c.sent(T0 + 4000)).quotaSignal).toBe(false);
  sendAdmitted(c, T0 + 4000, 2000, 20);
  // One probe step below it (20.0 = 20.1 - 0.5 % of it): the quota's edge again (a sliding
  // window 20 a second refuses at 20.0 too).
  const edge = c.rateLimited(T0 + 6000, 20, stray(), c.sent(T0 + 6000));
  expect(edge.quotaSignal).toBe(true);
  expect(edge.slowdown?.rate).toBeCloseTo(19.4, 9);
});

test("RateController ends a run of 429s only with a success sent after its last 429", () => {
  const c = controller({ ceiling: 40 });
  // 20 sent in the first second (answered later: 200 ms latency), then the window is used up.
  const early = Array.from({ length: 20 }, (_, i) => c.sent(T0 + i * 25));
  for (let i = 0; i < 12; i++) c.admitted(T0 + 200 + i * 25, early[i], true);
  const refusals: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    const t = T0 + 500 + i * 25;
    refusals.push(c.rateLimited(t, 40, stray(), c.sent(t)).quotaSignal);
    // The answer of a request sent before the refusals: admitted while there was room.
    c.admitted(t + 5, early[12 + i], true);
  }
  expect(refusals).toEqual([false, false, true]);
  // A success sent after the last 429 ends the run: two more 429s are no signal.
  const d = controller({ ceiling: 40 });
  sendAdmitted(d, T0, 1000, 20);
  const t1 = T0 + 1000;
  d.rateLimited(t1, 40, stray(), d.sent(t1));
  d.rateLimited(t1 + 25, 40, stray(), d.sent(t1 + 25));
  const later = d.sent(t1 + 50);
  d.admitted(t1 + 60, later, true);
  expect(d.rateLimited(t1 + 75, 40, stray(), d.sent(t1 + 75)).quotaSignal).toBe(false);
});
