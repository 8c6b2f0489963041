/**
 * A disk that refuses writes, end to end: a real 300 KB tmpfs filling up under `bun cli.ts run`
 * (mounted here; the test needs root), `/dev/full` as the errors file, and `--resume` repairing
 * lines a short write or a crash left torn anywhere in the files.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { cliHarness, readJsonl } from "./_cli.ts";

let dir: string;
let disk: string;
let mounted = false;

beforeAll(() => {
  dir = fs.mkdtempSync("/tmp/i10-lifecycle-disk-");
  disk = path.join(dir, "small");
  fs.mkdirSync(disk);
  const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", disk]);
  mounted = mount.exitCode === 0;
});
afterAll(() => {
  if (mounted) Bun.spawnSync(["umount", disk]);
  fs.rmSync(dir, { recursive: true, force: true });
});

const { cli, file } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS|MFT_/,
});

const prompts = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${tag}${i}`, prompt: `question ${i}` }));

/** Every line of a file parses as JSON (no torn line anywhere), and the file ends a line. */
function wholeLines(f: string): boolean {
  const text = fs.readFileSync(f, "utf8");
  if (text !== "" && !text.endsWith("\n")) return false;
  return text.split("\n").filter((l) => l !== "").every((l) => {
    try {
      JSON.parse(l);
      return true;
    } catch {
      return false;
    }
  });
}

test(
  "a full disk stops the run with exit 4, one clear line and the resume command; --resume completes it",
  async () => {
    if (!mounted) throw new Error("this test mounts a tmpfs: run it as root");
    const n = 2000; // about 830 KB of answers for a 300 KB disk
    const input = file("full.jsonl", prompts("f", n));
    const out = path.join(disk, "out.jsonl");
    const args = ["run", input, "--provider", "mock", "--rate-limit", "1000", "--output", out];
    const r = await cli(args);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(
      `stopped: cannot write ${out}: no space left on the device (ENOSPC)`,
    );
    expect(r.stderr).toContain("resume with:");
    const command = /resume with:\n {2}(.+)\n/.exec(r.stderr)![1];
    expect(command).toContain("--resume");
    expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
    expect(wholeLines(out)).toBe(true); // the write that failed left no torn line
    const written = readJsonl(out).length;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(n);

    // Space comes back; the printed command finishes the job, every id once.
    expect(Bun.spawnSync(["mount", "-o", "remount,size=4m", disk]).exitCode).toBe(0);
    const again = await cli([...command.split(" ").slice(1)]);
    expect(again.code).toBe(0);
    const ids = readJsonl(out).map((o) => o.id);
    expect(ids.length).toBe(n);
    expect(new Set(ids).size).toBe(n);
    expect(fs.existsSync(`${out}.lock`)).toBe(false);
  },
  60_000,
);

test("an errors file on /dev/full stops the run with exit 4 after the first failure", async () => {
  const n = 200;
  const input = file("devfull.jsonl", prompts("d", n));
  const out = path.join(dir, "devfull-out.jsonl");
  const r = await cli([
    "run",
    input,
    "--provider",
    "mock",
    "--mock-failure-rate",
    "1",
    "--max-attempts",
    "1",
    "--rate-limit",
    "50",
    "--output",
    out,
    "--errors",
    "/dev/full",
  ]);
  expect(r.code).toBe(4);
  expect(r.stderr).toContain("cannot write /dev/full: no space left on the device (ENOSPC)");
  expect(r.stderr).toContain("--resume");
  // Dispatching stopped: far from every line was sent.
  const done = /(\d+) answers could not be written/.exec(r.stderr);
  expect(Number(done![1])).toBeGreaterThan(0);
  expect(Number(done![1])).toBeLessThan(n / 2);
});

test("--resume removes lines torn anywhere in the output and errors files, and sends their items again", async () => {
  const n = 50;
  const input = file("torn.jsonl", prompts("t", n));
  const out = path.join(dir, "torn-out.jsonl");
  const errors = path.join(dir, "torn-out.errors.jsonl");
  const args = ["run", input, "--provider", "mock", "--rate-limit", "1000", "--output", out];
  expect((await cli(args)).code).toBe(0);
  const lines = fs.readFileSync(out, "utf8").split("\n").filter((l) => l !== "");
  // A short write in the middle (then a later append), lines lost, and a torn tail.
  lines[20] = lines[20].slice(0, 40);
  lines.splice(30, 2);
  fs.writeFileSync(out, lines.join("\n") + "\n" + '{"id":"t49","te');
  fs.writeFileSync(errors, '{"id":"t7","prompt":"question 7","err\n{"id":"t8"');
  const r = await cli([...args, "--resume"]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(`removed 1 torn line (not JSON) from ${out}`);
  expect(r.stderr).toContain(`removed an unfinished last line from ${out}`);
  expect(wholeLines(out)).toBe(true);
  const ids = readJsonl(out).map((o) => o.id);
  expect(ids.length).toBe(n);
  expect(new Set(ids).size).toBe(n);
  expect(readJsonl(errors)).toEqual([]);
});
