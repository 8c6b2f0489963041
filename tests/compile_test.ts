/**
 * The single executable as a user runs it: `scripts/compile` builds it once (Bun only; `deno
 * compile` needs a download), then --help, --version, exit codes, a real `run` against the mock
 * provider server, Ctrl-C through the process group, `serve` answering a streamed request, and
 * more than Bun's default 256 open requests (the fetch-cap relaunch inside the binary).
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { maxPerWindow, type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { TextLineStream } from "../src/text_line_stream.ts";
import pkg from "../package.json" with { type: "json" };
import { cliHarness, readJsonl, ROOT } from "./_cli.ts";
import { alive, childrenOf } from "./_processes.ts";

/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;
let dir: string;
let bin: string;
let mock: MockProvider;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-compile-"));
  bin = path.join(dir, "model-fine-tuner");
  const build = Bun.spawn(["sh", "scripts/compile", "--outfile", bin, "--skip-deno"], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(build.stdout).text(),
    new Response(build.stderr).text(),
    build.exited,
  ]);
  if (code !== 0) throw new Error(`scripts/compile failed (${code}):\n${out}\n${err}`);
  mock = await startMockProvider({ latencyMs: 30, requireKey: KEY });
}, 60_000);

afterAll(async () => {
  await mock?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The binary in its own process group, as a terminal would start it (Ctrl-C signals the group),
 * with the environment a user would have: none of this machine's keys, base URLs or Bun settings.
 */
const { spawnCli: spawnBin, cli: runBin, file: writeInput } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|^BUN_CONFIG_|^MFT_/,
  command: () => [bin],
  detached: true,
});

function prompts(n: number, tag: string): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${tag}${i}`, prompt: `${i}` }));
}

/** Signals the whole process group, so nothing the binary started is left behind. */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

async function waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = performance.now() + ms;
  while (!check()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

test("compiled binary: --help, --version and exit codes", async () => {
  const help = await runBin(["--help"]);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain("model-fine-tuner run <input.jsonl | ->");
  const version = await runBin(["--version"]);
  expect(version).toMatchObject({ code: 0, stdout: `model-fine-tuner ${pkg.version}\n` });
  const unknown = await runBin(["frobnicate"]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  const serveHelp = await runBin(["serve", "--help"]);
  expect(serveHelp.code).toBe(0);
  expect(serveHelp.stdout).toContain("POST /v1/runs");
}, 20_000);

test(
  "compiled binary: run against the mock provider writes every line, exit 1 with a bad line",
  async () => {
    const good = writeInput("good.jsonl", prompts(20, "g"));
    const out = path.join(dir, "good-out", "output.jsonl");
    const base = ["--provider", "openai", "--base-url", `${mock.url}/v1`, "--rate-limit", "50"];
    const r = await runBin(["run", good, "-o", out, ...base], { OPENAI_API_KEY: KEY });
    expect(r.stderr).toContain("ok 20");
    expect(r.code).toBe(0);
    const ids = readJsonl(out).map((l) => l.id).sort();
    expect(ids).toEqual(prompts(20, "g").map((l) => JSON.parse(l).id).sort());
    expect(readJsonl(path.join(dir, "good-out", "output.errors.jsonl"))).toEqual([]);

    // Exit codes survive the relaunch: a bad line is 1, a missing key is 2.
    const bad = writeInput("bad.jsonl", [...prompts(2, "b"), "not json"]);
    const badOut = path.join(dir, "bad-out", "output.jsonl");
    const r1 = await runBin(["run", bad, "-o", badOut, ...base], { OPENAI_API_KEY: KEY });
    expect(r1.code).toBe(1);
    expect(readJsonl(badOut).length).toBe(2);
    expect(readJsonl(path.join(dir, "bad-out", "output.errors.jsonl")).length).toBe(1);
    const r2 = await runBin([
      "run",
      good,
      "-o",
      path.join(dir, "nokey", "o.jsonl"),
      "--provider",
      "openai",
    ]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain("OPENAI_API_KEY is not set");
  },
  20_000,
);

test("compiled binary: Ctrl-C to the process group stops gracefully with exit 130", async () => {
  mock.reset();
  const input = writeInput("slow.jsonl", prompts(200, "s"));
  const out = path.join(dir, "slow-out", "output.jsonl");
  const child = spawnBin([
    "run",
    input,
    "-o",
    out,
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "20",
  ], { OPENAI_API_KEY: KEY });
  const stderr = new Response(child.stderr).text();
  try {
    await waitFor(() => mock.stats().count >= 5, "the first requests");
    killGroup(child.pid, "SIGINT");
    expect(await child.exited).toBe(130);
    const text = await stderr;
    expect(text).toContain("resume with:");
    expect(text).toContain("--resume");
    const written = readJsonl(out).length;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(200);
  } finally {
    killGroup(child.pid, "SIGKILL");
  }
}, 20_000);

test("compiled binary: serve answers a streamed request and stops on Ctrl-C", async () => {
  mock.reset();
  const child = spawnBin([
    "serve",
    "--port",
    "0",
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "20",
  ], { OPENAI_API_KEY: KEY });
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let printed = "";
    let base: string | undefined;
    while (base === undefined) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited before listening: ${printed}`);
      printed += value;
      base = /listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(printed)?.[1];
    }
    const res = await fetch(`${base}/v1/runs`, {
      method: "POST",
      body: prompts(10, "srv").join("\n") + "\n",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/x-ndjson");
    const lines: Record<string, unknown>[] = [];
    let countAtFirst = -1;
    const stream = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(
      new TextLineStream(),
    );
    for await (const line of stream) {
      if (line === "") continue;
      if (countAtFirst < 0) countAtFirst = mock.stats().count;
      lines.push(JSON.parse(line));
    }
    expect(lines.length).toBe(11);
    expect(lines.at(-1)!.summary).toMatchObject({ ok: 10, failed: 0 });
    expect(countAtFirst).toBeLessThan(10); // the first result came before the last request went
    killGroup(child.pid, "SIGINT");
    expect(await child.exited).toBe(0);
    void reader.cancel();
  } finally {
    killGroup(child.pid, "SIGKILL");
  }
}, 20_000);

