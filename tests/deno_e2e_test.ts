/**
 * The CLI and the server under `deno run` with exactly the narrow permissions README documents
 * (no -A): a real `run` against the mock provider server, then `serve` answering one streamed
 * request. Deno is the npm-installed node_modules/.bin/deno; the mock runs here, under Bun.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type MockProvider, startMockProvider } from "./mocks/mock_provider.ts";
import { freePort } from "./redis_test_server.ts";
import { TextLineStream } from "../src/text_line_stream.ts";
import { cliHarness, readJsonl, ROOT } from "./_cli.ts";
import { alive, childrenOf, waitFor } from "./_processes.ts";

const DENO = path.join(ROOT, "node_modules/.bin/deno");
/** A made-up key for this run only (keys never live in the source). */
const KEY = `test-key-${crypto.randomUUID()}`;

/** Every variable the CLI reads (README "Deploy"); `serve` adds {@linkcode SERVE_ENV}. */
const RUN_ENV =
  "GEMINI_API_KEY,GOOGLE_API_KEY,OPENAI_API_KEY,OPENAI_BASE_URL,GEMINI_BASE_URL,MFT_QUOTA_URL";
const SERVE_ENV =
  `${RUN_ENV},MFT_PROVIDER,MFT_MODEL,MFT_RATE_LIMIT,MFT_TPM,MFT_MAX_ATTEMPTS,MFT_TIMEOUT,MFT_SERVER_TOKEN`;

let dir: string;
let mock: MockProvider;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mft-deno-"));
  mock = await startMockProvider({ latencyMs: 30, requireKey: KEY });
});

afterAll(async () => {
  await mock?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A Deno child's environment: no update check, no prompt, none of this machine's settings. */
function denoEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PROMPT: "1",
    NO_COLOR: "1",
  };
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(MFT_|OPENAI_|GEMINI_|GOOGLE_)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

function spawnDeno(args: string[], env: Record<string, string>) {
  return Bun.spawn([DENO, ...args], {
    cwd: ROOT,
    env: denoEnv(env),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

function prompts(n: number, tag: string): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${tag}${i}`, prompt: `${i}` }))
    .join("\n") + "\n";
}

test("deno run cli.ts run: narrow permissions, real run against the mock provider", async () => {
  const input = path.join(dir, "input.jsonl");
  fs.writeFileSync(input, prompts(25, "d") + "not json\n");
  const outDir = path.join(dir, "out");
  const output = path.join(outDir, "output.jsonl");
  const host = new URL(mock.url).host;
  const p = spawnDeno([
    "run",
    `--allow-read=${input},${outDir}`,
    `--allow-write=${outDir}`,
    `--allow-net=${host}`,
    `--allow-env=${RUN_ENV}`,
    "--allow-sys=uid",
    "cli.ts",
    "run",
    input,
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "100",
    "-o",
    output,
  ], { OPENAI_API_KEY: KEY });
  const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  expect(stderr).not.toContain("NotCapable");
  expect(stderr).toContain("ok 25");
  expect(code).toBe(1); // the one bad line
  const ok = readJsonl(output);
  expect(ok.map((l) => l.id).sort()).toEqual(
    Array.from({ length: 25 }, (_, i) => `d${i}`).sort(),
  );
  expect(ok[0]).toMatchObject({ provider: "openai" });
  const errors = readJsonl(path.join(outDir, "output.errors.jsonl"));
  expect(errors.length).toBe(1);
  expect(errors[0]).toMatchObject({ raw: "not json" });
}, 30_000);

test(
  "deno run cli.ts run: the permissions are needed (no read of the output dir fails loudly)",
  async () => {
    const input = path.join(dir, "input2.jsonl");
    fs.writeFileSync(input, prompts(2, "n"));
    const outDir = path.join(dir, "out2");
    fs.mkdirSync(outDir);
    const output = path.join(outDir, "output.jsonl");
    fs.writeFileSync(output, '{"id":"old"}\n');
    const p = spawnDeno([
      "run",
      `--allow-read=${input}`,
      `--allow-write=${outDir}`,
      `--allow-net=${new URL(mock.url).host}`,
      `--allow-env=${RUN_ENV}`,
      "--allow-sys=uid",
      "cli.ts",
      "run",
      input,
      "--provider",
      "openai",
      "--base-url",
      `${mock.url}/v1`,
      "-o",
      output,
    ], { OPENAI_API_KEY: KEY });
    const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
    // Without read access the "output exists" check can not look: Deno stops it, nothing is lost.
    expect(code).not.toBe(0);
    expect(stderr).toContain(`Requires read access to "${output}"`);
    expect(fs.readFileSync(output, "utf8")).toBe('{"id":"old"}\n');
  },
  30_000,
);

test("deno run cli.ts serve: narrow permissions, one streamed request", async () => {
  mock.reset();
  const port = await freePort();
  const child = spawnDeno([
    "run",
    `--allow-net=127.0.0.1:${port},${new URL(mock.url).host}`,
    `--allow-env=${SERVE_ENV}`,
    "cli.ts",
    "serve",
    "--port",
    String(port),
    "--provider",
    "openai",
    "--base-url",
    `${mock.url}/v1`,
    "--rate-limit",
    "20",
  ], { OPENAI_API_KEY: KEY });
  const stderr = new Response(child.stderr).text();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let printed = "";
    while (!printed.includes("listening on")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited before listening: ${printed} ${await stderr}`);
      printed += value;
    }
    expect(printed).toContain(`listening on http://127.0.0.1:${port}`);
    const res = await fetch(`http://127.0.0.1:${port}/v1/runs`, {
      method: "POST",
      body: prompts(10, "ds"),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("application/x-ndjson");
    const got: Record<string, unknown>[] = [];
    let countAtFirst = -1;
    const lines = res.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new TextLineStream());
    for await (const line of lines) {
      if (line === "") continue;
      if (countAtFirst < 0) countAtFirst = mock.stats().count;
      got.push(JSON.parse(line));
    }
    expect(got.length).toBe(11);
    expect(got.at(-1)!.summary).toMatchObject({ ok: 10, failed: 0 });
    expect(got.at(-1)!.summary).not.toHaveProperty("runtime_limit");
    expect(countAtFirst).toBeLessThan(10);
    child.kill("SIGINT");
    expect(await child.exited).toBe(0);
    expect(await stderr).not.toContain("NotCapable");
    void reader.cancel();
  } finally {
    child.kill("SIGKILL");
  }
}, 30_000);

