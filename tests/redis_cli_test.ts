/**
 * `run --quota` end to end: real CLI subprocesses, a real redis-server and the mock provider
 * server on 127.0.0.1. Two jobs on one quota share its rate; an unreachable store is exit 2 (or
 * a stated fallback); a store lost mid-run pauses dispatching and loses nothing.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { maxPerWindow, type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { freePort, type RedisServer, startRedisServer } from "./redis_test_server.ts";
import { CLI, cliHarness, finish } from "./_cli.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
let mock: MockProvider;
let redis: RedisServer;
let dir: string;

beforeAll(async () => {
  redis = await startRedisServer();
  mock = await startMockProvider({ latencyMs: 30 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-redis-cli-"));
});
afterAll(async () => {
  await mock.close();
  await redis.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const { env: baseEnv, spawnCli, file } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|MFT_QUOTA_URL/,
  env: { OPENAI_API_KEY: KEY },
  command: () => [process.execPath, CLI, "run"],
});

function input(name: string, n: number): string {
  return file(name, Array.from({ length: n }, (_, i) => ({ id: `${name}-${i}`, prompt: `q${i}` })));
}

function lineCount(p: string): number {
  if (!fs.existsSync(p)) return 0;
  return fs.readFileSync(p, "utf8").split("\n").filter((l) => l.trim() !== "").length;
}

const openai = (out: string, extra: string[] = []) => [
  "--provider",
  "openai",
  "--base-url",
  `${mock.url}/v1`,
  "--output",
  out,
  "--errors",
  out.replace(/\.jsonl$/, "-errors.jsonl"),
  ...extra,
];

test(
  "cli run --quota: an unreachable store is exit 2 with one line, and nothing is sent",
  async () => {
    const port = await freePort();
    const before = mock.stats().count;
    const out = path.join(dir, "unreachable.jsonl");
    const r = await finish(
      spawnCli([
        input("unreachable", 3),
        ...openai(out, ["--quota", `redis://127.0.0.1:${port}/0`]),
      ]),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `model-fine-tuner: cannot reach the quota store redis://127.0.0.1:${port}/0: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    );
    expect(mock.stats().count).toBe(before);
    expect(fs.existsSync(out)).toBe(false);
  },
  20_000,
);

test("cli run --quota-fallback local runs alone at the stated fraction of the rate", async () => {
  const port = await freePort();
  const out = path.join(dir, "fallback.jsonl");
  const started = performance.now();
  const r = await finish(spawnCli([
    input("fallback", 6),
    ...openai(out, ["--rate-limit", "10", "--quota-fallback", "local"]),
  ], { MFT_QUOTA_URL: `redis://127.0.0.1:${port}/0` }));
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(
    `cannot reach the quota store redis://127.0.0.1:${port}/0: connect ECONNREFUSED`,
  );
  expect(r.stderr).toContain(
    "--quota-fallback local: running alone with the in-process scheduler at 5 req/s (0.5 of 10)",
  );
  expect(lineCount(out)).toBe(6);
  // 6 requests at 5/s: the last goes out 1 s after the first.
  expect(performance.now() - started).toBeGreaterThan(1000);
}, 20_000);

test(
  "cli run --quota flags are checked: scheme, fallback mode, fraction, name without a store",
  async () => {
    const file = input("flags", 1);
    const out = path.join(dir, "flags.jsonl");
    const cases: [string[], RegExp][] = [
      [["--quota", "http://127.0.0.1:1"], /scheme must be redis:, rediss: or unix:/],
      [["--quota", redis.url, "--quota-fallback", "remote"], /--quota-fallback must be 'local'/],
      [["--quota", redis.url, "--quota-fallback-fraction", "2"], /--quota-fallback-fraction/],
      [["--quota-name", "x"], /--quota-name needs --quota URL \(or MFT_QUOTA_URL\)/],
      [["--quota", redis.url, "--quota-name", "has space"], /--quota-name: .*'name'/],
    ];
    for (const [flags, message] of cases) {
      const r = await finish(spawnCli([file, ...openai(out, flags)]));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  },
  20_000,
);

test(
  "cli run: two jobs on one quota share its rate: at most R+1 a second, both progress",
  async () => {
    mock.reset();
    const a = path.join(dir, "share-a.jsonl");
    const b = path.join(dir, "share-b.jsonl");
    const started = performance.now();
    // Same provider, model, URL and key: the default quota name is the same fingerprint. One job
    // names the store with --quota, the other with MFT_QUOTA_URL.
    const pa = spawnCli([input("share-a", 40), ...openai(a, ["--rate-limit", "20"])], {
      MFT_QUOTA_URL: redis.url,
    });
    const pb = spawnCli([
      input("share-b", 40),
      ...openai(b, ["--rate-limit", "20", "--quota", redis.url]),
    ]);
    await Bun.sleep(2200);
    const midA = lineCount(a);
    const midB = lineCount(b);
    const [ra, rb] = await Promise.all([finish(pa), finish(pb)]);
    const elapsed = performance.now() - started;
    expect(ra.code).toBe(0);
    expect(rb.code).toBe(0);
    expect(ra.stderr).toMatch(
      /quota: shared "[0-9a-f]{16}" on redis:\/\/127\.0\.0\.1:\d+\/0: 20 req\/s/,
    );
    expect(lineCount(a)).toBe(40);
    expect(lineCount(b)).toBe(40);
    // Both progressed side by side: each had about half of what ~2 s of the shared rate allows.
    expect(midA).toBeGreaterThan(5);
    expect(midB).toBeGreaterThan(5);
    expect(Math.abs(midA - midB)).toBeLessThan(12);
    const times = mock.arrivals().map((x) => x.t);
    expect(times).toHaveLength(80);
    expect(maxPerWindow(times)).toBeLessThanOrEqual(21);
    // 80 requests at 20/s for both together: about 4 s (alone, each would take 2 s).
    const span = (times[times.length - 1] - times[0]) / 1000;
    expect(span).toBeGreaterThan(3.7);
    expect(span).toBeLessThan(4.6);
    expect(elapsed).toBeGreaterThan(3700);
    // The key never reaches the store's name, the output or the terminal.
    for (const r of [ra, rb]) expect(r.stderr).not.toContain(KEY);
  },
  20_000,
);

test(
  "cli run: two jobs with --tpm on one quota share one token budget: no token 429s",
  async () => {
    // The provider counts 9,000 tokens in any 6 s (90,000/min) the way OpenAI does (body bytes / 4
    // + max tokens); each job is told the whole --tpm 90000. With a token gate per process they
    // would send twice that.
    const tokenMock = await startMockProvider({
      latencyMs: 30,
      tokenQuota: { tokens: 9000, windowMs: 6000, count: "request" },
    });
    try {
      const lines = (name: string) =>
        file(
          name,
          Array.from({ length: 40 }, (_, i) => ({
            id: `${name}-${i}`,
            prompt: "word ".repeat(10 + (i % 7) * 10),
            max_tokens: 50,
          })),
        );
      const run = (name: string) =>
        spawnCli([
          lines(name),
          "--provider",
          "openai",
          "--base-url",
          `${tokenMock.url}/v1`,
          "--output",
          path.join(dir, `${name}.jsonl`),
          "--errors",
          path.join(dir, `${name}-errors.jsonl`),
          "--rate-limit",
          "50",
          "--tpm",
          "90000",
          "--quota",
          redis.url,
          "--quota-name",
          "tokens-shared",
        ]);
      const [ra, rb] = await Promise.all([finish(run("tpm-a")), finish(run("tpm-b"))]);
      expect(ra.code).toBe(0);
      expect(rb.code).toBe(0);
      expect(ra.stderr).toContain("50 req/s and 90000 tokens/min for every job on it together");
      expect(lineCount(path.join(dir, "tpm-a.jsonl"))).toBe(40);
      expect(lineCount(path.join(dir, "tpm-b.jsonl"))).toBe(40);
      const refused = tokenMock.arrivals().filter((a) => a.status === 429).length;
      expect(refused).toBeLessThanOrEqual(1);
      // The two together stayed within the window's budget.
      const accepted = tokenMock.tokensAccepted();
      let most = 0;
      for (let i = 0, j = 0, sum = 0; j < accepted.length; j++) {
        sum += accepted[j].tokens;
        while (accepted[j].t - accepted[i].t >= 6000) sum -= accepted[i++].tokens;
        most = Math.max(most, sum);
      }
      expect(most).toBeLessThanOrEqual(9000);
    } finally {
      await tokenMock.close();
    }
  },
  30_000,
);

test(
  "cli run --quota: the store lost mid-run pauses dispatching, resumes, loses nothing",
  async () => {
    const own = await startRedisServer();
    try {
      mock.reset();
      const out = path.join(dir, "lost.jsonl");
      const p = spawnCli([
        input("lost", 50),
        ...openai(out, ["--rate-limit", "20", "--quota", own.url, "--quota-name", "lost-test"]),
      ]);
      await Bun.sleep(1000);
      const stoppedAt = mock.arrivals().length;
      const t0 = performance.now();
      await own.stop();
      await Bun.sleep(1500);
      const during = mock.arrivals().length - stoppedAt;
      await own.start();
      const r = await finish(p);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(
        /quota store redis:\/\/127\.0\.0\.1:\d+\/0 lost \(not connected: .*\): dispatch paused/,
      );
      expect(r.stderr).toMatch(/quota store redis:\/\/127\.0\.0\.1:\d+\/0 back after \d/);
      // Only reservations already in hand went out while the store was gone (depth 1 at 20/s).
      expect(during).toBeLessThanOrEqual(2);
      expect(performance.now() - t0).toBeGreaterThan(1500);
      expect(lineCount(out)).toBe(50);
      expect(maxPerWindow(mock.arrivals().map((x) => x.t))).toBeLessThanOrEqual(21);
    } finally {
      await own.stop();
    }
  },
  20_000,
);

test("serve --quota: two server replicas on one Redis quota share its rate", async () => {
  const rate = 10;
  const quotaName = "serve-replicas";
  const start = async () => {
    const p = Bun.spawn(
      [
        process.execPath,
        CLI,
        "serve",
        "--port",
        "0",
        "--provider",
        "openai",
        "--base-url",
        `${mock.url}/v1`,
        "--rate-limit",
        String(rate),
        "--quota",
        redis.url,
        "--quota-name",
        quotaName,
      ],
      { cwd: dir, env: baseEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true },
    );
    const reader = p.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited: ${await new Response(p.stderr).text()}`);
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    return { p, url: /listening on (\S+)/.exec(text)![1] };
  };
  const [a, b] = [await start(), await start()];
  try {
    mock.reset();
    const body = Array.from(
      { length: 30 },
      (_, i) => JSON.stringify({ id: `s${i}`, prompt: `q ${i}` }),
    ).join("\n");
    const post = async (url: string) => {
      const res = await fetch(`${url}/v1/runs`, { method: "POST", body });
      const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
      return lines[lines.length - 1].summary;
    };
    const [sa, sb] = await Promise.all([post(a.url), post(b.url)]);
    expect(sa.ok).toBe(30);
    expect(sb.ok).toBe(30);
    // 60 requests through two replicas on one quota of 10 req/s: at most R+1 in any second.
    const times = mock.arrivals().map((x) => x.t);
    expect(times).toHaveLength(60);
    expect(maxPerWindow(times)).toBeLessThanOrEqual(rate + 1);
    expect((times[times.length - 1] - times[0]) / 1000).toBeGreaterThan(4.5);
  } finally {
    for (const s of [a, b]) {
      process.kill(-s.p.pid, "SIGINT");
      await s.p.exited;
    }
  }
}, 30_000);
