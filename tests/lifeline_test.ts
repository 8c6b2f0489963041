/**
 * Nothing of ours outlives the process the user started (`src/cli/lifeline.ts`): `bun cli.ts run` and
 * `serve` relaunch themselves as a child under Bun; SIGKILL to the parent alone (as a supervisor,
 * the OOM killer or a CI timeout sends it) must end the child too: no more requests, no more
 * writes, the port freed, the output lock released.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { cliHarness, readJsonl } from "./_cli.ts";
import { alive, childrenOf, listening, waitFor, watchText } from "./_processes.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
let mock: MockProvider;
let dir: string;
beforeAll(async () => {
  mock = await startMockProvider({ latencyMs: 100 });
  dir = fs.mkdtempSync("/tmp/i10-lifecycle-lifeline-");
});
afterAll(async () => {
  await mock.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const { spawnCli, file } = cliHarness({
  dir: () => dir,
  // The relaunch happens only when Bun's fetch cap is not set already.
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS|MFT_/,
  env: { OPENAI_API_KEY: KEY },
});

/** Children seen by the tests, killed at the end should a test fail with one still running. */
const seen: number[] = [];
afterAll(() => {
  for (const pid of seen) if (alive(pid)) process.kill(pid, "SIGKILL");
});

/** Waits for the relaunched child of `pid` and returns its pid. */
const childOf = async (pid: number) => {
  const child = await waitFor("the relaunched child", () => childrenOf(pid)[0]);
  seen.push(child);
  return child;
};

test(
  "kill -9 of `run`'s process ends its relaunched child: nothing more is sent or written",
  async () => {
    const n = 400;
    const input = file(
      "slow.jsonl",
      Array.from({ length: n }, (_, i) => ({ id: `s${i}`, prompt: `q ${i}` })),
    );
    const out = path.join(dir, "slow-out.jsonl");
    const parent = spawnCli([
      "run",
      input,
      "--provider",
      "openai",
      "--base-url",
      `${mock.url}/v1`,
      "--rate-limit",
      "20",
      "--output",
      out,
    ]);
    const child = await childOf(parent.pid);
    await waitFor("answers", () => readJsonl(out).length >= 5);
    process.kill(parent.pid, "SIGKILL"); // the parent alone, not its group
    await parent.exited;
    await waitFor("the child to exit", () => !alive(child), 10_000);
    const sent = mock.stats().count;
    const written = readJsonl(out).length;
    expect(written).toBeLessThan(n);
    await Bun.sleep(500); // at 20 req/s, 10 more requests would have gone out by now
    expect(mock.stats().count).toBe(sent);
    expect(readJsonl(out).length).toBe(written);
    expect(fs.existsSync(`${out}.lock`)).toBe(false);
  },
  30_000,
);

test("kill -9 of `serve`'s process ends its relaunched child and frees the port", async () => {
  const parent = spawnCli(["serve", "--port", "0", "--provider", "mock"]);
  let text = "";
  watchText(parent.stdout, (t) => (text = t)).catch(() => {});
  const url = await waitFor("listening", () => /listening on (http:\/\/\S+)/.exec(text)?.[1]);
  const port = Number(new URL(url).port);
  const child = await childOf(parent.pid);
  expect(await listening(port)).toBe(true);
  process.kill(parent.pid, "SIGKILL");
  await parent.exited;
  await waitFor("the child to exit", () => !alive(child), 10_000);
  // The main thread exits first; the socket closes with the process's last thread, just after.
  const end = Date.now() + 5000;
  while (await listening(port) && Date.now() < end) await Bun.sleep(20);
  expect(await listening(port)).toBe(false);
}, 30_000);