/** The environment of process `pid`, from /proc. */
function environOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** A 400-line input and the `run` arguments that send it to the mock at 20 req/s. */
function slowJob(tag: string): { args: string[]; output: string } {
  const input = path.join(dir, `${tag}.jsonl`);
  fs.writeFileSync(input, prompts(400, tag));
  const output = path.join(dir, `${tag}-out`, "output.jsonl");
  const base = `${mock.url}/v1`;
  return {
    args: ["run", input, "--provider", "openai", "--base-url", base, "--rate-limit", "20"],
    output,
  };
}

function slowRun(tag: string, extraEnv: Record<string, string> = {}) {
  const { args, output } = slowJob(tag);
  return spawnDeno(["run", "-A", "cli.ts", ...args, "-o", output, "-q"], {
    OPENAI_API_KEY: KEY,
    ...extraEnv,
  });
}

test(
  "deno run -A cli.ts run: relaunched with V8's young generation capped; kill -9 of it ends the child",
  async () => {
    mock.reset();
    const parent = slowRun("relaunch");
    let child = 0;
    try {
      await waitFor("the relaunched child", () => (child = childrenOf(parent.pid)[0] ?? 0) > 0);
      // Read once it sends (a child just forked still shows the parent's environment).
      await waitFor("the first requests", () => mock.stats().count >= 5);
      expect(environOf(child).DENO_V8_FLAGS).toBe("--max-semi-space-size=8");
      expect(environOf(parent.pid).DENO_V8_FLAGS).toBeUndefined();
      process.kill(parent.pid, "SIGKILL");
      await parent.exited;
      await waitFor("the child to exit", () => !alive(child));
    } finally {
      parent.kill("SIGKILL");
      if (child && alive(child)) process.kill(child, "SIGKILL");
    }
  },
  30_000,
);

test(
  "deno run cli.ts run: no relaunch when DENO_V8_FLAGS already sets the young generation",
  async () => {
    mock.reset();
    const p = slowRun("own-flags", { DENO_V8_FLAGS: "--max-semi-space-size=16" });
    try {
      await waitFor("the first requests", () => mock.stats().count >= 5);
      expect(childrenOf(p.pid)).toEqual([]); // the requests come from the process started
    } finally {
      p.kill("SIGKILL");
    }
  },
  30_000,
);

/** `deno run -A cli.ts` in its own process group, as a terminal starts it (Ctrl-C signals it). */
const { spawnCli: spawnDenoCli } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|^MFT_|^DENO_V8_FLAGS$/,
  command: () => [DENO, "run", "-A", path.join(ROOT, "cli.ts")],
  detached: true,
});

test(
  "deno run -A cli.ts run: Ctrl-C to the process group reaches the relaunched child: exit 130",
  async () => {
    mock.reset();
    const { args, output } = slowJob("ctrl-c");
    const parent = spawnDenoCli([...args, "-o", output], {
      OPENAI_API_KEY: KEY,
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
    });
    const stderr = new Response(parent.stderr).text();
    try {
      await waitFor("the relaunched child", () => childrenOf(parent.pid).length > 0);
      await waitFor("the first requests", () => mock.stats().count >= 5);
      process.kill(-parent.pid, "SIGINT");
      expect(await parent.exited).toBe(130);
      const text = await stderr;
      expect(text).toContain("resume with:");
      const written = readJsonl(output).length;
      expect(written).toBeGreaterThan(0);
      expect(written).toBeLessThan(200);
    } finally {
      try {
        process.kill(-parent.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  },
  30_000,
);
