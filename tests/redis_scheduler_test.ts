// Tests of src/redis/scheduler.ts against a real redis-server started here (never a mock of the
// store): shared schedule, no banked idle time, shared slow-down and pause, and a store that
// dies and comes back mid-acquire. Times are real: Redis's clock is the schedule's clock.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connectQuotaStore, type QuotaStoreConnection } from "../src/redis/connection.ts";
import { type RedisServer, startRedisServer } from "./redis_test_server.ts";
import type { FailureInfo } from "../src/errors.ts";
import { Quota } from "../src/quota.ts";
import { RedisScheduler, type RedisSchedulerOptions } from "../src/redis/scheduler.ts";

let server: RedisServer;
const connections: QuotaStoreConnection[] = [];
const schedulers: RedisScheduler[] = [];

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  for (const s of schedulers) s.close();
  for (const c of connections) c.close();
  await server.stop();
});

async function store(url = server.url): Promise<QuotaStoreConnection> {
  const c = await connectQuotaStore(url);
  connections.push(c);
  return c;
}

let names = 0;
function uniqueName(): string {
  return `test-${process.pid}-${Date.now()}-${names++}`;
}

function scheduler(
  c: QuotaStoreConnection,
  options: Omit<RedisSchedulerOptions, "store">,
): RedisScheduler {
  const s = new RedisScheduler({ store: c.store, ...options });
  schedulers.push(s);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Acquires back to back (the way a run's dispatcher does) until `until`; returns release times. */
async function drain(s: RedisScheduler, until: number, lane?: unknown): Promise<number[]> {
  const times: number[] = [];
  while (performance.now() < until) times.push(await s.acquire({ lane }));
  return times;
}

function maxPerWindow(times: number[], windowMs = 1000): number {
  const t = [...times].sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; j < t.length; j++) {
    while (t[j] - t[i] >= windowMs) i++;
    max = Math.max(max, j - i + 1);
  }
  return max;
}

/**
 * A release may be up to 3/4 of an interval after its slot (later, it is dropped), so two
 * releases are at least 1/4 interval apart; the schedule itself is exact, so the median gap is
 * the interval.
 */
function expectSpacing(times: number[], intervalMs: number): void {
  const g = gaps(times).sort((a, b) => a - b);
  expect(g[0]).toBeGreaterThan(intervalMs / 4);
  expect(Math.abs(g[Math.floor(g.length / 2)] - intervalMs)).toBeLessThan(intervalMs / 10);
}

function gaps(times: number[]): number[] {
  const t = [...times].sort((a, b) => a - b);
  return t.slice(1).map((x, i) => x - t[i]);
}

/** A 429 that says the quota is spent (a stray one would not slow anyone down). */
const RATE_LIMITED: FailureInfo = {
  status: 429,
  code: "rate_limit_exceeded",
  message: "Rate limit reached on requests per min (RPM): Limit 1200, Used 1200, Requested 1.",
  retryable: true,
  kind: "rate_limit",
};

test("RedisScheduler alone gets the full rate, spaced 1/R", async () => {
  const s = scheduler(await store(), { name: uniqueName(), rate: 20 });
  const start = performance.now();
  const times = await drain(s, start + 2000);
  // 2 s at 20/s from a fresh schedule: slot 0 at once, then every 50 ms.
  expect(times.length).toBeGreaterThanOrEqual(39);
  expect(times.length).toBeLessThanOrEqual(42);
  expect(maxPerWindow(times)).toBeLessThanOrEqual(21);
  expectSpacing(times, 50);
  expect(s.rate).toBe(20);
}, 20_000);

test("two RedisSchedulers on one name share one schedule of R, about half each", async () => {
  const name = uniqueName();
  const a = scheduler(await store(), { name, rate: 20 });
  const b = scheduler(await store(), { name, rate: 20 });
  const end = performance.now() + 3000;
  const [ta, tb] = await Promise.all([drain(a, end), drain(b, end)]);
  const all = [...ta, ...tb];
  expect(all.length).toBeGreaterThanOrEqual(58);
  expect(all.length).toBeLessThanOrEqual(62);
  expect(maxPerWindow(all)).toBeLessThanOrEqual(21);
  // Slots are 50 ms apart on the server, whichever client reserved them.
  expectSpacing(all, 50);
  expect(ta.length / all.length).toBeGreaterThan(0.4);
  expect(tb.length / all.length).toBeGreaterThan(0.4);
}, 20_000);

test("RedisScheduler: when one process stops, the other takes the whole rate at once", async () => {
  const name = uniqueName();
  const a = scheduler(await store(), { name, rate: 20 });
  const b = scheduler(await store(), { name, rate: 20 });
  const t0 = performance.now();
  const [, tb] = await Promise.all([drain(a, t0 + 1000), drain(b, t0 + 2500)]);
  const alone = tb.filter((t) => t >= t0 + 1300);
  // From 1.3 s to 2.5 s b is alone: about 24 slots at 20/s (half that if a still held its share).
  expect(alone.length).toBeGreaterThanOrEqual(22);
  expect(maxPerWindow(tb)).toBeLessThanOrEqual(21);
}, 20_000);

test("RedisScheduler does not bank idle time: after a pause in demand, no burst", async () => {
  const s = scheduler(await store(), { name: uniqueName(), rate: 20 });
  await s.acquire();
  await sleep(1000);
  // 20 slots went by unused; 6 waiters at once must still be spaced 50 ms apart.
  const times = await Promise.all(Array.from({ length: 6 }, () => s.acquire()));
  expectSpacing(times, 50);
  expect(times[5] - times[0]).toBeGreaterThan(230);
}, 20_000);

test("RedisScheduler round-robins its own waiters across lanes", async () => {
  const s = scheduler(await store(), { name: uniqueName(), rate: 50 });
  const order: string[] = [];
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 6; i++) all.push(s.acquire({ lane: "A" }).then(() => order.push("A")));
  for (let i = 0; i < 2; i++) all.push(s.acquire({ lane: "B" }).then(() => order.push("B")));
  await Promise.all(all);
  expect(order.slice(0, 4).sort()).toEqual(["A", "A", "B", "B"]);
}, 20_000);

