// Tests of src/loop_lag.ts on a hand-driven clock: a blocked loop is time that jumps before the
// due timers fire.
import { expect, test } from "bun:test";
import { LoopLag } from "../src/loop_lag.ts";
import { FakeClock } from "./_fake_clock.ts";

test("LoopLag reads 0 when timers fire on time", async () => {
  const clock = new FakeClock();
  const lag = new LoopLag({ clock, intervalMs: 20 });
  lag.start();
  await clock.advance(1000);
  expect(lag.stats).toEqual({ samples: 50, meanMs: 0, maxMs: 0, spanMs: 1000 });
  lag.stop();
  expect(clock.pending).toBe(0);
});

test("LoopLag measures how late timers fire when the loop is blocked", async () => {
  const clock = new FakeClock();
  const lag = new LoopLag({ clock, intervalMs: 20 });
  lag.start();
  await clock.advance(100); // 5 samples on time
  await clock.advance(320, { late: true }); // the loop was busy: one timer fires 300 ms late
  await clock.advance(100); // 5 on time again
  const { samples, meanMs, maxMs } = lag.stats;
  expect(samples).toBe(11);
  expect(maxMs).toBe(300);
  expect(meanMs).toBeCloseTo(300 / 11, 9);
  lag.reset();
  expect(lag.stats.samples).toBe(0);
  await clock.advance(40);
  expect(lag.stats).toEqual({ samples: 2, meanMs: 0, maxMs: 0, spanMs: 40 });
  lag.stop();
  await clock.advance(1000);
  expect(lag.stats.samples).toBe(2);
});

for (const intervalMs of [0, -1, NaN, Infinity]) {
  test(`LoopLag rejects intervalMs ${intervalMs} with a RangeError naming the value`, () => {
    expect(() => new LoopLag({ intervalMs })).toThrow(`current value is ${intervalMs}`);
  });
}
