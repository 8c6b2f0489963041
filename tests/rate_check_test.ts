// Tests of src/cli/rate_check.ts: the warning a run gives when its runtime cannot keep up with the rate.
import { expect, test } from "bun:test";
import {
  LAG_MAX_LIMIT_MS,
  LAG_MEAN_LIMIT_MS,
  rateWarning,
  runtimeAdvice,
  watchRate,
} from "../src/cli/rate_check.ts";
import * as path from "node:path";
import { ROOT } from "./_cli.ts";
import { runScript } from "./_processes.ts";

const lag = (meanMs: number, maxMs: number) => ({ samples: 100, meanMs, maxMs, spanMs: 2000 });

test("rateWarning() says nothing while the loop keeps up", () => {
  expect(rateWarning({ rate: 1000, lag: lag(2, 30), cpuMs: 900, requests: 2000 }))
    .toBeUndefined();
  expect(
    rateWarning({
      rate: 1000,
      lag: lag(LAG_MEAN_LIMIT_MS, LAG_MAX_LIMIT_MS),
      cpuMs: 900,
      requests: 2000,
    }),
  ).toBeUndefined();
  expect(rateWarning({ rate: 1000, lag: { ...lag(0, 0), samples: 0 }, cpuMs: 0, requests: 0 }))
    .toBeUndefined();
});

test("rateWarning() names the rate, the lateness and the rate one core can hold", () => {
  // 2.5 ms of CPU per request: one core gives 400 req/s, 320 with 20 % to spare.
  const message = rateWarning({ rate: 1000, lag: lag(150, 900), cpuMs: 5000, requests: 2000 });
  expect(message).toContain("not keeping up with 1000 req/s here: it sent 1000 req/s");
  expect(message).toContain("150 ms late on average (worst 900 ms) over 2.0 s");
  expect(message).toContain("2.50 ms of CPU per request");
  expect(message).toContain("about 320 req/s");
  expect(message).toContain("--rate-limit");
  // A single long stall is enough; with CPU to spare, the warning says it was a stall.
  const stall = rateWarning({ rate: 500, lag: lag(5, 400), cpuMs: 500, requests: 1000 });
  expect(stall).toContain("worst 400 ms");
  expect(stall).toContain("the process was stalled");
  expect(stall).not.toContain("can hold about");
});

test("rateWarning() warns when fewer requests went out than the rate while lines waited", () => {
  // Many short stalls: timers only 8 ms late on average, but 1,620 sent in 2 s at 1,000 req/s.
  const sample = { rate: 1000, lag: lag(8, 60), cpuMs: 1900, requests: 1620 };
  const message = rateWarning({ ...sample, busy: true });
  expect(message).toContain("it sent 810 req/s");
  expect(message).toContain("about 680 req/s");
  // The input ran out in the window: fewer requests is not the runtime's fault.
  expect(rateWarning({ ...sample, busy: false })).toBeUndefined();
  expect(rateWarning({ ...sample, requests: 1980, busy: true })).toBeUndefined();
  // CPU to spare, yet behind: what it sent is the limit named.
  expect(rateWarning({ ...sample, cpuMs: 500, busy: true })).toContain("about 810 req/s");
});

test("watchRate() measures from the second request and warns at most once", async () => {
  const stats = { requests: 1, retries: 0, read: 1, skipped: 0, invalid: 0 };
  const warnings: string[] = [];
  const stop = watchRate({ rate: 1000, stats, warn: (m) => warnings.push(m), windowMs: 300 });
  await Bun.sleep(250);
  stats.requests = 2; // the gate opened
  await Bun.sleep(150);
  // Block the loop well past both limits, while the window runs.
  const until = performance.now() + 400;
  while (performance.now() < until) stats.requests++;
  await Bun.sleep(400);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain("not keeping up with 1000 req/s");
  await Bun.sleep(300);
  expect(warnings).toHaveLength(1);
  stop();
});

test("watchRate() stopped before the window ends says nothing", async () => {
  const warnings: string[] = [];
  const stop = watchRate({
    rate: 1000,
    stats: { requests: 5, retries: 0, read: 5, skipped: 0, invalid: 0 },
    warn: (m) => warnings.push(m),
    windowMs: 200,
  });
  await Bun.sleep(150);
  const until = performance.now() + 400;
  while (performance.now() < until) { /* blocked */ }
  stop();
  await Bun.sleep(300);
  expect(warnings).toEqual([]);
});

test(
  "the warning's advice: Bun here; on Deno also the young-generation flag, unless it is set",
  async () => {
    expect(runtimeAdvice()).toBe("run it with Bun");
    const message = rateWarning({ rate: 1000, lag: lag(150, 900), cpuMs: 5000, requests: 2000 });
    expect(message).toContain('Lower --rate-limit, or run it with Bun (README "Caps we found")');
    expect(
      rateWarning({ rate: 1000, lag: lag(150, 900), cpuMs: 5000, requests: 2000, advice: "x" }),
    )
      .toContain("Lower --rate-limit, or x (README");
    const script = `
    import { runtimeAdvice } from ${JSON.stringify(path.join(ROOT, "src/cli/rate_check.ts"))};
    console.log(runtimeAdvice());
  `;
    const deno = async (flags: string | undefined) =>
      (await runScript("deno", script, { env: { DENO_V8_FLAGS: flags } })).stdout.trim();
    expect(await deno(undefined)).toBe(
      "start Deno with --v8-flags=--max-semi-space-size=8, or run it with Bun",
    );
    expect(await deno("--max-semi-space-size=8")).toBe("run it with Bun");
  },
  30_000,
);