test(
  "shared slow-down: a burst of 429s seen by three quotas slows the shared rate once",
  async () => {
    const name = uniqueName();
    const quotas = await Promise.all(
      [0, 1, 2].map(async () =>
        new Quota({ rate: 20, scheduler: scheduler(await store(), { name, rate: 20 }) })
      ),
    );
    for (const q of quotas) await q.acquire();
    // The same burst reaches all three: only the first slow-down goes through (shared cooldown).
    for (const q of quotas) q.onFailure(RATE_LIMITED);
    await sleep(50);
    // Use up the reservations each held from before the slow-down (at most `depth` = 2).
    for (let i = 0; i < 2; i++) await Promise.all(quotas.map((q) => q.acquire()));
    await sleep(20);
    const rates = quotas.map((q) => q.scheduler.rate);
    expect(rates).toEqual([10, 10, 10]);
    expect(quotas.map((q) => q.stats.rateLimited)).toEqual([1, 1, 1]);
    // And the schedule follows: 10/s for everyone together.
    const end = performance.now() + 1000;
    const times = (await Promise.all(
      quotas.map(async (q) => {
        const t: number[] = [];
        while (performance.now() < end) t.push(await q.scheduler.acquire());
        return t;
      }),
    )).flat();
    expect(maxPerWindow(times)).toBeLessThanOrEqual(11);
    expectSpacing(times, 100);
  },
  20_000,
);

test("shared increases: at most one a second for everyone, never above the ceiling", async () => {
  const name = uniqueName();
  const a = scheduler(await store(), { name, rate: 20 });
  const b = scheduler(await store(), { name, rate: 20 });
  a.setRate(10, { kind: "slowdown", cooldownMs: 300 });
  await sleep(50);
  b.setRate(5, { kind: "slowdown", cooldownMs: 300 }); // same burst: refused
  a.setRate(15, { kind: "increase" }); // inside the cooldown: refused
  await sleep(50);
  await b.acquire();
  expect(b.rate).toBe(10);
  await sleep(300); // cooldown over
  a.setRate(12, { kind: "increase" });
  await sleep(30);
  b.setRate(14, { kind: "increase" }); // within a second of a's: refused
  await sleep(30);
  await a.acquire();
  await b.acquire();
  expect([a.rate, b.rate]).toEqual([12, 12]);
  await sleep(1000);
  b.setRate(500, { kind: "increase" }); // capped at the ceiling, which clears the shared rate
  await sleep(30);
  await a.acquire();
  expect(a.rate).toBe(20);
}, 20_000);

test("shared pause: a Retry-After that pauses one process holds back the others", async () => {
  const name = uniqueName();
  const a = scheduler(await store(), { name, rate: 50 });
  const b = scheduler(await store(), { name, rate: 50 });
  await a.acquire();
  await b.acquire();
  // A fixed rate pauses everyone for any hint (an adaptive one only for a spent window).
  const qa = new Quota({ rate: 50, scheduler: a, adaptive: false });
  const paused = performance.now();
  qa.onFailure({ ...RATE_LIMITED, retryAfterMs: 600 });
  await sleep(20);
  // b may still release the reservations it held before the pause reached the store (at most
  // `depth` = 2, granted before the 429 was seen, like requests already in flight); no more.
  const times: number[] = [];
  for (let i = 0; i < 3; i++) times.push(await b.acquire());
  expect(times.filter((t) => t - paused < 560).length).toBeLessThanOrEqual(2);
  expect(times[2] - paused).toBeGreaterThan(560);
  expect(b.pausedUntil).toBeGreaterThan(paused + 500);
  // a dropped what it held: its next slot is after the pause too.
  expect(await a.acquire() - paused).toBeGreaterThan(560);
}, 20_000);

