// Tests of src/redis/token_gate.ts against a real redis-server started here (never a mock of
// the store): one token budget for several processes' gates, refunds, syncs. Times are real
// (Redis's clock is the budget's clock), so the bounds are generous.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connectQuotaStore, type QuotaStoreConnection } from "../src/redis/connection.ts";
import { type RedisServer, startRedisServer } from "./redis_test_server.ts";
import { Quota } from "../src/quota.ts";
import { RedisTokenGate } from "../src/redis/token_gate.ts";
import { TOKEN_PACE } from "../src/token_gate.ts";

let server: RedisServer;
const connections: QuotaStoreConnection[] = [];

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  for (const c of connections) c.close();
  await server.stop();
});

async function store(): Promise<QuotaStoreConnection> {
  const c = await connectQuotaStore(server.url);
  connections.push(c);
  return c;
}

let names = 0;
const uniqueName = () => `tok-${process.pid}-${Date.now()}-${names++}`;

test("RedisTokenGate rejects a bad tpm or name, naming the value", async () => {
  const c = await store();
  expect(() => new RedisTokenGate({ store: c.store, name: "q", tpm: 0 })).toThrow(
    "current value is 0",
  );
  expect(() => new RedisTokenGate({ store: c.store, name: "a b", tpm: 10 })).toThrow(
    'current value is "a b"',
  );
});

test("three RedisTokenGates on one name share one budget", async () => {
  const tpm = 60_000; // 950 tokens/s paced, a bucket of 250
  const name = uniqueName();
  const gates = await Promise.all(
    [0, 1, 2].map(async () => new RedisTokenGate({ store: (await store()).store, name, tpm })),
  );
  const admitted: { t: number; gate: number }[] = [];
  const until = performance.now() + 3000;
  await Promise.all(gates.map(async (gate, i) => {
    while (performance.now() < until) {
      await gate.take(100);
      admitted.push({ t: performance.now(), gate: i });
    }
  }));
  admitted.sort((a, b) => a.t - b.t);
  const spanS = (admitted[admitted.length - 1].t - admitted[0].t) / 1000;
  const perSecond = ((admitted.length - 1) * 100) / spanS;
  // Together at the pace of one budget (not three): 950 tokens/s, loose for a busy machine.
  expect(perSecond).toBeLessThan((tpm / 60) * 1.1);
  expect(perSecond).toBeGreaterThan((tpm / 60) * TOKEN_PACE * 0.8);
  // Every gate got a share.
  for (const i of [0, 1, 2]) {
    expect(admitted.filter((a) => a.gate === i).length).toBeGreaterThan(admitted.length / 6);
  }
});

test("RedisTokenGate.sync(0) makes the next take wait for its tokens' refill", async () => {
  const tpm = 60_000;
  const gate = new RedisTokenGate({ store: (await store()).store, name: uniqueName(), tpm });
  const msPerToken = 60_000 / (tpm * TOKEN_PACE);
  const free = performance.now();
  await gate.take(100); // a full bucket: at once
  expect(performance.now() - free).toBeLessThan(100 * msPerToken);
  // Timed from the sync: the bucket refills while the test sleeps. Without the sync the take
  // returns at once (about the 20 ms sleep); with it, about 105 ms after the sync.
  const synced = performance.now();
  gate.sync(0);
  await Bun.sleep(20); // sync() does not wait for the store
  await gate.take(100);
  expect(performance.now() - synced).toBeGreaterThan(100 * msPerToken * 0.6);
});

test("RedisTokenGate.adjust() refunds: a refunded charge does not hold the next one back", async () => {
  const tpm = 6000; // 95 tokens/s, a bucket of 25
  const gate = new RedisTokenGate({ store: (await store()).store, name: uniqueName(), tpm });
  await gate.take(500); // larger than the bucket: at once, then 5 s of refill owed
  gate.adjust(-500);
  await Bun.sleep(20);
  const started = performance.now();
  await gate.take(20);
  expect(performance.now() - started).toBeLessThan(1000);
});

test("RedisTokenGate.take() rejects with the signal's reason and gives the tokens back", async () => {
  const tpm = 6000;
  const name = uniqueName();
  const c = await store();
  const gate = new RedisTokenGate({ store: c.store, name, tpm });
  await gate.take(25);
  const controller = new AbortController();
  const waiting = gate.take(500, controller.signal).catch((e) => e); // ~5 s away
  await Bun.sleep(50);
  const reason = new Error("stop");
  controller.abort(reason);
  expect(await waiting).toBe(reason);
  await Bun.sleep(20);
  const started = performance.now();
  await gate.take(20);
  expect(performance.now() - started).toBeLessThan(1500);
});

test("Quotas of two processes with a RedisTokenGate stay within one tpm together", async () => {
  const tpm = 60_000;
  const name = uniqueName();
  const quotas = await Promise.all([0, 1].map(async () =>
    new Quota({
      rate: 1000,
      tokenGate: new RedisTokenGate({ store: (await store()).store, name, tpm }),
    })
  ));
  expect(quotas[0].stats.tpm).toBe(tpm);
  let tokens = 0;
  const started = performance.now();
  const until = started + 2000;
  await Promise.all(quotas.map(async (quota) => {
    while (performance.now() < until) {
      await quota.acquire({ tokens: { prompt: 80, output: 20, outputFromLine: true } });
      tokens += 100;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  // At most a bucket plus the pace over the run (with slack for a busy machine), not twice it.
  expect(tokens).toBeLessThan(250 + (tpm / 60) * seconds * 1.1);
  for (const q of quotas) q.close();
});