test(
  "compiled binary: holds more than Bun's 256 open requests (200 req/s, 2 s answers)",
  async () => {
    // Without the relaunch, Bun's fetch keeps 256 requests open: 256 / 2 s = 128 req/s.
    const slow = await startMockProvider({ latencyMs: 2000, requireKey: KEY });
    try {
      const input = writeInput("wide.jsonl", prompts(1200, "w"));
      const out = path.join(dir, "wide-out", "output.jsonl");
      const r = await runBin([
        "run",
        input,
        "-o",
        out,
        "--provider",
        "openai",
        "--base-url",
        `${slow.url}/v1`,
        "--rate-limit",
        "200",
        "--quiet",
      ], { OPENAI_API_KEY: KEY });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(readJsonl(out).length).toBe(1200);
      // The first request goes alone (the run waits for its answer before opening the full
      // rate: see "A misconfigured run stops on its first answers"); the rate is from the second.
      const times = slow.arrivals().map((a) => a.t).slice(1);
      const rate = (times.length - 1) / ((times.at(-1)! - times[0]) / 1000);
      // Every answer takes 2 s, so arrivals within 1.9 s were all open at once.
      const open = maxPerWindow(times, 1900);
      console.log(
        `compiled binary at 200 req/s, 2 s latency: mock saw ${
          rate.toFixed(1)
        } req/s after the first request, up to ${open} open`,
      );
      expect(open).toBeGreaterThan(300);
      expect(rate).toBeGreaterThan(170);
    } finally {
      await slow.close();
    }
  },
  30_000,
);

test("compiled binary: kill -9 of the process started ends its relaunched child", async () => {
  mock.reset();
  const input = writeInput("orphan.jsonl", prompts(400, "o"));
  const out = path.join(dir, "orphan-out", "output.jsonl");
  const parent = spawnBin([
    "run",
    input,
    "-o",
    out,
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "20",
  ], { OPENAI_API_KEY: KEY });
  let child = 0;
  try {
    await waitFor(() => (child = childrenOf(parent.pid)[0] ?? 0) > 0, "the relaunched child");
    await waitFor(() => mock.stats().count >= 5, "the first requests");
    process.kill(parent.pid, "SIGKILL"); // the parent alone, as a supervisor would
    await parent.exited;
    await waitFor(() => !alive(child), "the child to exit");
    const sent = mock.stats().count;
    await Bun.sleep(500);
    expect(mock.stats().count).toBe(sent);
  } finally {
    killGroup(parent.pid, "SIGKILL");
  }
}, 20_000);