test(
  "RedisScheduler re-sends its scripts after SCRIPT FLUSH (EVALSHA, then EVAL on NOSCRIPT)",
  async () => {
    const c = await store();
    const s = scheduler(c, { name: uniqueName(), rate: 100 });
    await s.acquire();
    const { Redis } = await import("ioredis");
    const admin = new Redis(server.url);
    await admin.script("FLUSH");
    admin.disconnect();
    await s.acquire();
    expect(s.released).toBe(2);
  },
  20_000,
);

test("RedisScheduler abort: an aborted waiter leaves, close rejects the rest", async () => {
  const s = scheduler(await store(), { name: uniqueName(), rate: 5 });
  await s.acquire();
  const ac = new AbortController();
  ac.abort(new Error("already"));
  await expect(s.acquire({ signal: ac.signal })).rejects.toThrow("already");
  const mid = new AbortController();
  const waiting = s.acquire({ signal: mid.signal });
  setTimeout(() => mid.abort(new Error("mid-wait")), 20);
  await expect(waiting).rejects.toThrow("mid-wait");
  expect(s.waiting).toBe(0);
  const pending = s.acquire();
  s.close(new Error("closed"));
  await expect(pending).rejects.toThrow("closed");
  await expect(s.acquire()).rejects.toThrow("closed");
  const made = s.reservations;
  await sleep(300);
  expect(s.reservations).toBe(made); // nothing left running
}, 20_000);

test(
  "RedisScheduler: Redis killed and restarted mid-acquire: waits, resumes, no burst",
  async () => {
    const own = await startRedisServer();
    try {
      const name = uniqueName();
      const lost: unknown[] = [];
      const back: number[] = [];
      const make = async () =>
        scheduler(await store(own.url), {
          name,
          rate: 20,
          onStoreLost: (e) => lost.push(e),
          onStoreBack: (ms) => back.push(ms),
        });
      const a = await make();
      const b = await make();
      const t0 = performance.now();
      const end = t0 + 4000;
      const running = Promise.all([drain(a, end), drain(b, end)]);
      await sleep(1000);
      const killedAt = performance.now();
      await own.stop();
      await sleep(1500);
      const restartedAt = performance.now();
      await own.start();
      const all = (await running).flat().sort((x, y) => x - y);
      // While Redis was gone, only the reservations already in hand (at most `depth` = 2 per
      // process, 50 ms apart) were released: no slot without a reservation.
      const during = all.filter((t) => t > killedAt && t < restartedAt);
      expect(during.length).toBeLessThanOrEqual(4);
      expect(during.every((t) => t < killedAt + 250)).toBe(true);
      // It came back, and each process said so once.
      const after = all.filter((t) => t >= restartedAt);
      expect(after.length).toBeGreaterThan(15);
      expect(after[0] - restartedAt).toBeLessThan(800);
      expect(lost.length).toBe(2);
      expect(back.length).toBe(2);
      // No burst: the schedule restarts from the server's clock.
      expect(maxPerWindow(all)).toBeLessThanOrEqual(21);
      expectSpacing(after, 50);
    } finally {
      await own.stop();
    }
  },
  20_000,
);

test(
  "RedisScheduler drops a slot its process could not release on time instead of sending it late",
  async () => {
    const s = scheduler(await store(), { name: uniqueName(), rate: 20, depth: 1, coldStartMs: 0 });
    await s.acquire(); // slot 0; the next (50 ms later) is reserved at once, demand being hot
    await sleep(10);
    const waiting = s.acquire();
    const blockedUntil = performance.now() + 120;
    while (performance.now() < blockedUntil) {
      // A blocked event loop: the timer for the slot at 50 ms cannot fire.
    }
    const t = await waiting;
    expect(s.late).toBe(1);
    // The late slot was not sent; the waiter got the next one on the schedule, after the block.
    expect(t).toBeGreaterThanOrEqual(blockedUntil);
  },
  20_000,
);

test(
  "RedisScheduler keeps coldStartMs free after a process's first slot, and only the first",
  async () => {
    const name = uniqueName();
    const a = scheduler(await store(), { name, rate: 20, coldStartMs: 100 });
    const times: number[] = [];
    for (let i = 0; i < 4; i++) times.push(await a.acquire());
    const g = gaps(times);
    // The first request goes out cold: 50 ms + 100 ms before the next slot, then 50 ms again.
    expect(g[0]).toBeGreaterThan(140);
    expect(g[0]).toBeLessThan(170);
    expect(Math.max(g[1], g[2])).toBeLessThan(60);
  },
  20_000,
);
