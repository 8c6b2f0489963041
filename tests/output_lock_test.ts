/**
 * One writer per output (`src/cli/output_lock.ts`), end to end: real `bun cli.ts run` processes, a second
 * run refused while the first writes, locks left by `kill -9` and by reused pids taken over.
 * @module
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { acquireOutputLock, processStart } from "../src/cli/output_lock.ts";
import { cliHarness, readJsonl, ROOT } from "./_cli.ts";
import { alive, childrenOf, runScript, waitFor } from "./_processes.ts";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync("/tmp/i10-lifecycle-lock-");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const { spawnCli, cli, file } = cliHarness({
  dir: () => dir,
  drop: /API_KEY|BASE_URL|BUN_CONFIG_MAX_HTTP_REQUESTS|MFT_/,
  detached: true,
});

function job(name: string, n: number, extra: string[] = []) {
  const input = file(
    `${name}.jsonl`,
    Array.from({ length: n }, (_, i) => ({ id: `${name}${i}`, prompt: `q ${i}` })),
  );
  const out = path.join(dir, `${name}-out.jsonl`);
  const args = ["run", input, "--provider", "mock", "--output", out, "--quiet", ...extra];
  return { input, out, args };
}

const lineCount = (f: string) =>
  fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").length - 1 : 0;

test(
  "a second run on an output being written is refused at once (exit 2), naming the writer",
  async () => {
    const n = 150;
    const { out, args } = job("two", n, ["--mock-latency", "300ms", "--rate-limit", "60"]);
    const first = spawnCli(args);
    await waitFor("first answers", () => lineCount(out) >= 5);
    const second = await cli([...args, "--resume"]);
    expect(second.code).toBe(2);
    const holder = Number(/being written by process (\d+)/.exec(second.stderr)?.[1]);
    // The writer is the process started, or the child it runs as under Bun.
    expect([first.pid, ...childrenOf(first.pid)]).toContain(holder);
    expect(await first.exited).toBe(0);
    const ids = readJsonl(out).map((r) => r.id);
    expect(ids.length).toBe(n);
    expect(new Set(ids).size).toBe(n);
    expect(fs.existsSync(`${out}.lock`)).toBe(false);
  },
  30_000,
);

test("a lock left by a run killed with SIGKILL is taken over by the next run", async () => {
  const n = 150;
  const { out, args } = job("killed", n, ["--mock-latency", "300ms", "--rate-limit", "60"]);
  const first = spawnCli(args);
  await waitFor("first answers", () => lineCount(out) >= 5);
  const group = [first.pid, ...childrenOf(first.pid)];
  process.kill(-first.pid, "SIGKILL"); // the whole group: nothing of it survives
  await first.exited;
  await waitFor("the group to die", () => !group.some(alive));
  expect(fs.existsSync(`${out}.lock`)).toBe(true);
  const r = await cli([...args.filter((a) => a !== "--quiet"), "--resume"]);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/taking over the stale lock .*: process \d+ is gone/);
  const ids = readJsonl(out).map((o) => o.id);
  expect(ids.length).toBe(n);
  expect(new Set(ids).size).toBe(n);
  expect(fs.existsSync(`${out}.lock`)).toBe(false);
}, 30_000);

test(
  "a lock is held by a live process, stale when its pid was reused or its heartbeat stopped",
  async () => {
    const sleeper = Bun.spawn(["sleep", "60"]);
    try {
      const start = processStart(sleeper.pid)!;
      expect(start).toBeGreaterThan(0);
      const write = (out: string, content: object) =>
        fs.writeFileSync(`${out}.lock`, JSON.stringify({ token: "t", ...content }) + "\n");

      // Live, same start time, fresh heartbeat: held.
      const live = job("live", 3);
      write(live.out, { pid: sleeper.pid, start, heartbeat: Date.now() });
      const held = await cli(live.args);
      expect(held.code).toBe(2);
      expect(held.stderr).toContain(`being written by process ${sleeper.pid}`);
      expect(fs.existsSync(live.out)).toBe(false);

      // The pid now belongs to a process that started at another time: stale.
      const reused = job("reused", 3);
      write(reused.out, { pid: sleeper.pid, start: start - 1, heartbeat: Date.now() });
      const r1 = await cli(reused.args.filter((a) => a !== "--quiet"));
      expect(r1.code).toBe(0);
      expect(r1.stderr).toContain("its pid now belongs to another process");
      expect(readJsonl(reused.out).length).toBe(3);

      // Alive, but no heartbeat for an hour (frozen, or on another machine): stale.
      const frozen = job("frozen", 3);
      write(frozen.out, { pid: sleeper.pid, start, heartbeat: Date.now() - 3_600_000 });
      const r2 = await cli(frozen.args.filter((a) => a !== "--quiet"));
      expect(r2.code).toBe(0);
      expect(r2.stderr).toMatch(/last heartbeat was 3600 s ago/);
      expect(readJsonl(frozen.out).length).toBe(3);
      expect(fs.existsSync(`${frozen.out}.lock`)).toBe(false);
    } finally {
      sleeper.kill();
    }
  },
  30_000,
);

test("acquireOutputLock() beats, refuses a second holder, and aborts `lost` when taken over", async () => {
  const out = path.join(dir, "unit-out.jsonl");
  const logs: string[] = [];
  const lock = acquireOutputLock(out, { heartbeatMs: 20, log: (l) => logs.push(l) });
  try {
    const first = JSON.parse(fs.readFileSync(lock.path, "utf8"));
    expect(first.pid).toBe(process.pid);
    await waitFor(
      "a heartbeat",
      () => JSON.parse(fs.readFileSync(lock.path, "utf8")).heartbeat > first.heartbeat,
    );
    expect(() => acquireOutputLock(out)).toThrow(`being written by process ${process.pid}`);
    // Another process takes it over (this one looked frozen to it).
    fs.writeFileSync(lock.path, JSON.stringify({ ...first, pid: 1, token: "other" }));
    await waitFor("the loss", () => lock.lost.aborted);
    expect(logs.join("\n")).toContain("lost the lock");
  } finally {
    lock.release();
  }
  // The successor's lock is not ours to remove.
  expect(JSON.parse(fs.readFileSync(`${out}.lock`, "utf8")).token).toBe("other");
});

test("under Deno the heartbeat rewrites the lock in place, and release removes it", async () => {
  // Deno's node:fs ignored the position of writeSync(fd, string, 0): every beat landed past the
  // truncation behind NULs, so the holder read its own lock as foreign and stopped its run.
  const out = path.join(dir, "deno-beat-out.jsonl");
  const script = `
    import * as fs from "node:fs";
    import { acquireOutputLock } from ${JSON.stringify(path.join(ROOT, "src/cli/output_lock.ts"))};
    const out = ${JSON.stringify(out)};
    const lock = acquireOutputLock(out, { heartbeatMs: 20, log: (l) => console.log("log: " + l) });
    const first = JSON.parse(fs.readFileSync(lock.path, "utf8")).heartbeat;
    await new Promise((r) => setTimeout(r, 300));
    const text = fs.readFileSync(lock.path, "utf8");
    console.log(JSON.stringify({ text, first, lost: lock.lost.aborted }));
    lock.release();
    console.log(JSON.stringify({ exists: fs.existsSync(lock.path) }));
  `;
  const { stdout, stderr, code } = await runScript("deno", script);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const [beat, after] = stdout.trim().split("\n").map((l) => JSON.parse(l));
  expect(beat.text).not.toContain("\u0000");
  const held = JSON.parse(beat.text);
  expect(held.heartbeat).toBeGreaterThan(beat.first); // it beat at least once
  expect(beat.lost).toBe(false);
  expect(after.exists).toBe(false);
}, 30_000);
