import { expect, test } from "bun:test";
import { mulberry32 } from "../src/_prng.ts";
import { TOKEN_BURST_SHARE, TOKEN_PACE, TokenCalibration, TokenGate } from "../src/token_gate.ts";
import type { TokenEstimate } from "../src/tokens.ts";
import { FakeClock } from "./_fake_clock.ts";

test("TokenGate rejects a tpm that is not above 0, naming the value", () => {
  for (const tpm of [0, -1, NaN, Infinity]) {
    expect(() => new TokenGate(tpm, new FakeClock())).toThrow(`current value is ${tpm}`);
  }
});

test("TokenGate never bursts: any 10 s holds at most a sixth of tpm, the minute at most tpm", async () => {
  // A provider counting 30,000 tokens over a sliding 10 s (180,000/min) refuses a burst that a
  // per-minute bucket would allow; requests of 30 to 530 tokens, up to 8 waiting at once.
  const clock = new FakeClock();
  const tpm = 180_000;
  const gate = new TokenGate(tpm, clock);
  const random = mulberry32(0x70c);
  const admitted: { t: number; cost: number }[] = [];
  let waiting = 0;
  let sent = 0;
  while (sent < 600) {
    while (waiting < 1 + Math.floor(random() * 8) && sent < 600) {
      const cost = 30 + Math.floor(random() * 500);
      waiting++;
      sent++;
      gate.take(cost).then(() => {
        waiting--;
        admitted.push({ t: clock.now(), cost });
      });
    }
    await clock.advance(50 + random() * 250);
  }
  await clock.advance(60_000);
  expect(admitted).toHaveLength(600);
  const most = (windowMs: number) => {
    let best = 0;
    let sum = 0;
    let lo = 0;
    for (const a of admitted) {
      sum += a.cost;
      while (a.t - admitted[lo].t >= windowMs) sum -= admitted[lo++].cost;
      best = Math.max(best, sum);
    }
    return best;
  };
  expect(most(10_000)).toBeLessThanOrEqual(tpm / 6);
  expect(most(60_000)).toBeLessThanOrEqual(tpm);
  // And it is not slow about it: over the busy span the pace is TOKEN_PACE of tpm.
  const span = admitted[admitted.length - 1].t - admitted[0].t;
  const total = admitted.slice(0, -1).reduce((n, a) => n + a.cost, 0);
  expect(total / (span / 60_000)).toBeGreaterThan(tpm * TOKEN_PACE * 0.99);
});

test("TokenGate.sync() admits no more than the provider says remains", async () => {
  const clock = new FakeClock();
  const tpm = 60_000; // 950 tokens a second, a bucket of 250 tokens
  const gate = new TokenGate(tpm, clock);
  const msPerToken = 60_000 / (tpm * TOKEN_PACE);
  const t0 = clock.now();
  gate.sync(50); // 50 left: a 100-token request waits for 50 tokens of refill
  const at: number[] = [];
  gate.take(100).then(() => at.push(clock.now()));
  await clock.advance(1000);
  expect(at).toHaveLength(1);
  expect(at[0] - t0).toBeCloseTo(50 * msPerToken, 0);
  // More remaining than the bucket holds changes nothing.
  const before: number[] = [];
  gate.sync(1e9);
  gate.take(tpm * TOKEN_BURST_SHARE).then(() => before.push(clock.now()));
  await clock.advance(0);
  expect(before).toEqual([clock.now()]);
});

test("TokenGate.take() rejects with the signal's reason and leaves no timer", async () => {
  const clock = new FakeClock();
  const gate = new TokenGate(6000, clock);
  await gate.take(1000);
  const controller = new AbortController();
  const wait = gate.take(100, controller.signal).catch((e) => e);
  await clock.advance(1);
  const reason = new Error("stop");
  controller.abort(reason);
  expect(await wait).toBe(reason);
  await clock.advance(0);
  expect(clock.pending).toBe(0);
});

const est = (prompt: number, output: number, model?: string): TokenEstimate => ({
  prompt,
  output,
  outputFromLine: true,
  model,
});

test("TokenCalibration raises a model's scale at once to what the provider charged", () => {
  const c = new TokenCalibration();
  expect(c.cost(est(100, 50, "a"))).toBe(150);
  c.fromCharge(est(100, 50, "a"), 180); // the prompt was charged 130
  expect(c.scale("a")).toBeCloseTo(1.3, 9);
  expect(c.cost(est(100, 50, "a"))).toBe(180);
  // Other models keep theirs.
  expect(c.cost(est(100, 50, "b"))).toBe(150);
  // A charge below the estimate lowers it slowly: 1.3 × 0.8 + 1 × 0.2.
  c.fromCharge(est(100, 50, "a"), 150);
  expect(c.scale("a")).toBeCloseTo(1.24, 9);
});

test("TokenCalibration learns from usage as a slow average, clamped to 0.25..4", () => {
  const c = new TokenCalibration();
  c.fromUsage(est(100, 0, "g"), 50);
  expect(c.scale("g")).toBeCloseTo(0.95, 9);
  c.fromUsage(est(100, 0, "g"), 100_000);
  expect(c.scale("g")).toBeCloseTo(0.95 * 0.9 + 0.4, 9);
  c.fromUsage(est(0, 0, "g"), 10); // nothing to learn from
  expect(c.scale("g")).toBeCloseTo(0.95 * 0.9 + 0.4, 9);
});
